import { err, type Digest } from '../oci/index.js';
import { hasBlobList, hasRandomAccess, type BlobBody, type BlobInfo, type BlobLink, type BlobStore, type ByteRange, type MetadataStore } from '../storage/index.js';
import type { PullThrough } from '../proxy/pull-through.js';
import type { ReadDecision, ReadGate } from './read-gate.js';
import { KeyedMutex } from '../storage/keyed-mutex.js';
import { hasRedirect } from '../storage/blob-redirect.js';
import { corruptError, type ContentIntegrity } from './integrity.js';

export type { BlobBody } from '../storage/index.js';

export interface BlobRead {
  readonly info: BlobInfo;
  readonly range: ByteRange | undefined;
  readonly decision: ReadDecision;
  /** Opens the body; not called for HEAD. */
  open(): Promise<BlobBody>;
  /**
   * Present when the client may be sent to fetch the bytes from the store itself
   * (a presigned S3 URL): the store can, redirects are enabled and the blob is big
   * enough. Only for GET (never HEAD), and only after the gate allowed the read.
   */
  redirect?(): Promise<string>;
}

/** When blob GETs may answer with a redirect to the store (`storage.redirect`; undefined = never). */
export interface BlobRedirectSettings {
  readonly expiresSeconds: number;
  /** Smaller blobs are streamed. */
  readonly minBytes: number;
}

export interface BlobGcOptions {
  /** Links (and never-linked bytes) younger than this are kept: their manifest may still be on its way. */
  readonly graceSeconds: number;
  /** Report what would go; change nothing. */
  readonly dryRun: boolean;
  /** Stops the run between two blobs (server shutdown); what was removed stays removed and is reported. */
  readonly signal?: AbortSignal | undefined;
}

export interface BlobCollection {
  /** Links made before this (ISO 8601) were considered. */
  readonly before: string;
  /** Repository links removed (or, dry, that would be). */
  readonly links: number;
  /** Blobs whose bytes were deleted because no repository links them any more (orphans included). */
  readonly blobs: number;
  readonly bytes: number;
  /** Of those, blobs that no repository linked before the run (a crash between commit and link). */
  readonly orphans: number;
  /** The first links removed, for the operator's eye; `links` counts them all. */
  readonly sample: readonly BlobLink[];
}

const GC_PAGE = 500;
const GC_SAMPLE = 100;

export interface BlobServiceOptions {
  readonly redirect?: BlobRedirectSettings | undefined;
  /** Corrupt content: bytes whose size differs from their record are set aside, corrupt blobs answer CONTENT_CORRUPT. */
  readonly integrity?: ContentIntegrity | undefined;
}

/**
 * Blobs as a repository sees them: a blob is readable in a repository only when
 * linked there (pushed or mounted), or fetched through its upstream.
 */
export class BlobService {
  private readonly gcLocks = new KeyedMutex();
  constructor(
    private readonly blobs: BlobStore,
    private readonly metadata: MetadataStore,
    private readonly gate: ReadGate,
    private readonly pullThrough: PullThrough | undefined,
    private readonly options: BlobServiceOptions = {},
  ) {}

  /** Stat plus gate; `rangeOf(size)` turns the client's Range header into a range once the size is known. */
  async read(repository: string, digest: Digest, rangeOf: (size: number) => ByteRange | undefined): Promise<BlobRead> {
    const linked = await this.metadata.linkedBlob(repository, digest);
    const local = linked && (await this.storedInfo(repository, linked));
    if (local) {
      const decision = await this.gate.blob(repository, digest);
      const range = rangeOf(local.size);
      const redirect = this.redirectFor(digest, local.size);
      return {
        info: local,
        range,
        decision,
        ...(redirect ? { redirect } : {}),
        open: async () => {
          if (hasRandomAccess(this.blobs)) {
            const blob = await this.blobs.openRandomAccess(digest);
            if (blob) return { kind: 'random-access', blob };
          }
          const stream = await this.blobs.get(digest, range);
          if (!stream) throw err('BLOB_UNKNOWN', 'blob unknown to registry');
          return { kind: 'stream', stream };
        },
      };
    }
    if (this.pullThrough?.handles(repository)) {
      const decision = await this.gate.blob(repository, digest);
      // The size is only known once the upstream answers (or its fill starts).
      const blob = await this.pullThrough.blob(repository, digest);
      if (!blob) throw err('BLOB_UNKNOWN', 'blob unknown to registry');
      const range = rangeOf(blob.size);
      return { info: { digest, size: blob.size }, range, decision, open: () => blob.open(range) };
    }
    // Linked here, bytes gone: set aside as corrupt (never served; the operator is told), else unknown.
    if (linked && (await this.options.integrity?.isCorrupt(digest))) throw corruptError('blob', digest);
    throw err('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
  }

  /**
   * Local blobs only: a pull-through blob may still be filling (its bytes are not
   * all in the store yet), and the gate has already run when this is called.
   */
  private redirectFor(digest: Digest, size: number): (() => Promise<string>) | undefined {
    const settings = this.options.redirect;
    const store = this.blobs;
    if (!settings || !hasRedirect(store) || size < settings.minBytes) return undefined;
    return () => store.redirectUrl(digest, settings.expiresSeconds);
  }

  /** The blob as linked in the repository, without the gate (existence checks of pushers; never its bytes). */
  linkedInfo(repository: string, digest: Digest): Promise<BlobInfo | undefined> {
    return this.localInfo(repository, digest);
  }

  private async localInfo(repository: string, digest: Digest): Promise<BlobInfo | undefined> {
    const linked = await this.metadata.linkedBlob(repository, digest);
    return linked && this.storedInfo(repository, linked);
  }

  /**
   * The stored bytes of a linked blob, when their size is the one recorded at link time. A file
   * of another size (truncated, overwritten) is never served: it is set aside as corrupt.
   */
  private async storedInfo(repository: string, linked: BlobInfo): Promise<BlobInfo | undefined> {
    const stored = await this.blobs.stat(linked.digest);
    if (!stored || stored.size === linked.size || !this.options.integrity) return stored;
    await this.options.integrity.blobSizeMismatch(repository, linked.digest, stored.size, linked.size);
    return undefined;
  }

  /** Links a committed blob into a repository, unless a concurrent delete removed its bytes. */
  async link(repository: string, info: BlobInfo): Promise<void> {
    const linked = await this.gcLocks.run(info.digest, () => this.metadata.linkBlobIf(repository, info, async () => (await this.blobs.stat(info.digest)) !== undefined));
    if (!linked) throw err('BLOB_UPLOAD_INVALID', 'blob vanished during upload; retry');
  }

  /** Deletes the bytes if no repository links them, excluded from a concurrent `link` of the same digest (on every replica). */
  private deleteIfUnlinked(digest: Digest): Promise<boolean> {
    return this.gcLocks.run(digest, () => this.metadata.deleteIfUnlinked(digest, () => this.blobs.delete(digest)));
  }

  /** Cross-repository mount: links `digest` into `repository` when `from` may read it. */
  /**
   * Cross-repository mount: links `from`'s blob here. Quarantined content is not mounted (the client
   * gets an upload session, as for a blob `from` lacks): neither a quarantined blob nor one that only
   * quarantined manifests of `from` reference. Quarantine follows a digest into no new repository.
   */
  async mount(repository: string, digest: Digest, from: string): Promise<BlobInfo | undefined> {
    const info = await this.localInfo(from, digest);
    if (!info) return undefined;
    const owners = await this.metadata.manifestsReferencing(from, digest);
    const q = await this.metadata.quarantinedAmong([digest, ...owners]);
    if (q.includes(digest) || (owners.length > 0 && owners.every((o) => q.includes(o)))) return undefined;
    await this.link(repository, info);
    return info;
  }

  /**
   * Garbage collection, online: removes every repository link that no manifest of that repository
   * references (a deleted model's layers, an upload no manifest ever named) once it is older than the
   * grace period, then the bytes of blobs no repository links any more. Each removal re-checks, in one
   * statement serialised with manifest commits, that the link is still unreferenced; a push that
   * names a collected blob gets MANIFEST_BLOB_UNKNOWN and uploads it again, never a dangling manifest.
   * Then, when the store can list its blobs, the bytes of blobs no repository links at all, older than
   * the grace period. Manifests are the GarbageCollector's (retention of untagged ones).
   */
  async collectGarbage(o: BlobGcOptions, now = Date.now()): Promise<BlobCollection> {
    const before = now - o.graceSeconds * 1000;
    const sample: BlobLink[] = [];
    let links = 0;
    let blobs = 0;
    let bytes = 0;
    // Dry: how many of each digest's links would go, to tell which blobs would lose their last one.
    const dryCounts = new Map<Digest, { n: number; size: number }>();
    for (let after: BlobLink | undefined, page: BlobLink[]; !o.signal?.aborted && (page = await this.metadata.unreferencedBlobLinks(before, GC_PAGE, after)).length > 0; after = page.at(-1)) {
      for (const link of page) {
        if (o.signal?.aborted) break;
        if (o.dryRun) {
          const c = dryCounts.get(link.digest) ?? { n: 0, size: link.size };
          c.n++;
          dryCounts.set(link.digest, c);
        } else {
          if (!(await this.metadata.unlinkUnreferenced(link.repository, link.digest, before))) continue;
          if (await this.deleteIfUnlinked(link.digest)) {
            blobs++;
            bytes += link.size;
          }
        }
        links++;
        if (sample.length < GC_SAMPLE) sample.push(link);
      }
    }
    for (const [digest, c] of dryCounts) {
      if ((await this.metadata.blobLinkCount(digest)) === c.n) {
        blobs++;
        bytes += c.size;
      }
    }
    // Then bytes no repository links at all. Their age is the file's (or object's): every push writes the
    // bytes anew and links them a moment later, so the grace period covers that window too.
    let orphans = 0;
    if (hasBlobList(this.blobs)) {
      for await (const b of this.blobs.list()) {
        if (o.signal?.aborted) break;
        if (b.modifiedAt >= before || dryCounts.has(b.digest)) continue;
        const gone = o.dryRun ? (await this.metadata.blobLinkCount(b.digest)) === 0 : await this.deleteIfUnlinked(b.digest);
        if (!gone) continue;
        orphans++;
        blobs++;
        bytes += b.size;
      }
    }
    return { before: new Date(before).toISOString(), links, blobs, bytes, orphans, sample };
  }

  /** Removes the repository's link; the bytes go when no repository links them any more. */
  async delete(repository: string, digest: Digest): Promise<void> {
    if (!(await this.metadata.unlinkBlob(repository, digest))) throw err('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
    await this.deleteIfUnlinked(digest);
  }
}
