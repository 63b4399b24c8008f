import type { Readable } from 'node:stream';
import type { Digest } from '../oci/index.js';
import type { BlobInfo } from './blob-store.js';

/**
 * Upload sessions of the distribution spec ("Pushing blobs in chunks"). A session
 * holds the bytes received so far; `finish` verifies the digest and commits the
 * bytes to the BlobStore. Sessions survive a restart and expire when abandoned.
 */
export interface UploadSession {
  readonly id: string;
  readonly repository: string;
  /** Bytes received so far; the next chunk must start at this offset. */
  readonly size: number;
  readonly startedAt: number;
  readonly updatedAt: number;
}

export interface UploadStore {
  start(repository: string): Promise<UploadSession>;
  status(id: string): Promise<UploadSession | undefined>;
  /**
   * Appends a chunk that must start at `offset` (the session's current size, else
   * RANGE_INVALID). Returns the session after the append.
   */
  append(id: string, source: Readable, offset: number, options?: { expectedLength?: number; maxSize?: number }): Promise<UploadSession>;
  /** Verifies the session's bytes hash to `digest`, commits the blob and removes the session. */
  finish(id: string, digest: Digest): Promise<BlobInfo>;
  cancel(id: string): Promise<boolean>;
  /** Removes sessions untouched for longer than `maxAgeMs`; returns how many. */
  expire(maxAgeMs: number): Promise<number>;
}
