import { describe, expect, it } from 'vitest';
import { isRegistryError } from '../oci/index.js';
import { parsePolicy } from '../verify/index.js';
import { hubOriginFindings } from '../verify/hub-origin.js';
import { checkHubRequest, hubRuleOf } from './policy.js';

const policy = parsePolicy({
  rules: [
    { name: 'hub', match: 'hf.co/**', hub: { allow: ['acme/*', 'other/one'] } },
    { name: 'pinned', match: 'hf.co/acme/prod-*', mode: 'enforce', hub: { requireRevisionPin: true, allow: ['acme/*'] } },
    { name: 'audited', match: 'hf.co/audit/**', mode: 'audit', hub: { requireRevisionPin: true } },
    { name: 'plain', match: 'models/**' },
  ],
});
const denial = (f: () => void): string => {
  try {
    f();
  } catch (e) {
    if (isRegistryError(e) && e.code === 'DENIED') return e.message;
    throw e;
  }
  return '';
};

describe('the hub section of a rule', () => {
  it('is the most specific rule\'s', () => {
    expect(hubRuleOf(policy, 'hf.co/acme/prod-bert')).toMatchObject({ name: 'pinned', requireRevisionPin: true });
    expect(hubRuleOf(policy, 'hf.co/acme/bert')).toMatchObject({ name: 'hub', requireRevisionPin: false });
    expect(hubRuleOf(policy, 'models/x')).toBeUndefined();
  });

  it('requireRevisionPin refuses branch and tag names, admits commits and digests', () => {
    const rule = hubRuleOf(policy, 'hf.co/acme/prod-bert');
    expect(denial(() => checkHubRequest(rule, { repository: 'hf.co/acme/prod-bert', revision: 'main', upstreamRepoId: 'acme/prod-bert' }))).toMatch(/pinned\/hub: revision "main" is not a commit/);
    expect(denial(() => checkHubRequest(rule, { repository: 'hf.co/acme/prod-bert', revision: 'a'.repeat(40), upstreamRepoId: 'acme/prod-bert' }))).toBe('');
    expect(denial(() => checkHubRequest(rule, { repository: 'hf.co/acme/prod-bert', revision: undefined }))).toBe('');
  });

  it('allow admits listed repositories only, case-insensitively', () => {
    const rule = hubRuleOf(policy, 'hf.co/x/y');
    expect(denial(() => checkHubRequest(rule, { repository: 'hf.co/x/y', revision: 'main', upstreamRepoId: 'Other/One' }))).toBe('');
    expect(denial(() => checkHubRequest(rule, { repository: 'hf.co/x/y', revision: 'main', upstreamRepoId: 'other/two' }))).toMatch(/other\/two is not in hub\.allow \(acme\/\*, other\/one\)/);
  });

  it('audit mode warns instead of refusing', () => {
    const warnings: string[] = [];
    checkHubRequest(hubRuleOf(policy, 'hf.co/audit/x'), { repository: 'hf.co/audit/x', revision: 'main' }, (m) => warnings.push(m));
    expect(warnings).toHaveLength(1);
  });

  it('the gate judges stored revisions by their recorded origin', () => {
    const rule = policy.rules[0]!;
    const m = (annotations?: Record<string, string>) => ({ schemaVersion: 2 as const, config: { mediaType: 'a/b', digest: 'sha256:00' as const, size: 0 }, layers: [], ...(annotations ? { annotations } : {}) });
    expect(hubOriginFindings(rule, m({ 'dev.customs.hub.repository': 'acme/bert', 'dev.customs.hub.upstream': 'hf.co' }))).toEqual([{ rule: 'hub', check: 'hub', ok: true, reason: 'acme/bert (from hf.co) is in hub.allow' }]);
    expect(hubOriginFindings(rule, m({ 'dev.customs.hub.repository': 'evil/bert' }))[0]).toMatchObject({ ok: false, reason: expect.stringMatching(/evil\/bert .* is not in hub\.allow/) });
    expect(hubOriginFindings(rule, m())[0]).toMatchObject({ ok: false, reason: expect.stringMatching(/not a revision imported from a Hub upstream/) });
    expect(hubOriginFindings(policy.rules[3]!, m())).toEqual([]);
  });
});
