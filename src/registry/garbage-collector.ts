import type { Actor, BlobLink, ManifestKey, MetadataStore } from '../storage/index.js';
import type { BlobCollection, BlobService } from './blob-service.js';
import type { ManifestService } from './manifest-service.js';
import type { PullRecorder } from './pull-recorder.js';

export interface GcOptions {
  /** Blob links (and never-linked bytes) younger than this are kept: a large model's layers may wait hours for their manifest. */
  readonly graceSeconds: number;
  /**
   * Retention: also delete untagged manifests whose last tag left them longer ago than this (seconds).
   * Undefined: untagged manifests are kept (tag history and rollback point at them).
   */
  readonly untaggedAfterSeconds?: number | undefined;
  /**
   * Cache eviction, per upstream: manifests under `prefix` (`<upstream>/`) nobody pulled for `afterSeconds`
   * are deleted with their tags; the next pull fetches them again.
   */
  readonly evict?: ReadonlyArray<{ readonly prefix: string; readonly afterSeconds: number }> | undefined;
  /** Report what would go; change nothing. */
  readonly dryRun: boolean;
  /** Stops the run between two manifests or blobs (server shutdown); what was removed stays removed. */
  readonly signal?: AbortSignal | undefined;
}

export interface GcReport extends BlobCollection {
  readonly dryRun: boolean;
  readonly graceSeconds: number;
  readonly untaggedAfterSeconds: number | null;
  /** Untagged manifests deleted (dry: those the first pass would delete; their blobs are not counted). */
  readonly manifests: number;
  /** Cached manifests nobody pulled within their upstream's `evictAfterSeconds`, deleted (dry: the first pass). */
  readonly evicted: number;
  /** The first manifests deleted either way. */
  readonly manifestSample: readonly ManifestKey[];
}

const PAGE = 500;
const SAMPLE = 100;
/** Deleting an index or a subject makes its children and referrers eligible; each pass reaches one level further. */
const MAX_PASSES = 10;

/**
 * One garbage collection run, in order: eviction of cached manifests nobody pulls any more (upstreams
 * with `evictAfterSeconds`), retention of untagged manifests (when asked), then blob links no manifest
 * references and the bytes no repository links (BlobService). Online: each deletion re-checks its
 * conditions in the transaction that deletes, serialised with pushes and tag moves. One audit entry per
 * run, besides each manifest's own `delete`.
 */
export class GarbageCollector {
  constructor(
    private readonly manifests: ManifestService,
    private readonly blobs: BlobService,
    private readonly metadata: Pick<MetadataStore, 'expiredUntaggedManifests' | 'unpulledManifests' | 'tagMovesOf' | 'appendAudit'>,
    private readonly isProxied: (repository: string) => boolean,
    /** Pulls not yet written (eviction must see them). */
    private readonly pulls?: Pick<PullRecorder, 'flush'>,
  ) {}

  async run(o: GcOptions, by: Actor, now = Date.now()): Promise<GcReport> {
    const manifestSample: ManifestKey[] = [];
    let evicted = 0;
    if (o.evict?.length) await this.pulls?.flush();
    for (const rule of o.evict ?? []) {
      const before = now - rule.afterSeconds * 1000;
      evicted += await this.passes(o, manifestSample, (after) => this.metadata.unpulledManifests(rule.prefix, before, PAGE, after), async (m) =>
        o.dryRun || this.manifests.deleteUnpulled(m.repository, m.digest, before, by),
      );
    }
    let manifests = 0;
    if (o.untaggedAfterSeconds !== undefined) {
      const before = now - o.untaggedAfterSeconds * 1000;
      // A pull-through repository's tags follow the upstream's: a manifest a refresh left behind is
      // retention's; one pulled only by digest (a deployment pinned to it) stays, as the upstream may
      // no longer have it (eviction by last pull is `evict`'s).
      const retentions = async (m: ManifestKey) => !this.isProxied(m.repository) || (await this.metadata.tagMovesOf(m.repository, m.digest)).length > 0;
      manifests = await this.passes(o, manifestSample, (after) => this.metadata.expiredUntaggedManifests(before, PAGE, after), async (m) =>
        (await retentions(m)) && (o.dryRun || this.manifests.deleteExpiredUntagged(m.repository, m.digest, before, by)),
      );
    }
    const blobs = await this.blobs.collectGarbage({ graceSeconds: o.graceSeconds, dryRun: o.dryRun, signal: o.signal }, now);
    const report: GcReport = { dryRun: o.dryRun, graceSeconds: o.graceSeconds, untaggedAfterSeconds: o.untaggedAfterSeconds ?? null, manifests, evicted, manifestSample, ...blobs };
    if (!o.dryRun) {
      const key = (k: ManifestKey | BlobLink) => `${k.repository}@${k.digest}`;
      await this.metadata.appendAudit({
        actor: by.actor,
        action: 'gc',
        reason: by.reason,
        detail: {
          graceSeconds: o.graceSeconds,
          untaggedAfterSeconds: report.untaggedAfterSeconds,
          manifests,
          evicted,
          links: blobs.links,
          blobs: blobs.blobs,
          bytes: blobs.bytes,
          orphans: blobs.orphans,
          manifestSample: manifestSample.map(key),
          sample: blobs.sample.map(key),
        },
      });
    }
    return report;
  }

  /**
   * Hands what `list` finds to `remove` (true: deleted, or in a dry run would be), page by page, until a
   * pass deletes nothing: deleting an index or a subject makes its children and referrers eligible, one
   * level per pass. Dry: the first pass only.
   */
  private async passes(o: GcOptions, sample: ManifestKey[], list: (after?: ManifestKey) => Promise<ManifestKey[]>, remove: (m: ManifestKey) => Promise<boolean>): Promise<number> {
    let total = 0;
    for (let pass = 0; pass < MAX_PASSES && !o.signal?.aborted; pass++) {
      let deleted = 0;
      for (let after: ManifestKey | undefined, page: ManifestKey[]; !o.signal?.aborted && (page = await list(after)).length > 0; after = page.at(-1)) {
        for (const m of page) {
          if (o.signal?.aborted) break;
          if (!(await remove(m))) continue;
          deleted++;
          if (sample.length < SAMPLE) sample.push(m);
        }
      }
      total += deleted;
      if (o.dryRun || deleted === 0) break;
    }
    return total;
  }
}
