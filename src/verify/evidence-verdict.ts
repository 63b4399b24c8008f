import { createHash } from 'node:crypto';
import { EMPTY_JSON_DIGEST } from '../oci/media-types.js';
import { imageManifestSchema, type Descriptor } from '../oci/schemas.js';
import { errorText, type SubjectContext } from './evidence.js';
import { classifyLayer, readSbomLayer, verifyLayer, type LegacyKind } from './evidence-layer.js';
import { loadSubject, type Limits } from './gather.js';
import { sbomFormatOfMediaType } from './sbom.js';
import type { EvidencePolicy } from './policy.js';
import type { ResolvedAuthority } from './trust.js';
import type { ContentSource } from './types.js';

/**
 * Evidence verifies as evidence (DESIGN.md, "The gate's one rule"): a referrer of a subject, or a
 * cosign `sha256-<hex>.sig/.att/.sbom` tag manifest, is judged on its own bytes, never because its
 * subject is allowed. Every layer must be evidence this gate can check, and pass:
 * - a signature or attestation whose cryptographic check passes under the subject's trust policy
 *   (the same verifiers the gate uses; statements and signed digests must name the subject);
 * - an SBOM document (every such layer with an SBOM media type, parsing as that format, under a size
 *   cap), when the policy allows SBOMs unsigned (`policy.evidence.allowUnsigned`, default `[sbom]`).
 * Anything else (an unknown layer, a model's weights next to a valid signature, a config that is not
 * small JSON) makes the whole manifest unverified, so none of its blobs is served through it.
 */
export interface EvidenceJudgement {
  readonly ok: boolean;
  /** One line per layer (and the config, when it is not the empty one), saying what was checked. */
  readonly lines: readonly { readonly ok: boolean; readonly reason: string }[];
  /** `verified` when a signature or attestation verified; `unsigned-allowed` when only unsigned SBOMs. */
  readonly kind?: 'verified' | 'unsigned-allowed';
  /** Content was missing (a proxied blob not fetched yet): do not cache. */
  readonly incomplete: boolean;
}

/** Largest config blob an evidence manifest may carry (cosign's `.sig` image config is ~300 bytes). */
export const MAX_EVIDENCE_CONFIG_BYTES = 16 * 1024;

export interface EvidenceInput {
  readonly source: ContentSource;
  readonly repository: string;
  /** The referrer (or legacy tag) manifest being judged. */
  readonly digest: string;
  /** The digest it claims to be evidence about. */
  readonly subject: string;
  readonly legacy: LegacyKind | undefined;
  readonly authorities: ResolvedAuthority[];
  readonly policy: EvidencePolicy;
  readonly limits: Limits;
  readonly now: Date;
}

export async function judgeEvidence(i: EvidenceInput): Promise<EvidenceJudgement> {
  const fail = (reason: string, incomplete = false): EvidenceJudgement => ({ ok: false, lines: [{ ok: false, reason }], incomplete });
  const m = await i.source.getManifest(i.repository, i.digest);
  if (!m) return fail(`manifest ${i.digest} is not available`, true);
  let json: unknown;
  try {
    json = JSON.parse(m.bytes.toString('utf8'));
  } catch (e) {
    return fail(`manifest is not JSON: ${errorText(e)}`);
  }
  const parsed = imageManifestSchema.safeParse(json);
  if (!parsed.success) return fail('only image manifests are evidence (an index or another document is not)');
  const ref = parsed.data;
  if (ref.subject && ref.subject.digest !== i.subject) return fail(`its subject is ${ref.subject.digest}, not ${i.subject}`);
  if (!ref.subject && !i.legacy) return fail('it has no subject');
  if (ref.layers.length === 0) return fail('it has no layers: nothing that verifies');
  if (ref.layers.length > i.limits.maxLayersPerReferrer) return fail(`it has ${ref.layers.length} layers; evidence has at most ${i.limits.maxLayersPerReferrer}`);

  const subject = await loadSubject(i.source, i.repository, i.subject, i.authorities, i.now);
  if (typeof subject === 'string') return fail(subject, true);

  let incomplete = false;
  const read = async (d: Descriptor, max: number): Promise<Buffer | string> => {
    if (d.size > max) return `blob ${d.digest} is ${d.size} bytes, more than ${max}`;
    const b = await i.source.readBlob(i.repository, d.digest, max);
    if (!b) {
      incomplete = true;
      return `blob ${d.digest} is not available`;
    }
    if (`sha256:${createHash('sha256').update(b).digest('hex')}` !== d.digest) return `blob ${d.digest} does not match its digest`;
    return b;
  };

  const lines: { ok: boolean; reason: string }[] = [];
  let signed = false;
  const bad = (reason: string): void => void lines.push({ ok: false, reason });
  const good = (reason: string): void => void lines.push({ ok: true, reason });

  // The config is served with the manifest: it must be the empty descriptor or a small JSON document.
  if (ref.config.digest !== EMPTY_JSON_DIGEST) {
    const c = await read(ref.config, MAX_EVIDENCE_CONFIG_BYTES);
    if (typeof c === 'string') bad(`config: ${c}`);
    else if (!isJson(c)) bad(`config ${ref.config.digest} is not JSON`);
  }

  const artifactType = ref.artifactType ?? ref.config.mediaType;
  for (const [n, layer] of ref.layers.entries()) {
    const at = `layer ${n} (${layer.mediaType})`;
    const kind = classifyLayer({ mediaType: layer.mediaType, annotations: layer.annotations ?? {} }, artifactType, i.legacy);
    if (kind.kind === 'unknown') {
      bad(`${at} is not evidence this gate can verify`);
      continue;
    }
    if (kind.kind === 'unsupported') {
      bad(`${at}: ${kind.reason}`);
      continue;
    }
    if (kind.kind === 'sbom') {
      if (!sbomFormatOfMediaType(layer.mediaType)) {
        // The artifact says SBOM, the layer does not: an unsigned SBOM is served only when every layer says what it is.
        bad(`${at} is not an SBOM media type (an unsigned SBOM's every layer must have one, e.g. application/vnd.cyclonedx+json)`);
        continue;
      }
      if (!i.policy.allowUnsigned.includes('sbom')) {
        bad(`${at}: unsigned SBOMs are not allowed by policy.evidence.allowUnsigned`);
        continue;
      }
      const b = await read(layer, i.policy.maxUnsignedBytes);
      if (typeof b === 'string') {
        bad(`${at}: ${b}`);
        continue;
      }
      const r = await readSbomLayer(b, kind.format);
      if ('error' in r) bad(`${at}: ${r.error}`);
      else good(`${at}: ${r.summary.format} ${r.summary.version} SBOM with ${r.summary.components} component(s), accepted unsigned`);
      continue;
    }
    const b = await read(layer, i.limits.maxBlobBytes);
    if (typeof b === 'string') {
      bad(`${at}: ${b}`);
      continue;
    }
    const outs = verifyLayer(kind, b, subject satisfies SubjectContext);
    const passed = outs.find((o) => o.ok);
    if (passed?.ok) {
      signed = true;
      good(`${at}: ${passed.format} by ${passed.signer} verified for ${i.subject}`);
    } else {
      bad(`${at}: ${kind.kind} does not verify: ${[...new Set(outs.map((o) => (o.ok ? '' : o.reason)))].join('; ').slice(0, 500)}`);
    }
  }
  const ok = lines.every((l) => l.ok);
  return ok ? { ok, lines, kind: signed ? 'verified' : 'unsigned-allowed', incomplete } : { ok, lines, incomplete };
}

function isJson(b: Buffer): boolean {
  try {
    JSON.parse(b.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}
