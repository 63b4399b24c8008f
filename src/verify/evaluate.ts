import { conditionFailure } from './cel.js';
import type { Signed } from './evidence.js';
import type { Evidence } from './gather.js';
import type { ModelCheckResult } from './model-check.js';
import { ruleName, type Rule } from './policy.js';
import { sbomViolations } from './sbom.js';
import { isSignaturePredicate } from './statement.js';
import type { Trust } from './trust.js';
import type { Finding } from './types.js';

/**
 * The pure half of a check: a rule's requirements over gathered evidence -> findings.
 * Thresholds count distinct authorities matched to distinct signatures (a bipartite
 * matching), so one signature cannot satisfy two authorities that share a key.
 */
export function evaluateRule(rule: Rule, trust: Trust, ev: Evidence, model: ModelCheckResult | undefined): Finding[] {
  const name = ruleName(rule);
  const findings: Finding[] = [];
  const f = (check: Finding['check'], ok: boolean, reason: string): void => {
    findings.push({ rule: name, check, ok, reason });
  };
  const rejections = (max = 3): string =>
    ev.rejected.length === 0 ? '' : `; rejected: ${ev.rejected.slice(0, max).map((r) => `${r.format} ${r.referrer.slice(0, 19)}: ${r.reason}`).join(' | ')}`;

  if (rule.signatures) {
    const ids = new Set(rule.signatures.authorities.map((a) => trust.authority(a).id));
    const sigs = ev.signed.filter((s) => ids.has(s.authority) && (!s.statement || isSignaturePredicate(s.statement.predicateType)));
    const n = matchCount(sigs);
    const need = rule.signatures.threshold;
    const who = [...new Set(sigs.map((s) => `${s.signer} (${s.format})`))].join(', ');
    if (n >= need) f('signatures', true, `${n} of ${need} required signature(s) verified: ${who}`);
    else if (ev.referrers.length === 0) f('signatures', false, `no signature found (need ${need} from: ${labels(rule.signatures.authorities, trust)})`);
    else f('signatures', false, `${n} of ${need} required signature(s) verified${rejections()}`);
  }

  for (const att of rule.attestations ?? []) {
    const ids = new Set(att.authorities.map((a) => trust.authority(a).id));
    const candidates = ev.signed.filter((s) => s.statement && ids.has(s.authority) && s.statement.predicateType.startsWith(att.predicateType));
    if (candidates.length === 0) {
      f('attestations', false, `no ${att.predicateType} attestation signed by ${labels(att.authorities, trust)}${rejections()}`);
      continue;
    }
    let failure: string | undefined;
    let passed: Signed | undefined;
    for (const c of candidates) {
      const bad = att.conditions.map((x) => conditionFailure(x, c.statement!)).find((x) => x !== undefined);
      if (!bad) {
        passed = c;
        break;
      }
      failure ??= bad;
    }
    if (passed) f('attestations', true, `${passed.statement!.predicateType} attestation by ${passed.signer}${att.conditions.length ? `; ${att.conditions.length} condition(s) hold` : ''}`);
    else f('attestations', false, `${att.predicateType} attestation: ${failure}`);
  }

  if (rule.sbom) {
    const valid = ev.sboms.filter((s) => s.summary);
    const invalid = ev.sboms.filter((s) => s.error);
    if (valid.length === 0) {
      if (rule.sbom.required) f('sbom', false, invalid.length ? `no valid SBOM: ${invalid.map((s) => `${s.source}: ${s.error}`).join(' | ')}` : 'no SBOM found');
      else f('sbom', true, 'no SBOM (not required)');
    } else {
      const bad = valid.flatMap((s) => sbomViolations(s.summary!, rule.sbom!.denyLicenses, rule.sbom!.denyPurls).map((v) => `${s.source}: ${v}`));
      if (bad.length) f('sbom', false, bad.slice(0, 10).join('; '));
      else f('sbom', true, valid.map((s) => `${s.summary!.format} ${s.summary!.version} with ${s.summary!.components} component(s)`).join(', '));
    }
  }

  if (rule.model && model) {
    if (model.problems.length) f('model', false, model.problems.slice(0, 10).join('; '));
    else f('model', true, ['model checks passed', ...model.notes].join('; '));
  }

  if (findings.length === 0) f('match', true, 'rule has no requirements');
  return findings;
}

function labels(list: Parameters<Trust['authority']>[0][], trust: Trust): string {
  return list.map((a) => trust.authority(a).label).join(', ');
}

/** Maximum matching of authorities to distinct signatures (augmenting paths; sets are tiny). */
export function matchCount(sigs: readonly Pick<Signed, 'authority' | 'evidence'>[]): number {
  const byAuthority = new Map<string, Set<string>>();
  for (const s of sigs) {
    let set = byAuthority.get(s.authority);
    if (!set) byAuthority.set(s.authority, (set = new Set()));
    set.add(s.evidence);
  }
  const owner = new Map<string, string>(); // evidence -> authority
  const tryAssign = (a: string, visited: Set<string>): boolean => {
    for (const e of byAuthority.get(a) ?? []) {
      if (visited.has(e)) continue;
      visited.add(e);
      const cur = owner.get(e);
      if (cur === undefined || tryAssign(cur, visited)) {
        owner.set(e, a);
        return true;
      }
    }
    return false;
  };
  let n = 0;
  for (const a of byAuthority.keys()) if (tryAssign(a, new Set())) n++;
  return n;
}

