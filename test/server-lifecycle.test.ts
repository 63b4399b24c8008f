import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../src/oci/index.js';
import { spawnServer } from './helpers/process.js';

describe('serve: lifecycle, health, metrics, logs', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'customs-life-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('binds port 0, reports health, readiness and metrics, logs JSON with request ids', async () => {
    const p = await spawnServer(['--data', join(dir, 'a'), '--gate', 'off']);
    expect(p.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(Number(new URL(p.url).port)).toBeGreaterThan(0);
    expect(await (await fetch(`${p.url}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${p.url}/readyz`)).json()).toEqual({ status: 'ready' });
    const token = (await readFile(join(dir, 'a', 'admin-token'), 'utf8')).trim();
    const r = await fetch(`${p.url}/v2/`, { headers: { 'x-request-id': 'req-123', authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-request-id')).toBe('req-123');
    await fetch(`${p.url}/v2/nope/manifests/latest`);
    const metrics = await (await fetch(`${p.url}/metrics`)).text();
    expect(metrics).toMatch(/customs_http_requests_total\{route="base",method="GET",status="200"\} 1/);
    expect(metrics).toMatch(/customs_http_requests_total\{route="manifest",method="GET",status="404"\} 1/);
    expect(metrics).toMatch(/customs_http_request_duration_seconds_bucket/);
    expect(metrics).toMatch(/customs_http_bytes_sent_total\{route="base"\} \d+/);
    p.child.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    const logs = p.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logs.find((l) => l.reqId === 'req-123')).toMatchObject({ msg: 'request', method: 'GET', path: '/v2/', status: 200 });
    expect(logs.some((l) => l.msg === 'stopped')).toBe(true);
    // Credentials never reach the log.
    expect(p.lines.join('\n')).not.toContain(token);
  });

  it('on SIGTERM finishes an in-flight upload, then exits 0; the data is intact after restart', async () => {
    const data = join(dir, 'b');
    const p = await spawnServer(['--data', data, '--gate', 'off']);
    const token = (await readFile(join(data, 'admin-token'), 'utf8')).trim();
    const blob = Buffer.alloc(8 * 1024 * 1024, 7);
    const digest = digestOf(blob);
    // Send the body slowly so the signal arrives mid-request.
    const status = new Promise<number>((resolve, reject) => {
      const req = request(`${p.url}/v2/t/slow/blobs/uploads/?digest=${digest}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-length': blob.length, 'content-type': 'application/octet-stream' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      let off = 0;
      const tick = setInterval(() => {
        req.write(blob.subarray(off, off + 1024 * 1024));
        off += 1024 * 1024;
        if (off === 2 * 1024 * 1024) p.child.kill('SIGTERM');
        if (off >= blob.length) {
          clearInterval(tick);
          req.end();
        }
      }, 50);
    });
    expect(await status).toBe(201);
    expect(await p.exited).toEqual({ code: 0, signal: null });
    const again = await spawnServer(['--data', data, '--gate', 'off']);
    const head = await fetch(`${again.url}/v2/t/slow/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(blob.length));
    again.child.kill('SIGTERM');
    await again.exited;
  });

  it('reports a bad config file with the line of the bad value and exits 2', async () => {
    const { writeFile } = await import('node:fs/promises');
    const cfg = join(dir, 'bad.yaml');
    await writeFile(cfg, 'listen: 127.0.0.1:0\nlimits:\n  maxBlobBytes: -5\n');
    await expect(spawnServer(['--data', join(dir, 'c'), '--config', cfg])).rejects.toThrow(/bad\.yaml:3:17: limits\.maxBlobBytes/);
  });
});
