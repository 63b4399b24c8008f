import { randomUUID } from 'node:crypto';
import { MediaType, err, isDigest, parseRepoReference, referenceString, type Descriptor, type Digest } from '../oci/index.js';
import type { RegistryClient } from './client.js';
import { hashFile, listFiles } from './files.js';
import { DEFAULT_BUILDER_ID, InToto, SbomMediaType } from './media-types.js';
import { buildModelConfig, buildModelManifest, layerMediaType, type ArtifactKind, type ModelMeta, type PackedFile } from './modelpack.js';
import { buildProvenance, gitSource, ociMaterial, type GitSource, type OciMaterial } from './provenance.js';
import { ignoredBySignature, modelNameOf, modelSigningStatement, readModelSignature, signatureMismatch, signModelSigning, type ModelSignature } from './model-signing.js';
import { dvcIdentity, type DvcIdentity } from './dvc.js';
import { DVC_DATASET_BUILD_TYPE, dvcData, dvcSource, mlflowContribution, resolveRoots } from './ml-sources.js';
import type { MlflowRun } from './mlflow.js';
import { silentProgress, type Progress } from './progress.js';
import { inspectPython } from './python-env.js';
import { pushBundle, pushReferrerBlob, type PushedReferrer } from './referrers.js';
import { buildModelSbom } from './sbom.js';
import { cosignSignStatement, ociSubject, signStatement, statement, type SigningKey, type Statement } from './sign.js';


export interface Target {
  readonly repository: string;
  readonly tag: string;
}

/** `<repo>:<tag>` for a push destination (a digest makes no sense there). */
export function parseTarget(value: string): Target {
  const { repository, reference } = parseRepoReference(value);
  if (reference.kind !== 'tag') throw new Error(`--to expects <repo>:<tag>, got ${value}`);
  return { repository, tag: reference.tag };
}

/** Creation time: explicit, else SOURCE_DATE_EPOCH (reproducible builds), else now. */
export function creationTime(explicit?: string): string {
  if (explicit) return new Date(explicit).toISOString().replace(/\.000Z$/, 'Z');
  const epoch = process.env.SOURCE_DATE_EPOCH;
  const d = epoch && /^\d+$/.test(epoch) ? new Date(Number(epoch) * 1000) : new Date();
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const defined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

/** Optional steps of packing: files left out, and a check of the hashed files before any upload. */
export interface PackHooks {
  readonly exclude?: ((relPath: string) => boolean) | undefined;
  readonly beforeUpload?: ((files: readonly PackedFile[]) => void) | undefined;
}

/** Hashes every file (first streaming pass), then uploads it (second pass). */
async function packAndUpload(client: RegistryClient, repo: string, root: string, kind: ArtifactKind, progress: Progress, hooks: PackHooks = {}): Promise<PackedFile[]> {
  const files = (await listFiles(root)).filter((f) => !hooks.exclude?.(f.relPath));
  const total = files.reduce((n, f) => n + f.size, 0);
  const packed: PackedFile[] = [];
  progress.begin('hashing', total);
  for (const f of files) {
    const { digest, size } = await hashFile(f.path, (n) => progress.tick(n));
    // The file changed between listing and hashing: the sizes would disagree with the upload.
    if (size !== f.size) throw new Error(`${f.relPath} changed while it was being read`);
    packed.push({ ...f, digest, mediaType: layerMediaType(f.relPath, kind) });
  }
  progress.end();
  hooks.beforeUpload?.(packed);
  progress.begin('uploading', total);
  for (const f of packed) await client.pushBlob(repo, { kind: 'file', path: f.path, digest: f.digest, size: f.size }, (n) => progress.tick(n));
  progress.end();
  return packed;
}

export interface PushedArtifact {
  readonly repository: string;
  readonly tag: string;
  readonly digest: Digest;
  readonly descriptor: Descriptor;
  readonly files: readonly PackedFile[];
  readonly referrers: readonly PushedReferrer[];
}

async function pushArtifact(client: RegistryClient, target: Target, files: PackedFile[], meta: ModelMeta, kind: ArtifactKind): Promise<{ digest: Digest; descriptor: Descriptor }> {
  const configBytes = Buffer.from(JSON.stringify(buildModelConfig(meta, files)));
  await client.pushBlob(target.repository, { kind: 'bytes', data: configBytes });
  const m = buildModelManifest(configBytes, files, kind, meta.createdAt);
  await client.putManifest(target.repository, target.tag, m.bytes, MediaType.ociManifest);
  return { digest: m.digest, descriptor: m.descriptor };
}

export interface PushDatasetOptions {
  readonly path: string;
  readonly target: Target;
  readonly name?: string | undefined;
  readonly version?: string | undefined;
  readonly licenses?: readonly string[] | undefined;
  readonly created?: string | undefined;
  readonly signingKey?: SigningKey | undefined;
  readonly progress?: Progress;
  /** Read the `.dvc` file or `dvc.lock` tracking `path`: its md5 and commit go into the dataset's provenance. */
  readonly dvc?: boolean | undefined;
  /** With `dvc`: accept a `.dvc` file / lock with uncommitted changes. */
  readonly allowDirty?: boolean | undefined;
  readonly builderId?: string | undefined;
}

export interface PushedDataset extends PushedArtifact {
  readonly dvc?: DvcIdentity | undefined;
  readonly provenance?: Statement | undefined;
}

/** A dataset as a ModelPack artifact: one `dataset.v1.raw` layer per file. */
export async function pushDataset(client: RegistryClient, opts: PushDatasetOptions): Promise<PushedDataset> {
  const createdAt = creationTime(opts.created);
  // DVC's record is checked against the bytes before anything is uploaded.
  const dvc = opts.dvc ? await dvcIdentity(opts.path, { allowDirty: opts.allowDirty }) : undefined;
  const files = await packAndUpload(client, opts.target.repository, opts.path, 'dataset', opts.progress ?? silentProgress);
  const code = dvc ? dvcSource(dvc) : undefined;
  const meta: ModelMeta = { name: opts.name ?? opts.target.repository, version: opts.version ?? opts.target.tag, createdAt, licenses: opts.licenses, sourceURL: code?.remote, revision: code?.commit };
  const { digest, descriptor } = await pushArtifact(client, opts.target, files, meta, 'dataset');
  const referrers: PushedReferrer[] = [];
  const subject = ociSubject(`${client.host}/${opts.target.repository}`, digest);
  if (opts.signingKey) {
    const st = cosignSignStatement(subject);
    referrers.push(await pushBundle(client, opts.target.repository, descriptor, signStatement(st, opts.signingKey), st.predicateType, createdAt));
  }
  let provenance: Statement | undefined;
  if (dvc) {
    // The DVC identity beside the OCI digest: lineage indexes `md5:<hex>` as a material of this dataset.
    provenance = buildProvenance({
      subject,
      builderId: opts.builderId ?? DEFAULT_BUILDER_ID,
      buildType: DVC_DATASET_BUILD_TYPE,
      parameters: {},
      code,
      datasets: [dvcData(dvc)],
      baseModels: [],
      finishedOn: createdAt,
    });
    referrers.push(await pushProvenance(client, opts.target.repository, descriptor, provenance, opts.signingKey, createdAt));
  }
  return { repository: opts.target.repository, tag: opts.target.tag, digest, descriptor, files, referrers, dvc, provenance };
}

/** Signed as a bundle when there is a key; else the bare statement (lineage lists it as unverified). */
async function pushProvenance(client: RegistryClient, repo: string, descriptor: Descriptor, provenance: Statement, key: SigningKey | undefined, createdAt: string): Promise<PushedReferrer> {
  if (key) return pushBundle(client, repo, descriptor, signStatement(provenance, key), provenance.predicateType, createdAt);
  return pushReferrerBlob(client, repo, descriptor, {
    artifactType: InToto.payloadType,
    layerMediaType: InToto.payloadType,
    data: Buffer.from(JSON.stringify(provenance)),
    // The annotation Docker's attestation manifests use for the same purpose.
    annotations: { 'in-toto.io/predicate-type': provenance.predicateType },
    created: createdAt,
  });
}

/**
 * Resolves `--dataset`/`--base-model` values: `repo:tag` (asks the registry's metadata route, so an
 * unsigned dataset the gate would not serve can still be named), `repo@digest`,
 * or a bare digest (kept as given; the provenance then names it by digest only).
 */
export async function resolveMaterial(client: RegistryClient, value: string): Promise<OciMaterial> {
  if (isDigest(value)) return { given: value, digest: value as Digest };
  const { repository, reference } = parseRepoReference(value);
  if (reference.kind === 'digest') return { given: value, repository, digest: reference.digest };
  const d = await client.resolveName(repository, referenceString(reference));
  return { given: value, repository, digest: d.digest };
}

export interface PushModelOptions {
  readonly dir: string;
  readonly target: Target;
  readonly meta: Omit<ModelMeta, 'createdAt' | 'name'> & { readonly name?: string | undefined };
  readonly created?: string | undefined;
  readonly datasets: readonly string[];
  readonly baseModels: readonly string[];
  readonly codeDir?: string | undefined;
  readonly allowDirty: boolean;
  readonly builderId: string;
  readonly params: Record<string, string>;
  readonly signingKey?: SigningKey | undefined;
  readonly sbomPython?: string | undefined;
  readonly task?: string | undefined;
  /** When the training began (provenance startedOn); default: when this push began. */
  readonly startedOn?: string | undefined;
  /** The run's id (provenance invocationId); default: a fresh urn:uuid. */
  readonly invocationId?: string | undefined;
  /** The script that ran, relative to the code folder (provenance externalParameters.entryPoint). */
  readonly entryPoint?: string | undefined;
  readonly progress?: Progress;
  /** A `model_signing sign` signature of `dir`, pushed as a referrer after checking it names exactly these files. */
  readonly modelSignature?: string | undefined;
  /** The MLflow run that trained the model: params, metrics, commit, datasets and flavour go into the provenance. */
  readonly mlflow?: MlflowRun | undefined;
  /** Where relative MLflow dataset sources are looked for (besides --code and the training script's directory). */
  readonly mlflowDataRoots?: readonly string[] | undefined;
}

/** Leaves out what the signer ignored; refuses to upload when a file differs from what was signed. */
function signatureHooks(sig: ModelSignature, dir: string, sigPath: string): PackHooks {
  return {
    exclude: ignoredBySignature(sig, dir, sigPath),
    beforeUpload: (files) => {
      const why = signatureMismatch(sig, files);
      if (why) throw err('DENIED', `the model signature ${sigPath} does not match ${dir}: ${why}`);
    },
  };
}

export interface PushedModel extends PushedArtifact {
  readonly provenance: Statement;
  readonly sbom: Record<string, unknown>;
  readonly code?: GitSource | undefined;
  readonly datasets: readonly OciMaterial[];
}

/**
 * Pushes a model with everything that proves where it came from: the ModelPack artifact,
 * SLSA provenance, a CycloneDX SBOM (raw and, when signing, as an attestation) and a
 * cosign-style signature, all as referrers of the model manifest.
 */
export async function pushModel(client: RegistryClient, opts: PushModelOptions): Promise<PushedModel> {
  const createdAt = creationTime(opts.created);
  const startedOn = opts.startedOn ? creationTime(opts.startedOn) : createdAt;
  const repo = opts.target.repository;
  // Everything that can refuse (dirty tree, unknown dataset, broken Python) runs before any upload.
  const code = opts.codeDir ? await gitSource(opts.codeDir, opts.allowDirty) : undefined;
  const datasets = await Promise.all(opts.datasets.map((d) => resolveMaterial(client, d)));
  const baseModels = await Promise.all(opts.baseModels.map((d) => resolveMaterial(client, d)));
  const python = opts.sbomPython ? await inspectPython(opts.sbomPython) : undefined;
  const modelSig = opts.modelSignature ? await readModelSignature(opts.modelSignature) : undefined;
  const mlflow = opts.mlflow ? await mlflowContribution(opts.mlflow, { code, dataRoots: resolveRoots([...(opts.mlflowDataRoots ?? []), opts.codeDir]) }) : undefined;

  const files = await packAndUpload(client, repo, opts.dir, 'model', opts.progress ?? silentProgress, modelSig ? signatureHooks(modelSig, opts.dir, opts.modelSignature!) : {});
  const meta: ModelMeta = {
    ...mlflow?.meta,
    ...defined(opts.meta),
    name: opts.meta.name ?? repo.split('/').pop()!,
    version: opts.meta.version ?? opts.target.tag,
    createdAt,
    sourceURL: opts.meta.sourceURL ?? code?.remote ?? mlflow?.meta.sourceURL,
    revision: opts.meta.revision ?? code?.commit ?? mlflow?.meta.revision,
  };
  const { digest, descriptor } = await pushArtifact(client, opts.target, files, meta, 'model');
  const subject = ociSubject(`${client.host}/${repo}`, digest);

  const provenance = buildProvenance({
    subject,
    builderId: opts.builderId,
    parameters: { ...mlflow?.parameters, ...opts.params },
    code,
    extraParameters: mlflow?.extraParameters,
    dependencies: mlflow?.dependencies,
    byproducts: mlflow?.byproducts,
    datasets: datasets.map((d) => ociMaterial(d, client.host, 'training-dataset')),
    baseModels: baseModels.map((d) => ociMaterial(d, client.host, 'base-model')),
    startedOn,
    finishedOn: createdAt,
    invocationId: opts.invocationId ?? `urn:uuid:${randomUUID()}`,
    entryPoint: opts.entryPoint,
  });
  const sbom = buildModelSbom({
    model: {
      name: meta.name,
      version: meta.version,
      repository: repo,
      host: client.host,
      digest,
      description: meta.description,
      licenses: meta.licenses,
      files,
      task: opts.task,
      architecture: meta.architecture,
      architectureFamily: meta.family,
    },
    datasets: datasets.map((d) => ({ repository: d.repository, digest: d.digest, reference: d.given })),
    python,
    timestamp: new Date(createdAt),
  });

  const referrers: PushedReferrer[] = [];
  if (modelSig) referrers.push(await pushBundle(client, repo, descriptor, modelSig.bundle, modelSig.statement.predicateType, createdAt));
  const sbomBytes = Buffer.from(JSON.stringify(sbom));
  referrers.push(
    await pushReferrerBlob(client, repo, descriptor, { artifactType: SbomMediaType.cyclonedx, layerMediaType: SbomMediaType.cyclonedx, data: sbomBytes, created: createdAt }),
  );
  if (opts.signingKey) {
    const key = opts.signingKey;
    const sign = cosignSignStatement(subject);
    referrers.push(await pushBundle(client, repo, descriptor, signStatement(sign, key), sign.predicateType, createdAt));
    referrers.push(await pushBundle(client, repo, descriptor, signStatement(provenance, key), provenance.predicateType, createdAt));
    const sbomStatement = statement(subject, InToto.cyclonedxPredicate, sbom);
    referrers.push(await pushBundle(client, repo, descriptor, signStatement(sbomStatement, key), sbomStatement.predicateType, createdAt));
    // OpenSSF model signing too, so `model_signing verify key` accepts what `customs pull` writes.
    const ms = modelSigningStatement(modelNameOf(opts.dir), files);
    referrers.push(await pushBundle(client, repo, descriptor, signModelSigning(ms, key), ms.predicateType, createdAt));
  } else {
    // Unsigned, the provenance is still useful to lineage; a policy that wants it signed will say so.
    referrers.push(await pushProvenance(client, repo, descriptor, provenance, undefined, createdAt));
  }
  return { repository: repo, tag: opts.target.tag, digest, descriptor, files, referrers, provenance, sbom, code, datasets };
}
