import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../src/oci/index.js';
import { leaseOrWait } from '../src/storage/fill-lease.js';
import { StorageStartupError, openStorage } from '../src/storage/open.js';
import { PgFillLease } from '../src/storage/postgres/pg-fill-lease.js';
import { PgNotifier } from '../src/storage/postgres/pg-notifier.js';
import { createPgPool, migrate } from '../src/storage/postgres/pg-pool.js';
import { PostgresMetadataStore } from '../src/storage/postgres/postgres-metadata-store.js';
import { PG_MIGRATIONS } from '../src/storage/postgres/postgres-schema.js';
import { S3BlobStore } from '../src/storage/s3/s3-blob-store.js';
import { createMultipart } from '../src/storage/s3/s3-multipart.js';
import { S3UploadStore } from '../src/storage/s3/s3-upload-store.js';
import type { CacheEvent } from '../src/storage/notifier.js';
import { freePort } from './helpers/postgres.js';
import { scaleoutEnv, type ScaleoutEnv } from './helpers/scaleout.js';
import { runStorageContract } from './storage-contract.js';

// The shared storage contract, then what only the scale-out backends have, against real Ceph RGW (S3) and PostgreSQL 15.
let env: ScaleoutEnv;
beforeAll(async () => {
  env = await scaleoutEnv('contract');
});
afterAll(async () => {
  await env?.stop();
});

const MiB = 1024 * 1024;
const blobStore = (prefix: string, partSize?: number) =>
  new S3BlobStore({
    bucket: env.bucket,
    prefix,
    endpoint: env.s3.endpoint,
    region: env.s3.region,
    forcePathStyle: true,
    partSize,
    credentials: { accessKeyId: env.s3.accessKeyId, secretAccessKey: env.s3.secretAccessKey },
  });

runStorageContract('S3 (Ceph RGW) + PostgreSQL', async () => {
  const pool = createPgPool({ url: env.pgUrl });
  await migrate(pool, PG_MIGRATIONS);
  const blobs = blobStore('contract/');
  await blobs.ready();
  return {
    blobs,
    uploads: new S3UploadStore(pool, blobs),
    metadata: new PostgresMetadataStore(pool),
    rot: async (digest, bytes) => void (await blobs.s3.send(new PutObjectCommand({ Bucket: env.bucket, Key: blobs.layout.blob(digest), Body: bytes }))),
    close: async () => {
      blobs.s3.destroy();
      await pool.end();
    },
  };
});

/** Streams `buf` in chunks of `chunk` bytes, as a socket would. */
const chunked = (buf: Buffer, chunk = 64 * 1024) =>
  Readable.from(
    (function* () {
      for (let o = 0; o < buf.length; o += chunk) yield buf.subarray(o, o + chunk);
    })(),
  );
const readAll = async (r: Readable | undefined) => {
  const parts: Buffer[] = [];
  for await (const c of r!) parts.push(c as Buffer);
  return Buffer.concat(parts);
};

describe('S3 blobs and upload sessions (multipart, across replicas)', () => {
  let pool: pg.Pool;
  let blobs: S3BlobStore;
  const prefix = 'specific/';
  const leftovers = async () => {
    const mp = await blobs.s3.send(new ListMultipartUploadsCommand({ Bucket: env.bucket, Prefix: prefix }));
    const objs = await blobs.s3.send(new ListObjectsV2Command({ Bucket: env.bucket, Prefix: prefix }));
    return {
      multipart: (mp.Uploads ?? []).length,
      private: (objs.Contents ?? []).filter((o) => !o.Key!.startsWith(`${prefix}blobs/`)).map((o) => o.Key),
    };
  };
  beforeAll(async () => {
    pool = createPgPool({ url: env.pgUrl });
    await migrate(pool, PG_MIGRATIONS);
    blobs = blobStore(prefix, 5 * MiB);
  });
  afterAll(async () => {
    blobs.s3.destroy();
    await pool.end();
  });

  it('puts a multipart blob under its digest only once verified, and serves ranges across parts', async () => {
    const data = randomBytes(21 * MiB + 123);
    const info = await blobs.put(chunked(data), { expected: digestOf(data), expectedSize: data.length });
    expect(info).toEqual({ digest: digestOf(data), size: data.length });
    expect(await blobs.stat(info.digest)).toEqual(info);
    const start = 5 * MiB - 10;
    expect((await readAll(await blobs.get(info.digest, { start, end: start + 20 }))).equals(data.subarray(start, start + 21))).toBe(true);
    expect(digestOf(await readAll(await blobs.get(info.digest)))).toBe(info.digest);
    // Without the expected digest the bytes go to a private key and are copied into place.
    const other = randomBytes(11 * MiB);
    expect((await blobs.put(chunked(other))).digest).toBe(digestOf(other));
    expect(digestOf(await readAll(await blobs.get(digestOf(other))))).toBe(digestOf(other));
    expect(await leftovers()).toEqual({ multipart: 0, private: [] });
  });

  it('hands out presigned URLs that serve the blob (and ranges) without credentials, until they expire', async () => {
    const data = Buffer.from('served by S3 itself');
    const info = await blobs.put(chunked(data));
    const url = await blobs.redirectUrl(info.digest, 60);
    expect(url.startsWith(`${env.s3.endpoint}/`)).toBe(true);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(data)).toBe(true);
    const part = await fetch(url, { headers: { range: 'bytes=10-11' } });
    expect(part.status).toBe(206);
    expect(await part.text()).toBe('S3');
    const tampered = url.replace(/X-Amz-Expires=\d+/, 'X-Amz-Expires=3600');
    expect((await fetch(tampered)).status).toBe(403);
    const expired = await blobs.redirectUrl(info.digest, 1);
    await new Promise((r) => setTimeout(r, 2100));
    expect((await fetch(expired)).status).toBe(403);
  });

  it('aborts a multipart put whose digest or size is wrong, leaving nothing behind', async () => {
    const data = randomBytes(12 * MiB);
    const wrong = digestOf('not these bytes');
    await expect(blobs.put(chunked(data), { expected: wrong })).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
    await expect(blobs.put(chunked(data), { expected: digestOf(data), expectedSize: data.length - 1 })).rejects.toMatchObject({ code: 'SIZE_INVALID' });
    await expect(blobs.put(chunked(data), { maxSize: 7 * MiB })).rejects.toMatchObject({ code: 'TOO_LARGE' });
    expect(await blobs.stat(wrong)).toBeUndefined();
    expect(await blobs.stat(digestOf(data))).toBeUndefined();
    expect(await leftovers()).toEqual({ multipart: 0, private: [] });
  });

  it('continues one upload session on three replicas, with chunks smaller than an S3 part', async () => {
    // Three stores = three replicas: each has its own in-memory hashers, they share PostgreSQL and the bucket.
    const [a, b, c] = [new S3UploadStore(pool, blobs), new S3UploadStore(pool, blobs), new S3UploadStore(pool, blobs)];
    const data = randomBytes(14 * MiB + 777);
    const cuts = [0, 3 * MiB, 6 * MiB, 13 * MiB, data.length];
    const session = await a.start('r/replicas');
    const stores = [a, b, c, a];
    for (let i = 0; i < 4; i++) {
      const s = await stores[i]!.append(session.id, chunked(data.subarray(cuts[i], cuts[i + 1])), cuts[i]!, { expectedLength: cuts[i + 1]! - cuts[i]! });
      expect(s.size).toBe(cuts[i + 1]);
      expect((await c.status(session.id))?.size).toBe(cuts[i + 1]);
    }
    await expect(b.append(session.id, chunked(Buffer.from('x')), 5)).rejects.toMatchObject({ code: 'RANGE_INVALID' });
    const blob = await b.finish(session.id, digestOf(data));
    expect(blob).toEqual({ digest: digestOf(data), size: data.length });
    expect((await readAll(await blobs.get(blob.digest))).equals(data)).toBe(true);
    expect(await a.status(session.id)).toBeUndefined();
    expect(await leftovers()).toEqual({ multipart: 0, private: [] });
  });

  it('verifies the digest when another replica finishes (re-hash from S3) and stores nothing on a mismatch', async () => {
    const [a, b] = [new S3UploadStore(pool, blobs), new S3UploadStore(pool, blobs)];
    const data = randomBytes(7 * MiB);
    const s = await a.start('r/rehash');
    await a.append(s.id, chunked(data), 0);
    const wrong = digestOf('wrong');
    await expect(b.finish(s.id, wrong)).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
    expect(await blobs.stat(wrong)).toBeUndefined();
    expect(await blobs.stat(digestOf(data))).toBeUndefined();
    expect(await leftovers()).toEqual({ multipart: 0, private: [] });
    // The same replica finishing verifies from its running hash, before completing the upload.
    const s2 = await a.start('r/rehash');
    await a.append(s2.id, chunked(data), 0);
    await expect(a.finish(s2.id, wrong)).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
    expect(await leftovers()).toEqual({ multipart: 0, private: [] });
  });

  it('keeps what arrived before a client went away mid-chunk, so the client can resume', async () => {
    const [a, b] = [new S3UploadStore(pool, blobs), new S3UploadStore(pool, blobs)];
    const data = randomBytes(12 * MiB);
    const s = await a.start('r/resume');
    const dying = new Readable({
      read() {
        this.push(data.subarray(0, 7 * MiB));
        this.destroy(new Error('client went away'));
      },
    });
    await expect(a.append(s.id, dying, 0)).rejects.toThrow(/client went away/);
    const at = (await b.status(s.id))!.size;
    expect(at).toBe(7 * MiB);
    await b.append(s.id, chunked(data.subarray(at)), at);
    expect(await a.finish(s.id, digestOf(data))).toEqual({ digest: digestOf(data), size: data.length });
    expect((await readAll(await blobs.get(digestOf(data)))).equals(data)).toBe(true);
    expect(await leftovers()).toEqual({ multipart: 0, private: [] });
  });

  it('lets exactly one of two racing appends at the same offset win', async () => {
    const [a, b] = [new S3UploadStore(pool, blobs), new S3UploadStore(pool, blobs)];
    const s = await a.start('r/race');
    const x = randomBytes(6 * MiB);
    const y = randomBytes(6 * MiB);
    const results = await Promise.allSettled([a.append(s.id, chunked(x), 0), b.append(s.id, chunked(y), 0)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'RANGE_INVALID' } });
    const winner = results[0]!.status === 'fulfilled' ? x : y;
    expect((await a.finish(s.id, digestOf(winner))).size).toBe(winner.length);
    expect((await readAll(await blobs.get(digestOf(winner)))).equals(winner)).toBe(true);
    expect(await leftovers()).toEqual({ multipart: 0, private: [] });
  });

  it('aborts abandoned sessions and orphaned multipart uploads in S3 on expiry', async () => {
    const a = new S3UploadStore(pool, blobs);
    const s = await a.start('r/expire');
    await a.append(s.id, chunked(randomBytes(6 * MiB)), 0);
    // A replica that crashed between S3 and PostgreSQL leaves a multipart upload no session owns.
    await createMultipart(blobs.s3, env.bucket, blobs.layout.upload('00000000-0000-4000-8000-000000000000'));
    expect((await leftovers()).multipart).toBe(2);
    expect(await a.expire(60_000)).toBe(0);
    expect((await leftovers()).multipart).toBe(2);
    await new Promise((r) => setTimeout(r, 1100));
    expect(await a.expire(1000)).toBe(1);
    expect(await a.status(s.id)).toBeUndefined();
    expect(await leftovers()).toEqual({ multipart: 0, private: [] });
  });
});

describe('PostgreSQL: migrations, notifications, fill leases', () => {
  it('migrates a fresh database once when replicas start together, and refuses a newer schema', async () => {
    const url = await env.newDatabase('migrate');
    const pools = [1, 2, 3].map(() => createPgPool({ url }));
    const results = await Promise.all(pools.map((p) => migrate(p, PG_MIGRATIONS)));
    expect(results.filter((r) => r.from === 0)).toHaveLength(1);
    expect(results.every((r) => r.to === PG_MIGRATIONS.length)).toBe(true);
    const { rows } = await pools[0]!.query('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.map((r: { version: number }) => r.version)).toEqual(PG_MIGRATIONS.map((_, i) => i + 1));
    await pools[0]!.query('INSERT INTO schema_migrations VALUES (999, 0)');
    await expect(migrate(pools[1]!, PG_MIGRATIONS)).rejects.toThrow(/newer than this customs/);
    await Promise.all(pools.map((p) => p.end()));
  });

  it('delivers cache events to every replica, and a reset to one that lost its connection', async () => {
    const pool = createPgPool({ url: env.pgUrl });
    await migrate(pool, PG_MIGRATIONS);
    const [a, b] = await Promise.all([PgNotifier.start({ url: env.pgUrl, pool, heartbeatMs: 100 }), PgNotifier.start({ url: env.pgUrl, pool, heartbeatMs: 100 })]);
    const seen = { a: [] as CacheEvent[], b: [] as CacheEvent[] };
    a.subscribe((e) => seen.a.push(e));
    b.subscribe((e) => seen.b.push(e));
    const until = async (f: () => boolean) => {
      while (!f()) await new Promise((r) => setTimeout(r, 10));
    };
    const event: CacheEvent = { kind: 'quarantine', digest: digestOf('bad model') };
    await a.publish(event);
    expect(seen.a).toEqual([event]); // the publisher's own caches, before publish returns
    await until(() => seen.b.length > 0);
    expect(seen.b).toEqual([event]);
    // Kill the listening connections from the server side: both replicas must drop their caches, then recover.
    await pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'customs-notify'`);
    await until(() => seen.a.some((e) => e.kind === 'reset') && seen.b.some((e) => e.kind === 'reset'));
    await until(() => a.isConnected && b.isConnected);
    seen.b.length = 0;
    await a.publish({ kind: 'tags', repository: 'models/x' });
    await until(() => seen.b.some((e) => e.kind === 'tags'));
    await Promise.all([a.close(), b.close()]);
    await pool.end();
  });

  it('orders a link and a deletion of the same bytes across replicas (one waits for the other)', async () => {
    const pool = createPgPool({ url: env.pgUrl });
    await migrate(pool, PG_MIGRATIONS);
    const [x, y] = [new PostgresMetadataStore(pool), new PostgresMetadataStore(pool)];
    const digest = digestOf(`raced ${Date.now()}`);
    let bytes = true;
    const events: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // Replica X has seen no link and is deleting the bytes (slowly, as S3 may be).
    const deleting = x.deleteIfUnlinked(digest, async () => {
      events.push('delete begins');
      await gate;
      bytes = false;
      events.push('delete ends');
      return true;
    });
    while (!events.includes('delete begins')) await new Promise((r) => setTimeout(r, 5));
    // Replica Y finished an upload of the same bytes and links them: it must see the deletion's outcome.
    const linking = y.linkBlobIf('r/raced', { digest, size: 1 }, async () => {
      events.push('link checks the bytes');
      return bytes;
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(events).toEqual(['delete begins']); // Y waits on X's lock
    release();
    expect(await deleting).toBe(true);
    expect(await linking).toBe(false); // the bytes were gone: no link to nothing
    expect(events).toEqual(['delete begins', 'delete ends', 'link checks the bytes']);
    expect(await y.linkedBlob('r/raced', digest)).toBeUndefined();
    await pool.end();
  });

  it('gives a fill lease to one replica at a time; the others wait and then find the content', async () => {
    const pool = createPgPool({ url: env.pgUrl });
    await migrate(pool, PG_MIGRATIONS);
    const replicas = [new PgFillLease(pool, { pollMs: 20 }), new PgFillLease(pool, { pollMs: 20 }), new PgFillLease(pool, { pollMs: 20 })];
    const first = await replicas[0]!.tryAcquire('sha256:abc');
    expect(first).toBeDefined();
    expect(await replicas[1]!.tryAcquire('sha256:abc')).toBeUndefined();
    await first!.release();
    // Cold pulls of one blob on three replicas: one upstream fetch.
    let stored = false;
    let fetches = 0;
    const pull = async (leases: PgFillLease) => {
      const lease = await leaseOrWait(leases, 'sha256:blob', async () => stored);
      if (!lease) return 'read from the store';
      fetches++;
      await new Promise((r) => setTimeout(r, 200)); // the upstream download
      stored = true;
      await lease.release();
      return 'fetched';
    };
    const outcomes = await Promise.all(replicas.map(pull));
    expect(fetches).toBe(1);
    expect(outcomes.sort()).toEqual(['fetched', 'read from the store', 'read from the store']);
    // A holder that died stops renewing: its lease expires and another replica takes over.
    await pool.query(`INSERT INTO fill_leases VALUES ('sha256:dead', 'crashed', clock_timestamp() - interval '1 second')`);
    expect(await replicas[2]!.tryAcquire('sha256:dead')).toBeDefined();
    await pool.end();
  });
});

describe('openStorage', () => {
  const s3 = () => ({ driver: 's3' as const, bucket: env.bucket, prefix: 'open/', endpoint: env.s3.endpoint, region: env.s3.region, forcePathStyle: true, partSizeMiB: 8, partConcurrency: 4 });
  const quiet = { info: () => undefined, warn: () => undefined };
  beforeAll(() => {
    process.env.AWS_ACCESS_KEY_ID = env.s3.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = env.s3.secretAccessKey;
  });

  it('opens S3 + PostgreSQL from configuration, credentials from the environment', async () => {
    const storage = await openStorage({ storage: s3(), metadata: { driver: 'postgres', url: env.pgUrl, poolSize: 5 } }, '/nonexistent', quiet);
    expect(storage.shared).toBe(true);
    const info = await storage.blobs.put(Readable.from([Buffer.from('opened')]));
    expect(await storage.blobs.stat(info.digest)).toEqual(info);
    await storage.metadata.ready();
    await storage.close();
  });

  it('names the component that is unreachable or misconfigured, and why', async () => {
    const port = await freePort();
    const open = (storage: ReturnType<typeof s3>, url = env.pgUrl) => openStorage({ storage, metadata: { driver: 'postgres', url, poolSize: 5 } }, '/nonexistent', quiet);
    await expect(open(s3(), `postgres://postgres@127.0.0.1:${port}/x`)).rejects.toMatchObject({ component: 'PostgreSQL', message: expect.stringMatching(/unreachable: connection refused/) });
    await expect(open(s3(), env.pgUrl.replace(/[^/]+$/, 'no_such_db'))).rejects.toMatchObject({ component: 'PostgreSQL', message: expect.stringMatching(/database does not exist/) });
    await expect(open({ ...s3(), bucket: 'no-such-bucket' })).rejects.toMatchObject({ component: 'S3', message: expect.stringMatching(/no-such-bucket .* does not exist/) });
    await expect(open({ ...s3(), endpoint: `http://127.0.0.1:${port}` })).rejects.toMatchObject({ component: 'S3', message: expect.stringMatching(/unreachable/) });
    process.env.AWS_SECRET_ACCESS_KEY = 'wrong';
    try {
      await expect(open(s3())).rejects.toMatchObject({ component: 'S3', message: expect.stringMatching(/access denied/) });
    } finally {
      process.env.AWS_SECRET_ACCESS_KEY = env.s3.secretAccessKey;
    }
    await expect(openStorage({ storage: s3(), metadata: { driver: 'sqlite' } }, '/nonexistent', quiet)).rejects.toBeInstanceOf(StorageStartupError);
  });
});
