import { LRUCache } from 'lru-cache';
import { digestOf, err, parseDigest, type Digest, type RegistryError } from '../oci/index.js';
import { hasBlobIntegrity, type AuditLog, type BlobStore, type ManifestRecord } from '../storage/index.js';

/** Stored content that no longer matches its digest. */
export interface IntegrityFinding {
  readonly kind: 'blob' | 'manifest';
  readonly digest: Digest;
  readonly repository?: string | undefined;
  /** What was found: what the bytes hash to now, or the size they have against the recorded one. */
  readonly detail: string;
  /** The scrub, or a read that noticed (a blob's size differs from its record, a manifest's bytes their digest). */
  readonly foundBy: 'scrub' | 'read';
}

/** Counters for /metrics (src/http implements them). */
export interface IntegrityMetrics {
  finding(kind: 'blob' | 'manifest', outcome: 'corrupt' | 'repaired'): void;
}

export interface IntegrityLog {
  error(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

const PER_DIGEST_MS = 3600_000;

/**
 * What the registry does about corrupt content, whoever found it: bytes that no longer match
 * their digest are set aside at once (never served again), and each finding goes to the audit
 * log, the metrics and an error line (an operator must act: restore it, or let the scrub fetch
 * it again when it came through a proxy). Reads ask `isCorrupt` to answer CONTENT_CORRUPT
 * instead of serving bad bytes or pretending the blob was never there.
 */
export class ContentIntegrity {
  /** A corrupt manifest is noticed on every read that misses the cache: recorded once an hour. */
  private readonly recent = new LRUCache<string, true>({ max: 10_000, ttl: PER_DIGEST_MS });

  constructor(
    private readonly blobs: BlobStore,
    private readonly audit: Pick<AuditLog, 'appendAudit'>,
    private readonly log: IntegrityLog,
    private readonly metrics?: IntegrityMetrics,
  ) {}

  /** Records a finding (audit entry, error line, metric); the caller has already set the bytes aside. */
  async corrupt(f: IntegrityFinding): Promise<void> {
    const key = `${f.kind}\0${f.repository ?? ''}\0${f.digest}\0${f.foundBy}`;
    if (f.foundBy === 'read' && this.recent.has(key)) return;
    this.recent.set(key, true);
    this.metrics?.finding(f.kind, 'corrupt');
    this.log.error({ event: 'integrity', kind: f.kind, digest: f.digest, repository: f.repository, detail: f.detail, foundBy: f.foundBy }, `corrupt ${f.kind}: not served`);
    await this.audit.appendAudit({
      actor: f.foundBy === 'scrub' ? 'system:scrub' : 'system:integrity',
      action: 'integrity.corrupt',
      repository: f.repository,
      target: f.digest,
      detail: { kind: f.kind, detail: f.detail, foundBy: f.foundBy },
    });
  }

  /** Records that good bytes of `digest` were fetched again and verified. */
  async repaired(digest: Digest, repository: string, how: string): Promise<void> {
    this.metrics?.finding('blob', 'repaired');
    this.log.info({ event: 'integrity', digest, repository, how }, 'corrupt blob repaired');
    await this.audit.appendAudit({ actor: 'system:scrub', action: 'integrity.repaired', repository, target: digest, detail: { kind: 'blob', how } });
  }

  /**
   * A read found the blob's stored size different from the size recorded when it was linked
   * (a truncated or overwritten file): the bytes are set aside, and the read goes on as if they
   * were missing (a pull-through repository fetches them again).
   */
  async blobSizeMismatch(repository: string, digest: Digest, stored: number, recorded: number): Promise<void> {
    if (hasBlobIntegrity(this.blobs)) await this.blobs.setAside(digest);
    await this.corrupt({ kind: 'blob', digest, repository, detail: `stored bytes are ${stored} long, recorded ${recorded}`, foundBy: 'read' }).catch(() => undefined);
  }

  /** True when the blob's bytes were set aside as corrupt (and nothing good has been stored since). */
  async isCorrupt(digest: Digest): Promise<boolean> {
    return hasBlobIntegrity(this.blobs) && (await this.blobs.wasSetAside(digest)) && (await this.blobs.stat(digest)) === undefined;
  }

  /** Checks a manifest record read from the store against its digest; records and throws CONTENT_CORRUPT when it differs. */
  async verifyManifest(record: ManifestRecord): Promise<void> {
    const actual = manifestDigest(record);
    if (actual === record.digest) return;
    await this.corrupt({ kind: 'manifest', digest: record.digest, repository: record.repository, detail: `stored bytes hash to ${actual}`, foundBy: 'read' }).catch(() => undefined);
    throw corruptError('manifest', record.digest);
  }
}

/** What a manifest's stored bytes hash to, with its digest's algorithm. */
export const manifestDigest = (record: Pick<ManifestRecord, 'digest' | 'bytes'>): Digest => digestOf(record.bytes, parseDigest(record.digest).algorithm);

export const corruptError = (kind: 'blob' | 'manifest', digest: Digest): RegistryError =>
  err('CONTENT_CORRUPT', `${kind} ${digest} is corrupt on this registry's storage (its bytes no longer match the digest) and is not served; an operator must restore it (push it again, or restore it from a backup)`, { digest });
