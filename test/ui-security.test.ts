import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Descriptor } from '../src/oci/index.js';
import { startTestServer } from './helpers/server.js';
import { cookiesOf, get, post, pushSigned, signIn, startConsoleServer, type ConsoleServer, type HttpSession } from './ui-fixtures.js';

/**
 * The console's attack tests over HTTP (no browser): every state-changing request without a
 * session, without a valid CSRF token, from another site, or from a principal whose token
 * may not do it, is refused and changes nothing; text from the registry is escaped; the
 * session cookie's flags; a token for models/** sees no other repository in any list.
 */
describe('operator console: security', () => {
  let s: ConsoleServer;
  let v1: Descriptor, v2: Descriptor, secret: Descriptor, held: Descriptor;
  let oncall: HttpSession, puller: HttpSession, pusher: HttpSession, modelsAdmin: HttpSession;
  const admin = (path: string, init: RequestInit = {}) => fetch(`${s.url}/admin/${path}`, { ...init, headers: { authorization: `Bearer ${s.tokens.oncall}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });

  beforeAll(async () => {
    s = await startConsoleServer();
    v1 = await pushSigned(s, 'models/fraud', 'prod', 'weights v1');
    v2 = await pushSigned(s, 'models/fraud', 'prod', 'weights v2');
    await pushSigned(s, 'models/fraud', 'stable', 'weights v1');
    secret = await pushSigned(s, 'data/secret', 'v1', 'private data');
    held = await pushSigned(s, 'data/held', 'v1', 'already quarantined');
    await pushSigned(s, 'models/xss', 'v1', 'x', { annotations: { 'org.opencontainers.image.description': '<script>alert(1)</script>', '<img src=x onerror=alert(2)>': 'key' } });
    expect((await admin('pin', { method: 'POST', body: JSON.stringify({ repository: 'models/fraud', tag: 'stable', reason: 'setup' }) })).status).toBe(200);
    expect((await admin('quarantine', { method: 'POST', body: JSON.stringify({ digest: held.digest, reason: 'setup' }) })).status).toBe(200);
    oncall = await signIn(s.url, s.tokens.oncall);
    puller = await signIn(s.url, s.tokens.modelsPull);
    pusher = await signIn(s.url, s.tokens.ci);
    modelsAdmin = await signIn(s.url, s.tokens.modelsAdmin);
  });
  afterAll(async () => {
    await s?.close();
  });

  /** Everything a refused request could have changed, read through the admin API. */
  async function state() {
    const json = async (p: string) => (await admin(p)).json();
    const audit = (await json('audit?limit=10000')) as { entries: { action: string; actor: string }[] };
    return {
      prod: (await fetch(`${s.url}/v2/models/fraud/manifests/prod`, { method: 'HEAD', headers: { authorization: `Bearer ${s.tokens.ci}`, accept: 'application/vnd.oci.image.manifest.v1+json' } })).headers.get('docker-content-digest'),
      v1: (await fetch(`${s.url}/v2/models/fraud/manifests/${v1.digest}`, { method: 'HEAD', headers: { authorization: `Bearer ${s.tokens.ci}`, accept: 'application/vnd.oci.image.manifest.v1+json' } })).status,
      pins: await json('pins'),
      quarantine: await json('quarantine'),
      // Refusals are recorded (deny, auth.failure), and customs' own verification summaries are published
      // in the background on a digest's first allow (system:vsa); anything else would be a change.
      changes: audit.entries.filter((e) => !['deny', 'auth.failure'].includes(e.action) && e.actor !== 'system:vsa').length,
    };
  }

  const reason = 'INC-1: attack test';
  const actions = (): [string, Record<string, string>][] => [
    ['/ui/pin', { repository: 'models/fraud', tag: 'prod', digest: v1.digest, reason }],
    ['/ui/unpin', { repository: 'models/fraud', tag: 'stable', reason }],
    ['/ui/quarantine', { digest: v2.digest, reason }],
    ['/ui/release', { digest: held.digest, reason }],
    ['/ui/rollback', { repository: 'models/fraud', tag: 'prod', to: v1.digest, reason }],
    ['/ui/delete', { repository: 'models/fraud', digest: v1.digest, reason }],
    ['/ui/verify', { repository: 'models/fraud', digest: v2.digest }],
    ['/ui/quarantine/material', { material: v1.digest, plan: 'a'.repeat(64), reason }],
  ];

  it('refuses every action without a session (401), changing nothing', async () => {
    const before = await state();
    for (const [path, fields] of actions()) {
      const r = await post(s.url, path, { ...fields, csrf: oncall.csrf });
      expect(r.status, path).toBe(401);
      expect(await r.text(), path).toMatch(/Sign in first/);
    }
    // A forged or expired cookie is no session either.
    const forged = oncall.cookie.replace(/\.[^.]+$/, '.AAAA');
    for (const [path, fields] of actions()) expect((await post(s.url, path, { ...fields, csrf: oncall.csrf }, { cookie: forged })).status, path).toBe(401);
    expect(await state()).toEqual(before);
  });

  it('shows nothing to anonymous users: every page sends them to sign in', async () => {
    for (const p of ['/ui/', '/ui/repositories', '/ui/repository?name=models/fraud', `/ui/artifact?repository=models/fraud&reference=prod`, '/ui/audit', '/ui/audit/export', `/ui/lineage?material=${v1.digest}`, '/ui/history?repository=models/fraud&tag=prod']) {
      const r = await get(s.url, p);
      expect(r.status, p).toBe(303);
      expect(r.headers.get('location'), p).toBe(`/ui/login?next=${encodeURIComponent(p)}`);
      expect(await r.text(), p).not.toMatch(/models|sha256/);
    }
  });

  it('refuses every action without a valid CSRF token, or from another site (403), changing nothing', async () => {
    const before = await state();
    for (const [path, fields] of actions()) {
      expect((await post(s.url, path, fields, oncall)).status, `${path} without token`).toBe(403);
      expect((await post(s.url, path, { ...fields, csrf: 'x'.repeat(43) }, oncall)).status, `${path} with a wrong token`).toBe(403);
      // Another session's token is not this session's.
      expect((await post(s.url, path, { ...fields, csrf: puller.csrf }, oncall)).status, `${path} with another session's token`).toBe(403);
      expect((await post(s.url, path, { ...fields, csrf: oncall.csrf }, oncall, { origin: 'https://evil.example' })).status, `${path} from another origin`).toBe(403);
      expect((await post(s.url, path, { ...fields, csrf: oncall.csrf }, oncall, { 'sec-fetch-site': 'cross-site' })).status, `${path} cross-site`).toBe(403);
    }
    // Sign-out is state-changing too: refused without the token, the session lives on.
    expect((await post(s.url, '/ui/logout', {}, oncall)).status).toBe(403);
    expect((await get(s.url, '/ui/', oncall)).status).toBe(200);
    expect(await state()).toEqual(before);
  });

  it('refuses what the token may not do: pull-only and push-only principals change nothing (403)', async () => {
    const before = await state();
    for (const who of [puller, pusher]) {
      for (const [path, fields] of actions()) {
        const r = await post(s.url, path, { ...fields, csrf: who.csrf }, who);
        expect(r.status, path).toBe(403);
        expect(await r.text(), path).toMatch(/may not (admin|delete)/);
      }
    }
    // An admin of models/** may pin there, but not quarantine (global) or touch data/**.
    expect((await post(s.url, '/ui/quarantine', { digest: v2.digest, reason, csrf: modelsAdmin.csrf }, modelsAdmin)).status).toBe(403);
    expect((await post(s.url, '/ui/delete', { repository: 'data/secret', digest: secret.digest, reason, csrf: modelsAdmin.csrf }, modelsAdmin)).status).toBe(403);
    expect(await state()).toEqual(before);
  });

  it('does the same action for a principal who may, with a valid token (the refusals above could have passed)', async () => {
    const r = await post(s.url, '/ui/pin', { repository: 'models/fraud', tag: 'prod', reason: 'INC-1: freeze', csrf: oncall.csrf }, oncall);
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe(`/ui/artifact?repository=models%2Ffraud&reference=prod`);
    const pins = (await (await admin('pins?repository=models/fraud')).json()) as { pins: { tag: string; actor: string; reason: string }[] };
    expect(pins.pins.find((p) => p.tag === 'prod')).toMatchObject({ actor: 'token:oncall', reason: 'INC-1: freeze' });
    const page = await (await fetch(`${s.url}${r.headers.get('location')}`, { headers: { cookie: `${oncall.cookie}; ${cookiesOf(r)[0]!.split(';')[0]}` } })).text();
    expect(page).toMatch(/Pinned models\/fraud:prod to sha256:/);
    expect((await post(s.url, '/ui/unpin', { repository: 'models/fraud', tag: 'prod', reason: 'INC-1: done', csrf: oncall.csrf }, oncall)).status).toBe(303);
  });

  it('sets the session cookie HttpOnly, SameSite=Strict, path /ui, expiring; not Secure over plain HTTP', async () => {
    const login = await fetch(`${s.url}/ui/login`);
    const csrf = /name="csrf" value="([^"]+)"/.exec(await login.text())![1]!;
    const pre = cookiesOf(login)[0]!;
    expect(pre).toMatch(/^customs_signin=[^;]+; Max-Age=600; Path=\/ui; HttpOnly; SameSite=Strict$/);
    const r = await post(s.url, '/ui/login', { csrf, token: s.tokens.oncall }, { cookie: pre.split(';')[0] });
    const session = cookiesOf(r).find((c) => c.startsWith('customs_session='))!;
    expect(session).toMatch(/^customs_session=v1\.[\w-]+\.[\w-]+; Max-Age=28800; Path=\/ui; HttpOnly; SameSite=Strict$/);
    // The sign-in form's own CSRF: without the pre-session cookie, no sign-in.
    const noPre = await post(s.url, '/ui/login', { csrf, token: s.tokens.oncall });
    expect(noPre.status).toBe(403);
    expect(cookiesOf(noPre).some((c) => c.startsWith('customs_session='))).toBe(false);
    // Wrong credentials: no session, and the failure is in the audit log.
    const bad = await post(s.url, '/ui/login', { csrf, token: `${s.tokens.oncall}x` }, { cookie: pre.split(';')[0] });
    expect(bad.status).toBe(401);
    expect(cookiesOf(bad).some((c) => c.startsWith('customs_session='))).toBe(false);
    // The cookie is not a bearer token for the API.
    const value = session.split(';')[0]!.split('=')[1]!;
    expect((await fetch(`${s.url}/admin/pins`, { headers: { authorization: `Bearer ${value}` } })).status).toBe(401);
  });

  it('sends a strict Content-Security-Policy and no inline script on every page', async () => {
    for (const p of ['/ui/', '/ui/repositories', '/ui/repository?name=models/fraud', `/ui/artifact?repository=models/fraud&reference=${v2.digest}`, '/ui/audit', '/ui/history?repository=models/fraud&tag=prod', `/ui/lineage?material=${v1.digest}`, '/ui/login']) {
      const r = await get(s.url, p, oncall);
      expect(r.status, p).toBe(200);
      const csp = r.headers.get('content-security-policy')!;
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(r.headers.get('x-frame-options')).toBe('DENY');
      expect(r.headers.get('cache-control')).toBe('no-store');
      const body = await r.text();
      expect(body.match(/<script[^>]*>/g) ?? [], p).toEqual(p === '/ui/login' ? [] : [expect.stringMatching(/^<script src="\/ui\/static\/console\.[a-f0-9]{12}\.js" defer="">$/)]);
      expect(body, p).not.toMatch(/ style=| on[a-z]+=/);
    }
  });

  it('shows a repository name, annotation or query containing <script> as text', async () => {
    const page = await (await get(s.url, '/ui/artifact?repository=models/xss&reference=v1', oncall)).text();
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page).toContain('&lt;img src=x onerror=alert(2)&gt;');
    expect(page).not.toMatch(/<script>alert|<img src=x/);
    const search = await (await get(s.url, `/ui/repositories?q=${encodeURIComponent('<script>alert(3)</script>')}`, oncall)).text();
    expect(search).toContain('&lt;script&gt;alert(3)&lt;/script&gt;');
    expect(search).not.toContain('<script>alert(3)');
    const bad = await get(s.url, `/ui/repository?name=${encodeURIComponent('x<script>alert(4)</script>')}`, oncall);
    expect(bad.status).toBe(400);
    const text = await bad.text();
    expect(text).not.toContain('<script>alert(4)');
    expect(text).toContain('&lt;script&gt;alert(4)');
    const audit = await (await get(s.url, `/ui/audit?actor=${encodeURIComponent('"><script>alert(5)</script>')}`, oncall)).text();
    expect(audit).not.toContain('<script>alert(5)');
  });

  it('a token for models/** sees no other repository in any list', async () => {
    for (const who of [puller, modelsAdmin]) {
      const list = await (await get(s.url, '/ui/repositories', who)).text();
      expect(list).toContain('models/fraud');
      expect(list).not.toMatch(/data\/secret|data\/held/);
      expect(await (await get(s.url, '/ui/repositories?q=data', who)).text()).not.toMatch(/data\/secret|data\/held/);
      const overview = await (await get(s.url, '/ui/', who)).text();
      expect(overview).toMatch(/<span class="n">2<\/span> <a href="\/ui\/repositories">repositories/);
      expect(overview).not.toMatch(/data\/|Quarantined digests|Policy as loaded/);
      for (const p of ['/ui/repository?name=data/secret', `/ui/artifact?repository=data/secret&reference=${secret.digest}`, '/ui/audit', '/ui/audit/export', `/ui/lineage?material=${secret.digest}`, `/ui/quarantine/plan?material=${secret.digest}`]) {
        const r = await get(s.url, p, who);
        expect(r.status, p).toBe(403);
        expect(await r.text(), p).not.toContain(secret.digest.slice(7, 20));
      }
    }
    // The operator sees everything: the lists above were filtered, not empty by accident.
    const all = await (await get(s.url, '/ui/repositories', oncall)).text();
    expect(all).toMatch(/data\/secret/);
  });

  it('shows each tag with its digest, type, size, push time, pin and verdict; counts denied pulls', async () => {
    const denied = await fetch(`${s.url}/v2/data/held/manifests/v1`, { headers: { authorization: `Bearer ${s.tokens.ci}`, accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(denied.status).toBe(403);
    const fraud = await (await get(s.url, '/ui/repository?name=models/fraud', oncall)).text();
    const stable = /<tr><td><a[^>]*>stable<\/a>.*?<\/tr>/s.exec(fraud)![0];
    expect(stable).toContain(v1.digest.slice(0, 19));
    expect(stable).toContain('application/vnd.cncf.model.manifest.v1+json');
    expect(stable).toMatch(/\d+ B/);
    expect(stable).toMatch(/<time datetime="20\d\d-/);
    expect(stable).toContain('>pinned<');
    expect(stable).toContain('>allowed<');
    const held = await (await get(s.url, '/ui/repository?name=data/held', oncall)).text();
    expect(held).toContain('>quarantined<');
    const overview = await (await get(s.url, '/ui/', oncall)).text();
    expect(overview).toMatch(/<span class="n">1<\/span> <a href="[^"]*">denied pulls in the last 24 h/);
  });

  it('has no /ui/ at all when ui.enabled is false', async () => {
    const off = await startTestServer({ config: { ui: { enabled: false } } });
    try {
      expect((await fetch(`${off.url}/ui/login`)).status).toBe(404);
      expect((await fetch(`${off.url}/ui/`)).status).toBe(404);
    } finally {
      await off.close();
    }
  });

  it('signs out: the session is revoked even if the cookie is replayed', async () => {
    const me = await signIn(s.url, s.tokens.oncall);
    const r = await post(s.url, '/ui/logout', { csrf: me.csrf }, me);
    expect(r.status).toBe(303);
    expect(cookiesOf(r).find((c) => c.startsWith('customs_session='))).toMatch(/Max-Age=0/);
    expect((await get(s.url, '/ui/', me)).status).toBe(303);
    expect((await post(s.url, '/ui/pin', { repository: 'models/fraud', tag: 'prod', reason, csrf: me.csrf }, me)).status).toBe(401);
  });
});
