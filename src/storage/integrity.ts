import type { Digest } from '../oci/index.js';

/** What re-reading a stored blob found. */
export type BlobCheck =
  | { readonly state: 'ok'; readonly size: number }
  | { readonly state: 'missing' }
  /** `identity` names the bytes that were read (a file's inode and times, an object's ETag), for `setAside`. */
  | { readonly state: 'corrupt'; readonly size: number; readonly actual: Digest; readonly identity: string };

/** Bytes once stored under `digest` and set aside because they no longer hashed to it. */
export interface SetAsideBlob {
  readonly digest: Digest;
  readonly size: number;
  /** When they were set aside (epoch ms). */
  readonly at: number;
}

/**
 * Optional capability of a blob store: integrity. `check` re-reads and re-hashes a blob
 * (`pace(n)` is awaited after each chunk of n bytes: the scrub's rate limit); `setAside` moves
 * bytes that no longer match their digest out of the content-addressed namespace, so nothing
 * serves them again, into a place of their own kept for inspection. A verified write of the
 * same digest (a re-push, a pull-through fill, a restore) stores good bytes again; the copy set
 * aside stays, as the record that the digest was once found corrupt. Both stores have it.
 */
export interface BlobIntegrity {
  check(digest: Digest, pace?: (bytes: number) => Promise<void>): Promise<BlobCheck>;
  /**
   * Moves the bytes of `digest` aside; with `identity`, only if they are still the bytes `check`
   * read (not good bytes stored since). False when there was nothing (or something else) to move.
   */
  setAside(digest: Digest, identity?: string): Promise<boolean>;
  /** True when bytes of `digest` were set aside as corrupt at some point. */
  wasSetAside(digest: Digest): Promise<boolean>;
  listSetAside(): AsyncIterable<SetAsideBlob>;
}

export const hasBlobIntegrity = (s: object): s is BlobIntegrity => typeof (s as Partial<BlobIntegrity>).setAside === 'function';
