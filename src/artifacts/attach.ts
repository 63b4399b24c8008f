import { readFile, stat } from 'node:fs/promises';
import { err, parseDigest, parseRepoReference, referenceString, type Descriptor } from '../oci/index.js';
import type { RegistryClient } from './client.js';
import { DSSE_ENVELOPE_MEDIA_TYPE, InToto, SbomMediaType } from './media-types.js';
import { creationTime } from './push.js';
import { pushBundle, pushReferrerBlob, type PushedReferrer } from './referrers.js';

/**
 * `customs attach`: externally produced material (Syft/Trivy SBOMs, in-toto provenance,
 * cosign bundles) attached to an artifact as referrers, in the layouts verifiers expect.
 * These documents are parsed to tell their kind, so they are read whole, with a cap.
 */
const MAX_DOCUMENT_BYTES = 64 * 1024 * 1024;

export type AttachKind = 'sbom' | 'provenance' | 'signature';

async function readJson(path: string): Promise<{ bytes: Buffer; json: Record<string, unknown> }> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) throw err('NAME_UNKNOWN', `no such file: ${path}`);
  if (st.size > MAX_DOCUMENT_BYTES) throw err('TOO_LARGE', `${path} is larger than ${MAX_DOCUMENT_BYTES} bytes`);
  const bytes = await readFile(path);
  try {
    const json = JSON.parse(bytes.toString('utf8')) as unknown;
    if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('not a JSON object');
    return { bytes, json: json as Record<string, unknown> };
  } catch (e) {
    throw err('MANIFEST_INVALID', `${path} is not a JSON document: ${(e as Error).message}`);
  }
}

/** The subject digests (`sha256:<hex>`) an in-toto statement names. */
function statementDigests(st: Record<string, unknown>): string[] {
  const subjects = Array.isArray(st.subject) ? (st.subject as { digest?: Record<string, string> }[]) : [];
  return subjects.flatMap((s) => Object.entries(s.digest ?? {}).map(([alg, hex]) => `${alg}:${hex}`));
}

function decodeDssePayload(env: Record<string, unknown>): Record<string, unknown> | undefined {
  if (typeof env.payload !== 'string' || env.payloadType !== InToto.payloadType) return undefined;
  try {
    return JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** A statement about some other artifact is refused: attaching it would mislead every verifier. */
function requireSubject(st: Record<string, unknown> | undefined, subject: Descriptor, what: string): void {
  if (!st) return;
  const digests = statementDigests(st);
  if (digests.length > 0 && !digests.includes(subject.digest)) {
    throw err('MANIFEST_INVALID', `${what} is about ${digests.join(', ')}, not ${subject.digest}`);
  }
}

export async function attach(client: RegistryClient, ref: string, kind: AttachKind, file: string, created?: string): Promise<PushedReferrer> {
  const { repository, reference } = parseRepoReference(ref);
  const subject = await client.resolve(repository, referenceString(reference));
  parseDigest(subject.digest);
  const when = creationTime(created);
  const { bytes, json } = await readJson(file);

  if (typeof json.mediaType === 'string' && json.mediaType.startsWith('application/vnd.dev.sigstore.bundle')) {
    // A sigstore bundle (cosign attest/sign --new-bundle-format, or `customs` itself).
    const env = json.dsseEnvelope as Record<string, unknown> | undefined;
    const st = env ? decodeDssePayload(env) : undefined;
    // An OpenSSF model signature names the model's files, not the manifest: the gate binds it through the layers.
    if (!(typeof st?.predicateType === 'string' && st.predicateType.startsWith('https://model_signing/'))) requireSubject(st, subject, file);
    const predicateType = typeof st?.predicateType === 'string' ? st.predicateType : undefined;
    if (kind === 'provenance' && !env) throw err('MANIFEST_INVALID', `${file} is a bundle without a DSSE envelope, not a provenance attestation`);
    if (kind === 'sbom' && !(predicateType?.startsWith(InToto.cyclonedxPredicate) || predicateType?.startsWith(InToto.spdxPredicate))) {
      throw err('MANIFEST_INVALID', `${file} is a bundle whose predicate (${predicateType ?? 'none'}) is not an SBOM`);
    }
    return pushBundle(client, repository, subject, json, predicateType, when);
  }
  if (kind === 'sbom') {
    // A raw SBOM document (a signed one arrives as a bundle, above).
    let mediaType: string;
    if (json.bomFormat === 'CycloneDX') mediaType = SbomMediaType.cyclonedx;
    else if (typeof json.spdxVersion === 'string') mediaType = SbomMediaType.spdx;
    else throw err('MANIFEST_INVALID', `${file} is neither CycloneDX JSON (bomFormat) nor SPDX JSON (spdxVersion)`);
    return pushReferrerBlob(client, repository, subject, { artifactType: mediaType, layerMediaType: mediaType, data: bytes, created: when });
  }

  if (kind === 'signature') throw err('MANIFEST_INVALID', `${file} is not a sigstore bundle (mediaType application/vnd.dev.sigstore.bundle...)`);

  if (typeof json.payloadType === 'string' && Array.isArray(json.signatures)) {
    const st = decodeDssePayload(json);
    requireSubject(st, subject, file);
    const annotations = typeof st?.predicateType === 'string' ? { 'in-toto.io/predicate-type': st.predicateType } : undefined;
    return pushReferrerBlob(client, repository, subject, { artifactType: DSSE_ENVELOPE_MEDIA_TYPE, layerMediaType: DSSE_ENVELOPE_MEDIA_TYPE, data: bytes, created: when, ...(annotations ? { annotations } : {}) });
  }
  if (typeof json._type === 'string' && json._type.startsWith('https://in-toto.io/Statement/')) {
    requireSubject(json, subject, file);
    const annotations = typeof json.predicateType === 'string' ? { 'in-toto.io/predicate-type': json.predicateType } : undefined;
    return pushReferrerBlob(client, repository, subject, { artifactType: InToto.payloadType, layerMediaType: InToto.payloadType, data: bytes, created: when, ...(annotations ? { annotations } : {}) });
  }
  throw err('MANIFEST_INVALID', `${file} is not an in-toto statement, a DSSE envelope or a sigstore bundle`);
}
