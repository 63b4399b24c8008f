import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { err, isRegistryError, parseDigest, parseReference, type Digest } from '../oci/index.js';
import type { AuditFilter, AuditInput } from '../storage/index.js';
import { ASSETS, barePage, loginPage, MATERIAL, type AuditFilterText, type Console } from '../ui/index.js';
import { parseTime } from './admin.js';
import { toHttpError } from './errors.js';
import { contextOf } from './request-context.js';
import type { ConsoleSessions } from './ui-session.js';
import {
  clearSessionCookie,
  cookieOptions,
  deleteCookie,
  getCookie,
  NOTICE_COOKIE,
  PRE_COOKIE,
  readForm,
  requireCsrf,
  requireSession,
  securityHeaders,
  setCookie,
  setSessionCookie,
  type ConsoleAuth,
  type UiEnv,
} from './ui-guard.js';
import { accessRequest } from './v2.js';

/**
 * The operator console under /ui/ (src/ui renders it): thin like every app here. Parse the
 * query or form with zod, call one console method, send the HTML. Sessions, CSRF and
 * headers are ui-guard.ts; permissions are asked inside the console, of the viewer.
 */
export interface UiAppDeps {
  readonly console: Console;
  readonly auth: ConsoleAuth;
  readonly sessions: ConsoleSessions;
  /** Sign-in and sign-out entries (the store chains them like every other). */
  readonly audit: (e: AuditInput) => Promise<unknown>;
  /** Refusals of a signed-in principal's request (403), recorded as the API records its own. */
  readonly onDenied?: (actor: string, target: string, reason: string) => void;
  /** `always` behind a TLS-terminating proxy; `auto`: Secure when the request came over TLS. */
  readonly secureCookie: 'auto' | 'always';
}

const repository = z.string().min(1).max(255);
const tag = z.string().min(1).max(128);
const digest = z.string().transform((s) => parseDigest(s).digest);
const reference = z.string().min(1).max(300).transform((s) => parseReference(s));
const reason = z.string().trim().min(1, 'a reason is required').max(2000);
const cursor = z.string().max(300).optional();
const text = z.string().max(255).default('');

function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw err('NAME_INVALID', `invalid request: ${r.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ')}`);
  return r.data;
}

const form = <T extends z.ZodType>(c: Context<UiEnv>, schema: T): z.output<T> => parse(schema, Object.fromEntries(c.get('form')));
const query = <T extends z.ZodType>(c: Context<UiEnv>, schema: T): z.output<T> => parse(schema, c.req.query());

const artifactUrl = (r: string, ref: string) => `/ui/artifact?repository=${encodeURIComponent(r)}&reference=${encodeURIComponent(ref)}`;

/** Only paths inside the console may be returned to after sign-in (no open redirect). */
const safeNext = (next: string | undefined): string => (next && /^\/ui\/[^\\]*$/.test(next) && !next.startsWith('//') && !next.includes('//') ? next : '/ui/');

export function uiApp(d: UiAppDeps): Hono<UiEnv> {
  const app = new Hono<UiEnv>();
  const c0 = d.console;
  const refuse = (c: Context<UiEnv>, status: 401 | 403, message: string) => c.html(barePage(status === 401 ? 'Sign in first' : 'Refused', message), status);
  const html = (c: Context<UiEnv>, body: string) => c.html(body, 200);
  /** After an action: back to the page it was started from; what happened travels in a one-use cookie, not in the URL. */
  const back = (c: Context<UiEnv>, path: string, notice: string) => {
    setCookie(c, NOTICE_COOKIE, Buffer.from(notice.slice(0, 500)).toString('base64url'), cookieOptions(c, d.secureCookie, 60));
    return c.redirect(path, 303);
  };

  app.use('*', securityHeaders);
  app.onError((e, c) => {
    const http = toHttpError(e);
    const status = http.status as 400 | 401 | 403 | 404 | 413 | 500;
    const message = isRegistryError(e) && !http.internal ? e.message : 'internal error (logged)';
    if (http.internal) contextOf(c.env.incoming).log.error({ err: e }, 'internal error');
    if (status === 403 && c.get('principal')) d.onDenied?.(c.get('principal').actor, c.req.path, message.slice(0, 1000));
    const page = c.get('page');
    return c.html(page ? c0.error(page, status, message) : barePage(status === 404 ? 'Not found' : 'Refused', message), status);
  });

  app.get('/static/:file', (c) => {
    const asset = ASSETS[c.req.param('file')];
    if (!asset) return c.text('not found', 404);
    return c.body(asset.body, 200, { 'content-type': asset.type, 'cache-control': 'public, max-age=31536000, immutable' });
  });

  // --- sign-in and sign-out ---
  app.get('/login', (c) => {
    const pre = d.sessions.preSession();
    setCookie(c, PRE_COOKIE, pre.nonce, cookieOptions(c, d.secureCookie, 600));
    return c.html(loginPage({ csrf: pre.csrf, next: c.req.query('next') }));
  });
  app.post('/login', readForm, async (c) => {
    const f = c.get('form');
    const next = safeNext(f.get('next') ?? undefined);
    const again = (status: 400 | 401 | 403, error: string) => {
      const pre = d.sessions.preSession();
      setCookie(c, PRE_COOKIE, pre.nonce, cookieOptions(c, d.secureCookie, 600));
      return c.html(loginPage({ csrf: pre.csrf, next, error }), status);
    };
    if (!d.sessions.checkPreSession(getCookie(c, PRE_COOKIE), f.get('csrf') ?? undefined)) return again(403, 'The sign-in form expired or did not come from this site. Try again.');
    const token = f.get('token')?.trim();
    const user = f.get('username')?.trim();
    const authorization = token ? `Bearer ${token}` : user ? `Basic ${Buffer.from(`${user}:${f.get('password') ?? ''}`).toString('base64')}` : undefined;
    if (!authorization) return again(400, 'Give an API token, or a user name and password.');
    const principal = await d.auth.authenticate({ ...accessRequest(c.env.incoming), authorization }).catch(() => undefined);
    if (!principal) return again(401, 'Invalid credentials.');
    const { value } = d.sessions.issue(principal.actor);
    setSessionCookie(c, value, d.secureCookie, d.sessions.ttlSeconds);
    deleteCookie(c, PRE_COOKIE, cookieOptions(c, d.secureCookie, 0));
    await d.audit({ actor: principal.actor, action: 'ui.signin', detail: { remote: c.env.incoming.socket.remoteAddress ?? 'unknown' } });
    return c.redirect(next, 303);
  });

  // Everything below needs a session; every POST below needs its CSRF token.
  app.use('*', requireSession(d.sessions, d.auth, refuse), readForm, requireCsrf(d.sessions, refuse));

  app.post('/logout', async (c) => {
    d.sessions.revoke(c.get('session'));
    clearSessionCookie(c, d.secureCookie);
    await d.audit({ actor: c.get('principal').actor, action: 'ui.signout' });
    return c.redirect('/ui/login', 303);
  });

  // --- pages ---
  app.get('/repositories', async (c) => {
    const q = query(c, z.object({ q: text, after: cursor }));
    return html(c, await c0.repositories(c.get('page'), q.q, q.after));
  });
  app.get('/repository', async (c) => {
    const q = query(c, z.object({ name: repository, q: text, after: cursor }));
    return html(c, await c0.repository(c.get('page'), q.name, q.q, q.after));
  });
  app.get('/artifact', async (c) => {
    const q = query(c, z.object({ repository, reference }));
    return html(c, await c0.artifact(c.get('page'), q.repository, q.reference));
  });
  app.get('/lineage', async (c) => {
    const q = query(c, z.union([z.object({ material: z.string().regex(MATERIAL, 'expected alg:value') }), z.object({ repository, reference })]));
    return html(c, 'material' in q ? await c0.consumers(c.get('page'), q.material) : await c0.lineage(c.get('page'), q.repository, q.reference));
  });
  app.get('/history', async (c) => {
    const q = query(c, z.object({ repository, tag, before: z.coerce.number().int().positive().optional() }));
    return html(c, await c0.history(c.get('page'), q.repository, q.tag, q.before));
  });
  app.get('/audit', async (c) => {
    const { filter, text: t, before, verify } = auditQuery(c);
    return html(c, await c0.audit(c.get('page'), filter, t, before, verify));
  });
  app.get('/audit/export', (c) => {
    const { filter } = auditQuery(c);
    const lines = c0.auditExport(c.get('page').viewer, filter);
    const enc = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        const next = await lines.next();
        if (next.done) ctl.close();
        else ctl.enqueue(enc.encode(next.value));
      },
      async cancel() {
        await lines.return(undefined);
      },
    });
    return c.body(stream, 200, { 'content-type': 'application/x-ndjson', 'content-disposition': 'attachment; filename="customs-audit.jsonl"' });
  });
  app.get('/delete', async (c) => {
    const q = query(c, z.object({ repository, digest }));
    return html(c, await c0.confirmDelete(c.get('page'), q.repository, q.digest));
  });
  app.get('/quarantine/plan', async (c) => {
    const q = query(c, z.object({ material: z.string().regex(MATERIAL, 'expected alg:value') }));
    return html(c, await c0.plan(c.get('page'), q.material));
  });

  // --- actions ---
  const backTo = (f: URLSearchParams, repo: string, fallback: string) => (f.get('back') === 'history' ? `/ui/history?repository=${encodeURIComponent(repo)}&tag=${encodeURIComponent(f.get('tag') ?? '')}` : artifactUrl(repo, fallback));
  app.post('/pin', async (c) => {
    const f = form(c, z.object({ repository, tag, digest: digest.optional(), reason }));
    const notice = await c0.act.pin(c.get('page').viewer, f.repository, f.tag, f.digest, f.reason);
    return back(c, backTo(c.get('form'), f.repository, f.digest ?? f.tag), notice);
  });
  app.post('/unpin', async (c) => {
    const f = form(c, z.object({ repository, tag, reason }));
    const notice = await c0.act.unpin(c.get('page').viewer, f.repository, f.tag, f.reason);
    return back(c, backTo(c.get('form'), f.repository, c.get('form').get('back') ?? f.tag), notice);
  });
  app.post('/quarantine', async (c) => {
    const f = form(c, z.object({ digest, reason, repository: repository.optional() }));
    const notice = await c0.act.quarantine(c.get('page').viewer, f.digest, f.reason);
    return back(c, f.repository ? artifactUrl(f.repository, f.digest) : '/ui/', notice);
  });
  app.post('/release', async (c) => {
    const f = form(c, z.object({ digest, reason, repository: repository.optional() }));
    const notice = await c0.act.release(c.get('page').viewer, f.digest, f.reason);
    return back(c, f.repository ? artifactUrl(f.repository, f.digest) : '/ui/', notice);
  });
  app.post('/rollback', async (c) => {
    const f = form(c, z.object({ repository, tag, to: digest, reason }));
    const notice = await c0.act.rollback(c.get('page').viewer, f.repository, f.tag, f.to, f.reason);
    return back(c, `/ui/history?repository=${encodeURIComponent(f.repository)}&tag=${encodeURIComponent(f.tag)}`, notice);
  });
  app.post('/delete', async (c) => {
    const f = form(c, z.object({ repository, digest, reason }));
    const notice = await c0.act.remove(c.get('page').viewer, f.repository, f.digest, f.reason);
    return back(c, `/ui/repository?name=${encodeURIComponent(f.repository)}`, notice);
  });
  app.post('/verify', async (c) => {
    const f = form(c, z.object({ repository, digest }));
    return html(c, await c0.deepVerify(c.get('page'), f.repository, f.digest as Digest));
  });
  app.post('/quarantine/material', async (c) => {
    const f = form(c, z.object({ material: z.string().regex(MATERIAL, 'expected alg:value'), plan: z.string().regex(/^[a-f0-9]{64}$/), reason, pin: z.string().optional() }));
    return html(c, await c0.runPlan(c.get('page'), f.material, f.plan, { pin: f.pin === '1', reason: f.reason }));
  });

  // The console's home is /ui/ (a sub-app's own '/' would be /ui only).
  app.get('*', async (c, next) => (c.req.path === '/ui/' ? html(c, await c0.overview(c.get('page'))) : c.req.path === '/ui' ? c.redirect('/ui/', 301) : next()));
  app.all('*', () => {
    throw err('NAME_UNKNOWN', 'no such console page');
  });
  return app;
}

function auditQuery(c: Context<UiEnv>): { filter: AuditFilter; text: AuditFilterText; before: number | undefined; verify: boolean } {
  const q = query(c, z.object({ since: text, until: text, actor: text, action: text, target: text, before: z.coerce.number().int().positive().optional(), verify: z.string().optional() }));
  const filter: AuditFilter = {
    ...(q.since ? { since: parseTime(q.since) } : {}),
    ...(q.until ? { until: parseTime(q.until) } : {}),
    ...(q.actor ? { actor: q.actor } : {}),
    ...(q.action ? { action: q.action } : {}),
    ...(q.target ? { target: q.target } : {}),
  };
  return { filter, text: { since: q.since, until: q.until, actor: q.actor, action: q.action, target: q.target }, before: q.before, verify: q.verify === '1' };
}
