import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { defaultPolicy, matchRule, parsePolicy, policyHash, withMode } from './policy.js';

const EXAMPLE = `
default: deny
rules:
  - name: models
    match: ["models/**"]
    mode: enforce
    signatures:
      threshold: 1
      authorities:
        - key: /etc/customs/keys/release.pub
        - keyless: { issuer: https://token.actions.githubusercontent.com, subjectRegex: "https://github.com/acme/.+" }
          trustedRoot: /etc/customs/trusted_root.json
    attestations:
      - predicateType: https://slsa.dev/provenance/
        authorities: [{ key: /etc/customs/keys/ci.pub }]
        conditions:
          - predicate.runDetails.builder.id == "https://ci.example/builder"
    sbom: { required: true, denyLicenses: ["AGPL-*"], denyPurls: ["pkg:pypi/evil@*"] }
    model: { allowLicenses: [Apache-2.0, MIT], allowFormats: [safetensors, gguf], pickleScan: true }
  - match: "models/llama/*"
    mode: audit
  - match: "**"
    mode: "off"
`;

describe('policy schema', () => {
  it('parses the documented example with defaults filled in', () => {
    const p = parsePolicy(parse(EXAMPLE));
    expect(p.rules[0]!.signatures!.authorities[1]).toMatchObject({ tlogThreshold: 1, timestampThreshold: 1, ctlogThreshold: 1 });
    expect(p.rules[0]!.signatures!.authorities[0]).toMatchObject({ tlogThreshold: 0, timestampThreshold: 0 });
    expect(p.rules[0]!.model!.pickleAllow).toEqual([]);
  });
  it('errors point at the bad path', () => {
    const bad = parse(EXAMPLE);
    bad.rules[0].signatures.authorities[1].keyless.subjectRegex = '(';
    expect(() => parsePolicy(bad)).toThrow(/policy\.rules\.0\.signatures\.authorities\.1/);
    const bad2 = parse(EXAMPLE);
    bad2.rules[0].attestations[0].conditions[0] = 'predicate.x ==';
    expect(() => parsePolicy(bad2)).toThrow(/policy\.rules\.0\.attestations\.0\.conditions\.0: invalid CEL/);
    expect(() => parsePolicy({ rules: [{ match: '**', mode: 'sometimes' }] })).toThrow(/policy\.rules\.0\.mode/);
    expect(() => parsePolicy({ rules: [{ match: '**', signatures: { threshold: 2, authorities: [{ trustedKeys: true }] } }] })).toThrow(/threshold exceeds/);
    expect(() => parsePolicy({ rules: [{ match: '**', typo: 1 }] })).toThrow(/typo/);
    expect(() => parsePolicy({ rules: [{ match: '**', signatures: { authorities: [{ keyless: { issuer: 'x', subject: 'a', subjectRegex: 'b' } }] } }] })).toThrow(/exactly one/);
    expect(() => parsePolicy({ rules: [{ match: '**', signatures: { authorities: [{ keyless: { issuer: 'x', subject: 'a' }, timestampThreshold: 0 }] } }] })).toThrow(/timestamp/);
  });
  it('model.pickleAllow takes exact module:name pairs (and the older module.name); globs are refused', () => {
    expect(parsePolicy({ rules: [{ match: '**', model: { pickleAllow: ['mypkg.models:Net', 'argparse.Namespace'] } }] }).rules[0]!.model!.pickleAllow).toEqual(['mypkg.models:Net', 'argparse.Namespace']);
    expect(() => parsePolicy({ rules: [{ match: '**', model: { pickleAllow: ['sklearn.*'] } }] })).toThrow(/policy\.rules\.0\.model\.pickleAllow\.0: "sklearn\.\*" is a glob/);
    expect(() => parsePolicy({ rules: [{ match: '**', model: { pickleAllow: ['os system'] } }] })).toThrow(/not module:name/);
  });
  it('parsing is idempotent (the config loader may embed policySchema, buildGate parses again)', () => {
    const p = parsePolicy(parse(EXAMPLE));
    expect(parsePolicy(p)).toEqual(p);
    expect(policyHash(parsePolicy(p))).toBe(policyHash(p));
  });
  it('the most specific glob wins, whatever the order', () => {
    const p = parsePolicy(parse(EXAMPLE));
    expect(matchRule(p, 'models/llama/7b')?.mode).toBe('audit');
    expect(matchRule(p, 'models/llama/7b/q4')?.name).toBe('models');
    expect(matchRule(p, 'models')?.name).toBe('models');
    expect(matchRule(p, 'library/alpine')?.mode).toBe('off');
    expect(matchRule(parsePolicy({ rules: [{ match: 'a/*' }] }), 'b/c')).toBeUndefined();
    expect(matchRule(parsePolicy({ rules: [{ match: 'a/*' }] }), 'a/b/c')).toBeUndefined();
  });
  it('defaultPolicy: every repository enforced, one signature by a trusted key', () => {
    const p = defaultPolicy();
    expect(matchRule(p, 'any/thing')).toMatchObject({ mode: 'enforce', signatures: { threshold: 1, authorities: [{ trustedKeys: true }] } });
  });
  it('withMode overrides every rule and changes the hash; key order does not', () => {
    const p = parsePolicy(parse(EXAMPLE));
    const off = withMode(p, 'off');
    expect(off.rules.every((r) => r.mode === 'off')).toBe(true);
    expect(policyHash(off)).not.toBe(policyHash(p));
    const reordered = parsePolicy(JSON.parse(JSON.stringify({ rules: parse(EXAMPLE).rules, default: 'deny' })));
    expect(policyHash(reordered)).toBe(policyHash(p));
  });
});
