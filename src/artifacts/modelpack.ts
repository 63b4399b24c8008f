import { posix } from 'node:path';
import { EMPTY_JSON_DIGEST, MediaType, digestOf, type Descriptor, type Digest } from '../oci/index.js';
import type { LocalFile } from './files.js';
import { CREATED_ANNOTATION, ModelPack } from './media-types.js';

/**
 * Building ModelPack artifacts (modelpack/model-spec docs/spec.md, docs/config.md):
 * one raw layer per file, its path in `org.cncf.model.filepath` (and in `org.opencontainers.image.title`,
 * so that `oras pull` writes the files), and a config whose
 * `modelfs.diffIds` are the layer digests (a raw layer is its own uncompressed form).
 */
export interface PackedFile extends LocalFile {
  readonly digest: Digest;
  readonly mediaType: string;
}

/** Our manifest annotation telling a dataset artifact from a model (both use the ModelPack artifact type). */
export const KIND_ANNOTATION = 'dev.customs.artifact.kind';
export type ArtifactKind = 'model' | 'dataset';

const WEIGHT_EXT = new Set(['.joblib', '.pkl', '.pickle', '.pt', '.pth', '.bin', '.safetensors', '.onnx', '.gguf', '.ggml', '.h5', '.hdf5', '.keras', '.ckpt', '.npz', '.npy', '.pb', '.tflite', '.msgpack', '.mlmodel', '.ubj']);
const CONFIG_EXT = new Set(['.json', '.yaml', '.yml', '.toml', '.cfg', '.ini', '.model', '.tiktoken', '.vocab']);
const DOC_EXT = new Set(['.md', '.rst', '.txt', '.pdf', '.html']);
const DOC_NAMES = new Set(['license', 'licence', 'notice', 'readme', 'copying', 'authors']);
const CODE_EXT = new Set(['.py', '.ipynb', '.sh', '.r', '.jl', '.js', '.ts', '.go', '.rs', '.c', '.cc', '.cpp', '.h']);

/** The ModelPack layer media type for a file, by role: weights, weight config, docs, code, or dataset. */
export function layerMediaType(relPath: string, kind: ArtifactKind): string {
  if (kind === 'dataset') return ModelPack.datasetRaw;
  const base = posix.basename(relPath).toLowerCase();
  const ext = posix.extname(base);
  if (WEIGHT_EXT.has(ext)) return ModelPack.weightRaw;
  if (DOC_NAMES.has(base.replace(/\.[^.]*$/, '')) || DOC_EXT.has(ext)) return ModelPack.docRaw;
  if (CODE_EXT.has(ext)) return ModelPack.codeRaw;
  if (CONFIG_EXT.has(ext)) return ModelPack.weightConfigRaw;
  if (['.csv', '.tsv', '.parquet', '.jsonl', '.arrow', '.tfrecord'].includes(ext)) return ModelPack.datasetRaw;
  return ModelPack.weightRaw;
}

export interface ModelMeta {
  readonly name: string;
  readonly version?: string | undefined;
  readonly createdAt: string;
  readonly licenses?: readonly string[] | undefined;
  readonly authors?: readonly string[] | undefined;
  readonly vendor?: string | undefined;
  readonly family?: string | undefined;
  readonly description?: string | undefined;
  readonly sourceURL?: string | undefined;
  readonly revision?: string | undefined;
  readonly format?: string | undefined;
  readonly architecture?: string | undefined;
  readonly paramSize?: string | undefined;
  readonly precision?: string | undefined;
}

const defined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0))) as T;

/** The model config (`application/vnd.cncf.model.config.v1+json`). */
export function buildModelConfig(meta: ModelMeta, files: readonly PackedFile[]): Record<string, unknown> {
  return {
    descriptor: defined({
      createdAt: meta.createdAt,
      authors: meta.authors ? [...meta.authors] : undefined,
      vendor: meta.vendor,
      family: meta.family,
      name: meta.name,
      version: meta.version,
      description: meta.description,
      sourceURL: meta.sourceURL,
      revision: meta.revision,
      licenses: meta.licenses ? [...meta.licenses] : undefined,
    }),
    config: defined({ architecture: meta.architecture, format: meta.format, paramSize: meta.paramSize, precision: meta.precision }),
    modelfs: { type: 'layers', diffIds: files.map((f) => f.digest) },
  };
}

export interface BuiltManifest {
  readonly bytes: Buffer;
  readonly digest: Digest;
  readonly descriptor: Descriptor;
}

/** The image manifest of a ModelPack artifact; bytes are what gets pushed and signed. */
export function buildModelManifest(configBytes: Uint8Array, files: readonly PackedFile[], kind: ArtifactKind, createdAt: string): BuiltManifest {
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: ModelPack.artifactType,
    config: { mediaType: ModelPack.config, digest: digestOf(configBytes), size: configBytes.byteLength },
    layers: files.map((f) => ({
      mediaType: f.mediaType,
      digest: f.digest,
      size: f.size,
      annotations: { [ModelPack.filepathAnnotation]: f.relPath, [ModelPack.titleAnnotation]: f.relPath },
    })),
    annotations: { [CREATED_ANNOTATION]: createdAt, [KIND_ANNOTATION]: kind },
  };
  return toBuilt(manifest);
}

export const EMPTY_JSON = Buffer.from('{}');
export const emptyDescriptor = (): Descriptor => ({ mediaType: MediaType.ociEmpty, digest: EMPTY_JSON_DIGEST as Digest, size: 2 });

/**
 * An OCI 1.1 referrer manifest: empty config, one layer, `subject` pointing at the
 * artifact. This is the layout cosign writes for its new bundle format.
 */
export function buildReferrerManifest(opts: {
  subject: Descriptor;
  artifactType: string;
  layer: Descriptor;
  annotations?: Record<string, string>;
}): BuiltManifest {
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: opts.artifactType,
    config: emptyDescriptor(),
    layers: [opts.layer],
    subject: { mediaType: opts.subject.mediaType, digest: opts.subject.digest, size: opts.subject.size },
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  };
  return toBuilt(manifest);
}

function toBuilt(manifest: object): BuiltManifest {
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = digestOf(bytes);
  return { bytes, digest, descriptor: { mediaType: MediaType.ociManifest, digest, size: bytes.byteLength } };
}
