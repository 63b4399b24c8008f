import { createHash } from 'node:crypto';
import { imageManifestSchema } from '../../src/oci/schemas.js';
import type { SubjectContext } from '../../src/verify/evidence.js';
import { parsePolicy, type Authority } from '../../src/verify/policy.js';
import { loadTrust, type ResolvedAuthority } from '../../src/verify/trust.js';

/** Test support for src/verify: vectors, resolved authorities, subject contexts. */
export const VECTORS = '/work/shared/vectors';
export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export function authorities(list: Authority[], dataDir = '/nonexistent'): ResolvedAuthority[] {
  const policy = parsePolicy({ rules: [{ match: '**', signatures: { threshold: 1, authorities: list } }] });
  const trust = loadTrust(policy, { dataDir, baseDir: VECTORS });
  return policy.rules[0]!.signatures!.authorities.map((a) => trust.authority(a));
}

export function subjectContext(manifest: Buffer, auth: ResolvedAuthority[], now = new Date()): SubjectContext {
  let parsed;
  try {
    parsed = imageManifestSchema.safeParse(JSON.parse(manifest.toString()));
  } catch {
    parsed = undefined;
  }
  return { digest: sha256(manifest), bytes: manifest, authorities: auth, now, ...(parsed?.success ? { manifest: parsed.data } : {}) };
}
