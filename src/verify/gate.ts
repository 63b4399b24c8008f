import type { KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { errorText } from './evidence.js';
import { evaluateRule } from './evaluate.js';
import { DEFAULT_LIMITS, gatherEvidence, loadSubject, type Limits } from './gather.js';
import type { LegacyKind } from './evidence-layer.js';
import { judgeEvidence, type EvidenceJudgement } from './evidence-verdict.js';
import { checkModel, LayerUnreadable } from './model-check.js';
import { hubOriginFindings } from './hub-origin.js';
import { err } from '../oci/errors.js';
import { defaultPolicy, matchRule, parsePolicy, policyHash, ruleName, withMode, type Policy, type Rule } from './policy.js';
import { loadTrust, type ResolvedAuthority, type Trust } from './trust.js';
import type { ContentSource, Finding, Verdict } from './types.js';

export interface GateOptions {
  readonly source: ContentSource;
  readonly policy: Policy;
  readonly trust: Trust;
  /** Verdicts kept in memory (default 10 000). */
  readonly cacheSize?: number;
  readonly limits?: Partial<Limits>;
  readonly now?: () => Date;
}

/**
 * The one gate the registry and the proxy share. `check` never throws: any error while
 * reading or verifying becomes a denying finding (fail closed), and such verdicts are not
 * cached so a transient storage error does not stick.
 */
export class Gate {
  readonly policy: Policy;
  readonly trust: Trust;
  readonly policyHash: string;
  readonly trustHash: string;
  private readonly source: ContentSource;
  private readonly limits: Limits;
  private readonly now: () => Date;
  private readonly cache: LRUCache<string, Verdict>;
  /** subject digest -> cache keys, for invalidate(). */
  private readonly keysByDigest = new Map<string, Set<string>>();
  private readonly inflight = new Map<string, Promise<Verdict>>();
  /** Bumped by invalidate/clear so a check that started before does not cache a stale verdict. */
  private generation = 0;

  constructor(opts: GateOptions) {
    this.source = opts.source;
    this.policy = opts.policy;
    this.trust = opts.trust;
    this.policyHash = policyHash(opts.policy);
    this.trustHash = opts.trust.hash;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.now = opts.now ?? (() => new Date());
    this.cache = new LRUCache<string, Verdict>({
      max: opts.cacheSize ?? 10_000,
      // An evicted verdict takes its key along, and the digest's entry once it has none (else one entry per digest ever checked stays).
      dispose: (v, key) => {
        const keys = this.keysByDigest.get(v.digest);
        if (keys?.delete(key) && keys.size === 0) this.keysByDigest.delete(v.digest);
      },
    });
  }

  private key(repository: string, digest: string): string {
    // The repository is part of the key: the same digest can fall under different rules. The policy and
    // trust hashes are not: this cache belongs to one policy and trust (a reload builds a new Gate), and
    // `remember` takes only verdicts made under them. A cached manifest GET builds this key every time.
    return `${digest}\n${repository}`;
  }

  /** A cached verdict, without computing one (for HEAD fast paths and metrics). */
  peek(repository: string, digest: string): Verdict | undefined {
    return this.cache.get(this.key(repository, digest));
  }

  async check(repository: string, digest: string): Promise<Verdict> {
    return this.cached(this.key(repository, digest), () => this.compute(repository, digest));
  }

  private evidenceKey(repository: string, digest: string, subject: string, legacy: LegacyKind | undefined): string {
    return `${this.key(repository, digest)}\nevidence ${subject} ${legacy ?? ''}`;
  }

  /** A cached evidence verdict, without computing one. */
  peekEvidence(repository: string, digest: string, subject: string, legacy?: LegacyKind): Verdict | undefined {
    return this.cache.get(this.evidenceKey(repository, digest, subject, legacy));
  }

  /**
   * Does the manifest `digest` verify as evidence about `subject` (found through its `subject`
   * field, or a cosign legacy tag of kind `legacy`)? Judged on its own bytes under the trust
   * policy of the repository's rule; whether the subject itself may be served is the caller's
   * question (registry/serving-rule.ts). Content is immutable, so the verdict is cached like any other.
   */
  async checkEvidence(repository: string, digest: string, subject: string, legacy?: LegacyKind): Promise<Verdict> {
    return this.cached(this.evidenceKey(repository, digest, subject, legacy), () => this.computeEvidence(repository, digest, subject, legacy));
  }

  private async cached(key: string, compute: () => Promise<{ verdict: Verdict; cacheable: boolean }>): Promise<Verdict> {
    const hit = this.cache.get(key);
    if (hit) return hit;
    let p = this.inflight.get(key);
    if (!p) {
      const gen = this.generation;
      p = compute()
        .then(({ verdict, cacheable }) => {
          if (cacheable && gen === this.generation) this.remember(verdict);
          return verdict;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  /** Puts a verdict in the cache (e.g. one persisted in metadata), if it was made under this policy and trust. */
  remember(v: Verdict): boolean {
    if (v.policyHash !== this.policyHash || v.trustHash !== this.trustHash) return false;
    const key = v.evidence ? this.evidenceKey(v.repository, v.digest, v.evidence.subject, v.evidence.legacy) : this.key(v.repository, v.digest);
    this.cache.set(key, v);
    let set = this.keysByDigest.get(v.digest);
    if (!set) this.keysByDigest.set(v.digest, (set = new Set()));
    set.add(key);
    return true;
  }

  /** A referrer of `subjectDigest` was pushed or deleted, or it was (un)quarantined. */
  invalidate(subjectDigest: string): void {
    this.generation++;
    for (const key of this.keysByDigest.get(subjectDigest) ?? []) this.cache.delete(key);
    this.keysByDigest.delete(subjectDigest);
  }

  clear(): void {
    this.generation++;
    this.cache.clear();
    this.keysByDigest.clear();
  }

  private verdict(repository: string, digest: string, rule: Rule | undefined, mode: Verdict['mode'], findings: Finding[], referrers: string[]): Verdict {
    const failed = findings.some((f) => !f.ok);
    return {
      digest,
      repository,
      allowed: mode === 'off' || mode === 'audit' || !failed,
      mode,
      wouldDeny: failed,
      findings,
      policyHash: this.policyHash,
      trustHash: this.trustHash,
      rule: rule ? ruleName(rule) : '(default)',
      referrers,
      checkedAt: this.now().toISOString(),
    };
  }

  private async computeEvidence(repository: string, digest: string, subject: string, legacy: LegacyKind | undefined): Promise<{ verdict: Verdict; cacheable: boolean }> {
    const matched = matchRule(this.policy, repository);
    const name = matched ? ruleName(matched) : '(default)';
    const make = (lines: EvidenceJudgement['lines'], kind?: 'verified' | 'unsigned-allowed'): Verdict => {
      const findings: Finding[] = lines.map((l) => ({ rule: name, check: 'evidence', ok: l.ok, reason: l.ok ? l.reason : `evidence not verified: ${l.reason}` }));
      return { ...this.verdict(repository, digest, matched, 'enforce', findings, []), evidence: { subject, ...(legacy ? { legacy } : {}), ...(kind ? { kind } : {}) } };
    };
    try {
      // The subject's trust policy: the authorities of the rule that covers the repository; without
      // any (a rule with no signature requirement), the operator's keys in <data>/trust/keys/.
      const authorities = matched ? ruleAuthorities(matched, this.trust) : [];
      if (authorities.length === 0) authorities.push(this.trust.authority({ trustedKeys: true }));
      // customs' own verifier key vouches for its verification summaries (VSA statements) and nothing
      // else (its authority refuses any other predicate); never for the subject's own verdict.
      if (this.trust.verifier) authorities.push(this.trust.verifier);
      const j = await judgeEvidence({ source: this.source, repository, digest, subject, legacy, authorities, policy: this.policy.evidence, limits: this.limits, now: this.now() });
      return { verdict: make(j.lines, j.kind), cacheable: !j.incomplete };
    } catch (e) {
      return { verdict: make([{ ok: false, reason: `verification failed: ${errorText(e)}` }]), cacheable: false };
    }
  }

  private async compute(repository: string, digest: string): Promise<{ verdict: Verdict; cacheable: boolean }> {
    const matched = matchRule(this.policy, repository);
    if (!matched) {
      const allow = this.policy.default === 'allow';
      const reason = `no policy rule matches ${repository}; the default is ${this.policy.default}`;
      const mode = this.policy.mode ?? 'enforce';
      return { verdict: this.verdict(repository, digest, undefined, mode, [{ rule: '(default)', check: 'match', ok: allow, reason }], []), cacheable: true };
    }
    const rule: Rule = this.policy.mode ? { ...matched, mode: this.policy.mode } : matched;
    if (rule.mode === 'off') {
      return { verdict: this.verdict(repository, digest, rule, 'off', [{ rule: ruleName(rule), check: 'mode', ok: true, reason: 'verification is off for this rule' }], []), cacheable: true };
    }
    try {
      const authorities = ruleAuthorities(rule, this.trust);
      const subject = await loadSubject(this.source, repository, digest, authorities, this.now());
      if (typeof subject === 'string') {
        return { verdict: this.verdict(repository, digest, rule, rule.mode, [{ rule: ruleName(rule), check: 'subject', ok: false, reason: subject }], []), cacheable: false };
      }
      const ev = await gatherEvidence(this.source, repository, subject, this.limits);
      const model = rule.model ? await checkModel(this.source, repository, subject, rule.model, this.limits.maxBlobBytes) : undefined;
      const findings = [...evaluateRule(rule, this.trust, ev, model), ...hubOriginFindings(rule, subject.manifest)];
      return { verdict: this.verdict(repository, digest, rule, rule.mode, findings, ev.referrers), cacheable: !ev.incomplete && !model?.incomplete };
    } catch (e) {
      // A model layer could not be read right now (an upstream or the store is away): an error for the
      // client to retry, not a verdict. Nothing is served either way.
      if (e instanceof LayerUnreadable) throw e.error;
      const f: Finding = { rule: ruleName(rule), check: 'subject', ok: false, reason: `verification failed: ${errorText(e)}` };
      return { verdict: this.verdict(repository, digest, rule, rule.mode, [f], []), cacheable: false };
    }
  }
}

function ruleAuthorities(rule: Rule, trust: Trust): ResolvedAuthority[] {
  const byId = new Map<string, ResolvedAuthority>();
  for (const a of [...(rule.signatures?.authorities ?? []), ...(rule.attestations ?? []).flatMap((x) => x.authorities)]) {
    const r = trust.authority(a);
    byId.set(r.id, r);
  }
  return [...byId.values()];
}

/** The 403 DENIED detail / audit header text: one line per failed finding. */
export function describeFailures(v: Verdict): string[] {
  return v.findings.filter((f) => !f.ok).map((f) => `${f.rule} ${f.check}: ${f.reason}`);
}

/**
 * Turns a verdict into what the registry's read path needs: throws DENIED (detail: the failed
 * findings) when not allowed; in audit mode returns the findings to surface in a header.
 */
export function enforceVerdict(v: Verdict): { auditFindings?: string[] } {
  const failures = describeFailures(v);
  if (!v.allowed) {
    throw err('DENIED', `${v.digest} is denied by policy rule ${v.rule}`, {
      rule: v.rule,
      findings: v.findings.filter((f) => !f.ok).map(({ rule, check, reason }) => ({ rule, check, reason })),
    });
  }
  return v.mode === 'audit' && failures.length > 0 ? { auditFindings: failures } : {};
}

export interface BuildGateOptions {
  readonly source: ContentSource;
  /** The config file's `policy` slice (unparsed), or undefined for the secure default. */
  readonly policy: unknown;
  readonly dataDir: string;
  /** The config file's directory: relative key/root paths resolve from here. */
  readonly configDir?: string;
  /** `--gate`: overrides every rule's mode. */
  readonly mode?: Verdict['mode'];
  readonly cacheSize?: number;
  /** customs' verifier public key: its verification summaries verify as evidence (Trust.verifier). */
  readonly verifierKey?: KeyObject;
}

/**
 * Composition helper for server.ts and SIGHUP: parse (or default) the policy, apply `--gate`,
 * load trust material, build a fresh Gate (a reload swaps the whole object, never mutates one).
 */
export function buildGate(o: BuildGateOptions): Gate {
  let policy = o.policy === undefined ? defaultPolicy() : parsePolicy(o.policy);
  if (o.mode) policy = withMode(policy, o.mode);
  const trust = loadTrust(policy, { dataDir: o.dataDir, ...(o.configDir ? { baseDir: o.configDir } : {}), ...(o.verifierKey ? { verifierKey: o.verifierKey } : {}) });
  return new Gate({ source: o.source, policy, trust, ...(o.cacheSize ? { cacheSize: o.cacheSize } : {}) });
}
