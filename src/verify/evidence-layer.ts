import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { DSSE_LAYER, SIMPLE_SIGNING, verifyCosignAttestationLayer, verifyCosignSignatureLayer } from './cosign-legacy.js';
import { errorText, rejected, type Outcome, type SubjectContext } from './evidence.js';
import { COSE_MEDIA_TYPE, JWS_MEDIA_TYPE, NOTATION_ARTIFACT_TYPE, verifyNotationJws } from './notation.js';
import { sbomFormatOfMediaType, summarizeSbom, type SbomFormat, type SbomSummary } from './sbom.js';
import { isSigstoreBundleType, verifySigstoreBundle } from './sigstore.js';

/** How a referrer was found: through `subject` (undefined) or a cosign legacy `sha256-<hex>.sig/.att/.sbom` tag. */
export type LegacyKind = 'sig' | 'att' | 'sbom';

/** One layer of a referrer manifest, as the verifiers see it. */
export interface EvidenceLayer {
  readonly mediaType: string;
  readonly annotations: Readonly<Record<string, string>>;
}

/**
 * What a layer of a referrer is, decided from its media type (and the manifest's artifact
 * type) alone, before any byte is read: a signature or attestation that a verifier checks
 * against the subject, an SBOM document, or nothing this gate understands.
 */
export type LayerKind =
  | { readonly kind: 'signature' | 'attestation'; readonly verify: (blob: Buffer, subject: SubjectContext) => Outcome[] }
  | { readonly kind: 'sbom'; readonly format: SbomFormat }
  | { readonly kind: 'unsupported'; readonly format: string; readonly reason: string }
  | { readonly kind: 'unknown' };

export function classifyLayer(layer: EvidenceLayer, artifactType: string | undefined, legacy: LegacyKind | undefined): LayerKind {
  const mt = layer.mediaType;
  if (legacy === 'sig' || (!legacy && mt === SIMPLE_SIGNING)) {
    return { kind: 'signature', verify: (blob, s) => verifyCosignSignatureLayer({ mediaType: mt, annotations: layer.annotations, blob }, s) };
  }
  if (legacy === 'att' || mt === DSSE_LAYER) {
    return { kind: 'attestation', verify: (blob, s) => verifyCosignAttestationLayer({ mediaType: mt, annotations: layer.annotations, blob }, s) };
  }
  if (isSigstoreBundleType(mt) || isSigstoreBundleType(artifactType)) {
    // A bundle holds either a message signature or a DSSE statement; the verifier tells which.
    return { kind: 'signature', verify: (blob, s) => verifySigstoreBundle(blob, s) };
  }
  if (artifactType === NOTATION_ARTIFACT_TYPE) {
    if (mt === JWS_MEDIA_TYPE) return { kind: 'signature', verify: (blob, s) => verifyNotationJws(blob, s) };
    if (mt === COSE_MEDIA_TYPE) return { kind: 'unsupported', format: 'notation signature', reason: 'notation COSE envelopes are not supported; sign with --signature-format jws' };
  }
  const sbom = sbomFormatOfMediaType(mt) ?? (legacy === 'sbom' ? undefined : sbomFormatOfMediaType(artifactType));
  if (sbom) return { kind: 'sbom', format: sbom };
  return { kind: 'unknown' };
}

/** Verifies a signature/attestation layer; anything thrown is a rejection (fail closed). */
export function verifyLayer(kind: Extract<LayerKind, { verify: unknown }>, blob: Buffer, subject: SubjectContext): Outcome[] {
  try {
    return kind.verify(blob, subject);
  } catch (e) {
    return [rejected(kind.kind, errorText(e))];
  }
}

/**
 * SBOM documents are immutable and can be megabytes (a Python environment's is ~8 MB); validating one against
 * the CycloneDX schema takes seconds, and a subject's verdict is recomputed whenever a referrer arrives. So
 * each document is judged once, by its digest.
 */
const sbomResults = new LRUCache<string, { summary: SbomSummary } | { error: string }>({ max: 512 });

/** Parses and validates an SBOM layer; the reason when it is not one. */
export async function readSbomLayer(blob: Buffer, format: SbomFormat): Promise<{ summary: SbomSummary } | { error: string }> {
  const key = `${format} ${createHash('sha256').update(blob).digest('hex')}`;
  const hit = sbomResults.get(key);
  if (hit) return hit;
  const r = await judgeSbom(blob, format);
  sbomResults.set(key, r);
  return r;
}

async function judgeSbom(blob: Buffer, format: SbomFormat): Promise<{ summary: SbomSummary } | { error: string }> {
  let doc: unknown;
  try {
    doc = JSON.parse(blob.toString('utf8'));
  } catch (e) {
    return { error: `SBOM is not JSON: ${errorText(e)}` };
  }
  try {
    return { summary: await summarizeSbom(doc, format) };
  } catch (e) {
    return { error: errorText(e) };
  }
}
