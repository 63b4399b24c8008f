// Signed-artifact fixtures for the gate bench: an ECDSA P-256 key, sigstore
// bundles v0.3 (key-only, DSSE over an in-toto v1 statement) and the OCI 1.1
// referrer manifests that carry them, laid out as cosign's new bundle format
// does (see ../shared/vectors/synthetic/referrer-manifest.json).
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { OCI_MANIFEST, pushBlobBytes, putManifest } from './oci.mjs';

export const BUNDLE_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const CYCLONEDX_TYPE = 'application/vnd.cyclonedx+json';
export const COSIGN_SIGN = 'https://sigstore.dev/cosign/sign/v1';
export const SLSA_V1 = 'https://slsa.dev/provenance/v1';
const EMPTY = Buffer.from('{}');
const EMPTY_TYPE = 'application/vnd.oci.empty.v1+json';
const IN_TOTO = 'application/vnd.in-toto+json';

export function makeKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return {
    privateKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }),
    // sigstore-go's hint: base64(sha256(DER SPKI)), as in the synthetic vectors.
    hint: createHash('sha256').update(der).digest('base64'),
  };
}

/** DSSE pre-authentication encoding. */
function pae(type, body) {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${body.length} `), body]);
}

/** A key-only bundle v0.3 whose DSSE envelope wraps an in-toto v1 statement about `digest`. */
export function dsseBundle(key, { name, digest, predicateType, predicate }) {
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name, digest: { sha256: digest.replace(/^sha256:/, '') } }],
    predicateType,
    predicate,
  };
  const payload = Buffer.from(JSON.stringify(statement));
  const sig = sign('sha256', pae(IN_TOTO, payload), key.privateKey);
  return Buffer.from(
    JSON.stringify({
      mediaType: BUNDLE_TYPE,
      verificationMaterial: { publicKey: { hint: key.hint }, tlogEntries: [] },
      dsseEnvelope: { payload: payload.toString('base64'), payloadType: IN_TOTO, signatures: [{ sig: sig.toString('base64'), keyid: '' }] },
    }),
  );
}

/** Push a one-layer referrer (empty config) about `subject` by digest. Returns its digest. */
export async function pushReferrer(reg, repo, { subject, artifactType, layerType, layer, annotations }) {
  const c = await pushBlobBytes(reg, repo, EMPTY);
  const l = await pushBlobBytes(reg, repo, layer);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType,
      config: { mediaType: EMPTY_TYPE, digest: c.digest, size: c.size },
      layers: [{ mediaType: layerType, digest: l.digest, size: l.size }],
      subject: { mediaType: subject.mediaType ?? OCI_MANIFEST, digest: subject.digest, size: subject.size },
      annotations: { 'org.opencontainers.image.created': '2026-01-01T00:00:00Z', ...annotations },
    }),
  );
  const digest = createHash('sha256').update(manifest).digest('hex');
  return putManifest(reg, repo, `sha256:${digest}`, manifest);
}

/** The bundle pushSignature pushes: a `cosign/sign/v1` statement about `digest`. */
export function signatureBundle(key, repo, digest) {
  return dsseBundle(key, { name: repo, digest, predicateType: COSIGN_SIGN, predicate: {} });
}

/** cosign-v3-style signature: a bundle with a `cosign/sign/v1` statement. */
export function pushSignature(reg, repo, key, subject) {
  const layer = signatureBundle(key, repo, subject.digest);
  return pushReferrer(reg, repo, {
    subject,
    artifactType: BUNDLE_TYPE,
    layerType: BUNDLE_TYPE,
    layer,
    annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': COSIGN_SIGN },
  });
}

/** SLSA provenance v1 for a training run, signed as a bundle. */
export function pushProvenance(reg, repo, key, subject) {
  const layer = provenanceBundle(key, repo, subject.digest);
  return pushReferrer(reg, repo, {
    subject,
    artifactType: BUNDLE_TYPE,
    layerType: BUNDLE_TYPE,
    layer,
    annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope', 'dev.sigstore.bundle.predicateType': SLSA_V1 },
  });
}

/** The bundle pushProvenance pushes: SLSA v1 provenance of a training run about `digest`. */
export function provenanceBundle(key, repo, digest) {
  const predicate = {
    buildDefinition: {
      buildType: 'https://example.com/ml-training/v1',
      externalParameters: { repository: 'https://git.example/train', ref: 'refs/heads/main' },
      resolvedDependencies: [{ uri: 'https://data.example/datasets/bench', digest: { sha256: 'a'.repeat(64) } }],
    },
    runDetails: { builder: { id: 'https://ci.example/builder' }, metadata: { invocationId: 'bench' } },
  };
  return dsseBundle(key, { name: repo, digest, predicateType: SLSA_V1, predicate });
}

/** A raw CycloneDX 1.6 SBOM referrer (unsigned: the policy asks only that it is present and valid). */
export function pushSbom(reg, repo, subject) {
  return pushReferrer(reg, repo, { subject, artifactType: CYCLONEDX_TYPE, layerType: CYCLONEDX_TYPE, layer: sbomBytes() });
}

/** The CycloneDX 1.6 document pushSbom pushes. */
export function sbomBytes() {
  const bom = {
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    version: 1,
    components: [
      { type: 'machine-learning-model', name: 'bench-model', version: '1', licenses: [{ license: { id: 'Apache-2.0' } }] },
      { type: 'library', name: 'numpy', version: '1.26.4', purl: 'pkg:pypi/numpy@1.26.4' },
    ],
  };
  return Buffer.from(JSON.stringify(bom));
}
