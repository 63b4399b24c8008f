import type { Actor, BlobLink, ManifestKey, MetadataStore } from '../storage/index.js';
import type { BlobCollection, BlobService } from './blob-service.js';
import type { ManifestService } from './manifest-service.js';

export interface GcOptions {
  /** Blob links (and never-linked bytes) younger than this are kept: a large model's layers may wait hours for their manifest. */
  readonly graceSeconds: number;
  /**
   * Retention: also delete untagged manifests whose last tag left them longer ago than this (seconds).
   * Undefined: untagged manifests are kept (tag history and rollback point at them).
   */
  readonly untaggedAfterSeconds?: number | undefined;
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
  /** The first of them. */
  readonly manifestSample: readonly ManifestKey[];
}

const PAGE = 500;
const SAMPLE = 100;
/** Deleting an index or a subject makes its children and referrers eligible; each pass reaches one level further. */
const MAX_PASSES = 10;

/**
 * One garbage collection run: retention of untagged manifests (when asked), then blob links no manifest
 * references and the bytes no repository links (BlobService). Online: each deletion re-checks its
 * conditions in the transaction that deletes, serialised with pushes and tag moves. In pull-through
 * repositories only manifests a tag once named are retention's. One audit entry per run.
 */
export class GarbageCollector {
  constructor(
    private readonly manifests: ManifestService,
    private readonly blobs: BlobService,
    private readonly metadata: Pick<MetadataStore, 'expiredUntaggedManifests' | 'tagMovesOf' | 'appendAudit'>,
    private readonly isProxied: (repository: string) => boolean,
  ) {}

  async run(o: GcOptions, by: Actor, now = Date.now()): Promise<GcReport> {
    const manifestSample: ManifestKey[] = [];
    let manifests = 0;
    if (o.untaggedAfterSeconds !== undefined) {
      const before = now - o.untaggedAfterSeconds * 1000;
      for (let pass = 0; pass < MAX_PASSES && !o.signal?.aborted; pass++) {
        let deleted = 0;
        for (let after: ManifestKey | undefined, page: ManifestKey[]; !o.signal?.aborted && (page = await this.metadata.expiredUntaggedManifests(before, PAGE, after)).length > 0; after = page.at(-1)) {
          for (const m of page) {
            if (o.signal?.aborted) break;
            // A pull-through repository's tags follow the upstream's: a manifest a refresh left behind is
            // retention's; one pulled only by digest (a deployment pinned to it) stays, as the upstream may
            // no longer have it.
            if (this.isProxied(m.repository) && (await this.metadata.tagMovesOf(m.repository, m.digest)).length === 0) continue;
            if (!o.dryRun && !(await this.manifests.deleteExpiredUntagged(m.repository, m.digest, before, by))) continue;
            deleted++;
            if (manifestSample.length < SAMPLE) manifestSample.push(m);
          }
        }
        manifests += deleted;
        if (o.dryRun || deleted === 0) break;
      }
    }
    const blobs = await this.blobs.collectGarbage({ graceSeconds: o.graceSeconds, dryRun: o.dryRun, signal: o.signal }, now);
    const report: GcReport = { dryRun: o.dryRun, graceSeconds: o.graceSeconds, untaggedAfterSeconds: o.untaggedAfterSeconds ?? null, manifests, manifestSample, ...blobs };
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
}
