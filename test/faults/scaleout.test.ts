import { randomBytes } from 'node:crypto';
import { request, type IncomingMessage } from 'node:http';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../../src/oci/index.js';
import { startCephRgw, type CephRgw } from '../helpers/ceph.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { getBlob, getManifest, pushImage, type Image } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { consistency, logLines } from './consistency.js';

/**
 * Faults of the scale-out stores, injected for real on a PostgreSQL and a Ceph cluster of this
 * file's own (the shared ones of the other scale-out tests must keep running): PostgreSQL is
 * restarted during pushes and pulls; the object store's gateway is killed mid-upload and
 * mid-download. Requests in flight fail cleanly (503 UNAVAILABLE, or a download cut short, never
 * bad bytes) or wait out the restart; no tag points at missing content; everything works again
 * afterwards without restarting customs; fsck finds the store consistent.
 */
const MiB = 1024 * 1024;

interface Outcome {
  readonly what: string;
  readonly status: number;
  readonly code?: string | undefined;
  readonly error?: string | undefined;
}

describe('faults: PostgreSQL and the object store go away', () => {
  let pgServer: PostgresServer;
  let ceph: CephRgw;
  let server: TestServer;
  let config: Record<string, unknown>;
  const logs = logLines();

  beforeAll(async () => {
    [pgServer, ceph] = await Promise.all([startPostgres(), startCephRgw()]);
    const url = await pgServer.createDatabase('faults');
    process.env.AWS_ACCESS_KEY_ID = ceph.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = ceph.secretAccessKey;
    const s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } });
    await s3.send(new CreateBucketCommand({ Bucket: 'faults' }));
    s3.destroy();
    config = {
      storage: { driver: 's3', bucket: 'faults', prefix: 'customs/', endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, partSizeMiB: 5 },
      metadata: { driver: 'postgres', url, poolSize: 10 },
    };
    server = await startTestServer({ config, logLevel: 'info', logDestination: logs.stream });
  });
  afterAll(async () => {
    await server?.close();
    await Promise.all([pgServer?.stop(), ceph?.stop()]);
  });

  const pushOne = async (repo: string, tag: string): Promise<{ image?: Image; outcome: Outcome }> => {
    try {
      const image = await pushImage(server.url, repo, tag, [8192, 1000], server.auth());
      return { image, outcome: { what: 'push', status: 201 } };
    } catch (e) {
      const m = /: (\d{3}) (.*)$/s.exec((e as Error).message);
      const code = m ? (JSON.parse(m[2]! || '{}') as { errors?: { code: string }[] }).errors?.[0]?.code : undefined;
      // An error without a status (a reset, a refused connection) keeps its message for the report.
      return { outcome: { what: 'push', status: m ? Number(m[1]) : 0, code, error: m ? undefined : String((e as Error).cause ?? (e as Error).message) } };
    }
  };

  it('PostgreSQL restarted during pushes and pulls: clean failures or waits, no tag to missing content, the pool reconnects', async () => {
    const seeded: Image[] = [];
    for (let i = 0; i < 4; i++) seeded.push((await pushOne('pg/seed', `s${i}`)).image!);
    const acknowledged: Image[] = [];
    const outcomes: Outcome[] = [];
    let stop = false;
    let restarted = false;
    let pushedAfter = 0;
    let pulledAfter = 0;
    const pushers = [0, 1].map(async (w) => {
      for (let i = 0; !stop; i++) {
        const r = await pushOne(`pg/w${w}`, `t${i}`);
        outcomes.push(r.outcome);
        if (r.image) {
          acknowledged.push(r.image);
          if (restarted) pushedAfter++;
        }
      }
    });
    const pullers = [0, 1].map(async (w) => {
      for (let i = 0; !stop; i++) {
        const img = seeded[(i + w) % seeded.length]!;
        const m = await getManifest(server.url, img.repository, img.tag, server.auth()).catch(() => ({ status: 0, code: 'reset', digest: null, bytes: Buffer.alloc(0) }));
        outcomes.push({ what: 'pull manifest', status: m.status, code: m.code });
        if (m.status === 200) expect(m.digest).toBe(img.digest);
        const b = await getBlob(server.url, img.repository, img.blobs[1]!.digest, server.auth()).catch(() => ({ status: 0, code: 'reset', ok: false }));
        outcomes.push({ what: 'pull blob', status: b.status, code: b.code });
        if (b.status === 200) expect(b.ok).toBe(true);
        if (restarted && m.status === 200 && b.status === 200) pulledAfter++;
      }
    });
    await new Promise((r) => setTimeout(r, 1500));
    await pgServer.restart({ mode: 'fast', downMs: 500 });
    await pgServer.restart({ mode: 'immediate' });
    restarted = true;
    for (const deadline = Date.now() + 60_000; pushedAfter < 3 || pulledAfter < 3; ) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    stop = true;
    await Promise.all([...pushers, ...pullers]);

    // Every failure was a clean one: 503 UNAVAILABLE, never a reset, a 500 or a wrong answer.
    const failures = outcomes.filter((o) => o.status >= 400 || o.status === 0);
    for (const f of failures) expect(f, JSON.stringify(f)).toMatchObject({ status: 503, code: 'UNAVAILABLE' });
    expect(outcomes.length).toBeGreaterThan(failures.length);
    // Every acknowledged push is there; every tag resolves to a stored manifest whose blobs are whole.
    for (const img of acknowledged) expect((await getManifest(server.url, img.repository, img.tag, server.auth())).digest).toBe(img.digest);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    // The connections that died with the server were replaced: the pool holds working ones (idle ones close after 30 s).
    const c = new pg.Client({ connectionString: (config.metadata as { url: string }).url });
    await c.connect();
    const { rows } = await c.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'customs'");
    await c.end();
    expect(Number(rows[0]!.n)).toBeGreaterThan(0);
    const report = await consistency('/nonexistent', config, { leftoverGraceMs: 3600_000 });
    expect(report.problems).toEqual([]);
    expect(report.tags).toBeGreaterThanOrEqual(acknowledged.length + seeded.length);
    expect(logs.lines.filter((l) => l.msg === 'internal error' || JSON.stringify(l).includes('"stack"'))).toEqual([]);
  });

  it('the object store stopped mid-upload and mid-download: a 503, a cut download, nothing partial visible; all works once it is back', async () => {
    const big = randomBytes(40 * MiB);
    const bigDigest = digestOf(big);
    expect((await fetch(`${server.url}/v2/s3/big/blobs/uploads/?digest=${bigDigest}`, { method: 'POST', headers: { ...server.auth(), 'content-length': String(big.length) }, body: big })).status).toBe(201);
    const stored = await pushImage(server.url, 's3/img', 'v1', [4096], server.auth());

    // A download whose client reads slowly, so the store goes away in the middle of it.
    const download = new Promise<{ status: number; bytes: Buffer; cut: boolean }>((resolve) => {
      const chunks: Buffer[] = [];
      const req = request(`${server.url}/v2/s3/big/blobs/${bigDigest}`, { agent: false, headers: server.auth() }, (res: IncomingMessage) => {
        let cut = false;
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          res.pause();
          setTimeout(() => res.resume(), 20);
        });
        res.on('aborted', () => (cut = true));
        res.on('error', () => (cut = true));
        res.on('close', () => resolve({ status: res.statusCode!, bytes: Buffer.concat(chunks), cut: cut || !res.complete }));
      });
      req.on('error', () => resolve({ status: 0, bytes: Buffer.concat(chunks), cut: true }));
      req.end();
    });
    // An upload sending 1 MiB every 100 ms.
    const up = randomBytes(30 * MiB);
    const upDigest = digestOf(up);
    const upload = new Promise<{ status: number; body: string }>((resolve) => {
      const req = request(`${server.url}/v2/s3/up/blobs/uploads/?digest=${upDigest}`, { method: 'POST', agent: false, headers: { ...server.auth(), 'content-length': up.length } });
      let body = '';
      req.on('response', (res) => {
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', (e) => resolve({ status: 0, body: e.message }));
      let off = 0;
      const tick = setInterval(() => {
        if (req.destroyed) return clearInterval(tick);
        req.write(up.subarray(off, off + MiB));
        off += MiB;
        if (off >= up.length) {
          clearInterval(tick);
          req.end();
        }
      }, 100);
    });
    await new Promise((r) => setTimeout(r, 1200));
    await ceph.stopGateway!();

    const u = await upload;
    expect(u.status).toBe(503);
    expect(JSON.parse(u.body)).toMatchObject({ errors: [{ code: 'UNAVAILABLE', message: expect.stringMatching(/S3 is unavailable/) }] });
    const d = await download;
    expect(d.status).toBe(200);
    expect(d.cut).toBe(true); // cut short: never a complete body with wrong bytes
    expect(d.bytes.length).toBeLessThan(big.length);
    expect(big.subarray(0, d.bytes.length).equals(d.bytes)).toBe(true);
    // While it is away: blob reads answer 503; manifests and tags (PostgreSQL) are still served; not ready.
    expect(await getBlob(server.url, 's3/big', bigDigest, server.auth())).toMatchObject({ status: 503, code: 'UNAVAILABLE' });
    expect((await getManifest(server.url, 's3/img', 'v1', server.auth())).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);

    await ceph.startGateway!();
    for (const deadline = Date.now() + 60_000; (await fetch(`${server.url}/readyz`)).status !== 200; ) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 200));
    }
    // Nothing of the cut upload is visible; sent again, it goes in; the download completes.
    expect((await fetch(`${server.url}/v2/s3/up/blobs/${upDigest}`, { method: 'HEAD', headers: server.auth() })).status).toBe(404);
    expect((await fetch(`${server.url}/v2/s3/up/blobs/uploads/?digest=${upDigest}`, { method: 'POST', headers: { ...server.auth(), 'content-length': String(up.length) }, body: up })).status).toBe(201);
    expect(await getBlob(server.url, 's3/up', upDigest, server.auth())).toMatchObject({ status: 200, ok: true });
    expect(await getBlob(server.url, 's3/big', bigDigest, server.auth())).toMatchObject({ status: 200, ok: true });
    for (const b of stored.blobs) expect(await getBlob(server.url, 's3/img', b.digest as Digest, server.auth())).toMatchObject({ status: 200, ok: true });

    const report = await consistency('/nonexistent', config, { leftoverGraceMs: 3600_000 });
    expect(report.problems).toEqual([]);
    expect(logs.lines.filter((l) => l.msg === 'internal error' || JSON.stringify(l).includes('"stack"'))).toEqual([]);
  });
});
