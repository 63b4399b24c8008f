import { posix } from 'node:path';
import { MediaType, digestOf, imageManifestSchema, parseDigest, type Digest, type ImageManifest } from '../oci/index.js';
import { ModelPack, CREATED_ANNOTATION } from '../artifacts/media-types.js';
import { KIND_ANNOTATION, buildModelConfig, layerMediaType, type PackedFile } from '../artifacts/modelpack.js';
import { layerPath } from '../verify/statement.js';
import { commitOfDigest, lfsPointerInfo, type RepoType } from './names.js';

/**
 * A Hub revision as a ModelPack artifact, and back. Each file of the revision is one
 * raw layer (its path in `org.cncf.model.filepath` and `org.opencontainers.image.title`),
 * so the same artifact is a model to OCI clients and a repo to Hugging Face clients.
 * Imported revisions carry where they came from (upstream, repo, commit) and each
 * file's git object id, so customs answers with the ETags and commit the Hub gives.
 */
export const HubAnnotation = {
  upstream: 'dev.customs.hub.upstream',
  repository: 'dev.customs.hub.repository',
  commit: 'dev.customs.hub.commit',
  /** Layer: the git object id of the file (of its LFS pointer for an LFS file). */
  oid: 'dev.customs.hub.oid',
  /** Layer: "true" when the Hub stores the file with git-lfs (its ETag is then the sha256). */
  lfs: 'dev.customs.hub.lfs',
} as const;

const TITLE_ANNOTATION = 'org.opencontainers.image.title';
const SOURCE_ANNOTATION = 'org.opencontainers.image.source';
const REVISION_ANNOTATION = 'org.opencontainers.image.revision';

/** A file of a revision as the Hub lists it (`siblings` with `blobs=true`). */
export interface HubFile {
  readonly path: string;
  readonly size: number;
  /** git object id (for an LFS file, of its pointer). */
  readonly oid: string;
  /** Set for LFS files: the content's sha256 (hex) and the pointer's size. */
  readonly lfs?: { readonly sha256: string; readonly pointerSize: number } | undefined;
}

/** A file as served: the layer it is, and its Hub identity. */
export interface ServedFile extends HubFile {
  readonly digest: Digest;
  /** What huggingface_hub names the cached blob after: the sha256 for LFS files, else the git blob id. */
  readonly etag: string;
}

export interface ImportedRevision {
  readonly upstream: string;
  /** The repo id as the upstream spells it (`org/model`). */
  readonly repoId: string;
  readonly type: RepoType;
  readonly commit: string;
  /** Where the upstream serves it (the model card's `sourceURL`). */
  readonly sourceUrl: string;
  /** The commit's date (ISO 8601), so importing the same commit twice builds the same bytes. */
  readonly lastModified: string | undefined;
  readonly licenses: readonly string[];
  /** Every file with the sha256 of its content. */
  readonly files: readonly (HubFile & { readonly digest: Digest })[];
}

export interface BuiltArtifact {
  readonly config: Buffer;
  readonly manifest: Buffer;
  readonly digest: Digest;
}

const EPOCH = '1970-01-01T00:00:00Z';

/** The ModelPack config and manifest of an imported revision; byte-for-byte the same for the same revision. */
export function buildRevisionArtifact(r: ImportedRevision): BuiltArtifact {
  const createdAt = normaliseTime(r.lastModified) ?? EPOCH;
  const files = [...r.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const packed: PackedFile[] = files.map((f) => ({ path: f.path, relPath: f.path, size: f.size, digest: f.digest, mediaType: layerMediaType(f.path, r.type) }));
  const format = r.type === 'model' ? weightFormat(files.map((f) => f.path)) : undefined;
  const config = Buffer.from(
    JSON.stringify(buildModelConfig({ name: r.repoId, createdAt, licenses: r.licenses, sourceURL: r.sourceUrl, revision: r.commit, ...(format ? { format } : {}) }, packed)),
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: ModelPack.artifactType,
    config: { mediaType: ModelPack.config, digest: digestOf(config), size: config.byteLength },
    layers: files.map((f, i) => ({
      mediaType: packed[i]!.mediaType,
      digest: f.digest,
      size: f.size,
      annotations: {
        [ModelPack.filepathAnnotation]: f.path,
        [TITLE_ANNOTATION]: f.path,
        [HubAnnotation.oid]: f.oid,
        ...(f.lfs ? { [HubAnnotation.lfs]: 'true' } : {}),
      },
    })),
    annotations: {
      [CREATED_ANNOTATION]: createdAt,
      [KIND_ANNOTATION]: r.type,
      [HubAnnotation.upstream]: r.upstream,
      [HubAnnotation.repository]: r.repoId,
      [HubAnnotation.commit]: r.commit,
      [SOURCE_ANNOTATION]: r.sourceUrl,
      [REVISION_ANNOTATION]: r.commit,
    },
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  return { config, manifest: bytes, digest: digestOf(bytes) };
}

/**
 * The weight format the policy's `allowFormats` sees: the least safe one present, so a
 * revision with both `model.safetensors` and a pickled `pytorch_model.bin` is not "safetensors".
 */
export function weightFormat(paths: readonly string[]): string | undefined {
  const exts = new Set(paths.map((p) => posix.extname(p).toLowerCase()));
  for (const [ext, format] of FORMATS) if (exts.has(ext)) return format;
  return undefined;
}

const FORMATS: ReadonlyArray<readonly [string, string]> = [
  ['.pkl', 'pickle'],
  ['.pickle', 'pickle'],
  ['.joblib', 'joblib'],
  ['.bin', 'pytorch'],
  ['.pt', 'pytorch'],
  ['.pth', 'pytorch'],
  ['.ckpt', 'pytorch'],
  ['.h5', 'keras'],
  ['.keras', 'keras'],
  ['.msgpack', 'flax'],
  ['.onnx', 'onnx'],
  ['.gguf', 'gguf'],
  ['.safetensors', 'safetensors'],
];

/** What a manifest is to a Hub client: its commit, kind, files and, when imported, its origin. */
export interface RevisionView {
  readonly commit: string;
  readonly kind: RepoType;
  readonly files: readonly ServedFile[];
  readonly createdAt: string | undefined;
  readonly origin: { readonly upstream: string; readonly repoId: string } | undefined;
}

/**
 * Reads a stored manifest as a Hub revision. Layers without a path annotation (an image's
 * tar layers) are not files. A local artifact has no git objects: every file is presented
 * as an LFS file (ETag = its sha256, which is its layer digest), so nothing has to be read
 * to list or serve it.
 */
export function revisionView(digest: Digest, bytes: Buffer): RevisionView | undefined {
  let m: ImageManifest;
  try {
    const r = imageManifestSchema.safeParse(JSON.parse(bytes.toString('utf8')));
    if (!r.success) return undefined;
    m = r.data;
  } catch {
    return undefined;
  }
  const a = m.annotations ?? {};
  const imported = a[HubAnnotation.commit] !== undefined && /^[0-9a-f]{40}$/.test(a[HubAnnotation.commit]!);
  const files: ServedFile[] = [];
  const seen = new Set<string>();
  for (const layer of m.layers) {
    const path = layerPath(layer.annotations);
    if (path === undefined || seen.has(path) || !layer.digest.startsWith('sha256:')) continue;
    seen.add(path);
    const hex = parseDigest(layer.digest).hex;
    const la = layer.annotations ?? {};
    const lfs = imported ? la[HubAnnotation.lfs] === 'true' : true;
    const oid = imported && la[HubAnnotation.oid] ? la[HubAnnotation.oid]! : lfsPointerInfo(hex, layer.size).oid;
    files.push({
      path,
      size: layer.size,
      digest: layer.digest,
      oid,
      lfs: lfs ? { sha256: hex, pointerSize: lfsPointerInfo(hex, layer.size).pointerSize } : undefined,
      etag: lfs ? hex : oid,
    });
  }
  return {
    commit: imported ? a[HubAnnotation.commit]! : commitOfDigest(digest),
    kind: a[KIND_ANNOTATION] === 'dataset' ? 'dataset' : 'model',
    files,
    createdAt: a[CREATED_ANNOTATION],
    origin: imported && a[HubAnnotation.upstream] && a[HubAnnotation.repository] ? { upstream: a[HubAnnotation.upstream]!, repoId: a[HubAnnotation.repository]! } : undefined,
  };
}

function normaliseTime(t: string | undefined): string | undefined {
  if (!t) return undefined;
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
