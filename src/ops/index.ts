import type { Digest } from '../oci/index.js';
import type { Actor, BlobFetcher, ManifestRecord, MetadataStore, TagMove } from '../storage/index.js';
import { AuditService } from './audit.js';
import { DeepVerifier } from './deep-verify.js';
import { LineageService, type EvidenceCheck } from './lineage.js';
import { QuarantineService } from './quarantine.js';
import { TagControl } from './tags.js';
import { judgeFromGate, type Judge, type OpsLog, type ReadGateLike } from './types.js';

export * from './types.js';
export * from './audit.js';
export * from './tags.js';
export * from './lineage.js';
export * from './quarantine.js';
export * from './deep-verify.js';
export * from './fsck.js';

export interface OpsDeps {
  readonly metadata: MetadataStore;
  /** Reads attestation layers (lineage) and re-hashes blobs (deep verify). */
  readonly blobs: BlobFetcher;
  /** The registry's read gate (the serving rule: verdicts and quarantine). */
  readonly gate: ReadGateLike;
  /** Would the gate serve this digest? Default: asks `gate.manifest` (DENIED = no). */
  readonly judge?: Judge;
  readonly log: OpsLog;
  /** Does a referrer verify as evidence (lineage acts only on verified provenance)? Default: nothing verifies. */
  readonly evidence?: EvidenceCheck;
  /** Operators moved tags of `repository`: drop cached tag resolutions (ManifestService.invalidateTags). */
  readonly invalidateTags?: (repository: string) => void;
}

/** Structurally the registry's ManifestWriteHooks (ops cannot import src/registry). */
export interface OpsWriteHooks {
  beforeTagPush(repository: string, tag: string, digest: Digest): Promise<void>;
  afterPut(record: ManifestRecord, move: TagMove | undefined, by: Actor): Promise<void>;
  afterDelete(repository: string, digest: Digest, untagged: readonly TagMove[], by: Actor): Promise<void>;
}

export interface Ops {
  readonly audit: AuditService;
  readonly tags: TagControl;
  readonly lineage: LineageService;
  readonly quarantine: QuarantineService;
  readonly deep: DeepVerifier;
  /** The read gate ops was built with (quarantine is part of it: registry/serving-rule.ts). */
  readonly gate: ReadGateLike;
  /** Pass to ManifestService: pins refuse pushes, provenance is indexed. */
  readonly hooks: OpsWriteHooks;
  /** For the proxy (`PinLookup`): an upstream refresh does not move a pinned tag. */
  readonly pins: { isPinned(repository: string, tag: string): Promise<boolean> };
}

export function createOps(deps: OpsDeps): Ops {
  const judge = deps.judge ?? judgeFromGate(deps.gate);
  const invalidate = deps.invalidateTags ?? (() => undefined);
  const audit = new AuditService(deps.metadata);
  const tags = new TagControl(deps.metadata, judge, invalidate);
  const lineage = new LineageService(deps.metadata, deps.blobs, judge, deps.log, deps.evidence);
  const quarantine = new QuarantineService(deps.metadata, deps.gate, lineage, tags);
  const deep = new DeepVerifier(deps.metadata, deps.blobs, lineage, judge, deps.gate);
  const gate = deps.gate;
  const hooks: OpsWriteHooks = {
    beforeTagPush: (repository, tag, digest) => tags.beforeTagPush(repository, tag, digest),
    afterPut: async (record) => {
      // The manifest is stored already; a lineage failure must not turn the push into an error.
      await lineage.index(record).catch((e: Error) => deps.log.warn({ err: e.message, repository: record.repository, digest: record.digest }, 'lineage indexing failed'));
    },
    afterDelete: async (repository) => invalidate(repository),
  };
  return { audit, tags, lineage, quarantine, deep, gate, hooks, pins: { isPinned: (r, t) => tags.isPinned(r, t) } };
}
export * from './backup.js';
