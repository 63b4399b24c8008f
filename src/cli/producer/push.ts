import { loadSigningKey } from '../../artifacts/sign.js';
import { parseParams } from '../../artifacts/provenance.js';
import { parseTarget, pushDataset, pushModel, type PushedArtifact, type PushedDataset, type PushedModel } from '../../artifacts/push.js';
import { DEFAULT_BUILDER_ID } from '../../artifacts/media-types.js';
import { readMlflowRun } from '../../artifacts/mlflow.js';
import { err } from '../../oci/index.js';
import { clientFor, stdio, terminalProgress, type ConnectionOptions, type Output } from './common.js';

export interface PushDatasetCliOptions extends ConnectionOptions {
  readonly to: string;
  readonly name?: string;
  readonly version?: string;
  readonly license?: string[];
  readonly created?: string;
  readonly sign?: string;
  readonly json?: boolean;
  readonly dvc?: boolean;
  readonly allowDirty?: boolean;
  readonly builderId?: string;
}

export interface PushModelCliOptions extends ConnectionOptions {
  readonly to: string;
  readonly dataset?: string[];
  readonly baseModel?: string[];
  readonly code?: string;
  readonly allowDirty?: boolean;
  readonly sign?: string;
  readonly sbomPython?: string;
  readonly builderId?: string;
  readonly param?: string[];
  readonly name?: string;
  readonly version?: string;
  readonly format?: string;
  readonly license?: string[];
  readonly author?: string[];
  readonly vendor?: string;
  readonly family?: string;
  readonly architecture?: string;
  readonly description?: string;
  readonly task?: string;
  readonly paramSize?: string;
  readonly precision?: string;
  readonly created?: string;
  readonly started?: string;
  readonly invocationId?: string;
  readonly entryPoint?: string;
  readonly json?: boolean;
  readonly modelSignature?: string;
  readonly mlflowRun?: string;
  readonly mlflowTrackingUri?: string;
  readonly mlflowModel?: string;
  readonly mlflowDataRoot?: string[];
}

function report(io: Output, r: PushedArtifact, json: boolean | undefined, extra: Record<string, unknown> = {}): void {
  if (json) {
    io.out(JSON.stringify({ repository: r.repository, tag: r.tag, digest: r.digest, files: r.files.map((f) => ({ path: f.relPath, digest: f.digest, size: f.size, mediaType: f.mediaType })), referrers: r.referrers, ...extra }, null, 2));
    return;
  }
  for (const ref of r.referrers) io.err(`referrer ${ref.digest} ${ref.artifactType}${ref.predicateType ? ` (${ref.predicateType})` : ''}`);
  io.out(`${r.repository}@${r.digest}`);
}

/** `customs push dataset <file|dir> --to <repo>:<tag>`; prints `<repo>@<digest>`. */
export async function pushDatasetCommand(path: string, opts: PushDatasetCliOptions, io: Output = stdio): Promise<PushedDataset> {
  const client = clientFor(opts);
  const r = await pushDataset(client, {
    path,
    target: parseTarget(opts.to),
    name: opts.name,
    version: opts.version,
    licenses: opts.license,
    created: opts.created,
    signingKey: opts.sign ? await loadSigningKey(opts.sign) : undefined,
    progress: terminalProgress(),
    dvc: opts.dvc,
    allowDirty: opts.allowDirty,
    builderId: opts.builderId,
  });
  if (r.dvc) io.err(`dvc ${r.dvc.path} md5:${r.dvc.md5}${r.dvc.git ? ` (${r.dvc.git.file} at ${r.dvc.git.commit})` : ''}`);
  report(io, r, opts.json, r.dvc ? { dvc: { path: r.dvc.path, md5: r.dvc.md5, trackedBy: r.dvc.git?.file ?? r.dvc.trackedBy, commit: r.dvc.git?.commit } } : {});
  return r;
}

/** `customs push model <dir> --to <repo>:<tag> ...`; prints `<repo>@<digest>`. */
export async function pushModelCommand(dirArg: string | undefined, opts: PushModelCliOptions, io: Output = stdio): Promise<PushedModel> {
  const client = clientFor(opts);
  const mlflow = opts.mlflowRun ? await readMlflowRun(opts.mlflowRun, { trackingUri: opts.mlflowTrackingUri, model: opts.mlflowModel }) : undefined;
  const dir = dirArg ?? mlflow?.model?.dir;
  if (!dir) throw err('NAME_INVALID', mlflow ? `MLflow run ${mlflow.runId} logged no model; give the model directory` : 'give the model directory (or --mlflow-run)');
  if (mlflow) io.err(`mlflow run ${mlflow.runId}${mlflow.model?.flavor ? ` (${mlflow.model.flavor} model ${mlflow.model.modelId ?? mlflow.model.dir})` : ''}`);
  const r = await pushModel(client, {
    dir,
    mlflow,
    mlflowDataRoots: opts.mlflowDataRoot,
    target: parseTarget(opts.to),
    meta: {
      name: opts.name,
      version: opts.version,
      format: opts.format,
      licenses: opts.license,
      authors: opts.author,
      vendor: opts.vendor,
      family: opts.family,
      architecture: opts.architecture,
      description: opts.description,
      paramSize: opts.paramSize,
      precision: opts.precision,
    },
    created: opts.created,
    datasets: opts.dataset ?? [],
    baseModels: opts.baseModel ?? [],
    codeDir: opts.code,
    allowDirty: opts.allowDirty ?? false,
    builderId: opts.builderId ?? DEFAULT_BUILDER_ID,
    params: parseParams(opts.param ?? []),
    signingKey: opts.sign ? await loadSigningKey(opts.sign) : undefined,
    sbomPython: opts.sbomPython,
    task: opts.task,
    startedOn: opts.started,
    invocationId: opts.invocationId,
    entryPoint: opts.entryPoint,
    progress: terminalProgress(),
    modelSignature: opts.modelSignature,
  });
  if (r.code?.dirty) io.err(`warning: the work tree had uncommitted changes or untracked files; the provenance records them (commit ${r.code.commit})`);
  report(io, r, opts.json, { provenance: r.provenance, code: r.code, datasets: r.datasets });
  return r;
}
