/**
 * Media types and annotation keys the producer side writes.
 * ModelPack: modelpack/model-spec `specs-go/v1/mediatype.go` and `annotations.go`.
 * Sigstore / cosign: the OCI 1.1 referrer layout of cosign's new bundle format.
 */
export const ModelPack = {
  artifactType: 'application/vnd.cncf.model.manifest.v1+json',
  config: 'application/vnd.cncf.model.config.v1+json',
  // "raw" layers: the file itself, unarchived and uncompressed, so a digest is the file's sha256.
  weightRaw: 'application/vnd.cncf.model.weight.v1.raw',
  weightConfigRaw: 'application/vnd.cncf.model.weight.config.v1.raw',
  docRaw: 'application/vnd.cncf.model.doc.v1.raw',
  codeRaw: 'application/vnd.cncf.model.code.v1.raw',
  datasetRaw: 'application/vnd.cncf.model.dataset.v1.raw',
  /** Layer annotation: the file's path relative to the model root. */
  filepathAnnotation: 'org.cncf.model.filepath',
  /** The same path under the annotation oras (and most OCI tools) take a layer's file name from. */
  titleAnnotation: 'org.opencontainers.image.title',
} as const;

export const Sigstore = {
  bundleV03: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  contentAnnotation: 'dev.sigstore.bundle.content',
  predicateTypeAnnotation: 'dev.sigstore.bundle.predicateType',
  /** The statement cosign v3 signs for `cosign sign` with the new bundle format. */
  cosignSignPredicate: 'https://sigstore.dev/cosign/sign/v1',
} as const;

export const InToto = {
  statementV1: 'https://in-toto.io/Statement/v1',
  payloadType: 'application/vnd.in-toto+json',
  slsaProvenanceV1: 'https://slsa.dev/provenance/v1',
  cyclonedxPredicate: 'https://cyclonedx.org/bom',
  spdxPredicate: 'https://spdx.dev/Document',
} as const;

export const SbomMediaType = {
  cyclonedx: 'application/vnd.cyclonedx+json',
  spdx: 'application/spdx+json',
} as const;

export const DSSE_ENVELOPE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';
export const CREATED_ANNOTATION = 'org.opencontainers.image.created';
/** Customs' own build type for a training run recorded as SLSA provenance. */
export const TRAINING_BUILD_TYPE = 'https://customs.dev/ml-training/v1';
export const DEFAULT_BUILDER_ID = 'https://customs.dev/cli/local';
