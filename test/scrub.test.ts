import { open, readFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scrub } from '../src/cli/integrity.js';
import { digestOf, type Digest } from '../src/oci/index.js';
import { startDockerRegistry, type DockerRegistry } from '../conformance/helpers/docker-registry.js';
import { capture } from './ops-fixtures.js';
import { getBlob, getManifest, pushImage, type Image } from './helpers/registry-client.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * The scrub on the filesystem store: one byte of a stored blob is flipped on disk, behind the
 * server's back. A pulled-through blob is set aside and fetched again from its upstream (Debian's
 * docker-registry); a pushed one is set aside and never served again. A blob whose file changed
 * size is refused at read time already, and a manifest whose stored bytes changed too.
 */
const blobFile = (data: string, d: Digest) => join(data, 'blobs', 'sha256', d.slice(7, 9), d.slice(7));

async function flipByte(file: string, at: number): Promise<void> {
  const fh = await open(file, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, at);
  b[0]! ^= 0x20;
  await fh.write(b, 0, 1, at);
  await fh.close();
}

describe('scrub: filesystem + SQLite', () => {
  let upstream: DockerRegistry;
  let server: TestServer;
  let data: string;
  let proxied: Image;
  let pushed: Image;
  let truncated: Image;
  let manifestOnly: Image;
  const config = () => ({ upstreams: [{ name: 'up', url: upstream.url }] });

  beforeAll(async () => {
    upstream = await startDockerRegistry();
    proxied = await pushImage(upstream.url, 'lib/app', 'v1', [3 * 1024 * 1024 + 5]);
    server = await startTestServer({ config: config() });
    data = server.dataDir;
    pushed = await pushImage(server.url, 'local/model', 'v1', [2 * 1024 * 1024], server.auth());
    truncated = await pushImage(server.url, 'local/short', 'v1', [64 * 1024], server.auth());
    manifestOnly = await pushImage(server.url, 'local/man', 'v1', [1000], server.auth());
    // Pull through: the manifest and its blobs are stored locally.
    expect((await getManifest(server.url, 'up/lib/app', 'v1', server.auth())).status).toBe(200);
    for (const b of proxied.blobs) expect(await getBlob(server.url, 'up/lib/app', b.digest, server.auth())).toMatchObject({ status: 200, ok: true });
    await server.close({ keepData: true });

    // Bit rot while the server is down (the caches of a running one would hide a changed manifest).
    await flipByte(blobFile(data, proxied.blobs[1]!.digest), 1_000_000);
    await flipByte(blobFile(data, pushed.blobs[1]!.digest), 12345);
    await truncate(blobFile(data, truncated.blobs[1]!.digest), 1000);
    const db = new Database(join(data, 'metadata.sqlite'));
    const rotten = Buffer.from(manifestOnly.manifest);
    rotten[rotten.length - 3]! ^= 0x01;
    db.prepare('UPDATE manifests SET bytes = ? WHERE repository = ? AND digest = ?').run(rotten, 'local/man', manifestOnly.digest);
    db.close();
    server = await startTestServer({ config: config(), dataDir: data });
  });
  afterAll(async () => {
    await server?.close({ keepData: true });
    await upstream?.close();
    const { rm } = await import('node:fs/promises');
    if (data) await rm(data, { recursive: true, force: true });
  });

  it('refuses at read time a blob whose stored size differs from its record, and a manifest whose bytes differ from its digest', async () => {
    const r = await getBlob(server.url, 'local/short', truncated.blobs[1]!.digest, server.auth());
    expect(r).toMatchObject({ status: 500, code: 'UNKNOWN' });
    expect(r.message).toMatch(/corrupt/);
    const m = await getManifest(server.url, 'local/man', 'v1', server.auth());
    expect(m).toMatchObject({ status: 500, code: 'UNKNOWN' });
    expect(m.bytes.toString()).not.toContain('schemaVersion');
  });

  it('finds both flipped bytes; sets them aside; fetches the proxied one again; reports the rest and fails', async () => {
    const { io, out } = capture();
    const target = { url: server.url, token: server.token };
    await expect(scrub(target, io, { rate: 0, reason: 'test' })).rejects.toMatchObject({ code: 'CONTENT_CORRUPT' });
    const text = out.join('\n');
    expect(text).toContain(`CORRUPT blob ${proxied.blobs[1]!.digest}`);
    expect(text).toContain(`CORRUPT blob ${pushed.blobs[1]!.digest}`);
    expect(text).toContain(`CORRUPT manifest local/man@${manifestOnly.digest}`);
    expect(text).toContain(`repaired ${proxied.blobs[1]!.digest}`);
    expect(text).toContain(`UNREPAIRED ${pushed.blobs[1]!.digest}`);
    // The one the read found is set aside already, and still needed: unrepaired too.
    expect(text).toContain(`UNREPAIRED ${truncated.blobs[1]!.digest}`);
  });

  it('never serves the corrupt bytes again; serves the re-fetched blob, verified', async () => {
    const bad = await getBlob(server.url, 'local/model', pushed.blobs[1]!.digest, server.auth());
    expect(bad).toMatchObject({ status: 500, code: 'UNKNOWN' });
    expect(bad.message).toMatch(/corrupt.*not served/);
    expect(bad.size).toBeLessThan(1000); // an error body, not the blob
    expect(await getBlob(server.url, 'up/lib/app', proxied.blobs[1]!.digest, server.auth())).toMatchObject({ status: 200, ok: true });
    const file = await readFile(blobFile(data, proxied.blobs[1]!.digest));
    expect(digestOf(file)).toBe(proxied.blobs[1]!.digest);
    // The other blobs were never touched.
    expect(await getBlob(server.url, 'local/model', pushed.blobs[0]!.digest, server.auth())).toMatchObject({ status: 200, ok: true });
  });

  it('records every finding in the audit log and the metrics', async () => {
    const audit = (await (await fetch(`${server.url}/admin/audit?limit=10000`, { headers: server.auth() })).json()) as { entries: { action: string; target?: string; actor: string }[] };
    const of = (action: string) => audit.entries.filter((e) => e.action === action).map((e) => e.target);
    expect(of('integrity.corrupt')).toEqual(expect.arrayContaining([proxied.blobs[1]!.digest, pushed.blobs[1]!.digest, truncated.blobs[1]!.digest, manifestOnly.digest]));
    expect(of('integrity.repaired')).toEqual([proxied.blobs[1]!.digest]);
    expect(audit.entries.filter((e) => e.action === 'scrub')).toHaveLength(1);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/customs_integrity_findings_total\{kind="blob",outcome="corrupt"\} 3/);
    expect(metrics).toMatch(/customs_integrity_findings_total\{kind="blob",outcome="repaired"\} 1/);
    expect(metrics).toMatch(/customs_scrub_unrepaired_blobs 2/);
    const verify = (await (await fetch(`${server.url}/admin/audit/verify`, { headers: server.auth() })).json()) as { ok: boolean };
    expect(verify.ok).toBe(true);
  });

  it('a push of the good bytes repairs a blob nobody could fetch again', async () => {
    const good = pushed.blobs[1]!;
    const res = await fetch(`${server.url}/v2/local/model/blobs/uploads/?digest=${good.digest}`, { method: 'POST', headers: { ...server.auth(), 'content-length': String(good.bytes.length) }, body: good.bytes });
    expect(res.status).toBe(201);
    expect(await getBlob(server.url, 'local/model', good.digest, server.auth())).toMatchObject({ status: 200, ok: true });
    const { io, out } = capture();
    // The manifest stays corrupt (its bytes live in the database): still a failure, but the blob is whole again.
    await expect(scrub({ url: server.url, token: server.token }, io, { rate: 0 })).rejects.toMatchObject({ code: 'CONTENT_CORRUPT' });
    expect(out.join('\n')).not.toContain(`UNREPAIRED ${good.digest}`);
  });
});

describe('scheduled scrub', () => {
  it('runs every scrub.intervalSeconds, rate-limited, and records each run', async () => {
    const server = await startTestServer({ config: { scrub: { intervalSeconds: 1, maxMiBPerSecond: 1 } } });
    try {
      await pushImage(server.url, 'sched/a', 'v1', [256 * 1024], server.auth());
      const deadline = Date.now() + 60_000;
      let runs: { actor: string; detail?: { bytes: number } }[] = [];
      while (runs.length === 0) {
        expect(Date.now()).toBeLessThan(deadline);
        await new Promise((r) => setTimeout(r, 200));
        const audit = (await (await fetch(`${server.url}/admin/audit`, { headers: server.auth() })).json()) as { entries: { action: string; actor: string; detail?: { bytes: number } }[] };
        runs = audit.entries.filter((e) => e.action === 'scrub');
      }
      expect(runs[0]).toMatchObject({ actor: 'system:scrub' });
      expect(runs[0]!.detail!.bytes).toBeGreaterThan(256 * 1024);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/customs_scrub_checked_total\{kind="blob"\} [1-9]/);
    } finally {
      await server.close();
    }
  });

  it('reads no faster than its rate, and runs one at a time', async () => {
    const server = await startTestServer();
    try {
      await pushImage(server.url, 'rate/a', 'v1', [3 * 1024 * 1024], server.auth());
      const post = (body: object) => fetch(`${server.url}/admin/scrub`, { method: 'POST', headers: { ...server.auth(), 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const slow = post({ maxMiBPerSecond: 1 });
      await new Promise((r) => setTimeout(r, 300));
      const second = await post({ maxMiBPerSecond: 0 });
      expect(second.status).toBe(429);
      expect(((await second.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('TOOMANYREQUESTS');
      const report = (await (await slow).json()) as { bytes: number; seconds: number };
      expect(report.bytes).toBeGreaterThan(3 * 1024 * 1024);
      // A lower bound only: at 1 MiB/s, 3 MiB cannot take less than about 3 s however fast the machine.
      expect(report.seconds).toBeGreaterThanOrEqual(2.9);
    } finally {
      await server.close();
    }
  });
});
