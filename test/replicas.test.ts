import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../src/oci/index.js';
import { FaultUpstream, generatedBlob } from './helpers/fault-upstream.js';
import { scaleoutEnv, type ScaleoutEnv } from './helpers/scaleout.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * Three customs replicas on loopback sharing one bucket/prefix (Ceph RGW) and one
 * PostgreSQL database. A and C run in this process (startTestServer); B runs as a
 * child process (`customs serve`, from dist/) so that it can be killed with SIGKILL
 * in the middle of a download.
 */
const MiB = 1024 * 1024;
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

interface Replica {
  readonly url: string;
  auth(): Record<string, string>;
}

let env: ScaleoutEnv;
let a: TestServer;
let c: TestServer;
let b: Replica & { proc: ChildProcess; dir: string };
let config: Record<string, unknown>;
let up: FaultUpstream;

async function startChildReplica(cfg: Record<string, unknown>): Promise<Replica & { proc: ChildProcess; dir: string }> {
  const bin = resolve('bin/customs.js');
  if (!existsSync(resolve('dist/storage/open.js'))) throw new Error('dist/ is not built: run `npm run build` first (npm test does)');
  const dir = await mkdtemp(join(tmpdir(), 'customs-replica-'));
  const configFile = join(dir, 'config.json');
  await writeFile(configFile, JSON.stringify(cfg));
  const proc = spawn(process.execPath, [bin, 'serve', '--listen', '127.0.0.1:0', '--data', join(dir, 'data'), '--config', configFile, '--gate', 'off', '--log-level', 'info'], {
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((res, rej) => {
    const lines = createInterface({ input: proc.stdout! });
    lines.on('line', (line) => {
      try {
        const j = JSON.parse(line) as { msg?: string; url?: string };
        if (j.msg === 'listening' && j.url) res(j.url);
      } catch {
        // not a log line
      }
    });
    proc.once('exit', (code) => rej(new Error(`replica B exited (${code}): ${stderr}`)));
  });
  const token = (await readFile(join(dir, 'data', 'admin-token'), 'utf8')).trim();
  return { url, proc, dir, auth: () => ({ authorization: `Bearer ${token}` }) };
}

beforeAll(async () => {
  env = await scaleoutEnv('replicas');
  process.env.AWS_ACCESS_KEY_ID = env.s3.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = env.s3.secretAccessKey;
  up = await FaultUpstream.start();
  config = {
    upstreams: [{ name: 'up', url: up.url, timeouts: { header: 10, idle: 30, overall: 600 } }],
    storage: { driver: 's3', bucket: env.bucket, prefix: 'customs/', endpoint: env.s3.endpoint, region: env.s3.region, forcePathStyle: true, partSizeMiB: 5 },
    metadata: { driver: 'postgres', url: env.pgUrl, poolSize: 10 },
  };
  a = await startTestServer({ config });
  [b, c] = await Promise.all([startChildReplica(config), startTestServer({ config })]);
});

afterAll(async () => {
  b?.proc.kill('SIGKILL');
  await Promise.all([a?.close(), c?.close()]);
  if (b) await rm(b.dir, { recursive: true, force: true });
  await up?.stop();
  await env?.stop();
});

async function pushBlob(r: Replica, repo: string, data: Buffer): Promise<string> {
  const digest = digestOf(data);
  const res = await fetch(`${r.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    headers: { ...r.auth(), 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
    body: data,
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return digest;
}

async function pushManifest(r: Replica, repo: string, tag: string, layers: Array<{ digest: string; size: number }>, configDigest: string, configSize: number): Promise<string> {
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST,
      artifactType: 'application/vnd.example.model.v1',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: configDigest, size: configSize },
      layers: layers.map((l) => ({ mediaType: 'application/octet-stream', ...l })),
    }),
  );
  const res = await fetch(`${r.url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { ...r.auth(), 'content-type': MANIFEST }, body });
  expect(res.status, await res.clone().text()).toBe(201);
  return digestOf(body);
}

const getManifest = (r: Replica, repo: string, ref: string) => fetch(`${r.url}/v2/${repo}/manifests/${ref}`, { headers: { ...r.auth(), accept: MANIFEST } });

async function sha256Of(res: Response): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of res.body! as AsyncIterable<Uint8Array>) h.update(chunk);
  return `sha256:${h.digest('hex')}`;
}

/** Polls until `check` holds; the bound is for liveness (a stale cache never recovers), not speed. */
async function eventually(check: () => Promise<boolean>, boundMs = 10_000): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > boundMs) throw new Error(`condition not reached within ${boundMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}

describe('three replicas on one S3 bucket and one PostgreSQL database', () => {
  const repo = 'models/sentiment';
  const layer = randomBytes(24 * MiB + 4321);
  const cfg = Buffer.from('{}');
  let v1: string;

  it('pushes a model through A and pulls it through B', async () => {
    const configDigest = await pushBlob(a, repo, cfg);
    const layerDigest = await pushBlob(a, repo, layer);
    v1 = await pushManifest(a, repo, 'v1', [{ digest: layerDigest, size: layer.length }], configDigest, cfg.length);
    const m = await getManifest(b, repo, 'v1');
    expect(m.status).toBe(200);
    expect(m.headers.get('docker-content-digest')).toBe(v1);
    const blob = await fetch(`${b.url}/v2/${repo}/blobs/${layerDigest}`, { headers: b.auth() });
    expect(blob.status).toBe(200);
    expect(await sha256Of(blob)).toBe(layerDigest);
    const ranged = await fetch(`${b.url}/v2/${repo}/blobs/${layerDigest}`, { headers: { ...b.auth(), range: 'bytes=5242870-5242889' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(layer.subarray(5242870, 5242890))).toBe(true);
  });

  it('continues one chunked upload through A, B and C in turn', async () => {
    const data = randomBytes(13 * MiB + 99);
    const cuts = [0, 3 * MiB, 7 * MiB, 9 * MiB, data.length];
    const start = await fetch(`${a.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: a.auth() });
    expect(start.status).toBe(202);
    let location = start.headers.get('location')!;
    const path = (loc: string) => (loc.startsWith('http') ? new URL(loc).pathname + new URL(loc).search : loc);
    const order = [a, b, c, a];
    for (let i = 0; i < 4; i++) {
      const r = order[i]!;
      const chunk = data.subarray(cuts[i], cuts[i + 1]);
      const res = await fetch(`${r.url}${path(location)}`, {
        method: 'PATCH',
        headers: { ...r.auth(), 'content-type': 'application/octet-stream', 'content-range': `${cuts[i]}-${cuts[i + 1]! - 1}`, 'content-length': String(chunk.length) },
        body: chunk,
      });
      expect(res.status, await res.clone().text()).toBe(202);
      expect(res.headers.get('range')).toBe(`0-${cuts[i + 1]! - 1}`);
      location = res.headers.get('location') ?? location;
    }
    const status = await fetch(`${b.url}${path(location)}`, { headers: b.auth() });
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe(`0-${data.length - 1}`);
    const digest = digestOf(data);
    const sep = path(location).includes('?') ? '&' : '?';
    const done = await fetch(`${c.url}${path(location)}${sep}digest=${digest}`, { method: 'PUT', headers: c.auth() });
    expect(done.status, await done.clone().text()).toBe(201);
    // Blobs are served only as part of a manifest the gate allows: reference it from one, then read it through B.
    await pushManifest(b, repo, 'chunked', [{ digest, size: data.length }], await pushBlob(b, repo, cfg), cfg.length);
    const got = await fetch(`${b.url}/v2/${repo}/blobs/${digest}`, { headers: b.auth() });
    expect(got.status).toBe(200);
    expect(await sha256Of(got)).toBe(digest);
  });

  it('moves a tag on C and A and B follow (LISTEN/NOTIFY drops their tag caches)', async () => {
    // A and B resolved v1 above and cached it.
    expect((await getManifest(a, repo, 'v1')).headers.get('docker-content-digest')).toBe(v1);
    const configDigest = digestOf(cfg);
    const small = await pushBlob(c, repo, Buffer.from('weights v2'));
    const v2 = await pushManifest(c, repo, 'v1', [{ digest: small, size: 10 }], configDigest, cfg.length);
    for (const r of [a, b]) {
      const ms = await eventually(async () => (await getManifest(r, repo, 'v1')).headers.get('docker-content-digest') === v2);
      console.log(`tag move on C seen by ${r === a ? 'A' : 'B'} after ${ms} ms`);
    }
    // An operator rollback on C (ops' invalidateTags) reaches A and B the same way.
    const rb = await fetch(`${c.url}/admin/rollback`, { method: 'POST', headers: { ...c.auth(), 'content-type': 'application/json' }, body: JSON.stringify({ repository: repo, tag: 'v1', reason: 'bad v2' }) });
    expect(rb.status, await rb.clone().text()).toBe(200);
    for (const r of [a, b]) await eventually(async () => (await getManifest(r, repo, 'v1')).headers.get('docker-content-digest') === v1);
  });

  it('quarantines on C and A and B deny at once', async () => {
    const q = await fetch(`${c.url}/admin/quarantine`, { method: 'POST', headers: { ...c.auth(), 'content-type': 'application/json' }, body: JSON.stringify({ digest: v1, reason: 'replica test' }) });
    expect(q.status, await q.clone().text()).toBe(200);
    // No waiting: the quarantine is read per request from PostgreSQL, so it holds on every replica once the admin call returned.
    for (const r of [a, b, c]) {
      const res = await getManifest(r, repo, 'v1');
      expect(res.status).toBe(403);
      expect(((await res.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('DENIED');
    }
    const rel = await fetch(`${a.url}/admin/release`, { method: 'POST', headers: { ...a.auth(), 'content-type': 'application/json' }, body: JSON.stringify({ digest: v1, reason: 'done' }) });
    expect(rel.status).toBe(200);
    for (const r of [b, c]) expect((await getManifest(r, repo, 'v1')).status).toBe(200);
  });

  it('fetches a blob from the upstream once when A, B and C pull it cold at the same time', async () => {
    const blob = await generatedBlob(24 * MiB, 'cold-pull');
    const image = up.addImage('models/cold', ['v1'], [blob]);
    const path = new RegExp(`/blobs/${blob.digest}$`);
    // Each replica resolves the manifest first (a blob is served only as part of an allowed manifest).
    for (const r of [a, b, c]) expect((await getManifest(r, 'up/models/cold', 'v1')).status).toBe(200);
    up.fault(path, { kind: 'delay', ms: 300 }); // the fills overlap: every replica asks while the first is still downloading
    const results = await Promise.all(
      [a, b, c].map(async (r) => {
        const res = await fetch(`${r.url}/v2/up/models/cold/blobs/${blob.digest}`, { headers: r.auth() });
        expect(res.status, await res.clone().text().catch(() => '')).toBe(200);
        return sha256Of(res);
      }),
    );
    expect(results).toEqual([blob.digest, blob.digest, blob.digest]);
    expect(up.count('GET', path)).toBe(1);
    expect((await getManifest(a, 'up/models/cold', image.digest)).status).toBe(200);
    up.clearFaults();
  });

  it('finishes a pull through A after B is killed mid-download', async () => {
    const digest = digestOf(layer);
    const res = await fetch(`${b.url}/v2/${repo}/blobs/${digest}`, { headers: b.auth() });
    expect(res.status).toBe(200);
    const received: Buffer[] = [];
    let got = 0;
    const reader = res.body!.getReader();
    let failed = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received.push(Buffer.from(value));
        got += value.byteLength;
        if (got >= 2 * MiB && b.proc.exitCode === null && b.proc.signalCode === null) b.proc.kill('SIGKILL');
      }
    } catch {
      failed = true; // the connection died with B
    }
    expect(failed || got < layer.length).toBe(true);
    expect(got).toBeLessThan(layer.length);
    // The client resumes where it stopped, through A.
    const rest = await fetch(`${a.url}/v2/${repo}/blobs/${digest}`, { headers: { ...a.auth(), range: `bytes=${got}-` } });
    expect(rest.status).toBe(206);
    received.push(Buffer.from(await rest.arrayBuffer()));
    expect(digestOf(Buffer.concat(received))).toBe(digest);
  });

  it('collects on C what a manifest deleted on A left behind: the link goes from PostgreSQL, the bytes from S3', async () => {
    const gcRepo = 'models/retired';
    const weights = randomBytes(6 * MiB + 17); // a multipart object (5 MiB parts)
    const configDigest = await pushBlob(a, gcRepo, cfg);
    const layerDigest = await pushBlob(a, gcRepo, weights);
    const m = await pushManifest(a, gcRepo, 'v1', [{ digest: layerDigest, size: weights.length }], configDigest, cfg.length);
    const s3 = new S3Client({ endpoint: env.s3.endpoint, region: env.s3.region, forcePathStyle: true, credentials: { accessKeyId: env.s3.accessKeyId, secretAccessKey: env.s3.secretAccessKey } });
    const stored = async () => {
      const keys: string[] = [];
      for (let token: string | undefined, more = true; more; ) {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: env.bucket, Prefix: 'customs/', ContinuationToken: token }));
        keys.push(...(page.Contents ?? []).map((o) => o.Key!));
        [token, more] = [page.NextContinuationToken, page.IsTruncated === true];
      }
      return keys.some((k) => k.includes(layerDigest.slice(7)));
    };
    try {
      expect(await stored()).toBe(true);
      expect((await fetch(`${a.url}/v2/${gcRepo}/manifests/${m}`, { method: 'DELETE', headers: a.auth() })).status).toBe(202);
      const gc = async (body: unknown) => (await fetch(`${c.url}/admin/gc`, { method: 'POST', headers: { ...c.auth(), 'content-type': 'application/json' }, body: JSON.stringify(body) })).json() as Promise<{ links: number; bytes: number; sample: { repository: string; digest: string }[] }>;
      const report = await gc({ graceSeconds: 0 });
      expect(report.sample).toContainEqual(expect.objectContaining({ repository: gcRepo, digest: layerDigest }));
      expect(report.bytes).toBeGreaterThanOrEqual(weights.length);
      expect((await fetch(`${a.url}/v2/${gcRepo}/blobs/${layerDigest}`, { method: 'HEAD', headers: a.auth() })).status).toBe(404);
      expect(await stored()).toBe(false);
      // The `{}` config is linked in other repositories too: its bytes stay and are served there.
      const shared = await fetch(`${a.url}/v2/${repo}/blobs/${configDigest}`, { headers: a.auth() });
      expect(shared.status).toBe(200);
      expect(await shared.text()).toBe('{}');
    } finally {
      s3.destroy();
    }
  });
});
