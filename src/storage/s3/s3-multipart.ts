import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { isNoSuchUpload } from './s3-client.js';

/**
 * The pieces of S3 multipart uploads shared by `S3BlobStore.put` and the upload
 * sessions: reused part buffers, a bounded number of parts in flight, completion,
 * abort and server-side copy.
 */
export const MIN_PART = 5 * 1024 * 1024; // S3's minimum for every part but the last
export const DEFAULT_PART = 8 * 1024 * 1024;
const MAX_PART = 5 * 1024 ** 3;

/**
 * Part size by part number: the base size for the first 1,000 parts, then doubling
 * every 1,000, so 10,000 parts reach far beyond any blob limit while small blobs
 * keep small buffers. Deterministic, so any replica can continue a session.
 */
export const partSizeFor = (base: number, partNumber: number): number =>
  Math.min(MAX_PART, base * 2 ** Math.floor((partNumber - 1) / 1000));

/** Part buffers of the base size are kept and reused: no allocation (and no GC churn) per part. */
export class BufferPool {
  private readonly idle: Buffer[] = [];
  constructor(
    readonly size: number,
    private readonly maxIdle: number,
  ) {}
  take(size = this.size): Buffer {
    if (size === this.size) return this.idle.pop() ?? Buffer.allocUnsafeSlow(size);
    return Buffer.allocUnsafeSlow(size);
  }
  give(b: Buffer): void {
    if (b.byteLength === this.size && this.idle.length < this.maxIdle) this.idle.push(b);
  }
}

export interface CompletedPart {
  readonly PartNumber: number;
  readonly ETag: string;
}

/**
 * Uploads the parts of one multipart upload with at most `concurrency` in flight;
 * `upload` waits for a free slot, so the producer (the request body) is paced by S3.
 */
export class PartUploader {
  readonly parts: CompletedPart[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown;
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly key: string,
    readonly uploadId: string,
    private readonly concurrency: number,
    /** Upper bound of one part's upload (the upload sessions' claims rely on it). */
    private readonly partTimeoutMs = 0,
  ) {}

  /** Part numbers that failed (their bytes may or may not be in S3). */
  readonly failed = new Set<number>();

  /** Starts uploading `data` as `partNumber`; `done` runs when S3 no longer needs the bytes. */
  async upload(partNumber: number, data: Buffer, done: () => void): Promise<void> {
    while (this.inFlight.size >= this.concurrency) await Promise.race(this.inFlight);
    if (this.failure) {
      done();
      throw this.failure;
    }
    const cmd = new UploadPartCommand({ Bucket: this.bucket, Key: this.key, UploadId: this.uploadId, PartNumber: partNumber, Body: data, ContentLength: data.byteLength });
    const p = this.s3
      .send(cmd, this.partTimeoutMs > 0 ? { abortSignal: AbortSignal.timeout(this.partTimeoutMs) } : {})
      .then(
        (r) => {
          this.parts.push({ PartNumber: partNumber, ETag: r.ETag ?? '' });
        },
        (e: unknown) => {
          this.failed.add(partNumber);
          this.failure ??= e;
        },
      )
      .finally(() => {
        this.inFlight.delete(p);
        done();
      });
    this.inFlight.add(p);
  }

  /** Waits for every part without throwing; parts that succeeded, sorted by number. */
  async settle(): Promise<CompletedPart[]> {
    await Promise.all(this.inFlight);
    return [...this.parts].sort((a, b) => a.PartNumber - b.PartNumber);
  }

  /** Waits for every part; throws the first failure. Parts sorted by number. */
  async drain(): Promise<CompletedPart[]> {
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
    return [...this.parts].sort((a, b) => a.PartNumber - b.PartNumber);
  }
}

/**
 * Copies `size` bytes the source stream delivers into part-sized buffers and hands
 * each full buffer to `emit`; what is left at the end stays in `leftover()`.
 */
export class PartFiller {
  private buf: Buffer | undefined;
  private filled = 0;
  constructor(
    private readonly take: () => Buffer,
    private readonly emit: (part: Buffer) => Promise<void>,
    initial?: Buffer,
  ) {
    if (initial && initial.byteLength > 0) {
      this.buf = this.take();
      if (initial.byteLength > this.buf.byteLength) throw new Error('initial bytes exceed a part');
      initial.copy(this.buf);
      this.filled = initial.byteLength;
    }
  }
  async write(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.byteLength) {
      this.buf ??= this.take();
      const n = chunk.copy(this.buf, this.filled, off);
      off += n;
      this.filled += n;
      if (this.filled === this.buf.byteLength) {
        const full = this.buf;
        this.buf = undefined;
        this.filled = 0;
        await this.emit(full);
      }
    }
  }
  /** Bytes not yet emitted (a view of a pool buffer, or empty); `release()` gives the buffer back. */
  leftover(): Buffer {
    return this.buf ? this.buf.subarray(0, this.filled) : Buffer.alloc(0);
  }
  /** The buffer holding `leftover()`, to return to its pool once done. */
  detach(): Buffer | undefined {
    const b = this.buf;
    this.buf = undefined;
    this.filled = 0;
    return b;
  }
}

export async function createMultipart(s3: S3Client, bucket: string, key: string): Promise<string> {
  const r = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  if (!r.UploadId) throw new Error(`S3 returned no UploadId for ${key}`);
  return r.UploadId;
}

export async function completeMultipart(s3: S3Client, bucket: string, key: string, uploadId: string, parts: readonly CompletedPart[]): Promise<void> {
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: [...parts] } }));
}

/** Aborts, ignoring an upload that is already gone (completed or aborted elsewhere). */
export async function abortMultipart(s3: S3Client, bucket: string, key: string, uploadId: string): Promise<void> {
  try {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
  } catch (e) {
    if (!isNoSuchUpload(e) && (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 404) throw e;
  }
}

const COPY_LIMIT = 5 * 1024 ** 3; // CopyObject's maximum; larger objects are copied part by part
const COPY_PART = 512 * 1024 * 1024;

/** Server-side copy of `from` to `to` (the bytes do not pass through customs). */
export async function copyObject(s3: S3Client, bucket: string, from: string, to: string, size: number): Promise<void> {
  const source = `${bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
  if (size <= COPY_LIMIT) {
    await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource: source }));
    return;
  }
  const uploadId = await createMultipart(s3, bucket, to);
  try {
    const parts: CompletedPart[] = [];
    for (let start = 0, n = 1; start < size; start += COPY_PART, n++) {
      const end = Math.min(size, start + COPY_PART) - 1;
      const r = await s3.send(
        new UploadPartCopyCommand({ Bucket: bucket, Key: to, UploadId: uploadId, PartNumber: n, CopySource: source, CopySourceRange: `bytes=${start}-${end}` }),
      );
      parts.push({ PartNumber: n, ETag: r.CopyPartResult?.ETag ?? '' });
    }
    await completeMultipart(s3, bucket, to, uploadId, parts);
  } catch (e) {
    await abortMultipart(s3, bucket, to, uploadId).catch(() => undefined);
    throw e;
  }
}
