import { describe, expect, it } from 'vitest';
import { VerdictBadge } from './components.js';

const render = (p: Parameters<typeof VerdictBadge>[0]) => String(VerdictBadge(p));
const failed = [{ ok: false, reason: 'no signature found' }];

describe('verdict badge', () => {
  it('says quarantined first, then denied, audit findings or allowed, with the failed findings as its title', () => {
    expect(render({ quarantined: true, verdict: { allowed: true, wouldDeny: false, findings: [] } })).toContain('>quarantined<');
    expect(render({ quarantined: false, verdict: { allowed: false, wouldDeny: true, findings: failed } })).toBe('<span class="badge b-denied" title="no signature found">denied</span>');
    expect(render({ quarantined: false, verdict: { allowed: true, wouldDeny: true, findings: failed } })).toBe('<span class="badge b-audit" title="no signature found">audit findings</span>');
    expect(render({ quarantined: false, verdict: { allowed: true, wouldDeny: false, findings: [{ ok: true, reason: 'ok' }] } })).toContain('>allowed<');
    expect(render({ quarantined: false, verdict: undefined })).toContain('not checked');
  });
});
