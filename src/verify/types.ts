import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/schemas.js';

/**
 * The words of the gate (see DESIGN.md): a rule's requirements produce findings;
 * the gate folds findings into a verdict.
 */

/** Which requirement of a rule a finding is about. */
export type Check = 'match' | 'signatures' | 'attestations' | 'sbom' | 'model' | 'hub' | 'subject' | 'mode' | 'evidence' | 'quarantine';

export interface Finding {
  /** The rule's name (its first glob when unnamed), or `(default)` when no rule matched. */
  readonly rule: string;
  readonly check: Check;
  readonly ok: boolean;
  /** Human-readable; it goes into the 403 DENIED detail and the audit log. */
  readonly reason: string;
}

export type Mode = 'enforce' | 'audit' | 'off';

export interface Verdict {
  readonly digest: string;
  readonly repository: string;
  /** True when the content may be served (always true in audit and off modes). */
  readonly allowed: boolean;
  readonly mode: Mode;
  /** True when the findings would have denied it under enforce (audit mode keeps them). */
  readonly wouldDeny: boolean;
  readonly findings: readonly Finding[];
  readonly policyHash: string;
  readonly trustHash: string;
  readonly rule: string;
  /** Digests of the referrers whose evidence was read (the verdict depends on them). */
  readonly referrers: readonly string[];
  readonly checkedAt: string;
  /**
   * Set on evidence verdicts (Gate.checkEvidence): the referrer verified as evidence for `subject`
   * (`verified`: a signature or attestation checked; `unsigned-allowed`: SBOMs the policy accepts unsigned).
   */
  readonly evidence?: { readonly subject: string; readonly legacy?: 'sig' | 'att' | 'sbom'; readonly kind?: 'verified' | 'unsigned-allowed' };
}

/**
 * What the gate reads. Storage-agnostic so the registry (local stores) and the proxy
 * (upstream + tee) can both provide it; every method returns undefined for absent content.
 */
export interface ContentSource {
  getManifest(repository: string, digest: string): Promise<{ mediaType: string; bytes: Buffer } | undefined>;
  /** OCI 1.1 referrers of `digest` (API or fallback tag, whichever the source has). */
  listReferrers(repository: string, digest: string): Promise<Descriptor[]>;
  /** Reads a small blob, or undefined if absent or larger than maxBytes (never buffers more). */
  readBlob(repository: string, digest: string, maxBytes: number): Promise<Buffer | undefined>;
  /** Streams a blob (model weights for the pickle scan). */
  openBlob(repository: string, digest: string): Promise<Readable | undefined>;
}

/** Optional capability: resolving cosign's legacy `sha256-<hex>.sig` / `.att` tags. */
export interface TagResolver {
  resolveTag(repository: string, tag: string): Promise<string | undefined>;
}

export const hasTagResolver = (s: ContentSource): s is ContentSource & TagResolver =>
  typeof (s as Partial<TagResolver>).resolveTag === 'function';
