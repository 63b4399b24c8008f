import { err, isIndexMediaType, type Digest } from '../oci/index.js';
import type { MetadataStore } from '../storage/index.js';
import type { Verdict } from '../verify/types.js';
import type { ReadDecision, ReadGate } from './read-gate.js';

/** The verification gate as the registry sees it: a verdict per (repository, digest). */
export interface VerdictSource {
  check(repository: string, digest: string): Promise<Verdict>;
  invalidate(subject: string): void;
}

/**
 * Verdicts about proxied content expire with their upstream's freshness window (`tagFreshness`):
 * a signature pushed to or deleted from the upstream changes the evidence without any push
 * here, so nothing would invalidate the cached verdict otherwise. Local content keeps its
 * verdict until a referrer push/delete, a quarantine or a reload drops it.
 */
export class UpstreamFreshVerdicts implements VerdictSource {
  constructor(
    private readonly inner: VerdictSource,
    /** Milliseconds a verdict about `repository` stays valid; undefined for local repositories. */
    private readonly maxAgeMs: (repository: string) => number | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  async check(repository: string, digest: string): Promise<Verdict> {
    const v = await this.inner.check(repository, digest);
    const max = this.maxAgeMs(repository);
    if (max === undefined || this.now() - Date.parse(v.checkedAt) < max) return v;
    this.inner.invalidate(digest);
    return this.inner.check(repository, digest);
  }

  invalidate(subject: string): void {
    this.inner.invalidate(subject);
  }
}

const LEGACY_TAG = /^(sha256-[a-f0-9]{64})\.(sig|att|sbom)$/;

/** The digest a cosign legacy tag (`sha256-<hex>.sig`, `.att`, `.sbom`) is evidence about, if `tag` is one. */
export function legacyTagSubject(tag: string): Digest | undefined {
  const m = LEGACY_TAG.exec(tag);
  return m ? (m[1]!.replace('-', ':') as Digest) : undefined;
}

/**
 * Applies verdicts to what the registry serves (DESIGN.md, "Reading a manifest"):
 * - a manifest is served when its verdict allows it, or when it is evidence about
 *   allowed content: a referrer of an allowed subject, a cosign legacy
 *   `sha256-<hex>.sig/.att/.sbom` manifest of an allowed digest, or a child of an
 *   allowed index (signatures name the digest the client asked for);
 * - a blob is served only when a manifest that references it in this repository
 *   is served by that rule, so nobody fetches unverified weights by digest.
 */
export class PolicyReadGate implements ReadGate {
  constructor(
    private readonly verdicts: VerdictSource,
    private readonly metadata: MetadataStore,
  ) {}

  async manifest(repository: string, digest: Digest): Promise<ReadDecision> {
    const own = await this.verdicts.check(repository, digest);
    if (own.allowed) return decisionOf(own);
    const via = await this.allowedAsEvidence(repository, digest);
    if (via) return decisionOf(via);
    throw denied(own);
  }

  async blob(repository: string, digest: Digest): Promise<ReadDecision> {
    let first: Verdict | undefined;
    for (const owner of await this.metadata.manifestsReferencing(repository, digest)) {
      const v = await this.verdicts.check(repository, owner);
      if (v.allowed) return decisionOf(v);
      const via = await this.allowedAsEvidence(repository, owner);
      if (via) return decisionOf(via);
      first ??= v;
    }
    // A blob no manifest references yet (a push in progress, or the gate off): only a policy that allows
    // everything here serves it; the verdict of a digest that is not a manifest is otherwise a deny.
    const own = await this.verdicts.check(repository, digest);
    if (own.allowed) return decisionOf(own);
    if (first) throw denied(first, `blob ${digest} belongs to no manifest the policy allows in ${repository}`);
    // The detail lists the digest's own verdict (typically: not a manifest), like every other denial.
    throw denied(own, `blob ${digest} belongs to no manifest in ${repository} that the policy allows`);
  }

  invalidate(subject: Digest): void {
    this.verdicts.invalidate(subject);
  }

  /** The verdict of the allowed content this manifest is evidence about, if any. */
  private async allowedAsEvidence(repository: string, digest: Digest): Promise<Verdict | undefined> {
    const record = await this.metadata.getManifest(repository, digest);
    if (!record) return undefined;
    if (record.subject) {
      const v = await this.verdicts.check(repository, record.subject);
      if (v.allowed) return v;
    }
    for (const tag of await this.metadata.tagsOf(repository, digest)) {
      const subject = legacyTagSubject(tag);
      if (!subject) continue;
      const v = await this.verdicts.check(repository, subject);
      if (v.allowed) return v;
    }
    for (const parent of await this.metadata.manifestsReferencing(repository, digest)) {
      const p = await this.metadata.getManifest(repository, parent);
      if (!p || !isIndexMediaType(p.mediaType)) continue;
      const v = await this.verdicts.check(repository, parent);
      if (v.allowed) return v;
    }
    return undefined;
  }
}

function decisionOf(v: Verdict): ReadDecision {
  if (!v.wouldDeny) return {};
  return { auditFindings: v.findings.filter((f) => !f.ok).map((f) => `${f.rule}/${f.check}: ${f.reason}`) };
}

/** 403 DENIED whose detail lists each failed rule and why (issue 4, "Deny"). */
function denied(v: Verdict, prefix?: string) {
  const failed = v.findings.filter((f) => !f.ok);
  const summary = failed.map((f) => `${f.rule}/${f.check}: ${f.reason}`).join('; ') || 'denied by policy';
  return err('DENIED', prefix ? `${prefix}: ${summary}` : `denied by policy: ${summary}`, {
    digest: v.digest,
    rule: v.rule,
    failed: failed.map((f) => ({ rule: f.rule, check: f.check, reason: f.reason })),
  });
}
