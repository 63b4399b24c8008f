import type { Digest } from '../oci/index.js';
import type { Actor, ManifestRecord, NewManifest, TagMove } from './metadata-store.js';
import type { AuditEntry, AuditInput, PinRecord, ProvenanceMaterial, ProvenanceRecord } from './ops-store.js';

/**
 * Row shapes and row -> record mappers shared by the SQLite and PostgreSQL stores
 * (both schemas use the same column names), so the two cannot drift apart.
 */

export interface ManifestRow {
  repository: string;
  digest: string;
  media_type: string;
  artifact_type: string | null;
  size: number;
  subject: string | null;
  annotations: string | null;
  bytes: Buffer;
  created_at: number;
}

export function toRecord(row: ManifestRow, references: Digest[]): ManifestRecord {
  return {
    repository: row.repository,
    digest: row.digest as Digest,
    mediaType: row.media_type,
    artifactType: row.artifact_type ?? undefined,
    size: row.size,
    subject: (row.subject ?? undefined) as Digest | undefined,
    annotations: row.annotations ? (JSON.parse(row.annotations) as Record<string, string>) : undefined,
    bytes: row.bytes,
    createdAt: row.created_at,
    references,
  };
}

export interface AuditRow {
  seq: number;
  at: number;
  actor: string;
  action: string;
  repository: string | null;
  target: string | null;
  reason: string | null;
  detail: string | null;
  prev_hash: string;
  hash: string;
}

export interface PinRow {
  repository: string;
  tag: string;
  digest: string;
  actor: string;
  reason: string | null;
  at: number;
}

export interface ProvenanceRow {
  repository: string;
  referrer: string;
  subject: string;
  predicate_type: string;
  builder_id: string | null;
  build_type: string | null;
  started_on: string | null;
  finished_on: string | null;
  signers: string;
  materials: string;
  recorded_at: number;
}

export function toAudit(r: AuditRow): AuditEntry {
  return {
    seq: r.seq,
    at: r.at,
    actor: r.actor,
    action: r.action,
    repository: r.repository ?? undefined,
    target: r.target ?? undefined,
    reason: r.reason ?? undefined,
    detail: r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : undefined,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export function toPin(r: PinRow): PinRecord {
  return { repository: r.repository, tag: r.tag, digest: r.digest as Digest, actor: r.actor, reason: r.reason ?? undefined, at: r.at };
}

export interface HistoryRow {
  repository: string;
  tag: string;
  from_digest: string | null;
  to_digest: string | null;
  actor: string;
  reason: string | null;
  at: number;
}

export function toMove(r: HistoryRow): TagMove {
  return {
    repository: r.repository,
    tag: r.tag,
    from: (r.from_digest ?? undefined) as Digest | undefined,
    to: (r.to_digest ?? undefined) as Digest | undefined,
    actor: r.actor,
    reason: r.reason ?? undefined,
    at: r.at,
  };
}

export function toProvenance(r: ProvenanceRow): ProvenanceRecord {
  return {
    repository: r.repository,
    referrer: r.referrer as Digest,
    subject: r.subject as Digest,
    predicateType: r.predicate_type,
    builderId: r.builder_id ?? undefined,
    buildType: r.build_type ?? undefined,
    startedOn: r.started_on ?? undefined,
    finishedOn: r.finished_on ?? undefined,
    signers: JSON.parse(r.signers) as string[],
    materials: JSON.parse(r.materials) as ProvenanceMaterial[],
    recordedAt: r.recorded_at,
  };
}

/** The audit entry of a manifest push (with the tag move, when there was one), the same in every store. */
export function pushAuditEntry(m: NewManifest, tag: string | undefined, move: TagMove | undefined, by: Actor): AuditInput {
  return {
    actor: by.actor,
    action: 'push',
    repository: m.repository,
    target: tag === undefined ? `${m.repository}@${m.digest}` : `${m.repository}:${tag}`,
    reason: by.reason,
    detail: { digest: m.digest, mediaType: m.mediaType, artifactType: m.artifactType, subject: m.subject, ...(move ? { tag, from: move.from } : {}) },
  };
}

/** The first string after every string starting with `prefix`, in binary order (its last character plus one): for range scans. */
export const prefixEnd = (prefix: string): string => prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
