import { LRUCache } from 'lru-cache';
import { digestOf, err, parseManifest, type Digest, type Reference } from '../oci/index.js';
import type { Actor, ManifestRecord, MetadataStore, TagMove } from '../storage/index.js';
import type { PullThrough } from '../proxy/pull-through.js';
import type { ReadDecision, ReadGate } from './read-gate.js';
import { legacyTagSubject } from './serving-rule.js';
import type { ContentIntegrity } from './integrity.js';

export interface ManifestRead {
  readonly record: ManifestRecord;
  readonly decision: ReadDecision;
  /** Served from the local copy because the upstream failed. */
  readonly stale: boolean;
}

export interface PutResult {
  readonly digest: Digest;
  readonly subject: Digest | undefined;
  readonly tagMove: TagMove | undefined;
}

/** Hooks other services attach to manifest writes (pins refuse, lineage indexes, audit records). */
export interface ManifestWriteHooks {
  /** Called before a tag moves by push; throws DENIED to refuse (pinned tags). */
  beforeTagPush?(repository: string, tag: string, digest: Digest): Promise<void>;
  afterPut?(record: ManifestRecord, move: TagMove | undefined, by: Actor): Promise<void>;
  afterDelete?(repository: string, digest: Digest, untagged: readonly TagMove[], by: Actor): Promise<void>;
}

/**
 * Manifests by tag and digest. Reads go through small in-memory caches (tag ->
 * digest, digest -> record) because a manifest GET is the hot path of every pull;
 * every write in this process invalidates them, and `invalidate*` lets a
 * cross-replica notifier do the same.
 */
export class ManifestService {
  private readonly tags = new LRUCache<string, Digest>({ max: 50_000 });
  private readonly records = new LRUCache<string, ManifestRecord>({
    maxSize: 64 * 1024 * 1024,
    sizeCalculation: (r) => r.bytes.byteLength + 256,
  });

  constructor(
    private readonly metadata: MetadataStore,
    private readonly gate: ReadGate,
    private readonly pullThrough: PullThrough | undefined,
    private readonly hooks: ManifestWriteHooks = {},
    /** Told of every served manifest of a pull-through repository (cache eviction by last pull). */
    private readonly pulls?: { touch(repository: string, digest: Digest): void },
    /** Checks each record read from the store against its digest (a corrupt one is never served). */
    private readonly integrity?: Pick<ContentIntegrity, 'verifyManifest'>,
  ) {}

  /** Resolves without gating (used by HEAD-free internal callers and operators). */
  async resolve(repository: string, reference: Reference): Promise<{ record: ManifestRecord; stale: boolean } | undefined> {
    return this.find(repository, reference, this.pullThrough?.handles(repository) ?? false);
  }

  private async find(repository: string, reference: Reference, proxied: boolean): Promise<{ record: ManifestRecord; stale: boolean } | undefined> {
    if (reference.kind === 'tag') {
      if (proxied) {
        // Freshness, revalidation and stale-if-error are the proxy's job.
        const up = await this.pullThrough!.manifest(repository, reference);
        if (up) {
          const record = await this.record(repository, up.digest);
          if (record) return { record, stale: up.stale };
        }
      }
      const digest = await this.tagDigest(repository, reference.tag);
      if (!digest) return undefined;
      const record = await this.record(repository, digest);
      return record ? { record, stale: false } : undefined;
    }
    const local = await this.record(repository, reference.digest);
    if (local) return { record: local, stale: false };
    if (proxied) {
      const up = await this.pullThrough!.manifest(repository, reference);
      if (up) {
        const record = await this.record(repository, up.digest);
        if (record) return { record, stale: up.stale };
      }
    }
    return undefined;
  }

  async get(repository: string, reference: Reference): Promise<ManifestRead> {
    const proxied = this.pullThrough?.handles(repository) ?? false;
    if (!proxied) {
      // The hot path: tag, record and decision all cached, answered without awaiting anything.
      const digest = reference.kind === 'tag' ? this.tags.get(`${repository}:${reference.tag}`) : reference.digest;
      const record = digest && this.records.get(`${repository}@${digest}`);
      const decision = record && this.gate.manifestCached?.(repository, record.digest);
      if (decision) return { record, decision, stale: false };
    }
    const found = await this.find(repository, reference, proxied);
    if (!found) throw err('MANIFEST_UNKNOWN', 'manifest unknown to registry', { reference: reference.kind === 'tag' ? reference.tag : reference.digest });
    const decision = await this.gate.manifest(repository, found.record.digest);
    if (proxied) this.pulls?.touch(repository, found.record.digest);
    return { record: found.record, decision, stale: found.stale };
  }

  private async tagDigest(repository: string, tag: string): Promise<Digest | undefined> {
    const key = `${repository}:${tag}`;
    const cached = this.tags.get(key);
    if (cached) return cached;
    const digest = await this.metadata.resolveTag(repository, tag);
    if (digest) this.tags.set(key, digest);
    return digest;
  }

  async record(repository: string, digest: Digest): Promise<ManifestRecord | undefined> {
    const key = `${repository}@${digest}`;
    const cached = this.records.get(key);
    if (cached) return cached;
    const record = await this.metadata.getManifest(repository, digest);
    if (!record) return undefined;
    // Once per cache fill: a few microseconds for a manifest of a few KiB.
    await this.integrity?.verifyManifest(record);
    this.records.set(key, record);
    return record;
  }

  async put(repository: string, reference: Reference, bytes: Buffer, contentType: string | undefined, by: Actor): Promise<PutResult> {
    const parsed = parseManifest(bytes, contentType);
    if (this.pullThrough?.handles(repository) && (reference.kind === 'tag' || !parsed.subject)) {
      // Tags here belong to the upstream; only referrers (signatures, SBOMs, attestations) may be added locally.
      throw err('DENIED', `${repository} is served from an upstream: push referrers (manifests with a subject) by digest; tags and other manifests are refused`);
    }
    const digest = reference.kind === 'digest' ? reference.digest : digestOf(bytes);
    if (reference.kind === 'digest' && digestOf(bytes, digest.startsWith('sha512:') ? 'sha512' : 'sha256') !== digest) {
      throw err('DIGEST_INVALID', `manifest content does not match digest ${digest}`);
    }
    // Every referenced blob and child manifest must be in this repository; a missing subject is fine (spec, "Pushing Manifests with Subject").
    for (const d of parsed.blobs) {
      if (!(await this.metadata.linkedBlob(repository, d.digest))) {
        throw err('MANIFEST_BLOB_UNKNOWN', `blob unknown to registry: ${d.digest}`, { digest: d.digest });
      }
    }
    for (const d of parsed.manifests) {
      if (!(await this.metadata.getManifest(repository, d.digest))) {
        throw err('MANIFEST_BLOB_UNKNOWN', `manifest unknown to registry: ${d.digest}`, { digest: d.digest });
      }
    }
    const tag = reference.kind === 'tag' ? reference.tag : undefined;
    if (tag !== undefined) await this.hooks.beforeTagPush?.(repository, tag, digest);
    const move = await this.metadata.putManifest(
      {
        repository,
        digest,
        mediaType: parsed.mediaType,
        artifactType: parsed.artifactType,
        size: bytes.byteLength,
        subject: parsed.subject?.digest,
        annotations: parsed.annotations,
        bytes,
        references: [...parsed.blobs.map((d) => d.digest), ...parsed.manifests.map((d) => d.digest)],
        // Checked again in the commit's transaction: garbage collection may unlink a blob, or retention
        // delete a child manifest, after the loops above.
        requireLinked: parsed.blobs.map((d) => d.digest),
        requireManifests: parsed.manifests.map((d) => d.digest),
      },
      tag,
      by,
    );
    if (tag !== undefined) this.tags.delete(`${repository}:${tag}`);
    if (parsed.subject) this.gate.invalidate(parsed.subject.digest);
    // A cosign legacy `sha256-<hex>.sig/.att/.sbom` tag is a referrer by name: its digest's verdict is stale.
    const legacy = tag !== undefined && move ? legacyTagSubject(tag) : undefined;
    if (legacy) this.gate.invalidate(legacy);
    const record = await this.record(repository, digest);
    if (record) await this.hooks.afterPut?.(record, move, by);
    return { digest, subject: parsed.subject?.digest, tagMove: move };
  }

  /** DELETE by digest removes the manifest and its tags; by tag removes only the tag (spec 1.1). */
  async delete(repository: string, reference: Reference, by: Actor): Promise<void> {
    if (reference.kind === 'tag') {
      const move = await this.metadata.deleteTag(repository, reference.tag, by);
      this.tags.delete(`${repository}:${reference.tag}`);
      if (!move) throw err('MANIFEST_UNKNOWN', 'manifest unknown to registry', { tag: reference.tag });
      this.invalidateLegacy([move]);
      await this.hooks.afterDelete?.(repository, move.from!, [move], by);
      return;
    }
    const record = await this.metadata.getManifest(repository, reference.digest);
    const { deleted, untagged } = await this.metadata.deleteManifest(repository, reference.digest, by);
    this.records.delete(`${repository}@${reference.digest}`);
    for (const m of untagged) this.tags.delete(`${repository}:${m.tag}`);
    if (!deleted) throw err('MANIFEST_UNKNOWN', 'manifest unknown to registry', { digest: reference.digest });
    await this.deleted(record, untagged, by);
  }

  /** Retention: deletes an untagged manifest if it still qualifies when deleted (see MetadataStore.expiredUntaggedManifests). */
  async deleteExpiredUntagged(repository: string, digest: Digest, before: number, by: Actor): Promise<boolean> {
    const record = await this.metadata.getManifest(repository, digest);
    const deleted = await this.metadata.deleteExpiredUntagged(repository, digest, before, by);
    this.records.delete(`${repository}@${digest}`);
    if (deleted && record) await this.deleted(record, [], by);
    return deleted;
  }

  /** Eviction: deletes a cached manifest and its tags if nobody pulled it since `before` (see MetadataStore.unpulledManifests). */
  async deleteUnpulled(repository: string, digest: Digest, before: number, by: Actor): Promise<boolean> {
    const record = await this.metadata.getManifest(repository, digest);
    const { deleted, untagged } = await this.metadata.deleteUnpulled(repository, digest, before, by);
    this.records.delete(`${repository}@${digest}`);
    for (const m of untagged) this.tags.delete(`${repository}:${m.tag}`);
    if (deleted && record) await this.deleted(record, untagged, by);
    return deleted;
  }

  /** What every delete owes the gate's cached verdicts and the hooks (lineage, other replicas). */
  private async deleted(record: ManifestRecord | undefined, untagged: readonly TagMove[], by: Actor): Promise<void> {
    if (!record) return;
    if (record.subject) this.gate.invalidate(record.subject);
    this.invalidateLegacy(untagged);
    await this.hooks.afterDelete?.(record.repository, record.digest, untagged, by);
  }

  private invalidateLegacy(moves: readonly TagMove[]): void {
    for (const m of moves) {
      const subject = legacyTagSubject(m.tag);
      if (subject) this.gate.invalidate(subject);
    }
  }

  /** Drops one cached manifest record (deleted on another replica). */
  invalidateManifest(repository: string, digest: Digest): void {
    this.records.delete(`${repository}@${digest}`);
  }

  /** Entries held by the caches (metrics). */
  cached(): { records: number; tags: number } {
    return { records: this.records.size, tags: this.tags.size };
  }

  /** Drops every cached record and tag (a replica lost its notification connection). */
  clear(): void {
    this.records.clear();
    this.tags.clear();
  }

  /** Drops cached tag resolutions (another replica or an operator moved tags). */
  invalidateTags(repository?: string): void {
    if (!repository) return this.tags.clear();
    for (const k of this.tags.keys()) if (k.startsWith(`${repository}:`)) this.tags.delete(k);
  }
}
