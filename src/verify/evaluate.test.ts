import { describe, expect, it } from 'vitest';
import { enforceVerdict } from './gate.js';
import { matchCount } from './evaluate.js';
import { globMatch, globMatchCi } from './glob.js';
import type { Verdict } from './types.js';

describe('threshold counting', () => {
  it('counts a maximum matching of authorities to distinct signatures', () => {
    const s = (authority: string, evidence: string) => ({ authority, evidence });
    expect(matchCount([s('a', '1'), s('b', '1')])).toBe(1);
    expect(matchCount([s('a', '1'), s('a', '2')])).toBe(1);
    expect(matchCount([s('a', '1'), s('b', '2')])).toBe(2);
    // a, b, c share one signature; d has two: the matching is 2, not min(4 authorities, 3 signatures).
    expect(matchCount([s('a', '1'), s('b', '1'), s('c', '1'), s('d', '2'), s('d', '3')])).toBe(2);
    // Needs an augmenting path: a takes 1 first, then b can only have 1, so a moves to 2.
    expect(matchCount([s('a', '1'), s('a', '2'), s('b', '1')])).toBe(2);
  });
});

describe('globs', () => {
  it('repository globs: * stays in a segment, ** crosses, a/** includes a', () => {
    expect(globMatch('models/*', 'models/x')).toBe(true);
    expect(globMatch('models/*', 'models/x/y')).toBe(false);
    expect(globMatch('models/**', 'models/x/y')).toBe(true);
    expect(globMatch('models/**', 'models')).toBe(true);
    expect(globMatch('models/**', 'modelsx')).toBe(false);
    expect(globMatch('a.b', 'axb')).toBe(false);
  });
  it('license and purl globs are flat and case-insensitive', () => {
    expect(globMatchCi('gpl-*', 'GPL-3.0-only')).toBe(true);
    expect(globMatchCi('pkg:golang/*', 'pkg:golang/github.com/x/y@v1')).toBe(true);
    expect(globMatchCi('MIT', 'MIT-0')).toBe(false);
  });
});

describe('enforceVerdict', () => {
  const base: Verdict = { digest: 'sha256:x', repository: 'r', allowed: false, mode: 'enforce', wouldDeny: true, findings: [{ rule: 'models', check: 'signatures', ok: false, reason: 'no signature found' }, { rule: 'models', check: 'sbom', ok: true, reason: 'fine' }], policyHash: 'p', trustHash: 't', rule: 'models', referrers: [], checkedAt: '' };
  it('throws DENIED with the failed findings as detail', () => {
    try {
      enforceVerdict(base);
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: 'DENIED', detail: { rule: 'models', findings: [{ check: 'signatures', reason: 'no signature found' }] } });
    }
  });
  it('audit: serves and returns the findings for the header', () => {
    expect(enforceVerdict({ ...base, allowed: true, mode: 'audit' })).toEqual({ auditFindings: ['models signatures: no signature found'] });
    expect(enforceVerdict({ ...base, allowed: true, wouldDeny: false, findings: [] })).toEqual({});
  });
});
