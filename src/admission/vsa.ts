import { readFileSync } from 'node:fs';
import { CREATED_ANNOTATION, DSSE_ENVELOPE_MEDIA_TYPE, Sigstore } from '../artifacts/media-types.js';
import { buildReferrerManifest, type BuiltManifest } from '../artifacts/modelpack.js';
import { ociSubject, signStatement, statement, type SigningKey, type SigstoreBundle, type Statement } from '../artifacts/sign.js';
import { digestOf, MediaType, parseDigest, type Descriptor, type Digest } from '../oci/index.js';
import { VSA_PREDICATE_TYPE } from '../verify/trust.js';

/**
 * SLSA Verification Summary Attestations (https://slsa.dev/spec/v1.0/verification_summary): what
 * customs' gate concluded about one digest, as an in-toto v1 statement signed (DSSE) with customs'
 * verifier key, laid out as cosign v3 writes attestations (a sigstore bundle v0.3 referrer) and as
 * cosign's legacy `sha256-<hex>.att` tag manifests (a DSSE envelope layer). Pure: no I/O but the
 * package version read once.
 */
export { VSA_PREDICATE_TYPE };

/** Annotations customs puts on its summaries' manifests: the policy and trust they were issued under. */
export const VSA_ANNOTATION = {
  policyHash: 'dev.customs.vsa.policy-hash',
  trustHash: 'dev.customs.vsa.trust-hash',
} as const;

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface SummaryInput {
  readonly repository: string;
  readonly digest: Digest;
  /** e.g. `oci://customs.example:5443/models/fraud@sha256:...` */
  readonly resourceUri: string;
  readonly verifierId: string;
  readonly rule: string;
  readonly policyHash: string;
  readonly trustHash: string;
  /** The evidence the verdict read (signatures, attestations, SBOMs), excluding customs' own summaries. */
  readonly inputs: readonly { readonly uri: string; readonly digest: Digest }[];
  readonly levels: readonly string[];
  readonly issuedAt: Date;
}

export function summaryStatement(i: SummaryInput): Statement {
  const hex = (d: string) => ({ [parseDigest(d as Digest).algorithm]: parseDigest(d as Digest).hex });
  return statement(ociSubject(i.repository, i.digest), VSA_PREDICATE_TYPE, {
    verifier: { id: i.verifierId, version: { customs: VERSION } },
    timeVerified: i.issuedAt.toISOString(),
    resourceUri: i.resourceUri,
    policy: { uri: `urn:customs:policy:${encodeURIComponent(i.rule)}`, digest: hex(i.policyHash) },
    inputAttestations: i.inputs.map((a) => ({ uri: a.uri, digest: hex(a.digest) })),
    verificationResult: 'PASSED',
    verifiedLevels: [...i.levels],
    slsaVersion: '1.0',
  });
}

export interface SignedSummary {
  readonly bundle: SigstoreBundle;
  readonly bundleBytes: Buffer;
  /** The DSSE envelope alone: the layer of the legacy `.att` manifest. */
  readonly envelopeBytes: Buffer;
}

export function signSummary(st: Statement, key: SigningKey): SignedSummary {
  const bundle = signStatement(st, key);
  return { bundle, bundleBytes: Buffer.from(JSON.stringify(bundle)), envelopeBytes: Buffer.from(JSON.stringify(bundle.dsseEnvelope)) };
}

/** The referrer manifest cosign v3 writes for an attestation (`WriteAttestationNewBundleFormat`). */
export function bundleReferrer(subject: Descriptor, s: SignedSummary, input: SummaryInput): BuiltManifest {
  return buildReferrerManifest({
    subject,
    artifactType: Sigstore.bundleV03,
    layer: { mediaType: Sigstore.bundleV03, digest: digestOf(s.bundleBytes), size: s.bundleBytes.length },
    annotations: {
      [Sigstore.contentAnnotation]: 'dsse-envelope',
      [Sigstore.predicateTypeAnnotation]: VSA_PREDICATE_TYPE,
      [CREATED_ANNOTATION]: input.issuedAt.toISOString(),
      [VSA_ANNOTATION.policyHash]: input.policyHash,
      [VSA_ANNOTATION.trustHash]: input.trustHash,
    },
  });
}

export interface LegacyLayer {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly annotations?: Record<string, string>;
}

/**
 * cosign's legacy `.att` manifest: an image manifest whose layers are DSSE envelopes, each annotated
 * with its predicate type, and a config listing them as diff_ids. `previous` are the layers of the tag's
 * current manifest (other attestations stay, as `cosign attest` appends); earlier summaries of customs go.
 */
export function legacyAttManifest(previous: readonly LegacyLayer[], s: SignedSummary, input: SummaryInput): { manifest: Buffer; config: Buffer } {
  const kept = previous.filter((l) => l.annotations?.[VSA_ANNOTATION.policyHash] === undefined);
  const layers: LegacyLayer[] = [
    ...kept,
    {
      mediaType: DSSE_ENVELOPE_MEDIA_TYPE,
      digest: digestOf(s.envelopeBytes),
      size: s.envelopeBytes.length,
      // cosign writes the signature annotation empty on attestation layers (the signature is in the envelope) and requires it.
      annotations: { 'dev.cosignproject.cosign/signature': '', predicateType: VSA_PREDICATE_TYPE, [VSA_ANNOTATION.policyHash]: input.policyHash, [VSA_ANNOTATION.trustHash]: input.trustHash, [CREATED_ANNOTATION]: input.issuedAt.toISOString() },
    },
  ];
  const config = Buffer.from(
    JSON.stringify({ architecture: '', created: '0001-01-01T00:00:00Z', history: [{ created: '0001-01-01T00:00:00Z' }], os: '', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, config: {} }),
  );
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: config.length, digest: digestOf(config) }, layers }),
  );
  return { manifest, config };
}

