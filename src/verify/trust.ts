import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toTrustMaterial, type TrustMaterial } from '@sigstore/verify';
import { z } from 'zod';
import { anchored, canonicalJson, type Authority, type Policy } from './policy.js';

/**
 * Loading trust material is I/O and happens once per (re)load; the verifiers then
 * judge synchronously over what this file produced (sigstore-js keeps the same split).
 */

const b64 = z.string().regex(/^[A-Za-z0-9+/=_-]*$/, 'must be base64');
const timeRange = z.looseObject({ start: z.string().optional(), end: z.string().optional() });
const publicKeyJson = z.looseObject({ rawBytes: b64, keyDetails: z.string(), validFor: timeRange.optional() });
const tlogJson = z.looseObject({
  baseUrl: z.string(),
  hashAlgorithm: z.string(),
  publicKey: publicKeyJson,
  logId: z.looseObject({ keyId: b64 }),
});
const caJson = z.looseObject({
  subject: z.looseObject({}).optional(),
  uri: z.string().optional(),
  certChain: z.looseObject({ certificates: z.array(z.looseObject({ rawBytes: b64 })).min(1) }),
  validFor: timeRange.optional(),
});
/** The shape of sigstore's trusted_root.json (protobuf-specs TrustedRoot, JSON form). */
export const trustedRootSchema = z.looseObject({
  mediaType: z.string().startsWith('application/vnd.dev.sigstore.trustedroot'),
  tlogs: z.array(tlogJson).default([]),
  certificateAuthorities: z.array(caJson).default([]),
  ctlogs: z.array(tlogJson).default([]),
  timestampAuthorities: z.array(caJson).default([]),
});

export interface SigstoreRoot {
  readonly path: string;
  readonly material: TrustMaterial;
  readonly bytes: Buffer;
}

export interface TrustedKey {
  readonly key: KeyObject;
  /** sha256 of the SPKI DER, hex: how findings name a key. */
  readonly fingerprint: string;
  readonly source: string;
}

export type ResolvedAuthority =
  | {
      kind: 'keys';
      id: string;
      label: string;
      keys: TrustedKey[];
      root?: SigstoreRoot;
      tlogThreshold: number;
      timestampThreshold: number;
      /** Signatures by these keys count only on an in-toto statement of this predicate type (customs' verifier key: its VSAs). */
      onlyPredicateType?: string;
    }
  | {
      kind: 'keyless';
      id: string;
      label: string;
      issuer: string;
      subject?: string;
      subjectRegex?: RegExp;
      root: SigstoreRoot;
      tlogThreshold: number;
      timestampThreshold: number;
      ctlogThreshold: number;
    }
  | { kind: 'x509'; id: string; label: string; roots: X509Certificate[]; subject?: string };

export interface Trust {
  /** Resolved material for an authority of the policy this trust was loaded for. */
  authority(a: Authority): ResolvedAuthority;
  /** Changes whenever a key, root or trust store changes: part of the verdict cache key. */
  readonly hash: string;
  /**
   * customs' own verifier key, restricted to SLSA verification summaries: the authority under which
   * the summaries customs attaches verify as evidence for their subject (never a signature of the subject).
   */
  readonly verifier?: ResolvedAuthority;
}

export interface LoadTrustOptions {
  /** The data directory: `<data>/trust/keys/` and `<data>/trust/trusted_root.json`. */
  dataDir: string;
  /** Where relative paths in the policy are resolved (the config file's directory). */
  baseDir?: string;
  /** customs' verifier public key (`<data>/trust/verifier.key`'s), when it signs verification summaries. */
  verifierKey?: KeyObject;
}

/** The predicate type of SLSA verification summaries, the one statement customs' verifier key signs. */
export const VSA_PREDICATE_TYPE = 'https://slsa.dev/verification_summary/v1';

export const trustKeysDir = (dataDir: string): string => join(dataDir, 'trust', 'keys');

/** Loads every key, root and trust store the policy names. Throws on a missing or malformed file. */
export function loadTrust(policy: Policy, opts: LoadTrustOptions): Trust {
  const baseDir = opts.baseDir ?? process.cwd();
  const byId = new Map<string, ResolvedAuthority>();
  const roots = new Map<string, SigstoreRoot>();
  const path = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const root = (p: string | undefined): SigstoreRoot => {
    const file = p ? path(p) : join(opts.dataDir, 'trust', 'trusted_root.json');
    let r = roots.get(file);
    if (!r) {
      r = loadSigstoreRoot(file);
      roots.set(file, r);
    }
    return r;
  };
  const all: Authority[] = [];
  for (const rule of policy.rules) {
    all.push(...(rule.signatures?.authorities ?? []));
    for (const att of rule.attestations ?? []) all.push(...att.authorities);
  }
  for (const a of all) {
    const id = authorityId(a);
    if (byId.has(id)) continue;
    byId.set(id, resolveAuthority(a, id, { path, root, dataDir: opts.dataDir }));
  }
  const hash = createHash('sha256');
  for (const id of [...byId.keys()].sort()) {
    const r = byId.get(id)!;
    hash.update(id);
    if (r.kind === 'keys') for (const k of r.keys) hash.update(k.fingerprint);
    if (r.kind === 'keys' || r.kind === 'keyless') hash.update(r.root?.bytes ?? '');
    if (r.kind === 'x509') for (const c of r.roots) hash.update(c.fingerprint256);
  }
  const verifier = opts.verifierKey ? verifierAuthority(opts.verifierKey) : undefined;
  if (verifier?.kind === 'keys') hash.update(`verifier ${verifier.keys[0]!.fingerprint}`);
  const digest = `sha256:${hash.digest('hex')}`;
  return {
    hash: digest,
    ...(verifier ? { verifier } : {}),
    authority(a: Authority): ResolvedAuthority {
      const r = byId.get(authorityId(a));
      if (!r) throw new Error(`authority not loaded: ${labelOf(a)}`);
      return r;
    },
  };
}

/** customs' own key as an authority that vouches for nothing but its verification summaries. */
export function verifierAuthority(key: KeyObject): ResolvedAuthority {
  const k = toTrustedKey(key.export({ type: 'spki', format: 'pem' }).toString(), 'customs verifier key');
  return { kind: 'keys', id: `customs-verifier:${k.fingerprint}`, label: 'customs verifier key', keys: [k], tlogThreshold: 0, timestampThreshold: 0, onlyPredicateType: VSA_PREDICATE_TYPE };
}

const ids = new WeakMap<object, string>();
export function authorityId(a: Authority): string {
  let id = ids.get(a);
  if (!id) {
    id = canonicalJson(a);
    ids.set(a, id);
  }
  return id;
}

export function labelOf(a: Authority): string {
  if (a.name) return a.name;
  if ('trustedKeys' in a) return 'trusted keys';
  if ('keyless' in a) return `keyless ${a.keyless.issuer} ${a.keyless.subject ?? `~${a.keyless.subjectRegex}`}`;
  if ('x509' in a) return `x509 ${a.x509.subject ?? a.x509.roots.slice(0, 40)}`;
  return a.key.includes('-----BEGIN') ? 'public key (inline)' : `public key ${a.key}`;
}

interface ResolveCtx {
  path(p: string): string;
  root(p: string | undefined): SigstoreRoot;
  dataDir: string;
}

function resolveAuthority(a: Authority, id: string, ctx: ResolveCtx): ResolvedAuthority {
  const label = labelOf(a);
  if ('trustedKeys' in a) {
    return { kind: 'keys', id, label, keys: loadKeyDir(trustKeysDir(ctx.dataDir)), tlogThreshold: 0, timestampThreshold: 0 };
  }
  if ('keyless' in a) {
    const { issuer, subject, subjectRegex } = a.keyless;
    return {
      kind: 'keyless',
      id,
      label,
      issuer,
      ...(subject !== undefined ? { subject } : {}),
      ...(subjectRegex !== undefined ? { subjectRegex: anchored(subjectRegex) } : {}),
      root: ctx.root(a.trustedRoot),
      tlogThreshold: a.tlogThreshold,
      timestampThreshold: a.timestampThreshold,
      ctlogThreshold: a.ctlogThreshold,
    };
  }
  if ('x509' in a) {
    const roots = loadCertificates(pemOrPath(a.x509.roots, ctx.path));
    if (roots.length === 0) throw new Error(`no certificates in ${a.x509.roots}`);
    return { kind: 'x509', id, label, roots, ...(a.x509.subject !== undefined ? { subject: a.x509.subject } : {}) };
  }
  const pem = pemOrPath(a.key, ctx.path);
  const keys = [toTrustedKey(pem, a.key.includes('-----BEGIN') ? 'inline' : a.key)];
  const needsRoot = a.tlogThreshold > 0 || a.timestampThreshold > 0 || a.trustedRoot !== undefined;
  return {
    kind: 'keys',
    id,
    label,
    keys,
    ...(needsRoot ? { root: ctx.root(a.trustedRoot) } : {}),
    tlogThreshold: a.tlogThreshold,
    timestampThreshold: a.timestampThreshold,
  };
}

/** PEM text is used as is; anything else is a path (file, or directory of *.pem/*.crt). */
function pemOrPath(v: string, path: (p: string) => string): string {
  if (v.includes('-----BEGIN')) return v;
  const p = path(v);
  if (statSync(p).isDirectory()) {
    return readdirSync(p)
      .filter((f) => /\.(pem|crt|pub)$/.test(f))
      .sort()
      .map((f) => readFileSync(join(p, f), 'utf8'))
      .join('\n');
  }
  return readFileSync(p, 'utf8');
}

export function toTrustedKey(pem: string, source: string): TrustedKey {
  const key = createPublicKey(pem);
  const der = key.export({ type: 'spki', format: 'der' });
  return { key, fingerprint: createHash('sha256').update(der).digest('hex'), source };
}

/** `<data>/trust/keys/*.pem|*.pub`; a missing directory is an empty set (the gate then denies). */
export function loadKeyDir(dir: string): TrustedKey[] {
  if (!existsSync(dir)) return [];
  const out: TrustedKey[] = [];
  for (const f of readdirSync(dir).sort()) {
    if (!/\.(pem|pub)$/.test(f)) continue;
    const text = readFileSync(join(dir, f), 'utf8');
    if (text.includes('PRIVATE KEY')) continue; // keygen writes the private key elsewhere, but be safe
    out.push(toTrustedKey(text, join(dir, f)));
  }
  return out;
}

export function loadCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

/** Validates the shape with zod, then builds @sigstore/verify trust material. */
export function loadSigstoreRoot(file: string): SigstoreRoot {
  const bytes = readFileSync(file);
  return { path: file, bytes, material: parseSigstoreRoot(bytes, file) };
}

export function parseSigstoreRoot(bytes: Buffer | string, where = 'trusted_root.json'): TrustMaterial {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString());
  } catch (e) {
    throw new Error(`${where}: not JSON: ${(e as Error).message}`);
  }
  const r = trustedRootSchema.safeParse(json);
  if (!r.success) throw new Error(`${where}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return toTrustMaterial(TrustedRoot.fromJSON(r.data));
}
