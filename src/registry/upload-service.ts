import type { Readable } from 'node:stream';
import { err, parseDigest, type Digest } from '../oci/index.js';
import type { BlobInfo, BlobStore, UploadSession, UploadStore } from '../storage/index.js';
import type { BlobService } from './blob-service.js';

export interface ChunkRange {
  readonly start: number;
  readonly end: number; // inclusive
}

export type StartResult =
  | { readonly kind: 'created'; readonly blob: BlobInfo } // monolithic upload or mount
  | { readonly kind: 'session'; readonly session: UploadSession };

export interface UploadLimits {
  /** Largest blob accepted, in bytes. */
  readonly maxBlobBytes: number;
}

/** The push workflows of the distribution spec: monolithic, chunked, mount. */
export class UploadService {
  constructor(
    private readonly blobs: BlobStore,
    private readonly uploads: UploadStore,
    private readonly blobService: BlobService,
    private readonly limits: UploadLimits,
  ) {}

  /**
   * POST /blobs/uploads/: `?digest=` makes it monolithic (body is the blob);
   * `?mount=&from=` links an existing blob when `from` has it (`mayRead(from)` says
   * whether the caller may read there); otherwise a session starts.
   */
  async start(
    repository: string,
    q: { digest?: string; mount?: string; from?: string },
    body: () => Readable,
    mayRead: (repo: string) => Promise<boolean>,
    contentLength: number | undefined,
  ): Promise<StartResult> {
    if (q.mount !== undefined) {
      const digest = parseDigest(q.mount).digest;
      if (q.from !== undefined && q.from !== repository && (await mayRead(q.from))) {
        const blob = await this.blobService.mount(repository, digest, q.from);
        if (blob) return { kind: 'created', blob };
      }
      return { kind: 'session', session: await this.uploads.start(repository) };
    }
    if (q.digest !== undefined) {
      const expected = parseDigest(q.digest).digest;
      this.refuseDeclared(0, contentLength);
      const blob = await this.blobs.put(body(), { expected, expectedSize: contentLength, maxSize: this.limits.maxBlobBytes });
      await this.blobService.link(repository, blob);
      return { kind: 'created', blob };
    }
    return { kind: 'session', session: await this.uploads.start(repository) };
  }

  async status(repository: string, id: string): Promise<UploadSession> {
    const s = await this.uploads.status(id);
    if (!s || s.repository !== repository) throw err('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', { id });
    return s;
  }

  /**
   * PATCH: appends in order; a chunk that does not start at the current size is RANGE_INVALID.
   * `body()` is called only once the request is accepted: a refusal reads none of it.
   */
  async append(repository: string, id: string, body: () => Readable, range: ChunkRange | undefined, contentLength: number | undefined): Promise<UploadSession> {
    const s = await this.status(repository, id);
    const offset = range?.start ?? s.size;
    const length = range ? range.end - range.start + 1 : contentLength;
    if (range && contentLength !== undefined && contentLength !== length) {
      throw err('BLOB_UPLOAD_INVALID', `Content-Length ${contentLength} does not match Content-Range ${range.start}-${range.end}`);
    }
    this.refuseDeclared(offset, length);
    return this.uploads.append(id, body(), offset, { expectedLength: length, maxSize: this.limits.maxBlobBytes });
  }

  /** A declared length that would take the blob over the limit: 413 before the body is read. */
  private refuseDeclared(offset: number, length: number | undefined): void {
    if (length !== undefined && offset + length > this.limits.maxBlobBytes) {
      throw err('TOO_LARGE', `a blob of ${offset + length} bytes exceeds the limit of ${this.limits.maxBlobBytes} bytes (limits.maxBlobBytes)`);
    }
  }

  /** PUT: optional last chunk, then verify `digest` and commit. */
  async finish(
    repository: string,
    id: string,
    digestParam: string | undefined,
    body: (() => Readable) | undefined,
    range: ChunkRange | undefined,
    contentLength: number | undefined,
  ): Promise<BlobInfo> {
    if (!digestParam) throw err('DIGEST_INVALID', 'the digest query parameter is required to complete an upload');
    const digest: Digest = parseDigest(digestParam).digest;
    await this.status(repository, id);
    if (body && (contentLength === undefined || contentLength > 0 || range)) {
      await this.append(repository, id, body, range, contentLength);
    }
    const blob = await this.uploads.finish(id, digest);
    await this.blobService.link(repository, blob);
    return blob;
  }

  async cancel(repository: string, id: string): Promise<void> {
    await this.status(repository, id);
    await this.uploads.cancel(id);
  }
}
