import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../src/oci/index.js';
import { startDockerRegistry, type DockerRegistry } from '../conformance/helpers/docker-registry.js';
import { pushImage } from './helpers/registry-client.js';
import { spawnServer, type ServerProcess } from './helpers/process.js';

/**
 * Clients that disconnect are normal: a CI job cancelled mid-push, a puller killed mid-download.
 * None of it is an error an operator must act on, so none of it may write an error line (let
 * alone a stack trace). Every phase of every transfer is cut here, against `customs serve` as
 * shipped (info level, from dist/), with Debian's docker-registry as the upstream.
 */
const MiB = 1024 * 1024;

/** Sends the request headers and `send` bytes of a `total`-byte body, then resets the connection. */
function cutUpload(url: string, method: string, headers: Record<string, string | number>, send: Buffer, total: number): Promise<void> {
  return new Promise((resolve) => {
    const req = request(url, { method, agent: false, headers: { ...headers, 'content-length': total } });
    req.on('error', () => resolve());
    req.on('response', (r) => {
      r.resume();
      resolve();
    });
    req.write(send, () => setTimeout(() => {
      req.destroy();
      resolve();
    }, 200));
  });
}

/** Reads the first bytes of a response body, then resets the connection. */
function cutDownload(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, headers }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve(res.statusCode!);
      });
      res.once('end', () => resolve(res.statusCode!));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

describe('quiet logs: clients that go away are not errors', () => {
  let dir: string;
  let upstream: DockerRegistry;
  let p: ServerProcess;
  let auth: Record<string, string>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'customs-quiet-'));
    upstream = await startDockerRegistry();
    await writeFile(join(dir, 'config.json'), JSON.stringify({ upstreams: [{ name: 'up', url: upstream.url }] }));
    p = await spawnServer(['--data', join(dir, 'data'), '--config', join(dir, 'config.json'), '--gate', 'off']);
    auth = { authorization: `Bearer ${(await readFile(join(dir, 'data', 'admin-token'), 'utf8')).trim()}` };
  });
  afterAll(async () => {
    if (p && p.child.exitCode === null) p.child.kill('SIGKILL');
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes no error line and no stack for uploads and downloads cut short, local or pulled through', async () => {
    const big = randomBytes(16 * MiB);
    const digest = digestOf(big);
    const half = big.subarray(0, 4 * MiB);
    // Uploads: monolithic POST, a PATCH chunk, the closing PUT, a manifest PUT.
    await cutUpload(`${p.url}/v2/q/up/blobs/uploads/?digest=${digest}`, 'POST', auth, half, big.length);
    const session = async () => new URL((await fetch(`${p.url}/v2/q/up/blobs/uploads/`, { method: 'POST', headers: auth })).headers.get('location')!, p.url);
    await cutUpload((await session()).href, 'PATCH', { ...auth, 'content-range': `0-${big.length - 1}` }, half, big.length);
    const put = await session();
    put.searchParams.set('digest', digest);
    await cutUpload(put.href, 'PUT', auth, half, big.length);
    await cutUpload(`${p.url}/v2/q/up/manifests/v1`, 'PUT', { ...auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, Buffer.from('{"schemaVersion":2,'), 4000);
    // Downloads: a stored blob, and a blob pulled through from the upstream (the fill goes on without its client).
    expect((await fetch(`${p.url}/v2/q/up/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { ...auth, 'content-length': String(big.length) }, body: big })).status).toBe(201);
    for (let i = 0; i < 5; i++) expect(await cutDownload(`${p.url}/v2/q/up/blobs/${digest}`, auth)).toBe(200);
    const image = await pushImage(upstream.url, 'lib/app', 'v1', [24 * MiB]);
    expect((await fetch(`${p.url}/v2/up/lib/app/manifests/v1`, { headers: { ...auth, accept: 'application/vnd.oci.image.manifest.v1+json' } })).status).toBe(200);
    expect(await cutDownload(`${p.url}/v2/up/lib/app/blobs/${image.blobs[1]!.digest}`, auth)).toBe(200);
    for (let i = 0; i < 3; i++) await cutDownload(`${p.url}/v2/up/lib/app/blobs/${image.blobs[1]!.digest}`, auth);
    // Once the fill is done, the blob is whole.
    for (const deadline = Date.now() + 60_000; ; ) {
      const res = await fetch(`${p.url}/v2/up/lib/app/blobs/${image.blobs[1]!.digest}`, { headers: auth });
      const body = Buffer.from(await res.arrayBuffer());
      if (res.status === 200 && digestOf(body) === image.blobs[1]!.digest) break;
      expect(Date.now()).toBeLessThan(deadline);
    }

    p.child.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    const logs = p.lines.map((l) => JSON.parse(l) as { level: number; msg: string; status?: number; err?: unknown });
    expect(logs.filter((l) => l.level >= 50)).toEqual([]);
    expect(p.lines.filter((l) => l.includes('"stack"'))).toEqual([]);
    // The cut requests are still in the access log, as 499 (client closed).
    expect(logs.filter((l) => l.msg === 'request' && l.status === 499).length).toBeGreaterThanOrEqual(8);
  });
});
