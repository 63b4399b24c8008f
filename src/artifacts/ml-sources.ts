import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { err } from '../oci/index.js';
import type { DvcIdentity } from './dvc.js';
import { dvcMd5If } from './dvc.js';
import type { ModelMeta } from './modelpack.js';
import { localSourcePath, type MlflowDataset, type MlflowRun } from './mlflow.js';
import { scrubRemote, type GitSource, type ResourceDescriptor } from './provenance.js';

/**
 * What MLflow and DVC records contribute to customs' provenance (SLSA v1) and ModelPack config:
 * - a DVC dataset: its git commit (the `.dvc`/`dvc.lock` version) as the source, and the tracked
 *   data as a dependency whose digest set is DVC's `md5`, so lineage finds consumers by DVC md5;
 * - an MLflow run: its parameters (externalParameters), its identity (externalParameters.mlflowRun),
 *   its metrics and model flavour (a `runDetails.byproducts` entry), the commit MLflow recorded
 *   (`mlflow.source.git.commit`) and the datasets it logged (name, MLflow digest, source; with the
 *   source file's sha256 and DVC md5 when the file is at hand).
 */
export const DVC_DATASET_BUILD_TYPE = 'https://customs.dev/dvc-dataset/v1';
export const MLFLOW_RUN_BYPRODUCT = 'mlflow-run';

/** The source commit of a DVC record, as a git dependency. */
export function dvcSource(id: DvcIdentity): GitSource | undefined {
  if (!id.git) return undefined;
  const remote = id.git.remote ?? `file://${dirname(id.trackedBy)}`;
  return { uri: `git+${remote}@${id.git.commit}`, remote, ref: id.git.commit, commit: id.git.commit, dirty: false };
}

/** The tracked data as DVC names it: `md5` digest, path, size, file count and the record that tracks it. */
export function dvcData(id: DvcIdentity): ResourceDescriptor {
  return {
    name: id.path,
    digest: { md5: id.md5 },
    annotations: {
      role: 'dvc-tracked-data',
      dvcFile: id.git?.file ?? id.trackedBy,
      ...(id.stage ? { dvcStage: id.stage } : {}),
      ...(id.isDir ? { dvcType: 'directory', nfiles: id.files.length } : { dvcType: 'file' }),
      size: id.files.reduce((n, f) => n + f.size, 0),
    },
  };
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1024 * 1024 })) h.update(c as Buffer);
  return h.digest('hex');
}

/** Where a relative MLflow dataset source may live: `--mlflow-data-root`, the code directory, the training script's directory, the working directory. */
function candidatePaths(ds: MlflowDataset, run: MlflowRun, roots: readonly string[]): string[] {
  const script = run.tags['mlflow.source.name'];
  const bases = [...roots, ...(script && isAbsolute(script) ? [dirname(script)] : []), process.cwd()];
  return [...new Set(bases.map((b) => localSourcePath(ds, b)).filter((p): p is string => p !== undefined))];
}

/** An MLflow dataset input as a training-dataset dependency; content digests when the source file is found. */
async function mlflowDatasetDependency(ds: MlflowDataset, run: MlflowRun, roots: readonly string[]): Promise<ResourceDescriptor> {
  const digest: Record<string, string> = {};
  let uri: string | undefined;
  for (const p of candidatePaths(ds, run, roots)) {
    if (!(await stat(p).catch(() => undefined))?.isFile()) continue;
    digest.sha256 = await sha256File(p);
    const md5 = await dvcMd5If(p);
    if (md5) digest.md5 = md5;
    uri = `file://${p}`;
    break;
  }
  return {
    name: ds.name,
    ...(uri ? { uri } : /^[a-z][a-z0-9+.-]*:\/\//i.test(ds.source) ? { uri: ds.source } : {}),
    digest,
    annotations: {
      role: 'training-dataset',
      mlflowDigest: ds.digest,
      mlflowSource: ds.source,
      mlflowSourceType: ds.sourceType,
      ...(ds.context ? { mlflowContext: ds.context } : {}),
    },
  };
}

export interface MlflowContribution {
  readonly parameters: Record<string, string>;
  readonly extraParameters: Record<string, unknown>;
  readonly dependencies: ResourceDescriptor[];
  readonly byproducts: Partial<ResourceDescriptor>[];
  readonly meta: Partial<Pick<ModelMeta, 'format' | 'architecture' | 'sourceURL' | 'revision'>>;
}

/**
 * What an MLflow run adds to a model push. `code` is the `--code` work tree when given: its commit must
 * be the one MLflow recorded (a model trained from one commit must not be pushed as another's).
 */
export async function mlflowContribution(run: MlflowRun, opts: { code?: GitSource | undefined; dataRoots: readonly string[] }): Promise<MlflowContribution> {
  if (opts.code && run.gitCommit && opts.code.commit !== run.gitCommit) {
    throw err('DENIED', `MLflow run ${run.runId} recorded commit ${run.gitCommit}, but --code is at ${opts.code.commit}`);
  }
  const dependencies: ResourceDescriptor[] = [];
  if (run.gitCommit && !opts.code) {
    const remote = run.gitRepoURL ? scrubRemote(run.gitRepoURL) : undefined;
    dependencies.push({
      ...(remote ? { uri: `git+${remote}@${run.gitCommit}` } : { name: run.tags['mlflow.source.name'] ?? 'source' }),
      digest: { gitCommit: run.gitCommit },
      annotations: { role: 'source', recordedBy: 'mlflow' },
    });
  }
  // Autologging also logs the in-memory training arrays (source type "code"): those name no data of their own.
  for (const ds of run.datasets) dependencies.push(await mlflowDatasetDependency(ds, run, opts.dataRoots));
  const model = run.model;
  const flavorConf = model?.flavor;
  return {
    parameters: { ...run.params },
    extraParameters: { mlflowRun: { runId: run.runId, experimentId: run.experimentId, ...(run.runName ? { runName: run.runName } : {}) } },
    dependencies,
    byproducts: [
      {
        name: `${MLFLOW_RUN_BYPRODUCT}/${run.runId}`,
        annotations: {
          runId: run.runId,
          experimentId: run.experimentId,
          ...(run.runName ? { runName: run.runName } : {}),
          ...(run.user ? { user: run.user } : {}),
          ...(run.startTime ? { startTime: run.startTime } : {}),
          ...(run.endTime ? { endTime: run.endTime } : {}),
          metrics: { ...run.metrics },
          ...(model?.flavor ? { flavor: model.flavor, flavors: [...model.flavors] } : {}),
          ...(model?.flavorVersion ? { flavorVersion: model.flavorVersion } : {}),
          ...(model?.mlflowVersion ? { mlflowVersion: model.mlflowVersion } : {}),
          ...(model?.modelId ? { modelId: model.modelId } : {}),
        },
      },
    ],
    meta: {
      ...(flavorConf ? { format: flavorConf } : {}),
      ...(run.tags['estimator_name'] ? { architecture: run.tags['estimator_name'] } : {}),
      ...(run.gitCommit ? { revision: run.gitCommit } : {}),
      ...(run.gitRepoURL ? { sourceURL: scrubRemote(run.gitRepoURL) } : {}),
    },
  };
}

export const resolveRoots = (roots: readonly (string | undefined)[]): string[] => roots.filter((r): r is string => !!r).map((r) => resolve(r));
