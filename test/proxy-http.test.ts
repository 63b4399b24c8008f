import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../src/oci/index.js';
import { FsLayout } from '../src/storage/fs/fs-layout.js';
import { FaultUpstream, generatedBlob } from './helpers/fault-upstream.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { skopeo, startDistribution, writeOciLayout, type Distribution } from './proxy-harness.js';

/**
 * Pull-through end to end: a customs server (in process, port 0) in front of a real
 * docker-registry and a fault-injecting upstream, pulled by HTTP and by skopeo.
 */
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const ACCEPT = [OCI_MANIFEST, 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json'].join(', ');

const desc = (mediaType: string, b: Buffer) => ({ mediaType, digest: digestOf(b), size: b.length });

describe('pull-through over HTTP', () => {
  let dist: Distribution;
  let up: FaultUpstream;
  let srv: TestServer;
  let work: string;
  const image = { digest: '' as Digest, bytes: Buffer.alloc(0), layer: Buffer.alloc(0), config: Buffer.alloc(0) };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'customs-proxy-http-'));
    dist = await startDistribution();
    up = await FaultUpstream.start();
    image.config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    image.layer = randomBytes(3 * 1024 * 1024);
    image.bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: desc('application/vnd.oci.image.config.v1+json', image.config), layers: [desc('application/vnd.oci.image.layer.v1.tar', image.layer)] }));
    image.digest = digestOf(image.bytes);
    await writeOciLayout(join(work, 'seed'), [image.config, image.layer], [{ refs: ['v1'], mediaType: OCI_MANIFEST, bytes: image.bytes }]);
    await skopeo(['copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${join(work, 'seed')}:v1`, `docker://${dist.host}/models/demo:v1`]);
    srv = await startTestServer({
      config: {
        upstreams: [
          { name: 'dist', url: dist.url, tagFreshness: 0, timeouts: { header: 30, idle: 30, overall: 300 } },
          { name: 'up', url: up.url, timeouts: { header: 30, idle: 60, overall: 600 } },
        ],
      },
    });
  });
  afterAll(async () => {
    await srv?.close();
    await up?.stop();
    await dist?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${srv.url}${path}`, { headers: { ...srv.auth(), ...headers } });

  it('serves a manifest by tag and by digest, byte-exact, with its digest', async () => {
    const byTag = await get('/v2/dist/models/demo/manifests/v1', { accept: ACCEPT });
    expect(byTag.status).toBe(200);
    expect(byTag.headers.get('docker-content-digest')).toBe(image.digest);
    expect(byTag.headers.get('content-type')).toBe(OCI_MANIFEST);
    expect(Buffer.compare(Buffer.from(await byTag.arrayBuffer()), image.bytes)).toBe(0);
    const byDigest = await get(`/v2/dist/models/demo/manifests/${image.digest}`, { accept: ACCEPT });
    expect(byDigest.status).toBe(200);
    expect(digestOf(Buffer.from(await byDigest.arrayBuffer()))).toBe(image.digest);
  });

  it('serves blobs and ranges', async () => {
    const res = await get(`/v2/dist/models/demo/blobs/${digestOf(image.layer)}`);
    expect(res.status).toBe(200);
    expect(digestOf(Buffer.from(await res.arrayBuffer()))).toBe(digestOf(image.layer));
    const part = await get(`/v2/dist/models/demo/blobs/${digestOf(image.layer)}`, { range: 'bytes=10-19' });
    expect(part.status).toBe(206);
    expect(Buffer.compare(Buffer.from(await part.arrayBuffer()), image.layer.subarray(10, 20))).toBe(0);
  });

  it('honours ns and echoes OCI-Namespace', async () => {
    const res = await get('/v2/models/demo/manifests/v1?ns=dist', { accept: ACCEPT });
    expect(res.status).toBe(200);
    expect(res.headers.get('oci-namespace')).toBe('dist');
    expect(res.headers.get('docker-content-digest')).toBe(image.digest);
  });

  it('skopeo copies through customs with the digest unchanged', async () => {
    const out = join(work, 'out');
    await skopeo(['copy', '--preserve-digests', '--src-tls-verify=false', ...credsArgs(srv), `docker://${srv.host}/dist/models/demo:v1`, `oci:${out}:v1`]);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests[0]!.digest).toBe(image.digest);
    const layer = await readFile(join(out, 'blobs', 'sha256', digestOf(image.layer).slice(7)));
    expect(digestOf(layer)).toBe(digestOf(image.layer));
  });

  it('refuses to push a tag into a proxied namespace', async () => {
    const res = await fetch(`${srv.url}/v2/dist/models/demo/manifests/shadow`, { method: 'PUT', headers: { ...srv.auth(), 'content-type': OCI_MANIFEST }, body: image.bytes });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('DENIED');
  });

  it('32 concurrent clients of one uncached 256 MiB blob: one upstream GET, identical bytes', async () => {
    const img = up.addImage('big/model', ['v1'], [await generatedBlob(256 * 1024 * 1024, 'http-concurrency')]);
    const blob = img.layers[0]!;
    // Blobs are served for a manifest the gate let through: clients read the manifest first, as they do.
    expect((await get('/v2/up/big/model/manifests/v1', { accept: ACCEPT })).status).toBe(200);
    const digests = await Promise.all(Array.from({ length: 32 }, () => streamDigest(`${srv.url}/v2/up/big/model/blobs/${blob.digest}`, srv.auth())));
    expect(up.count('GET', /\/blobs\//)).toBe(1);
    expect(new Set(digests)).toEqual(new Set([blob.digest]));
  }, 600_000); // 8 GiB through one process on a shared two-core machine

  it('wrong bytes from the upstream: GET clients are cut off, a HEAD holds nothing open, nothing is stored', async () => {
    const img = up.addImage('bad/model', ['v1'], [await generatedBlob(8 * 1024 * 1024, 'http-wrong-bytes')]);
    const blob = img.layers[0]!;
    expect((await get('/v2/up/bad/model/manifests/v1', { accept: ACCEPT })).status).toBe(200);
    up.fault(/\/blobs\//, { kind: 'wrong-bytes' });
    // Held mid-body so that every client below joins the one fill before its bytes turn out wrong.
    let release!: () => void;
    up.fault(/\/blobs\//, { kind: 'stall', afterBytes: 1024 * 1024, until: new Promise<void>((r) => (release = r)) });
    const before = up.count('GET', /\/blobs\//);
    const url = `${srv.url}/v2/up/bad/model/blobs/${blob.digest}`;
    const head = await fetch(url, { method: 'HEAD', headers: srv.auth() });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(blob.size));
    const gets = await Promise.all([fetch(url, { headers: srv.auth() }), fetch(url, { headers: srv.auth() })]);
    expect(gets.map((r) => r.status)).toEqual([200, 200]);
    release();
    const bodies = await Promise.allSettled(gets.map((r) => r.arrayBuffer()));
    expect(bodies.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(up.count('GET', /\/blobs\//) - before).toBe(1);
    // The retry's fill fails too: cut off mid-body, or (failing before its first MiB) refused with the code.
    const retry = await fetch(url, { headers: srv.auth() });
    if (retry.status === 200) await expect(retry.arrayBuffer()).rejects.toThrow();
    else expect(((await retry.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('DIGEST_INVALID');
    expect(existsSync(new FsLayout(srv.dataDir).blob('sha256', blob.digest.slice(7)))).toBe(false);
    // The HEAD opened no reader of the failed fill: its temporary file is gone.
    await expect.poll(() => readdir(join(srv.dataDir, 'proxy-fill'))).toEqual([]);
    up.clearFaults();
  });

  it('a fill that fails before its first bytes are sent is refused with the code, not a closed connection', async () => {
    // Smaller than one send chunk: nothing can go out before the whole blob is verified.
    const img = up.addImage('bad/small', ['v1'], [await generatedBlob(200 * 1024, 'http-wrong-small')]);
    const blob = img.layers[0]!;
    expect((await get('/v2/up/bad/small/manifests/v1', { accept: ACCEPT })).status).toBe(200);
    up.fault(/\/blobs\//, { kind: 'wrong-bytes' });
    const res = await fetch(`${srv.url}/v2/up/bad/small/blobs/${blob.digest}`, { headers: srv.auth() });
    expect(res.status).toBe(400);
    const error = ((await res.json()) as { errors: { code: string; message: string }[] }).errors[0]!;
    expect(error.code).toBe('DIGEST_INVALID');
    expect(error.message).toMatch(/upstream .* sent bytes that do not match/);
    up.clearFaults();
    // The connection is still good for the next request, which now pulls the right bytes.
    const again = await fetch(`${srv.url}/v2/up/bad/small/blobs/${blob.digest}`, { headers: srv.auth() });
    expect(again.status).toBe(200);
    expect(digestOf(Buffer.from(await again.arrayBuffer()))).toBe(blob.digest);
  });

  it('with the upstream stopped, what was pulled is still served (the tag marked stale)', async () => {
    await dist.stop();
    const tag = await get('/v2/dist/models/demo/manifests/v1', { accept: ACCEPT });
    expect(tag.status).toBe(200);
    expect(tag.headers.get('docker-content-digest')).toBe(image.digest);
    expect(tag.headers.get('warning')).toMatch(/stale/);
    const blob = await get(`/v2/dist/models/demo/blobs/${digestOf(image.layer)}`);
    expect(blob.status).toBe(200);
    expect(digestOf(Buffer.from(await blob.arrayBuffer()))).toBe(digestOf(image.layer));
    const missing = await get('/v2/dist/models/demo/manifests/never-pulled', { accept: ACCEPT });
    expect(missing.status).toBeGreaterThanOrEqual(500);
  });
});

function credsArgs(srv: TestServer): string[] {
  return srv.token ? ['--src-registry-token', srv.token] : [];
}

/** GETs a URL and hashes the body as it streams (never held in memory). */
function streamDigest(url: string, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
      const h = createHash('sha256');
      res.on('data', (c: Buffer) => h.update(c));
      res.on('end', () => resolve(`sha256:${h.digest('hex')}`));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}
