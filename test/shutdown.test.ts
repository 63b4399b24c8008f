import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../src/oci/index.js';
import { spawnServer, type ServerProcess } from './helpers/process.js';

/**
 * SIGTERM, as a load balancer and Kubernetes see it: readiness fails first while everything else
 * is still served (shutdownDelaySeconds), then new connections are refused, uploads and downloads
 * in flight finish, and the process exits 0; what is still busy after shutdownTimeoutSeconds is
 * cut. Runs `customs serve` from dist/ (npm test builds it).
 */
const MiB = 1024 * 1024;

async function start(dir: string, name: string, config: object): Promise<{ p: ServerProcess; token: string }> {
  const cfg = join(dir, `${name}.json`);
  await writeFile(cfg, JSON.stringify(config));
  const p = await spawnServer(['--data', join(dir, name), '--config', cfg, '--gate', 'off']);
  return { p, token: (await readFile(join(dir, name, 'admin-token'), 'utf8')).trim() };
}

/** A download whose client reads nothing until told to. */
function pausedDownload(url: string, token: string): { response: Promise<IncomingMessage>; body(): Promise<Buffer> } {
  let res!: (m: IncomingMessage) => void;
  const response = new Promise<IncomingMessage>((r) => (res = r));
  const req = request(url, { headers: { authorization: `Bearer ${token}` }, agent: false }, (m) => {
    m.pause();
    res(m);
  });
  req.end();
  return {
    response,
    body: async () => {
      const m = await response;
      const chunks: Buffer[] = [];
      return new Promise<Buffer>((resolve, reject) => {
        m.on('data', (c: Buffer) => chunks.push(c));
        m.on('end', () => resolve(Buffer.concat(chunks)));
        m.on('error', reject);
        m.on('aborted', () => reject(new Error('aborted')));
        m.resume();
      });
    },
  };
}

const refused = async (url: string): Promise<boolean> => fetch(url).then(() => false, (e: { cause?: { code?: string } }) => e.cause?.code === 'ECONNREFUSED');

describe('graceful shutdown', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'customs-shutdown-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('fails readiness first, then stops accepting; uploads and downloads in flight finish; exits 0', async () => {
    const { p, token } = await start(dir, 'a', { shutdownDelaySeconds: 2, shutdownTimeoutSeconds: 60 });
    const auth = { authorization: `Bearer ${token}` };
    const big = randomBytes(48 * MiB);
    const digest = digestOf(big);
    expect((await fetch(`${p.url}/v2/s/big/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { ...auth, 'content-length': String(big.length) }, body: big })).status).toBe(201);
    const download = pausedDownload(`${p.url}/v2/s/big/blobs/${digest}`, token);
    expect((await download.response).statusCode).toBe(200);

    const slow = randomBytes(6 * MiB);
    const slowDigest = digestOf(slow);
    const upload = new Promise<number>((resolve, reject) => {
      const req = request(`${p.url}/v2/s/slow/blobs/uploads/?digest=${slowDigest}`, { method: 'POST', agent: false, headers: { ...auth, 'content-length': slow.length } });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      let off = 0;
      const tick = setInterval(() => {
        req.write(slow.subarray(off, off + MiB));
        off += MiB;
        if (off >= slow.length) {
          clearInterval(tick);
          req.end();
        }
      }, 500);
    });
    await new Promise((r) => setTimeout(r, 200));

    p.child.kill('SIGTERM');
    for (const deadline = Date.now() + 10_000; !p.lines.some((l) => l.includes('readiness fails, still serving')); ) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 10));
    }
    // Readiness fails at once; everything else is still served during the delay.
    const ready = await fetch(`${p.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'unavailable', reason: 'shutting down' });
    expect((await fetch(`${p.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${p.url}/v2/s/big/blobs/${digest}`, { method: 'HEAD', headers: auth })).status).toBe(200);
    // Then new connections are refused.
    for (const deadline = Date.now() + 30_000; !(await refused(`${p.url}/healthz`)); ) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(p.child.exitCode).toBeNull(); // still finishing what was in flight
    const body = await download.body();
    expect(createHash('sha256').update(body).digest('hex')).toBe(digest.slice(7));
    expect(await upload).toBe(201);
    expect(await p.exited).toEqual({ code: 0, signal: null });
    const logs = p.lines.map((l) => JSON.parse(l) as { msg: string; level: number });
    expect(logs.some((l) => l.msg === 'stopped')).toBe(true);
    expect(logs.filter((l) => l.level >= 50)).toEqual([]);

    // The upload that finished during shutdown is there after a restart.
    const again = await start(dir, 'a', {});
    expect((await fetch(`${again.p.url}/v2/s/slow/blobs/${slowDigest}`, { method: 'HEAD', headers: auth })).headers.get('content-length')).toBe(String(slow.length));
    again.p.child.kill('SIGTERM');
    await again.p.exited;
  });

  it('closes what is still busy after shutdownTimeoutSeconds, and exits 0', async () => {
    const { p, token } = await start(dir, 'b', { shutdownTimeoutSeconds: 1 });
    const big = randomBytes(48 * MiB);
    const digest = digestOf(big);
    await fetch(`${p.url}/v2/s/big/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-length': String(big.length) }, body: big });
    const stuck = pausedDownload(`${p.url}/v2/s/big/blobs/${digest}`, token);
    expect((await stuck.response).statusCode).toBe(200);
    p.child.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    await expect(stuck.body()).rejects.toThrow();
    expect(p.lines.some((l) => l.includes('closing connections still busy after shutdownTimeoutSeconds'))).toBe(true);
  });
});
