import { err } from '../oci/index.js';
import { hubAllows } from '../verify/hub-origin.js';
import { matchRule, ruleName, type Mode, type Policy } from '../verify/index.js';
import { isCommit } from './names.js';

/**
 * The request-level half of a rule's `hub:` section, checked before the upstream is
 * asked anything: `requireRevisionPin` (a branch or tag name is refused: deployments
 * name the commit they run) and `allow` (nothing is fetched from a repository the
 * list does not admit). The content-level half (`hub.allow` over what is stored) is
 * the gate's (src/verify/hub-origin.ts).
 */
export interface HubRuleView {
  readonly name: string;
  readonly mode: Mode;
  readonly requireRevisionPin: boolean;
  readonly allow: readonly string[] | undefined;
}

/** The current policy's rule for a repository (it changes on reload), or undefined when none matches. */
export type HubRules = (repository: string) => HubRuleView | undefined;

export interface HubRequest {
  readonly repository: string;
  /** The revision as the client named it; undefined when it asked by manifest digest. */
  readonly revision: string | undefined;
  /** The upstream repo id, for requests that go to an upstream. */
  readonly upstreamRepoId?: string | undefined;
}

/** Throws DENIED (with the failed rule in its detail, like the gate's) when an enforcing rule refuses the request. */
export function checkHubRequest(rule: HubRuleView | undefined, r: HubRequest, warn: (msg: string) => void = () => undefined): void {
  if (!rule || rule.mode === 'off') return;
  const failed: string[] = [];
  if (rule.requireRevisionPin && r.revision !== undefined && !isCommit(r.revision)) {
    failed.push(`revision ${JSON.stringify(r.revision.slice(0, 100))} is not a commit: hub.requireRevisionPin admits full 40-hex commit shas only`);
  }
  if (r.upstreamRepoId !== undefined && !hubAllows(rule.allow, r.upstreamRepoId)) {
    failed.push(`${r.upstreamRepoId} is not in hub.allow (${rule.allow!.join(', ')})`);
  }
  if (failed.length === 0) return;
  if (rule.mode === 'audit') return warn(`${r.repository}: ${failed.join('; ')} (audit mode: allowed)`);
  throw err('DENIED', `denied by policy: ${failed.map((f) => `${rule.name}/hub: ${f}`).join('; ')}`, {
    rule: rule.name,
    failed: failed.map((reason) => ({ rule: rule.name, check: 'hub', reason })),
  });
}

/** The `hub` section of the rule that governs `repository` under `policy` (most specific match, as the gate picks). */
export function hubRuleOf(policy: Policy, repository: string): HubRuleView | undefined {
  const rule = matchRule(policy, repository);
  if (!rule?.hub) return undefined;
  return { name: ruleName(rule), mode: policy.mode ?? rule.mode, requireRevisionPin: rule.hub.requireRevisionPin, allow: rule.hub.allow };
}
