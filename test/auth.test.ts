import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { digestOf } from '../src/oci/index.js';
import { hashSecret } from '../src/http/secrets.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const PULLER = 'ctk_puller_pullerpullerpullerpuller';
const PUSHER = 'ctk_pusher_pusherpusherpusherpusher';
const DELETER = 'ctk_deleter_deleterdeleterdeleter12';
const ADMINISH = 'ctk_everything_everythingeverything12';
const basic = (user: string, pass: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` });
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

async function pushImage(s: TestServer, repo: string, tag: string, headers: Record<string, string>) {
  const layer = Buffer.from(`layer of ${repo}:${tag}`);
  const config = Buffer.from('{}');
  for (const b of [layer, config]) {
    const r = await fetch(`${s.url}/v2/${repo}/blobs/uploads/?digest=${digestOf(b)}`, { method: 'POST', body: b, headers });
    expect(r.status).toBe(201);
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(config), size: config.length },
    layers: [{ mediaType: 'application/octet-stream', digest: digestOf(layer), size: layer.length }],
  });
  const r = await fetch(`${s.url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { ...headers, 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  expect(r.status).toBe(201);
  return { layer: digestOf(layer), manifest: digestOf(manifest) };
}

describe('access control', () => {
  let s: TestServer;
  let img: { layer: string; manifest: string };
  let logs = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs += chunk.toString();
      cb();
    },
  });
  beforeAll(async () => {
    const perm = (actions: string[]) => [{ repositories: ['team/**'], actions }];
    s = await startTestServer({
      logLevel: 'debug',
      logDestination: sink,
      config: {
        auth: {
          anonymous: { pull: 'never' },
          tokens: [
            { id: 'puller', hash: await hashSecret(PULLER.split('_')[2]!), permissions: perm(['pull']) },
            { id: 'pusher', hash: await hashSecret(PUSHER.split('_')[2]!), permissions: perm(['pull', 'push']) },
            { id: 'deleter', hash: await hashSecret(DELETER.split('_')[2]!), permissions: perm(['pull', 'delete']) },
            { id: 'everything', hash: await hashSecret(ADMINISH.split('_')[2]!), permissions: [{ repositories: ['**'], actions: ['pull', 'push'] }] },
          ],
          users: [{ name: 'alice', passwordHash: await hashSecret('correct horse'), permissions: perm(['pull', 'push']) }],
        },
      },
    });
    img = await pushImage(s, 'team/model', 'v1', bearer(PUSHER));
  });
  afterAll(() => s.close());

  it('does not create an admin token when tokens are configured', async () => {
    expect(s.token).toBeUndefined();
  });

  it('answers a missing token with 401 UNAUTHORIZED and a bearer challenge naming the scope', async () => {
    const r = await fetch(`${s.url}/v2/team/model/manifests/v1`);
    expect(r.status).toBe(401);
    expect(((await r.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('UNAUTHORIZED');
    expect(r.headers.get('www-authenticate')).toBe(`Bearer realm="${s.url}/auth/token",service="customs",scope="repository:team/model:pull"`);
    expect((await fetch(`${s.url}/v2/`)).status).toBe(401);
  });

  it('answers a wrong token with 401 and keeps the secret out of the logs', async () => {
    for (const h of [bearer('ctk_pusher_wrongwrongwrongwrongwrong'), bearer('garbage'), basic('x', 'ctk_puller_nopenopenopenopenope'), basic('alice', 'wrong')]) {
      const r = await fetch(`${s.url}/v2/team/model/manifests/v1`, { headers: h });
      expect(r.status).toBe(401);
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(logs).toContain('auth-failure');
    for (const secret of ['wrongwrongwrongwrongwrong', 'nopenopenopenopenope', 'pusherpusherpusherpusher', 'correct horse', 'Bearer', 'Basic ']) {
      expect(logs).not.toContain(secret);
    }
  });

  const families = (repo: string, ids: { layer: string; manifest: string }) => ({
    'GET manifest': () => fetch(`${s.url}/v2/${repo}/manifests/v1`),
    'HEAD manifest': () => fetch(`${s.url}/v2/${repo}/manifests/${ids.manifest}`, { method: 'HEAD' }),
    'GET blob': () => fetch(`${s.url}/v2/${repo}/blobs/${ids.layer}`),
    'GET tags': () => fetch(`${s.url}/v2/${repo}/tags/list`),
    'GET referrers': () => fetch(`${s.url}/v2/${repo}/referrers/${ids.manifest}`),
  });

  it('pull-only token: reads, but may not push or delete', async () => {
    const h = bearer(PULLER);
    for (const [what, go] of Object.entries(families('team/model', img))) {
      const r = await (go as () => Promise<Response>)().then(() => fetch(urlOf(what), { method: methodOf(what), headers: h }));
      expect(r.status, what).toBeLessThan(300);
    }
    const post = await fetch(`${s.url}/v2/team/model/blobs/uploads/`, { method: 'POST', headers: h });
    expect(post.status).toBe(403);
    expect(((await post.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('DENIED');
    const put = await fetch(`${s.url}/v2/team/model/manifests/v2`, { method: 'PUT', headers: { ...h, 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: '{}' });
    expect(put.status).toBe(403);
    expect((await fetch(`${s.url}/v2/team/model/manifests/${img.manifest}`, { method: 'DELETE', headers: h })).status).toBe(403);
    expect((await fetch(`${s.url}/v2/team/model/blobs/${img.layer}`, { method: 'DELETE', headers: h })).status).toBe(403);
    // Outside its repositories: nothing, not even the names.
    expect((await fetch(`${s.url}/v2/other/model/manifests/v1`, { headers: h })).status).toBe(403);
    await pushImage(s, 'secret/model', 'v1', bearer(ADMINISH));
    const cat = (await (await fetch(`${s.url}/v2/_catalog`, { headers: h })).json()) as { repositories: string[] };
    expect(cat.repositories).toContain('team/model');
    expect(cat.repositories).not.toContain('secret/model');
  });

  function urlOf(what: string): string {
    const base = `${s.url}/v2/team/model`;
    return {
      'GET manifest': `${base}/manifests/v1`,
      'HEAD manifest': `${base}/manifests/${img.manifest}`,
      'GET blob': `${base}/blobs/${img.layer}`,
      'GET tags': `${base}/tags/list`,
      'GET referrers': `${base}/referrers/${img.manifest}`,
    }[what]!;
  }
  const methodOf = (what: string) => what.split(' ')[0];

  it('push token: pushes through Basic (any username) and bearer, uploads in chunks, may not delete', async () => {
    await pushImage(s, 'team/other', 'v1', basic('whoever', PUSHER));
    const start = await fetch(`${s.url}/v2/team/model/blobs/uploads/`, { method: 'POST', headers: bearer(PUSHER) });
    expect(start.status).toBe(202);
    const loc = start.headers.get('location')!;
    expect((await fetch(`${s.url}${loc}`, { method: 'PATCH', body: 'abc', headers: { ...bearer(PUSHER), 'content-range': '0-2' } })).status).toBe(202);
    expect((await fetch(`${s.url}${loc}`, { headers: bearer(PUSHER) })).status).toBe(204);
    expect((await fetch(`${s.url}${loc}`, { method: 'PATCH', body: 'def', headers: bearer(PULLER) })).status).toBe(403);
    expect((await fetch(`${s.url}${loc}`, { method: 'DELETE', headers: bearer(PUSHER) })).status).toBe(403);
    expect((await fetch(`${s.url}/v2/team/model/manifests/${img.manifest}`, { method: 'DELETE', headers: bearer(PUSHER) })).status).toBe(403);
    expect((await fetch(`${s.url}/v2/outside/x/blobs/uploads/`, { method: 'POST', headers: bearer(PUSHER) })).status).toBe(403);
  });

  it('user with password: Basic works, and the token endpoint issues a bearer token that works', async () => {
    expect((await fetch(`${s.url}/v2/team/model/manifests/v1`, { headers: basic('alice', 'correct horse') })).status).toBe(200);
    const t = await fetch(`${s.url}/auth/token?service=customs&scope=repository:team/model:pull`, { headers: basic('alice', 'correct horse') });
    expect(t.status).toBe(200);
    const { token } = (await t.json()) as { token: string };
    expect(token).toMatch(/^cst_/);
    expect((await fetch(`${s.url}/v2/team/model/manifests/v1`, { headers: bearer(token) })).status).toBe(200);
    // A tampered token is refused.
    expect((await fetch(`${s.url}/v2/team/model/manifests/v1`, { headers: bearer(`${token.slice(0, -2)}xx`) })).status).toBe(401);
    // The token endpoint refuses bad credentials.
    expect((await fetch(`${s.url}/auth/token`, { headers: basic('alice', 'nope') })).status).toBe(401);
  });

  it('delete token: deletes tags, manifests and blobs', async () => {
    const other = await pushImage(s, 'team/del', 'v1', bearer(PUSHER));
    expect((await fetch(`${s.url}/v2/team/del/blobs/${other.layer}`, { method: 'DELETE', headers: bearer(DELETER) })).status).toBe(202);
    expect((await fetch(`${s.url}/v2/team/del/manifests/${other.manifest}`, { method: 'DELETE', headers: bearer(DELETER) })).status).toBe(202);
  });

  it('cross-repository mount links only what the caller may read', async () => {
    // pusher may read team/**, so mounting from team/model works...
    const ok = await fetch(`${s.url}/v2/team/mounted/blobs/uploads/?mount=${img.layer}&from=team/model`, { method: 'POST', headers: bearer(PUSHER) });
    expect(ok.status).toBe(201);
  });
});

describe('defaults of a fresh install', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(() => s.close());

  it('writes an admin token (0600) and lets anonymous loopback clients pull but not push', async () => {
    expect(s.token).toMatch(/^ctk_admin_/);
    expect((await stat(join(s.dataDir, 'admin-token'))).mode & 0o777).toBe(0o600);
    const base = await fetch(`${s.url}/v2/`);
    expect(base.status).toBe(401); // always challenged, so clients know to send credentials
    expect(base.headers.get('www-authenticate')).toBe(`Bearer realm="${s.url}/auth/token",service="customs"`);
    expect((await fetch(`${s.url}/v2/`, { headers: s.auth() })).status).toBe(200);
    const anonPush = await fetch(`${s.url}/v2/x/y/blobs/uploads/`, { method: 'POST' });
    expect(anonPush.status).toBe(401);
    expect(anonPush.headers.get('www-authenticate')).toContain('Bearer realm=');
    await pushImage(s, 'x/y', 'v1', s.auth());
    expect((await fetch(`${s.url}/v2/x/y/manifests/v1`)).status).toBe(200);
    // An anonymous token from the token endpoint behaves as anonymous.
    const { token } = (await (await fetch(`${s.url}/auth/token`)).json()) as { token: string };
    expect((await fetch(`${s.url}/v2/x/y/manifests/v1`, { headers: bearer(token) })).status).toBe(200);
    expect((await fetch(`${s.url}/v2/x/y/blobs/uploads/`, { method: 'POST', headers: bearer(token) })).status).toBe(401);
    expect(await readFile(join(s.dataDir, 'admin-token'), 'utf8')).toContain(s.token!);
  });
});
