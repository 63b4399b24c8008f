/** Temporary bytes a writer left behind (a crash, a full disk, a store that went away mid-write). */
export interface Leftover {
  readonly kind: 'ingest' | 'session' | 'multipart';
  /** The file or key, relative to the store. */
  readonly name: string;
  /** When it was started or last written (epoch ms). */
  readonly since: number;
}

/**
 * Optional capability: what no live write owns. Never visible under a digest; listed so that a
 * check (`customs fsck`) can tell that nothing partial piles up. The filesystem removes its ingest
 * files at startup; S3 multipart uploads nobody owns are aborted by upload expiry.
 */
export interface LeftoverLister {
  leftovers(): AsyncIterable<Leftover>;
}

export const hasLeftovers = (s: object): s is LeftoverLister => typeof (s as Partial<LeftoverLister>).leftovers === 'function';
