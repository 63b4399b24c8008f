import type { Authority, Policy, Rule, Trust } from '../verify/index.js';
import { ruleName } from '../verify/index.js';

/** The gate's policy as loaded, for operators: rules, modes, and who each rule trusts (keys by fingerprint). */
export interface AuthorityView {
  readonly label: string;
  readonly kind: string;
  /** Keys: SHA-256 of the SPKI, hex (what `customs keygen` prints), with the file they came from. */
  readonly keys: readonly { readonly fingerprint: string; readonly source: string }[];
  /** Keyless identity, x509 subject or root fingerprints. */
  readonly details: readonly string[];
}

export interface RuleView {
  readonly name: string;
  readonly match: readonly string[];
  readonly mode: string;
  readonly requirements: readonly string[];
  readonly authorities: readonly AuthorityView[];
}

export interface PolicyView {
  readonly default: string;
  readonly modeOverride: string | undefined;
  readonly rules: readonly RuleView[];
  readonly policyHash: string;
  readonly trustHash: string;
  /** Every trusted key fingerprint (hex) -> where it came from, for naming signers on artifact pages. */
  readonly keyIndex: ReadonlyMap<string, string>;
}

export function policyView(p: { policy: Policy; trust: Trust; policyHash: string; trustHash: string }): PolicyView {
  const keyIndex = new Map<string, string>();
  const authority = (a: Authority): AuthorityView => {
    try {
      const r = p.trust.authority(a);
      if (r.kind === 'keys') {
        for (const k of r.keys) keyIndex.set(k.fingerprint, k.source);
        return { label: r.label, kind: 'keys', keys: r.keys.map((k) => ({ fingerprint: k.fingerprint, source: k.source })), details: r.root ? ['with a sigstore trusted root'] : [] };
      }
      if (r.kind === 'keyless') return { label: r.label, kind: 'keyless', keys: [], details: [`issuer ${r.issuer}`, r.subject ? `subject ${r.subject}` : `subject matches ${String(r.subjectRegex)}`] };
      return { label: r.label, kind: 'x509', keys: [], details: [...r.roots.map((c) => `root ${c.subject.replace(/\n/g, ', ')} (sha256 ${c.fingerprint256})`), ...(r.subject ? [`subject ${r.subject}`] : [])] };
    } catch (e) {
      return { label: 'unresolved authority', kind: 'error', keys: [], details: [(e as Error).message] };
    }
  };
  const rules = p.policy.rules.map((rule: Rule): RuleView => {
    const reqs: string[] = [];
    const auths: Authority[] = [];
    if (rule.signatures) {
      reqs.push(`${rule.signatures.threshold} signature(s) from ${rule.signatures.authorities.length} authorit${rule.signatures.authorities.length === 1 ? 'y' : 'ies'}`);
      auths.push(...rule.signatures.authorities);
    }
    for (const a of rule.attestations ?? []) {
      reqs.push(`attestation ${a.predicateType}${a.conditions.length ? ` where ${a.conditions.join(' && ')}` : ''}`);
      auths.push(...a.authorities);
    }
    if (rule.sbom) reqs.push(`SBOM ${rule.sbom.required ? 'required' : 'optional'}${rule.sbom.denyLicenses.length ? `, denied licenses ${rule.sbom.denyLicenses.join(', ')}` : ''}${rule.sbom.denyPurls.length ? `, denied packages ${rule.sbom.denyPurls.join(', ')}` : ''}`);
    if (rule.model) reqs.push(`model checks${rule.model.pickleScan ? ' with pickle scan' : ''}${rule.model.allowFormats ? `, formats ${rule.model.allowFormats.join(', ')}` : ''}${rule.model.allowLicenses ? `, licenses ${rule.model.allowLicenses.join(', ')}` : ''}`);
    if (reqs.length === 0) reqs.push('no requirements');
    const seen = new Set<string>();
    const authorities = auths.map(authority).filter((a) => {
      const key = `${a.label}|${a.keys.map((k) => k.fingerprint).join(',')}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    return { name: ruleName(rule), match: rule.match, mode: p.policy.mode ?? rule.mode, requirements: reqs, authorities };
  });
  return { default: p.policy.default, modeOverride: p.policy.mode, rules, policyHash: p.policyHash, trustHash: p.trustHash, keyIndex };
}
