import type { Digest } from '../oci/index.js';
import type { Actor, TagMove } from './metadata-store.js';

/**
 * Operator state, as small interfaces composed into `MetadataStore`: pins,
 * quarantine, the audit log, the lineage index. Every write here appends its
 * audit entry in the same transaction as the change it records, and so do the
 * tag moves of `ManifestIndex`/`TagStore` (push, delete, rollback).
 */

export interface PinRecord {
  readonly repository: string;
  readonly tag: string;
  /** The digest the tag pointed at when pinned (kept current by operator moves). */
  readonly digest: Digest;
  readonly actor: string;
  readonly reason: string | undefined;
  readonly at: number;
}

/**
 * A pinned tag is moved by nobody: `putManifest` with that tag, `deleteTag`,
 * `deleteManifest` of its digest and a plain `moveTag` fail with DENIED. Only an
 * operator move (`moveTag` with `override`) or `unpinTag` changes that.
 */
export interface PinStore {
  /** Pins the tag, first moving it to `digest` when given (recorded as a tag move). */
  pinTag(repository: string, tag: string, digest: Digest | undefined, by: Actor): Promise<{ pin: PinRecord; move: TagMove | undefined }>;
  unpinTag(repository: string, tag: string, by: Actor): Promise<boolean>;
  getPin(repository: string, tag: string): Promise<PinRecord | undefined>;
  listPins(repository?: string): Promise<PinRecord[]>;
}

export interface QuarantineRecord {
  readonly digest: Digest;
  readonly actor: string;
  readonly reason: string | undefined;
  readonly at: number;
}

/** Quarantined digests are global: no repository serves them. */
export interface QuarantineStore {
  /** False when the digest was already quarantined (nothing recorded). */
  quarantine(digest: Digest, by: Actor): Promise<boolean>;
  /** False when the digest was not quarantined. */
  release(digest: Digest, by: Actor): Promise<boolean>;
  /** The subset of `digests` that is quarantined. */
  quarantinedAmong(digests: readonly Digest[]): Promise<Digest[]>;
  listQuarantine(): Promise<QuarantineRecord[]>;
}

/**
 * Optional capability: the quarantine check answered at once, from memory the store keeps coherent
 * (the embedded store: the table is small, and it re-reads it when another process changed the
 * database). The serving rule's cached path uses it; without it, the path awaits `quarantinedAmong`.
 */
export interface QuarantineSnapshot {
  quarantinedAmongNow(digests: readonly Digest[]): Digest[];
}

export const hasQuarantineSnapshot = (s: object): s is QuarantineSnapshot => typeof (s as Partial<QuarantineSnapshot>).quarantinedAmongNow === 'function';

/** What a caller records; the store adds sequence, time and the chain hashes. */
export interface AuditInput {
  readonly actor: string;
  /** e.g. push, delete, tag.delete, rollback, pin, unpin, quarantine, release, deny, auth.failure, admin.* */
  readonly action: string;
  readonly repository?: string | undefined;
  /** What was acted on: `repo:tag`, `repo@digest`, a digest. */
  readonly target?: string | undefined;
  readonly reason?: string | undefined;
  readonly detail?: Readonly<Record<string, unknown>> | undefined;
}

export interface AuditEntry extends AuditInput {
  /** 1, 2, 3, ... without gaps. */
  readonly seq: number;
  readonly at: number;
  /** Hash of the previous entry (64 zeros for the first). */
  readonly prevHash: string;
  /** sha256 hex over the canonical JSON of every other field (see audit-chain.ts). */
  readonly hash: string;
}

export interface AuditQuery {
  /** Entries at or after this time (ms since the epoch). */
  readonly since?: number;
  /** Entries with a sequence number greater than this. */
  readonly afterSeq?: number;
  readonly limit?: number;
}

/** Append-only and hash-chained; appends are serialised so the chain has no forks. */
export interface AuditLog {
  appendAudit(entry: AuditInput): Promise<AuditEntry>;
  /** Oldest first. */
  listAudit(query?: AuditQuery): Promise<AuditEntry[]>;
}

/** One `resolvedDependencies` entry (SLSA v1) or `materials` entry (v0.2). */
export interface ProvenanceMaterial {
  /** source, training-dataset, base-model, ... (the producer's annotation, or inferred). */
  readonly role: string | undefined;
  readonly name: string | undefined;
  readonly uri: string | undefined;
  /** The dependency's digest set, e.g. { sha256: '...', gitCommit: '...' }. */
  readonly digest: Readonly<Record<string, string>>;
}

export interface NewProvenance {
  readonly repository: string;
  /** The referrer manifest carrying the attestation. */
  readonly referrer: Digest;
  /** The artifact the provenance describes. */
  readonly subject: Digest;
  readonly predicateType: string;
  readonly builderId: string | undefined;
  readonly buildType: string | undefined;
  readonly startedOn: string | undefined;
  readonly finishedOn: string | undefined;
  /** Signer identities as the envelope claims them (not verified here; the gate verifies). */
  readonly signers: readonly string[];
  readonly materials: readonly ProvenanceMaterial[];
}

export interface ProvenanceRecord extends NewProvenance {
  readonly recordedAt: number;
}

export interface MaterialConsumer {
  readonly repository: string;
  readonly subject: Digest;
  readonly referrer: Digest;
  readonly role: string | undefined;
  readonly name: string | undefined;
}

/**
 * Subjects and materials of stored provenance attestations. Materials are
 * indexed by each `alg:value` of their digest set (`sha256:<hex>`,
 * `gitCommit:<sha>`), lower-cased, so an OCI digest looks itself up directly.
 * Deleting the referrer manifest forgets its provenance in the same transaction.
 */
export interface LineageIndex {
  /** Replaces what was recorded for (repository, referrer). */
  recordProvenance(p: NewProvenance): Promise<void>;
  /** Provenance whose subject is `subject`, in one repository or (undefined) all. */
  provenanceFor(repository: string | undefined, subject: Digest): Promise<ProvenanceRecord[]>;
  /** Direct consumers: provenance naming `material` (`alg:value`) among its materials. */
  consumersOf(material: string): Promise<MaterialConsumer[]>;
}

/** Where a digest lives, across repositories. */
export interface ContentLocator {
  /** Repositories holding a manifest with this digest. */
  repositoriesOf(digest: Digest): Promise<string[]>;
  /** Manifests, in any repository, that reference `digest` as a blob or child (the datasets holding a file). */
  manifestsContaining(digest: Digest): Promise<{ repository: string; digest: Digest }[]>;
  /** Moves of any tag in `repository` to or from `digest`, newest first. */
  tagMovesOf(repository: string, digest: Digest): Promise<TagMove[]>;
}

/** `alg:value` keys of a digest set, as the lineage index stores them. */
export const materialKeys = (digest: Readonly<Record<string, string>>): string[] =>
  Object.entries(digest).map(([alg, v]) => `${alg}:${v.toLowerCase()}`);
