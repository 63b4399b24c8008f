import { LRUCache } from 'lru-cache';
import { err, isIndexMediaType, isRegistryError, type Digest, type RegistryError } from '../oci/index.js';
import type { ManifestRecord, MetadataStore, QuarantineSnapshot, QuarantineStore } from '../storage/index.js';
import type { Verdict } from '../verify/types.js';
import type { ReadDecision, ReadGate } from './read-gate.js';

/** The verification gate as the registry sees it. */
export interface VerdictSource {
  /** The manifest's own verdict under the repository's rule. */
  check(repository: string, digest: string): Promise<Verdict>;
  /** Does the manifest verify as evidence about `subject` (its own bytes, the subject's trust policy)? */
  checkEvidence(repository: string, digest: string, subject: string, legacy?: LegacyKind): Promise<Verdict>;
  invalidate(subject: string): void;
  /** Optional: the manifest's own verdict if it is cached (valid as `check` would return it), without computing one. */
  peek?(repository: string, digest: string): Verdict | undefined;
}

export type LegacyKind = 'sig' | 'att' | 'sbom';

const LEGACY_TAG = /^(sha256-[a-f0-9]{64})\.(sig|att|sbom)$/;

/** The digest and kind a cosign legacy tag (`sha256-<hex>.sig`, `.att`, `.sbom`) is evidence about, if `tag` is one. */
export function legacyTag(tag: string): { subject: Digest; kind: LegacyKind } | undefined {
  const m = LEGACY_TAG.exec(tag);
  return m ? { subject: m[1]!.replace('-', ':') as Digest, kind: m[2] as LegacyKind } : undefined;
}

/** The digest a cosign legacy tag is evidence about, if `tag` is one. */
export const legacyTagSubject = (tag: string): Digest | undefined => legacyTag(tag)?.subject;

type ServingStore = Pick<MetadataStore, 'getManifest' | 'tagsOf' | 'manifestsReferencing'> & Pick<QuarantineStore, 'quarantinedAmong'> & Partial<QuarantineSnapshot>;

/** What the rule needs to know of a stored manifest; immutable per (repository, digest). */
interface Facts {
  readonly subject: Digest | undefined;
  /** Config, layers and child manifests: everything served because this manifest is. */
  readonly refs: readonly Digest[];
  readonly isIndex: boolean;
}

/** Evidence about evidence (a notation signature of an SBOM) nests; nothing legitimate nests deeper. */
const MAX_DEPTH = 4;

/**
 * The gate's one rule (DESIGN.md; docs/security.md), enforced here and nowhere else:
 * - a manifest is served only if it is not quarantined, references nothing quarantined, and
 *   - its own verdict allows it; or
 *   - it is evidence (a referrer through `subject`, or a cosign `sha256-<hex>.sig/.att/.sbom` tag
 *     manifest) whose subject is served by this rule and which verifies as evidence for that subject
 *     on its own bytes (Gate.checkEvidence); or
 *   - an index that is served by this rule lists it as a child (the index's signature covers its
 *     children's digests, as a manifest's covers its blobs);
 * - a blob is served only if it is not quarantined and a manifest that is served by this rule
 *   references it in the same repository (a pusher's existence check is the HTTP layer's business,
 *   and serves no byte). A blob no manifest references is served only where the policy serves
 *   anything (mode off or audit, or `default: allow`).
 * Quarantine is read from the store on every request, with no cache, so it takes effect at once on
 * every replica; verdicts are cached by the gate and dropped when evidence or policy changes.
 */
export class ServingRule implements ReadGate {
  private readonly facts = new LRUCache<string, Facts>({ max: 50_000 });
  /** repository@blob -> the manifest it was last served through (tried first next time). */
  private readonly servedVia = new LRUCache<string, Digest>({ max: 50_000 });

  constructor(
    private readonly verdicts: VerdictSource,
    private readonly store: ServingStore,
  ) {}

  manifest(repository: string, digest: Digest): Promise<ReadDecision> {
    return this.manifestAt(repository, digest, 0);
  }

  /**
   * The same rule for the hot path, answered at once from what is cached: the manifest's facts,
   * its own verdict (allowed), and a quarantine check the store answers from memory. Undefined
   * whenever any of that is missing or the answer is not a plain "allowed" (then `manifest`
   * decides, with its reasons); never a different answer from `manifest`'s.
   */
  manifestCached(repository: string, digest: Digest): ReadDecision | undefined {
    const { store, verdicts } = this;
    if (!store.quarantinedAmongNow || !verdicts.peek) return undefined;
    const facts = this.facts.get(`${repository}@${digest}`);
    if (!facts) return undefined;
    if (store.quarantinedAmongNow([digest]).length > 0 || (facts.refs.length > 0 && store.quarantinedAmongNow(facts.refs).length > 0)) return undefined;
    const own = verdicts.peek(repository, digest);
    return own?.allowed ? decisionOf(own) : undefined;
  }

  async blob(repository: string, digest: Digest): Promise<ReadDecision> {
    const q = await this.store.quarantinedAmong([digest]);
    if (q.length > 0) throw quarantined(`blob ${digest} is quarantined; it is not served`, q);
    const owners = await this.store.manifestsReferencing(repository, digest);
    // The owner that served this blob last time first: a blob such as the empty config `{}` can have
    // thousands of owners, most of them denied, and each costs a verdict lookup.
    const hint = this.servedVia.get(`${repository}@${digest}`);
    if (hint && owners.includes(hint)) owners.unshift(hint);
    let first: unknown;
    for (const owner of owners) {
      try {
        const d = await this.manifestAt(repository, owner, 0);
        this.servedVia.set(`${repository}@${digest}`, owner);
        return d;
      } catch (e) {
        if (!isDenied(e)) throw e;
        first ??= e;
      }
    }
    if (first) throw withPrefix(first, `blob ${digest} belongs to no manifest served in ${repository}`);
    // No manifest references it (a push in progress, a proxied blob fetched by digest): only a
    // policy that serves anything here serves it; for a digest that is not a manifest the verdict
    // is otherwise a deny.
    const own = await this.verdicts.check(repository, digest);
    if (own.allowed) return decisionOf(own);
    throw denied(own, `blob ${digest} belongs to no manifest in ${repository} that the policy allows`);
  }

  invalidate(subject: Digest): void {
    this.verdicts.invalidate(subject);
  }

  /**
   * The manifest left `repository` (deleted here or on another replica): its facts and the blob hints
   * that point at it go too. Facts are immutable, so keeping them is never wrong, but a registry that
   * pushes and deletes versions all day would otherwise fill these caches with the dead (found by the
   * soak: the heap grew until the bounds were reached).
   */
  forget(repository: string, digest: Digest): void {
    const key = `${repository}@${digest}`;
    const facts = this.facts.peek(key);
    this.facts.delete(key);
    for (const ref of facts?.refs ?? []) {
      const hint = `${repository}@${ref}`;
      if (this.servedVia.peek(hint) === digest) this.servedVia.delete(hint);
    }
  }

  /** Entries held by the caches (customs_cache_entries). */
  cached(): { facts: number; servedVia: number } {
    return { facts: this.facts.size, servedVia: this.servedVia.size };
  }

  private async manifestAt(repository: string, digest: Digest, depth: number): Promise<ReadDecision> {
    const facts = await this.factsOf(repository, digest);
    const q = await this.store.quarantinedAmong([digest, ...(facts?.refs ?? [])]);
    if (q.includes(digest)) throw quarantined(`manifest ${digest} is quarantined; it is not served`, [digest]);
    if (q.length > 0) throw quarantined(`manifest ${digest} references quarantined content (${q.join(', ')}); it is not served`, q);

    const own = await this.verdicts.check(repository, digest);
    if (own.allowed) return decisionOf(own);
    if (!facts || depth >= MAX_DEPTH) throw denied(own);

    // Evidence: through `subject`, or through cosign's legacy tags; each candidate subject on its own.
    const candidates: { subject: Digest; legacy?: LegacyKind }[] = facts.subject ? [{ subject: facts.subject }] : [];
    for (const tag of await this.store.tagsOf(repository, digest)) {
      const l = legacyTag(tag);
      if (l && !candidates.some((c) => c.subject === l.subject && c.legacy === l.kind)) candidates.push({ subject: l.subject, legacy: l.kind });
    }
    const reasons: string[] = [];
    for (const c of candidates) {
      const ev = await this.verdicts.checkEvidence(repository, digest, c.subject, c.legacy);
      if (!ev.allowed) {
        reasons.push(...failures(ev));
        continue;
      }
      try {
        await this.manifestAt(repository, c.subject, depth + 1);
        return {};
      } catch (e) {
        if (!isDenied(e)) throw e;
        reasons.push(`its subject ${c.subject} is not served: ${(e as Error).message}`);
      }
    }
    if (candidates.length > 0) {
      throw err('DENIED', `evidence ${digest} is not served: ${reasons.join('; ').slice(0, 2000)}`, {
        digest,
        rule: own.rule,
        failed: reasons.map((reason) => ({ rule: own.rule, check: 'evidence', reason })),
      });
    }

    // A child of an index this rule serves.
    for (const parent of await this.store.manifestsReferencing(repository, digest)) {
      const p = await this.factsOf(repository, parent);
      if (!p?.isIndex) continue;
      try {
        return await this.manifestAt(repository, parent, depth + 1);
      } catch (e) {
        if (!isDenied(e)) throw e; // another parent may be served
      }
    }
    throw denied(own);
  }

  private async factsOf(repository: string, digest: Digest): Promise<Facts | undefined> {
    const key = `${repository}@${digest}`;
    const hit = this.facts.get(key);
    if (hit) return hit;
    const record = await this.store.getManifest(repository, digest);
    if (!record) return undefined;
    const facts = factsOfRecord(record);
    this.facts.set(key, facts);
    return facts;
  }
}

const factsOfRecord = (record: ManifestRecord): Facts => ({ subject: record.subject, refs: record.references, isIndex: isIndexMediaType(record.mediaType) });

function failures(v: Verdict): string[] {
  return v.findings.filter((f) => !f.ok).map((f) => f.reason);
}

function decisionOf(v: Verdict): ReadDecision {
  if (!v.wouldDeny) return {};
  return { auditFindings: v.findings.filter((f) => !f.ok).map((f) => `${f.rule}/${f.check}: ${f.reason}`) };
}

/** 403 DENIED whose detail lists each failed rule and why. */
function denied(v: Verdict, prefix?: string) {
  const failed = v.findings.filter((f) => !f.ok);
  const summary = failed.map((f) => `${f.rule}/${f.check}: ${f.reason}`).join('; ') || 'denied by policy';
  return err('DENIED', prefix ? `${prefix}: ${summary}` : `denied by policy: ${summary}`, {
    digest: v.digest,
    rule: v.rule,
    failed: failed.map((f) => ({ rule: f.rule, check: f.check, reason: f.reason })),
  });
}

function quarantined(message: string, digests: readonly Digest[]) {
  return err('DENIED', message, { quarantined: digests, failed: [{ rule: 'quarantine', check: 'quarantine', reason: message }] });
}

const isDenied = (e: unknown): e is RegistryError => isRegistryError(e) && e.code === 'DENIED';

function withPrefix(e: unknown, prefix: string): unknown {
  return isDenied(e) ? err('DENIED', `${prefix}: ${e.message}`, e.detail) : e;
}
