import { createHash } from 'node:crypto';
import { z } from 'zod';
import { isValidCel } from './cel.js';
import { globMatch, globSpecificity } from './glob.js';
import { parsePickleAllowEntry } from './pickle-allow.js';
import type { Mode } from './types.js';

/**
 * The `policy` slice of the configuration file. Exported as a zod schema so that
 * src/config embeds it: an error then carries the path (`policy.rules.0.signatures...`).
 */

const nonEmpty = z.string().min(1);

/** A signer: a public key, a keyless (Fulcio) identity, an x509 chain, or the keys in <data>/trust/keys. */
const keyAuthority = z.strictObject({
  name: nonEmpty.optional(),
  /** PEM text, or a path to a PEM file (relative to the config file's directory). */
  key: nonEmpty,
  /** Only needed when tlog/timestamp thresholds are > 0: the root that holds the log keys. */
  trustedRoot: nonEmpty.optional(),
  tlogThreshold: z.number().int().min(0).default(0),
  timestampThreshold: z.number().int().min(0).default(0),
});

const keylessAuthority = z.strictObject({
  name: nonEmpty.optional(),
  keyless: z
    .strictObject({
      issuer: nonEmpty,
      subject: nonEmpty.optional(),
      /** Always anchored: `^(?:regex)$` (sigstore documents its regexes as unanchored). */
      subjectRegex: nonEmpty.optional(),
    })
    .refine((k) => (k.subject === undefined) !== (k.subjectRegex === undefined), 'give exactly one of subject or subjectRegex')
    .refine((k) => k.subjectRegex === undefined || isRegExp(k.subjectRegex), 'subjectRegex is not a valid regular expression'),
  /** Path to a trusted_root.json; custom roots are the norm offline. Defaults to <data>/trust/trusted_root.json. */
  trustedRoot: nonEmpty.optional(),
  // Keyless without a timestamp would mean no check of the certificate's validity window.
  tlogThreshold: z.number().int().min(0).default(1),
  timestampThreshold: z.number().int().min(1, 'keyless needs at least one verified timestamp').default(1),
  ctlogThreshold: z.number().int().min(0).default(1),
});

const x509Authority = z.strictObject({
  name: nonEmpty.optional(),
  x509: z.strictObject({
    /** PEM text, a PEM file, or a directory of PEM files: the trust store (notation, cosign PKI). */
    roots: nonEmpty,
    /** Optional identity: exact match against the leaf's subject DN or any SAN value. */
    subject: nonEmpty.optional(),
  }),
});

const trustedKeysAuthority = z.strictObject({
  name: nonEmpty.optional(),
  /** Any public key in <data>/trust/keys/ (what `customs keygen` writes). */
  trustedKeys: z.literal(true),
});

export const authoritySchema = z.union([keyAuthority, keylessAuthority, x509Authority, trustedKeysAuthority]);
export type Authority = z.infer<typeof authoritySchema>;
export type AuthorityInput = z.input<typeof authoritySchema>;

const globs = z.union([nonEmpty, z.array(nonEmpty).min(1)]).transform((g) => (Array.isArray(g) ? g : [g]));

export const attestationRequirementSchema = z.strictObject({
  /** Prefix match: `https://slsa.dev/provenance/` accepts v0.2 and v1. */
  predicateType: nonEmpty,
  authorities: z.array(authoritySchema).min(1),
  /** CEL over the in-toto statement (`_type`, `subject`, `predicateType`, `predicate`); all must be true. */
  conditions: z.array(nonEmpty.refine(isValidCel, 'invalid CEL expression')).default([]),
});

export const ruleSchema = z.strictObject({
  name: nonEmpty.optional(),
  match: globs,
  mode: z.enum(['enforce', 'audit', 'off']).default('enforce'),
  signatures: z
    .strictObject({
      threshold: z.number().int().min(1).default(1),
      authorities: z.array(authoritySchema).min(1),
    })
    .refine((s) => s.threshold <= s.authorities.length, 'threshold exceeds the number of authorities')
    .optional(),
  attestations: z.array(attestationRequirementSchema).optional(),
  sbom: z
    .strictObject({
      required: z.boolean().default(true),
      denyLicenses: z.array(nonEmpty).default([]),
      denyPurls: z.array(nonEmpty).default([]),
    })
    .optional(),
  model: z
    .strictObject({
      allowLicenses: z.array(nonEmpty).optional(),
      allowFormats: z.array(nonEmpty).optional(),
      pickleScan: z.boolean().default(true),
      /**
       * Extra globals the pickle scanner accepts, as exact `module:name` pairs (`module.name` is read
       * as split at its last dot). Globs were accepted before and are refused now: a glob over a
       * package admits every callable in it.
       */
      pickleAllow: z
        .array(
          nonEmpty.superRefine((s, ctx) => {
            const p = parsePickleAllowEntry(s);
            if (typeof p === 'string') ctx.addIssue({ code: 'custom', message: p });
          }),
        )
        .default([]),
    })
    .optional(),
  /** What content pulled through from a Hugging Face Hub (`hub.upstreams`) may be; see hub-origin.ts. */
  hub: z
    .strictObject({
      /** Upstream revisions only by full commit sha: a branch or tag name is refused before the upstream is asked. */
      requireRevisionPin: z.boolean().default(false),
      /** Upstream repositories admitted (`org/model`, `org/*`; case-insensitive). Absent: any. */
      allow: z.array(nonEmpty).min(1).optional(),
    })
    .optional(),
});
export type Rule = z.infer<typeof ruleSchema>;

/**
 * What may be served as evidence without a signature of its own (DESIGN.md, "The gate's one rule").
 * Signatures and attestations always verify cryptographically; SBOM documents (CycloneDX, SPDX) are
 * the one evidence type commonly attached unsigned (`oras attach`, `cosign attach sbom`), so they are
 * allowed unsigned by default, when every layer is an SBOM that parses and is under the size cap.
 */
export const evidencePolicySchema = z.strictObject({
  allowUnsigned: z.array(z.enum(['sbom'])).default(['sbom']),
  maxUnsignedBytes: z.number().int().positive().default(16 * 1024 * 1024),
});
export type EvidencePolicy = z.infer<typeof evidencePolicySchema>;

export const policySchema = z.strictObject({
  /** What happens to a repository no rule matches. */
  default: z.enum(['deny', 'allow']).default('deny'),
  /** Overrides the mode of every rule and of the default (what `--gate` sets). */
  mode: z.enum(['enforce', 'audit', 'off']).optional(),
  rules: z.array(ruleSchema).default([]),
  evidence: evidencePolicySchema.default({ allowUnsigned: ['sbom'], maxUnsignedBytes: 16 * 1024 * 1024 }),
});
export type Policy = z.infer<typeof policySchema>;
export type PolicyInput = z.input<typeof policySchema>;

export const ruleName = (rule: Rule): string => rule.name ?? rule.match[0]!;

/** Parses a policy; errors name the path, e.g. `rules.0.signatures.authorities.1.keyless.subjectRegex`. */
export function parsePolicy(input: unknown): Policy {
  const r = policySchema.safeParse(input);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `policy.${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid policy:\n${lines.join('\n')}`);
  }
  return r.data;
}

/** With no config file: every repository enforced, one valid signature by any key in <data>/trust/keys/. */
export function defaultPolicy(): Policy {
  return parsePolicy({
    default: 'deny',
    rules: [{ name: 'default', match: '**', mode: 'enforce', signatures: { threshold: 1, authorities: [{ trustedKeys: true }] } }],
  });
}

/**
 * `customs serve --gate enforce|audit|off`: the mode of every rule, and of the default for
 * unmatched repositories (so `--gate off` serves everything, `audit` flags what deny would refuse).
 */
export function withMode(policy: Policy, mode: Mode): Policy {
  return { ...policy, mode, rules: policy.rules.map((r) => ({ ...r, mode })) };
}

/** The most specific matching glob wins; ties go to the rule listed first. */
export function matchRule(policy: Policy, repository: string): Rule | undefined {
  let best: Rule | undefined;
  let bestScore = -Infinity;
  for (const rule of policy.rules) {
    for (const g of rule.match) {
      if (!globMatch(g, repository)) continue;
      const s = globSpecificity(g);
      if (s > bestScore) {
        best = rule;
        bestScore = s;
      }
    }
  }
  return best;
}

/** sha256 over the canonical JSON of the parsed policy (key order does not change it). */
export function policyHash(policy: Policy): string {
  return `sha256:${createHash('sha256').update(canonicalJson(policy)).digest('hex')}`;
}

export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Anchors an identity regex: `a|b` must not match `xa` or `bx`. */
export const anchored = (re: string): RegExp => new RegExp(`^(?:${re})$`);

function isRegExp(s: string): boolean {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
}
