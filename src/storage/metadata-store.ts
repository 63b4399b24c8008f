import type { Descriptor, Digest } from '../oci/index.js';
import type { BlobInfo } from './blob-store.js';
import type { AuditLog, ContentLocator, LineageIndex, PinStore, QuarantineStore } from './ops-store.js';

/**
 * Registry metadata: which repository may read which blob, manifests (stored
 * byte-exact here, so a manifest and the tag pointing at it commit in one
 * transaction), tags and their history, referrers, the catalog. Implemented by
 * SQLite (embedded default) and PostgreSQL (scale-out); one contract suite runs
 * against both (test/storage-contract.ts).
 *
 * Every tag move (push, delete, operator move) writes its history row and an
 * audit entry in the same transaction; a pinned tag refuses every move but an
 * operator's override (see ops-store.ts).
 */

/** Who did something and why: recorded with every tag move. */
export interface Actor {
  readonly actor: string;
  readonly reason?: string;
}

export interface ManifestRecord {
  readonly repository: string;
  readonly digest: Digest;
  readonly mediaType: string;
  readonly artifactType: string | undefined;
  readonly size: number;
  readonly subject: Digest | undefined;
  readonly annotations: Readonly<Record<string, string>> | undefined;
  /** The manifest exactly as pushed. */
  readonly bytes: Buffer;
  readonly createdAt: number;
  /** Blobs (config, layers) and child manifests (index entries) this manifest references. */
  readonly references: readonly Digest[];
}

export type NewManifest = Omit<ManifestRecord, 'createdAt'> & {
  /**
   * Blobs that must still be linked in the repository when the manifest commits, checked in
   * its transaction: a push, whose blobs garbage collection could otherwise unlink between the
   * service's check and the commit. A pull-through copy leaves it out (its blobs come later).
   */
  readonly requireLinked?: readonly Digest[];
  /** Child manifests (an index's) that must still be stored in the repository, checked the same way (retention may delete them). */
  readonly requireManifests?: readonly Digest[];
};

export interface TagMove {
  readonly repository: string;
  readonly tag: string;
  readonly from: Digest | undefined;
  readonly to: Digest | undefined;
  readonly actor: string;
  readonly reason: string | undefined;
  readonly at: number;
}

export interface Page {
  /** Maximum number of entries; undefined = all. */
  readonly n?: number;
  /** Entries strictly after this one in lexical order. */
  readonly last?: string;
}

export interface BlobLinks {
  linkBlob(repository: string, blob: BlobInfo): Promise<void>;
  /** The linked blob's size, or undefined when `repository` may not read it. */
  linkedBlob(repository: string, digest: Digest): Promise<BlobInfo | undefined>;
  unlinkBlob(repository: string, digest: Digest): Promise<boolean>;
  /** How many repositories link this blob (0 = garbage). */
  blobLinkCount(digest: Digest): Promise<number>;
  /**
   * Links the blob if `present()` (its bytes are in the blob store) still holds, while no process of
   * the cluster runs this or `deleteIfUnlinked` for the same digest. False when the bytes are gone.
   */
  linkBlobIf(repository: string, blob: BlobInfo, present: () => Promise<boolean>): Promise<boolean>;
  /** Runs `remove` (which deletes the bytes) if no repository links the digest, under the same exclusion; its result, else false. */
  deleteIfUnlinked(digest: Digest, remove: () => Promise<boolean>): Promise<boolean>;
  /**
   * Links made before `before` (epoch ms) that no manifest of their repository references:
   * what garbage collection may remove. In (repository, digest) order, `limit` after `after`.
   */
  unreferencedBlobLinks(before: number, limit: number, after?: BlobLinkKey): Promise<BlobLink[]>;
  /**
   * Removes the link if it is still unreferenced and made before `before`, serialised with
   * manifest commits (see `NewManifest.requireLinked`). True when it was removed.
   */
  unlinkUnreferenced(repository: string, digest: Digest, before: number): Promise<boolean>;
}

export interface BlobLinkKey {
  readonly repository: string;
  readonly digest: Digest;
}

export interface BlobLink extends BlobLinkKey {
  readonly size: number;
}

export interface ManifestIndex {
  /**
   * Stores the manifest (idempotent for the same digest) and, when `tag` is given,
   * moves the tag to it, recording the move in the tag history, in one transaction.
   * Returns the tag move, if the tag changed.
   */
  putManifest(manifest: NewManifest, tag: string | undefined, by: Actor): Promise<TagMove | undefined>;
  getManifest(repository: string, digest: Digest): Promise<ManifestRecord | undefined>;
  /** Deletes the manifest and every tag pointing at it (each recorded as a move to nothing). */
  deleteManifest(repository: string, digest: Digest, by: Actor): Promise<{ deleted: boolean; untagged: TagMove[] }>;
  /** Manifests in `repository` that reference `digest` (as blob or child manifest). */
  manifestsReferencing(repository: string, digest: Digest): Promise<Digest[]>;
  /**
   * Manifests a retention run may delete: no tag points at them and none has since `before` (epoch ms;
   * their last tag move in the history, else their push); no manifest of the repository references them
   * (an index's child); no stored manifest is their subject (a referrer of something still there); not
   * quarantined (evidence) and not pinned. In (repository, digest) order, `limit` after `after`.
   */
  expiredUntaggedManifests(before: number, limit: number, after?: ManifestKey): Promise<ManifestKey[]>;
  /** Deletes the manifest if it still qualifies (checked in the deleting transaction); audited like a delete. */
  deleteExpiredUntagged(repository: string, digest: Digest, before: number, by: Actor): Promise<boolean>;
}

export interface ManifestKey {
  readonly repository: string;
  readonly digest: Digest;
}

export interface ManifestPull extends ManifestKey {
  readonly at: number;
}

/** When cached manifests were last pulled, for evicting what nobody pulls any more (pull-through caches). */
export interface PullLog {
  /** Records pulls (batched by the caller); a manifest keeps its latest time. */
  recordPulls(pulls: readonly ManifestPull[]): Promise<void>;
  /**
   * Manifests in repositories starting with `prefix` that nobody pulled since `before` (their last
   * recorded pull, else their arrival), not a referrer, not referenced by another manifest, not
   * quarantined and not pinned. In (repository, digest) order, `limit` after `after`.
   */
  unpulledManifests(prefix: string, before: number, limit: number, after?: ManifestKey): Promise<ManifestKey[]>;
  /** Deletes the manifest and its tags (recorded in their history) if it still qualifies, checked in the deleting transaction. */
  deleteUnpulled(repository: string, digest: Digest, before: number, by: Actor): Promise<{ deleted: boolean; untagged: TagMove[] }>;
}

export interface MoveTagOptions {
  /** Move even a pinned tag (an operator's rollback); the pin follows the tag. */
  readonly override?: boolean;
  /** Pin the tag at its new digest in the same transaction. */
  readonly pin?: boolean;
  /** The audit action recorded (default `tag.move`). */
  readonly action?: string;
}

export interface TagStore {
  resolveTag(repository: string, tag: string): Promise<Digest | undefined>;
  listTags(repository: string, page?: Page): Promise<string[]>;
  /**
   * Moves a tag to an existing manifest (operator actions), recorded in history and
   * the audit log. A pinned tag is refused (DENIED) unless `override` (rollback).
   */
  moveTag(repository: string, tag: string, to: Digest, by: Actor, options?: MoveTagOptions): Promise<TagMove | undefined>;
  deleteTag(repository: string, tag: string, by: Actor): Promise<TagMove | undefined>;
  /** Newest first. */
  tagHistory(repository: string, tag: string): Promise<TagMove[]>;
  /** Tags in `repository` currently pointing at `digest`. */
  tagsOf(repository: string, digest: Digest): Promise<string[]>;
}

export interface ReferrersIndex {
  /** Descriptors of manifests in `repository` whose subject is `subject`, oldest first. */
  listReferrers(repository: string, subject: Digest): Promise<Descriptor[]>;
}

export interface Catalog {
  listRepositories(page?: Page): Promise<string[]>;
  repositoryExists(repository: string): Promise<boolean>;
}

export interface MetadataStore
  extends BlobLinks, ManifestIndex, PullLog, TagStore, ReferrersIndex, Catalog, PinStore, QuarantineStore, AuditLog, LineageIndex, ContentLocator {
  /** Checks the database is usable (for /readyz). */
  ready(): Promise<void>;
  close(): Promise<void>;
}
