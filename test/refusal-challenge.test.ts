import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCEPT, clientFor, pushModel, type PushedModel } from './gate-fixtures.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * Issue 15: how a refused request is answered (src/http/refusal.ts). Anonymous pull is
 * allowed on loopback and the default gate enforces, so an unsigned model is denied to
 * everybody; only where credentials change the answer does an anonymous caller get 401.
 */
describe('a refusal to an anonymous caller is 401 with a challenge only when credentials could change the answer', () => {
  let s: TestServer;
  let m: PushedModel;
  const repo = 'models/refusal';

  beforeAll(async () => {
    s = await startTestServer({ gate: undefined });
    m = await pushModel(clientFor(s), repo, 'v1', [{ path: 'w.bin', bytes: randomBytes(2048) }]);
  });
  afterAll(async () => s?.close());

  const anon = (method: string, path: string) => fetch(`${s.url}/v2/${repo}/${path}`, { method, headers: { accept: ACCEPT } });

  it('HEAD of a denied blob: 401 + challenge for push (a pusher is told it exists), then 200 with credentials', async () => {
    const res = await anon('HEAD', `blobs/${m.config}`);
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/auth\/token",service="customs"/);
    expect(challenge).toContain(`scope="repository:${repo}:pull,push"`);
    // What oras does next: a token from the realm with its credentials, then the same HEAD.
    const realm = /realm="([^"]+)"/.exec(challenge)![1]!;
    const basic = Buffer.from(`oras:${s.token}`).toString('base64');
    const tok = (await (await fetch(`${realm}?service=customs&scope=repository:${repo}:pull,push`, { headers: { authorization: `Basic ${basic}` } })).json()) as { token: string };
    const again = await fetch(`${s.url}/v2/${repo}/blobs/${m.config}`, { method: 'HEAD', headers: { authorization: `Bearer ${tok.token}` } });
    expect(again.status).toBe(200);
  });

  it('HEAD of an unknown blob is still 404 for anybody (nothing to refuse)', async () => {
    expect((await anon('HEAD', `blobs/sha256:${'0'.repeat(64)}`)).status).toBe(404);
  });

  it('GET of a denied blob stays 403 DENIED: no credential makes the gate serve its bytes', async () => {
    const res = await anon('GET', `blobs/${m.layers[0]}`);
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toBeNull();
    expect(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('DENIED');
    // ... and the admin gets the same answer.
    expect((await fetch(`${s.url}/v2/${repo}/blobs/${m.layers[0]}`, { headers: s.auth() })).status).toBe(403);
  });

  it('GET of a denied manifest stays 403 for an anonymous caller, with the reason in the body; HEAD is challenged (a discover token would learn it exists)', async () => {
    const get = await anon('GET', `manifests/v1`);
    expect(get.status).toBe(403);
    expect(get.headers.get('www-authenticate')).toBeNull();
    const body = (await get.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0]!.code).toBe('DENIED');
    expect(body.errors[0]!.message.length).toBeGreaterThan(0);
    const head = await anon('HEAD', `manifests/${m.digest}`);
    expect(head.status).toBe(401);
    expect(head.headers.get('www-authenticate')).toContain(`scope="repository:${repo}:pull"`);
  });

  it('a permission refusal to an anonymous caller is 401 with a challenge (push)', async () => {
    const res = await fetch(`${s.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain(`scope="repository:${repo}:pull,push"`);
  });

  it('an authenticated caller gets 403, never a challenge, for what the gate denies', async () => {
    const res = await fetch(`${s.url}/v2/${repo}/manifests/v1`, { headers: { ...s.auth(), accept: ACCEPT } });
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toBeNull();
  });
});
