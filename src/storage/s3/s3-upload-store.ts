import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type pg from 'pg';
import { z } from 'zod';
import { Digester, digestOf, err, isRegistryError, parseDigest, type Algorithm, type Digest } from '../../oci/index.js';
import type { BlobInfo } from '../blob-store.js';
import type { S3BlobStore } from './s3-blob-store.js';
import { abortMultipart, completeMultipart, createMultipart, MIN_PART, PartFiller, PartUploader, partSizeFor, type CompletedPart } from './s3-multipart.js';
import type { UploadSession, UploadStore } from '../upload-store.js';
import { drainOrDestroy } from '../storage-errors.js';

/** How long a replica's claim on a session lasts without renewal; a part upload is bounded well below it. */
const CLAIM_TTL_MS = 120_000;
const PART_TIMEOUT_MS = 60_000;
const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const partsSchema = z.array(z.object({ n: z.number().int(), e: z.string(), s: z.number().int() }));
type StoredPart = z.infer<typeof partsSchema>[number];

interface SessionRow {
  id: string;
  repository: string;
  s3_key: string;
  s3_upload_id: string;
  size: number;
  parts: string;
  next_part: number;
  tail: Buffer;
  state: 'open' | 'finishing';
  started_at: number;
  updated_at: number;
}

/**
 * Upload sessions any replica can continue: state in PostgreSQL, bytes in one S3
 * multipart upload per session (under `uploads/<id>`).
 *
 * S3 parts must be >= 5 MiB except the last, and PATCH chunks may be smaller: the
 * bytes after the last full part (< 5 MiB) are kept in the session row (`tail`)
 * and lead the next chunk's first part.
 *
 * One chunk at a time: an append claims the session row (`appender`, with an
 * expiry renewed before every part; a part upload times out well within it), so a
 * second concurrent PATCH gets RANGE_INVALID and never uploads a part. Part numbers
 * follow the committed parts, so a part a failed append left behind is overwritten
 * by the next chunk. Whatever arrived before a client went away is committed (as
 * on the filesystem), and the session's size tells the client where to resume.
 *
 * The running hash: Node cannot serialise a hash's state, so the replica that
 * received every byte keeps its Digester in memory and `finish` there verifies
 * before completing; when another replica finishes (or appended a chunk), the
 * upload is completed under its private key, re-hashed from S3 with one GET, and
 * copied into place (server-side) only if it verifies.
 */
export class S3UploadStore implements UploadStore {
  private readonly hashers = new Map<string, Digester>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly blobs: S3BlobStore,
  ) {}

  private get s3() {
    return this.blobs.s3;
  }
  private get bucket() {
    return this.blobs.bucket;
  }

  async start(repository: string): Promise<UploadSession> {
    const id = randomUUID();
    const key = this.blobs.layout.upload(id);
    const uploadId = await createMultipart(this.s3, this.bucket, key);
    const now = Date.now();
    try {
      await this.pool.query('INSERT INTO upload_sessions (id, repository, s3_key, s3_upload_id, started_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)', [
        id,
        repository,
        key,
        uploadId,
        now,
      ]);
    } catch (e) {
      await abortMultipart(this.s3, this.bucket, key, uploadId).catch(() => undefined);
      throw e;
    }
    this.hashers.set(id, new Digester('sha256'));
    return { id, repository, size: 0, startedAt: now, updatedAt: now };
  }

  private async row(id: string): Promise<SessionRow | undefined> {
    if (!SESSION_ID.test(id)) return undefined;
    return (await this.pool.query<SessionRow>('SELECT * FROM upload_sessions WHERE id = $1', [id])).rows[0];
  }

  async status(id: string): Promise<UploadSession | undefined> {
    const r = await this.row(id);
    return r ? toSession(r) : undefined;
  }

  /**
   * Claims the session for one append (or keeps the claim): a compare-and-set on
   * `appender`, with an expiry so a crashed replica blocks the session for one TTL
   * at most. Renewed before every part, so a replica whose claim was taken over
   * never uploads another part.
   */
  private async claim(id: string, token: string): Promise<SessionRow | undefined> {
    const r = await this.pool.query<SessionRow>(
      `UPDATE upload_sessions SET appender = $2, append_until = clock_timestamp() + $3 * interval '1 millisecond'
       WHERE id = $1 AND state = 'open' AND (appender IS NULL OR appender = $2 OR append_until < clock_timestamp()) RETURNING *`,
      [id, token, CLAIM_TTL_MS],
    );
    return r.rows[0];
  }

  private async renew(id: string, token: string): Promise<void> {
    const r = await this.pool.query(`UPDATE upload_sessions SET append_until = clock_timestamp() + $3 * interval '1 millisecond' WHERE id = $1 AND appender = $2`, [
      id,
      token,
      CLAIM_TTL_MS,
    ]);
    if (r.rowCount === 0) throw err('RANGE_INVALID', 'another replica took over this upload while the chunk was arriving; retry from the upload status');
  }

  async append(id: string, source: Readable, offset: number, options: { expectedLength?: number; maxSize?: number } = {}): Promise<UploadSession> {
    const token = randomUUID();
    const row = SESSION_ID.test(id) ? await this.claim(id, token) : undefined;
    if (!row) {
      source.resume();
      if (!(await this.row(id).then((r) => r?.state === 'open'))) throw err('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry');
      throw err('RANGE_INVALID', 'another chunk is being written to this upload; retry from the upload status');
    }
    if (offset !== row.size) {
      source.resume();
      await this.unclaim(id, token);
      throw err('RANGE_INVALID', `chunk starts at ${offset}, but the upload has ${row.size} bytes`, { size: row.size });
    }
    const maxSize = options.maxSize ?? Number.MAX_SAFE_INTEGER;
    const known = this.hashers.get(id);
    // Only a hasher that saw exactly the committed bytes may continue (another replica may have appended).
    let hasher = known && known.size === row.size ? known : undefined;
    this.hashers.delete(id); // re-added only if this append commits every byte it hashed
    const pool = this.blobs.pool;
    const uploader = new PartUploader(this.s3, this.bucket, row.s3_key, row.s3_upload_id, this.blobs.concurrency, PART_TIMEOUT_MS);
    // Part numbers follow the committed parts: a part left by a failed append is overwritten by the next one.
    let nextPart = row.next_part;
    const newParts: StoredPart[] = [];
    const upload = async (data: Buffer, release: () => void): Promise<void> => {
      try {
        if (nextPart > 10_000) throw err('TOO_LARGE', 'upload exceeds 10,000 S3 parts');
        await this.renew(id, token);
      } catch (e) {
        release();
        throw e;
      }
      const n = nextPart++;
      newParts.push({ n, e: '', s: data.byteLength });
      await uploader.upload(n, data, release);
    };
    const filler = new PartFiller(() => pool.take(partSizeFor(this.blobs.partSize, nextPart)), (buf) => upload(buf, () => pool.give(buf)), row.tail);
    const keepAlive = setInterval(() => void this.renew(id, token).catch(() => undefined), CLAIM_TTL_MS / 4);
    let received = row.size;
    let failure: unknown;
    try {
      // Not destroyed when the loop is left on an error: a store that is away answers 503, and the client must read it.
      for await (const chunk of source.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        if (received + chunk.byteLength > maxSize) throw err('TOO_LARGE', `body exceeds the limit of ${maxSize} bytes`);
        received += chunk.byteLength;
        hasher?.update(chunk);
        await filler.write(chunk);
      }
      const added = received - row.size;
      if (options.expectedLength !== undefined && added !== options.expectedLength) {
        // As on the filesystem, the bytes are kept (the session's Range tells the client where it stands).
        failure = err('SIZE_INVALID', `chunk was ${added} bytes, Content-Length/Content-Range said ${options.expectedLength}`);
        hasher = undefined;
      }
    } catch (e) {
      failure = e;
      hasher = undefined;
      drainOrDestroy(source, e);
    }
    try {
      // Commit whatever arrived: a client that went away mid-chunk resumes at the new size.
      // A tail of 5 MiB or more is a part of its own, keeping the row's tail small.
      const last = filler.leftover();
      let leftoverLost = false;
      if (last.byteLength >= MIN_PART && !uploader.failed.size) {
        const owner = filler.detach()!;
        const before = newParts.length;
        await upload(last, () => pool.give(owner)).catch((e: unknown) => {
          failure ??= e;
          leftoverLost = newParts.length === before; // refused before it was sent: those bytes are gone
        });
      }
      const done = await uploader.settle();
      const etags = new Map(done.map((p) => [p.PartNumber, p.ETag]));
      // Only parts up to the first failure count; the bytes after it are not committed.
      const firstFailed = newParts.findIndex((p) => !etags.has(p.n));
      const good = (firstFailed < 0 ? newParts : newParts.slice(0, firstFailed)).map((p) => ({ ...p, e: etags.get(p.n)! }));
      const complete = firstFailed < 0 && !leftoverLost;
      const tail = complete ? Buffer.from(filler.leftover()) : Buffer.alloc(0);
      const base = row.size - row.tail.byteLength;
      const size = complete ? received : base + good.reduce((a, p) => a + p.s, 0);
      if (size < row.size) {
        // Not even the old tail reached S3: nothing changes.
        await this.unclaim(id, token);
        throw failure ?? err('BLOB_UPLOAD_INVALID', 'storing the chunk failed');
      }
      const committed = await this.pool.query<SessionRow>(
        `UPDATE upload_sessions SET size = $3, parts = $4, tail = $5, next_part = $6, updated_at = $7, appender = NULL, append_until = NULL
         WHERE id = $1 AND appender = $2 RETURNING *`,
        [id, token, size, JSON.stringify([...partsSchema.parse(JSON.parse(row.parts)), ...good]), tail, row.next_part + good.length, Date.now()],
      );
      const after = committed.rows[0];
      if (!after) throw err('RANGE_INVALID', 'another replica took over this upload while the chunk was arriving; retry from the upload status');
      if (failure) throw failure;
      if (hasher) this.hashers.set(id, hasher);
      return toSession(after);
    } finally {
      clearInterval(keepAlive);
      const b = filler.detach();
      if (b) pool.give(b);
    }
  }

  private async unclaim(id: string, token: string): Promise<void> {
    await this.pool.query('UPDATE upload_sessions SET appender = NULL, append_until = NULL WHERE id = $1 AND appender = $2', [id, token]).catch(() => undefined);
  }

  async finish(id: string, digest: Digest): Promise<BlobInfo> {
    const { algorithm } = parseDigest(digest);
    // Claim the session: one finish at a time, and no appends from now on.
    const row = SESSION_ID.test(id)
      ? (
          await this.pool.query<SessionRow>(
            `UPDATE upload_sessions SET state = 'finishing', updated_at = $2
             WHERE id = $1 AND state = 'open' AND (appender IS NULL OR append_until < clock_timestamp()) RETURNING *`,
            [id, Date.now()],
          )
        ).rows[0]
      : undefined;
    if (!row) {
      if (await this.row(id).then((r) => r?.state === 'open')) throw err('BLOB_UPLOAD_INVALID', 'a chunk is still being written to this upload');
      throw err('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry');
    }
    const hasher = this.hashers.get(id);
    this.hashers.delete(id);
    const known = hasher && hasher.algorithm === algorithm && hasher.size === row.size ? hasher.digest() : undefined;
    const parts: CompletedPart[] = partsSchema.parse(JSON.parse(row.parts)).map((p) => ({ PartNumber: p.n, ETag: p.e }));
    let completed = false;
    try {
      if (known !== undefined && known !== digest) {
        await this.drop(row);
        throw err('DIGEST_INVALID', `uploaded content has digest ${known}, not ${digest}`);
      }
      const finalKey = this.blobs.layout.blob(digest);
      if (parts.length === 0) {
        // Everything is in the tail (< 5 MiB): verify it here and write it in one PUT.
        const actual = digestOf(row.tail, algorithm);
        if (actual !== digest) {
          await this.drop(row);
          throw err('DIGEST_INVALID', `uploaded content has digest ${actual}, not ${digest}`);
        }
        await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: finalKey, Body: row.tail, ContentLength: row.tail.byteLength }));
        await this.drop(row);
        return { digest, size: row.size };
      }
      if (row.tail.byteLength > 0) {
        const up = new PartUploader(this.s3, this.bucket, row.s3_key, row.s3_upload_id, 1, PART_TIMEOUT_MS);
        await up.upload(row.next_part, row.tail, () => undefined);
        parts.push(...(await up.drain()));
      }
      if (known === digest && (await this.blobs.objectSize(finalKey)) === row.size) {
        await this.drop(row); // verified, and the blob is already stored
        return { digest, size: row.size };
      }
      await this.checkNoStrayParts(row, parts);
      await completeMultipart(this.s3, this.bucket, row.s3_key, row.s3_upload_id, parts);
      completed = true;
      if (known === undefined) {
        const actual = await this.hashObject(row.s3_key, algorithm);
        if (actual !== digest) {
          await this.drop(row);
          throw err('DIGEST_INVALID', `uploaded content has digest ${actual}, not ${digest}`);
        }
      }
      await this.blobs.commitObject(row.s3_key, finalKey, row.size);
      await this.pool.query('DELETE FROM upload_sessions WHERE id = $1', [id]);
      return { digest, size: row.size };
    } catch (e) {
      // Before completion the session can go on (a transient S3 failure); after it, the parts are gone.
      if (!completed && !(isRegistryError(e) && e.code === 'DIGEST_INVALID')) {
        await this.pool.query(`UPDATE upload_sessions SET state = 'open' WHERE id = $1 AND state = 'finishing'`, [id]).catch(() => undefined);
      } else await this.drop(row).catch(() => undefined);
      throw e;
    }
  }

  /**
   * Parts in S3 that the session does not list (a replica died between uploading a
   * part and committing it, and no later chunk overwrote it) make RGW refuse the
   * completion, and would be wrong bytes anyway: such a session cannot be finished.
   */
  private async checkNoStrayParts(row: SessionRow, parts: readonly CompletedPart[]): Promise<void> {
    const listed = new Set(parts.map((p) => p.PartNumber));
    let marker: string | undefined;
    do {
      const r = await this.s3.send(new ListPartsCommand({ Bucket: this.bucket, Key: row.s3_key, UploadId: row.s3_upload_id, PartNumberMarker: marker }));
      if ((r.Parts ?? []).some((p) => !listed.has(p.PartNumber!))) {
        await this.drop(row);
        throw err('BLOB_UPLOAD_INVALID', 'the upload lost a chunk when a replica failed while writing it; start the upload again');
      }
      marker = r.IsTruncated ? r.NextPartNumberMarker : undefined;
    } while (marker);
  }

  private async hashObject(key: string, algorithm: Algorithm): Promise<Digest> {
    const body = await this.blobs.getObject(key);
    if (!body) throw err('BLOB_UPLOAD_INVALID', 'upload vanished while finishing');
    const d = new Digester(algorithm);
    for await (const chunk of body as AsyncIterable<Buffer>) d.update(chunk);
    return d.digest();
  }

  /** Removes a session: its row, its multipart upload, and the object if it was completed. */
  private async drop(row: Pick<SessionRow, 'id' | 's3_key' | 's3_upload_id'>): Promise<void> {
    this.hashers.delete(row.id);
    await abortMultipart(this.s3, this.bucket, row.s3_key, row.s3_upload_id);
    await this.blobs.deleteKey(row.s3_key);
    await this.pool.query('DELETE FROM upload_sessions WHERE id = $1', [row.id]);
  }

  async cancel(id: string): Promise<boolean> {
    if (!SESSION_ID.test(id)) return false;
    const row = (await this.pool.query<SessionRow>('DELETE FROM upload_sessions WHERE id = $1 RETURNING id, s3_key, s3_upload_id', [id])).rows[0];
    if (!row) return false;
    await this.drop(row);
    return true;
  }

  /**
   * Removes sessions untouched for longer than `maxAgeMs` and aborts them in S3;
   * then aborts multipart uploads and removes private objects under customs' prefix
   * that no session owns and that are older than `maxAgeMs` (a replica that crashed
   * between S3 and PostgreSQL, or in the middle of a `put`).
   */
  async expire(maxAgeMs: number): Promise<number> {
    const cutoff = Date.now() - maxAgeMs;
    const stale = (await this.pool.query<SessionRow>('DELETE FROM upload_sessions WHERE updated_at < $1 RETURNING id, s3_key, s3_upload_id', [cutoff])).rows;
    for (const row of stale) await this.drop(row);
    await this.sweepOrphans(cutoff);
    return stale.length;
  }

  private async sweepOrphans(cutoff: number): Promise<void> {
    const prefix = this.blobs.layout.prefix;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const r = await this.s3.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      const old = (r.Uploads ?? []).filter((u) => u.Key && u.UploadId && (u.Initiated?.getTime() ?? 0) < cutoff);
      if (old.length > 0) {
        const owned = new Set(
          (await this.pool.query<{ s3_upload_id: string }>('SELECT s3_upload_id FROM upload_sessions WHERE s3_upload_id = ANY($1::text[])', [old.map((u) => u.UploadId!)])).rows.map(
            (x) => x.s3_upload_id,
          ),
        );
        for (const u of old) if (!owned.has(u.UploadId!)) await abortMultipart(this.s3, this.bucket, u.Key!, u.UploadId!);
      }
      keyMarker = r.IsTruncated ? r.NextKeyMarker : undefined;
      uploadIdMarker = r.IsTruncated ? r.NextUploadIdMarker : undefined;
    } while (keyMarker);
    for (const dir of [this.blobs.layout.ingestPrefix(), this.blobs.layout.uploadsPrefix()]) {
      let token: string | undefined;
      do {
        const r = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: dir, ContinuationToken: token }));
        for (const o of r.Contents ?? []) {
          if (!o.Key || (o.LastModified?.getTime() ?? 0) >= cutoff) continue;
          const id = o.Key.slice(dir.length);
          if (dir === this.blobs.layout.uploadsPrefix() && SESSION_ID.test(id) && (await this.row(id))) continue;
          await this.blobs.deleteKey(o.Key);
        }
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
    }
  }
}

function toSession(r: SessionRow): UploadSession {
  return { id: r.id, repository: r.repository, size: r.size, startedAt: r.started_at, updatedAt: r.updated_at };
}

