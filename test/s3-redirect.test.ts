import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../src/oci/index.js';
import { scaleoutEnv, type ScaleoutEnv } from './helpers/scaleout.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * `storage.redirect` on S3 (Ceph RGW) + PostgreSQL: big blob GETs answer 307 to a
 * presigned URL once access and the gate allowed them. Two replicas share the
 * bucket and database: `on` has redirects enabled, `off` the default config.
 */
const MiB = 1024 * 1024;
const MIN = MiB;
const repo = 'models/redirect';

let env: ScaleoutEnv;
let on: TestServer;
let off: TestServer;

beforeAll(async () => {
  env = await scaleoutEnv('redirect');
  process.env.AWS_ACCESS_KEY_ID = env.s3.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = env.s3.secretAccessKey;
  const storage = { driver: 's3', bucket: env.bucket, prefix: 'customs/', endpoint: env.s3.endpoint, region: env.s3.region, forcePathStyle: true, partSizeMiB: 5 };
  const metadata = { driver: 'postgres', url: env.pgUrl, poolSize: 5 };
  on = await startTestServer({ config: { storage: { ...storage, redirect: { enabled: true, expiresSeconds: 120, minBytes: MIN } }, metadata } });
  off = await startTestServer({ config: { storage, metadata } });
});

afterAll(async () => {
  await Promise.all([on?.close(), off?.close()]);
  await env?.stop();
});

async function pushBlob(s: TestServer, data: Buffer): Promise<string> {
  const digest = digestOf(data);
  const res = await fetch(`${s.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    headers: { ...s.auth(), 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
    body: data,
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return digest;
}

const get = (s: TestServer, digest: string, headers: Record<string, string> = {}, method = 'GET') =>
  fetch(`${s.url}/v2/${repo}/blobs/${digest}`, { method, headers: { ...s.auth(), ...headers }, redirect: 'manual' });

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('blob GETs with storage.redirect enabled', () => {
  const big = randomBytes(3 * MiB + 17);
  let bigDigest: string;

  beforeAll(async () => {
    bigDigest = await pushBlob(on, big);
  });

  it('answers 307 to a presigned URL that serves the bytes without any credentials', async () => {
    const res = await get(on, bigDigest);
    expect(res.status).toBe(307);
    expect(res.headers.get('docker-content-digest')).toBe(bigDigest);
    expect(res.headers.get('content-length')).toBe('0');
    expect((await res.arrayBuffer()).byteLength).toBe(0);
    const location = res.headers.get('location')!;
    expect(location.startsWith(`${env.s3.endpoint}/`)).toBe(true);
    expect(location).toContain('X-Amz-Expires=120');
    const direct = await fetch(location); // no Authorization header
    expect(direct.status).toBe(200);
    expect(sha256(Buffer.from(await direct.arrayBuffer()))).toBe(bigDigest);
  });

  it('redirects a Range GET; the client re-sends Range to the Location and gets the slice', async () => {
    const res = await get(on, bigDigest, { range: `bytes=${MiB - 5}-${MiB + 4}` });
    expect(res.status).toBe(307);
    const part = await fetch(res.headers.get('location')!, { headers: { range: `bytes=${MiB - 5}-${MiB + 4}` } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(big.subarray(MiB - 5, MiB + 5))).toBe(true);
  });

  it('works end to end with curl -L (Authorization stays with customs, Range follows the redirect)', async () => {
    const { stdout } = await promisify(execFile)(
      'curl',
      ['-sS', '-L', '-H', `authorization: ${on.auth().authorization}`, '-H', 'range: bytes=100-199', '-w', '\n%{http_code} %{num_redirects}', `${on.url}/v2/${repo}/blobs/${bigDigest}`],
      { encoding: 'buffer', maxBuffer: 4 * MiB },
    );
    const nl = stdout.lastIndexOf(10);
    expect(stdout.subarray(nl + 1).toString()).toBe('206 1');
    expect(stdout.subarray(0, nl).equals(big.subarray(100, 200))).toBe(true);
  });

  it('streams blobs below minBytes (200), and redirects from exactly minBytes', async () => {
    const below = randomBytes(MIN - 1);
    const at = randomBytes(MIN);
    const [belowDigest, atDigest] = [await pushBlob(on, below), await pushBlob(on, at)];
    const small = await get(on, belowDigest);
    expect(small.status).toBe(200);
    expect(small.headers.get('location')).toBeNull();
    expect(Buffer.from(await small.arrayBuffer()).equals(below)).toBe(true);
    const edge = await get(on, atDigest);
    expect(edge.status).toBe(307);
    expect(sha256(Buffer.from(await (await fetch(edge.headers.get('location')!)).arrayBuffer()))).toBe(atDigest);
  });

  it('never redirects HEAD', async () => {
    const res = await get(on, bigDigest, {}, 'HEAD');
    expect(res.status).toBe(200);
    expect(res.headers.get('location')).toBeNull();
    expect(res.headers.get('content-length')).toBe(String(big.length));
    expect(res.headers.get('docker-content-digest')).toBe(bigDigest);
  });

  it('answers a quarantined blob with DENIED, never a URL', async () => {
    const data = randomBytes(2 * MiB);
    const digest = await pushBlob(on, data);
    expect((await get(on, digest)).status).toBe(307);
    const q = await fetch(`${on.url}/admin/quarantine`, {
      method: 'POST',
      headers: { ...on.auth(), 'content-type': 'application/json' },
      body: JSON.stringify({ digest, reason: 'redirect test' }),
    });
    expect(q.status, await q.clone().text()).toBe(200);
    for (const headers of [{}, { range: 'bytes=0-9' }] as Array<Record<string, string>>) {
      const res = await get(on, digest, headers);
      expect(res.status).toBe(403);
      expect(res.headers.get('location')).toBeNull();
      expect(((await res.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('DENIED');
    }
  });
});

describe('blob GETs with storage.redirect left out (the default)', () => {
  it('streams big blobs as before (200, no Location)', async () => {
    const data = randomBytes(3 * MiB);
    const digest = await pushBlob(off, data);
    const res = await get(off, digest);
    expect(res.status).toBe(200);
    expect(res.headers.get('location')).toBeNull();
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(digest);
    // The same blob through the replica with redirects on: the setting is per replica, not per blob.
    expect((await get(on, digest)).status).toBe(307);
  });
});
