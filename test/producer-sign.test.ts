import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signCommand } from '../src/cli/producer/index.js';
import { writeKeyPair } from '../src/verify/keygen.js';
import { ACCEPT, clientFor, pushModel } from './gate-fixtures.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * Issue 15: `customs sign <ref> --key` signs content already in the registry under the default gate,
 * naming it through the metadata route (cosign cannot: it reads the manifest the gate refuses).
 */
describe('customs sign', () => {
  let s: TestServer;
  let dir: string;
  const quiet = { out: () => undefined, err: () => undefined };
  const prev = process.env.CUSTOMS_TOKEN;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'customs-sign-'));
    await mkdir(join(dir, 'data', 'trust', 'keys'), { recursive: true });
    writeKeyPair({ privateKeyPath: join(dir, 'release.key'), publicKeyPath: join(dir, 'data', 'trust', 'keys', 'release.pub') });
    writeKeyPair({ privateKeyPath: join(dir, 'stranger.key'), publicKeyPath: join(dir, 'stranger.key.pub') });
    s = await startTestServer({ gate: undefined, dataDir: join(dir, 'data') });
    process.env.CUSTOMS_TOKEN = s.token;
  });
  afterAll(async () => {
    if (prev === undefined) delete process.env.CUSTOMS_TOKEN;
    else process.env.CUSTOMS_TOKEN = prev;
    await s?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = (path: string) => fetch(`${s.url}/v2/${path}`, { headers: { accept: ACCEPT } });

  it('signing by an untrusted key changes nothing; by the trusted key, the manifest and its blobs are served', async () => {
    const m = await pushModel(clientFor(s), 'demo/app', 'v1', [{ path: 'w.bin', bytes: randomBytes(512) }]);
    expect((await get('demo/app/manifests/v1')).status).toBe(403);
    await signCommand('demo/app:v1', { url: s.url, key: join(dir, 'stranger.key') }, quiet);
    expect((await get('demo/app/manifests/v1')).status).toBe(403);
    const r = await signCommand('demo/app:v1', { url: s.url, key: join(dir, 'release.key') }, quiet);
    expect(r.subject).toBe(m.digest);
    expect((await get('demo/app/manifests/v1')).status).toBe(200);
    expect((await get(`demo/app/blobs/${m.layers[0]}`)).status).toBe(200);
  });

  it('an unknown reference is a clear error', async () => {
    await expect(signCommand('demo/app:nope', { url: s.url, key: join(dir, 'release.key') }, quiet)).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
  });
});
