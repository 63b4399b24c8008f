import type { Digest } from '../oci/index.js';
import type { BlobLink, BlobLinkKey, ManifestKey, ManifestRecord } from './metadata-store.js';

/** One tag and the digest it points at. */
export interface TagEntry {
  readonly repository: string;
  readonly tag: string;
  readonly digest: Digest;
}

export interface TagKey {
  readonly repository: string;
  readonly tag: string;
}

/**
 * Optional capability of a metadata store: everything it holds, a page at a time, for the
 * checks that walk the whole store (scrub re-hashes every manifest, fsck checks every tag,
 * manifest and link, backup lists the digests it needs). Pages are in key order; `after` is
 * the last key of the previous page. Both metadata stores have it.
 */
export interface ContentScan {
  /** Manifests with their bytes and references, in (repository, digest) order. */
  manifestPage(limit: number, after?: ManifestKey): Promise<ManifestRecord[]>;
  /** Every blob link (which repository may read which blob), in (repository, digest) order. */
  blobLinkPage(limit: number, after?: BlobLinkKey): Promise<BlobLink[]>;
  /** Every tag, in (repository, tag) order. */
  tagPage(limit: number, after?: TagKey): Promise<TagEntry[]>;
  /** The repositories that link `digest` (scrub: did a corrupt blob come through a proxy?). */
  linkingRepositories(digest: Digest): Promise<string[]>;
}

export const hasContentScan = (s: object): s is ContentScan => typeof (s as Partial<ContentScan>).manifestPage === 'function';

/** Walks every page of `page` (a ContentScan method), `size` at a time. */
export async function* scanAll<T extends object, K>(page: (limit: number, after?: K) => Promise<T[]>, key: (t: T) => K, size = 200): AsyncGenerator<T> {
  let after: K | undefined;
  for (;;) {
    const rows = await page(size, after);
    yield* rows;
    if (rows.length < size) return;
    after = key(rows[rows.length - 1]!);
  }
}
