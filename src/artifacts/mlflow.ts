import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { err } from '../oci/index.js';

/**
 * A run in MLflow's local file store (`mlruns/`, tracking URI `file:`), read without MLflow:
 * `<experiment>/<run id>/meta.yaml`, `params/`, `metrics/`, `tags/`, `inputs/` (dataset inputs,
 * each naming `<experiment>/datasets/<id>/meta.yaml`) and the model the run logged, either an
 * MLflow 3 logged model (`outputs/<model id>` -> `<experiment>/models/<model id>/artifacts/`) or
 * an MLflow 2 run artifact directory holding an `MLmodel` file.
 */
export interface MlflowDataset {
  readonly name: string;
  /** MLflow's own dataset digest (a short hash MLflow computes; not a content digest). */
  readonly digest: string;
  readonly sourceType: string;
  /** The source's URI when it has one (`{"uri": ...}`), else the raw source JSON. */
  readonly source: string;
  readonly context: string | undefined;
}

export interface MlflowModel {
  readonly dir: string;
  readonly modelId: string | undefined;
  readonly name: string | undefined;
  /** Flavours named in MLmodel (`python_function`, `sklearn`, ...). */
  readonly flavors: readonly string[];
  /** The flavour that says what the model is (the first that is not `python_function`). */
  readonly flavor: string | undefined;
  readonly mlflowVersion: string | undefined;
  readonly flavorVersion: string | undefined;
}

export interface MlflowRun {
  readonly runId: string;
  readonly runName: string | undefined;
  readonly experimentId: string;
  readonly runDir: string;
  readonly startTime: string | undefined;
  readonly endTime: string | undefined;
  readonly user: string | undefined;
  readonly params: Readonly<Record<string, string>>;
  readonly metrics: Readonly<Record<string, number>>;
  readonly tags: Readonly<Record<string, string>>;
  readonly gitCommit: string | undefined;
  readonly gitRepoURL: string | undefined;
  readonly datasets: readonly MlflowDataset[];
  readonly model: MlflowModel | undefined;
}

const runMeta = z.looseObject({
  run_id: z.string(),
  run_name: z.string().nullish(),
  experiment_id: z.union([z.string(), z.number()]).transform(String),
  start_time: z.number().nullish(),
  end_time: z.number().nullish(),
  user_id: z.string().nullish(),
});
const inputMeta = z.looseObject({ source_id: z.string(), source_type: z.string(), tags: z.record(z.string(), z.string()).nullish() });
const datasetMeta = z.looseObject({ name: z.string(), digest: z.string(), source_type: z.string(), source: z.string() });
const outputMeta = z.looseObject({ destination_id: z.string(), destination_type: z.string() });
const modelMeta = z.looseObject({ model_id: z.string(), name: z.string().nullish(), artifact_location: z.string().nullish() });
const mlmodel = z.looseObject({ flavors: z.record(z.string(), z.looseObject({}).nullish()), mlflow_version: z.string().nullish(), model_id: z.string().nullish() });

const RUN_ID = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_FILE = 1024 * 1024;

async function readText(path: string): Promise<string | undefined> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) return undefined;
  if (st.size > MAX_FILE) throw err('TOO_LARGE', `${path} is larger than ${MAX_FILE} bytes`);
  return readFile(path, 'utf8');
}

async function yamlFile<T extends z.ZodType>(path: string, schema: T): Promise<z.output<T> | undefined> {
  const text = await readText(path);
  if (text === undefined) return undefined;
  const r = schema.safeParse(parseYaml(text));
  if (!r.success) throw err('MANIFEST_INVALID', `${path} is not what MLflow writes: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

const listDir = (dir: string): Promise<string[]> => readdir(dir).catch(() => [] as string[]);
const isoOf = (ms: number | null | undefined): string | undefined => (typeof ms === 'number' ? new Date(ms).toISOString() : undefined);

/** The file store root from a tracking URI (`file:///abs`, `file:rel`, a plain path) or MLFLOW_TRACKING_URI, else `./mlruns`. */
export function storeRoot(trackingUri: string | undefined = process.env.MLFLOW_TRACKING_URI): string {
  if (!trackingUri) return resolve('mlruns');
  if (trackingUri.startsWith('file://')) return fileURLToPath(trackingUri);
  if (trackingUri.startsWith('file:')) return resolve(trackingUri.slice(5));
  if (/^[a-z][a-z0-9+.-]*:/i.test(trackingUri)) throw err('UNSUPPORTED', `tracking URI ${trackingUri}: only MLflow's local file store (file:) is read; give the run's directory instead`);
  return resolve(trackingUri);
}

/** A run directory, from its path or from its id in the store. */
async function locateRun(ref: string, trackingUri: string | undefined): Promise<string> {
  if ((await readText(join(ref, 'meta.yaml'))) !== undefined && (await stat(join(ref, 'params')).catch(() => undefined)) !== undefined) return resolve(ref);
  if (!RUN_ID.test(ref)) throw err('NAME_UNKNOWN', `${ref} is neither an MLflow run directory nor a run id`);
  const root = storeRoot(trackingUri);
  for (const exp of await listDir(root)) {
    const dir = join(root, exp, ref);
    if ((await readText(join(dir, 'meta.yaml'))) !== undefined) return dir;
  }
  throw err('NAME_UNKNOWN', `no run ${ref} in the MLflow store ${root} (set --mlflow-tracking-uri or MLFLOW_TRACKING_URI)`);
}

/** `key -> value` files of a directory (params, tags); nested keys (`a/b`) are subdirectories. */
async function keyValues(dir: string, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await listDir(dir)).sort()) {
    const p = join(dir, name);
    const st = await stat(p);
    if (st.isDirectory()) Object.assign(out, await keyValues(p, `${prefix}${name}/`));
    else out[`${prefix}${name}`] = (await readText(p)) ?? '';
  }
  return out;
}

/** A metric file holds `timestamp value step` lines; MLflow's latest value is the one of the highest step, then the latest time. */
async function metrics(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [key, text] of Object.entries(await keyValues(dir))) {
    let best: { ts: number; value: number; step: number } | undefined;
    for (const line of text.split('\n')) {
      const [ts, value, step] = line.trim().split(/\s+/).map(Number);
      if (ts === undefined || value === undefined || Number.isNaN(ts) || Number.isNaN(value)) continue;
      const s = step ?? 0;
      if (!best || s > best.step || (s === best.step && ts >= best.ts)) best = { ts, value, step: s };
    }
    if (best) out[key] = best.value;
  }
  return out;
}

function sourceOf(source: string): string {
  try {
    const j = JSON.parse(source) as { uri?: unknown; url?: unknown; path?: unknown };
    for (const v of [j.uri, j.url, j.path]) if (typeof v === 'string') return v;
  } catch {
    // not JSON: keep as is
  }
  return source;
}

async function datasets(runDir: string, expDir: string): Promise<MlflowDataset[]> {
  const out: MlflowDataset[] = [];
  for (const id of (await listDir(join(runDir, 'inputs'))).sort()) {
    const input = await yamlFile(join(runDir, 'inputs', id, 'meta.yaml'), inputMeta);
    if (!input || input.source_type !== 'DATASET') continue;
    const ds = await yamlFile(join(expDir, 'datasets', input.source_id, 'meta.yaml'), datasetMeta);
    if (!ds) continue;
    out.push({ name: ds.name, digest: ds.digest, sourceType: ds.source_type, source: sourceOf(ds.source), context: input.tags?.['mlflow.data.context'] ?? undefined });
  }
  return out;
}

async function modelAt(dir: string, meta: { modelId?: string | undefined; name?: string | undefined }): Promise<MlflowModel | undefined> {
  const m = await yamlFile(join(dir, 'MLmodel'), mlmodel);
  if (!m) return undefined;
  const flavors = Object.keys(m.flavors);
  const flavor = flavors.find((f) => f !== 'python_function') ?? flavors[0];
  const fv = flavor ? (m.flavors[flavor] as Record<string, unknown> | null | undefined) : undefined;
  const flavorVersion = fv ? Object.entries(fv).find(([k, v]) => k.endsWith('_version') && typeof v === 'string')?.[1] : undefined;
  return { dir, modelId: meta.modelId ?? m.model_id ?? undefined, name: meta.name, flavors, flavor, mlflowVersion: m.mlflow_version ?? undefined, flavorVersion: flavorVersion as string | undefined };
}

/** MLflow 2: directories under the run's artifacts holding an MLmodel file. */
async function runArtifactModels(artifacts: string, depth = 0): Promise<MlflowModel[]> {
  if (depth > 4) return [];
  const m = await modelAt(artifacts, {});
  if (m) return [m];
  const out: MlflowModel[] = [];
  for (const name of await listDir(artifacts)) {
    const p = join(artifacts, name);
    if ((await stat(p)).isDirectory()) out.push(...(await runArtifactModels(p, depth + 1)).map((x) => ({ ...x, name: x.name ?? name })));
  }
  return out;
}

async function models(runDir: string, expDir: string): Promise<MlflowModel[]> {
  const out: MlflowModel[] = [];
  for (const id of (await listDir(join(runDir, 'outputs'))).sort()) {
    const o = await yamlFile(join(runDir, 'outputs', id, 'meta.yaml'), outputMeta);
    if (!o || o.destination_type !== 'MODEL_OUTPUT') continue;
    const modelDir = join(expDir, 'models', o.destination_id);
    const meta = await yamlFile(join(modelDir, 'meta.yaml'), modelMeta);
    // The store may have moved since: prefer the artifacts beside meta.yaml to the recorded file: URI.
    let artifacts = join(modelDir, 'artifacts');
    if (!(await stat(join(artifacts, 'MLmodel')).catch(() => undefined)) && meta?.artifact_location?.startsWith('file:')) artifacts = fileURLToPath(meta.artifact_location);
    const m = await modelAt(artifacts, { modelId: o.destination_id, name: meta?.name ?? undefined });
    if (m) out.push(m);
  }
  if (out.length === 0) out.push(...(await runArtifactModels(join(runDir, 'artifacts'))));
  return out;
}

/** Picks the run's model: the only one, or the one whose name or id is `which`. */
function pickModel(found: MlflowModel[], which: string | undefined, runId: string): MlflowModel | undefined {
  if (which) {
    const m = found.find((x) => x.name === which || x.modelId === which || basename(x.dir) === which);
    if (!m) throw err('NAME_UNKNOWN', `run ${runId} has no model ${which} (it has ${found.map((x) => x.name ?? x.modelId).join(', ') || 'none'})`);
    return m;
  }
  if (found.length > 1) throw err('NAME_INVALID', `run ${runId} logged ${found.length} models (${found.map((x) => x.name ?? x.modelId).join(', ')}); choose one with --mlflow-model`);
  return found[0];
}

export interface ReadRunOptions {
  readonly trackingUri?: string | undefined;
  /** Which logged model, by name or id, when the run logged several. */
  readonly model?: string | undefined;
}

/** Reads a run by id (in the store of `trackingUri`) or by the path of its directory. */
export async function readMlflowRun(ref: string, opts: ReadRunOptions = {}): Promise<MlflowRun> {
  const runDir = await locateRun(ref, opts.trackingUri);
  const expDir = dirname(runDir);
  const meta = await yamlFile(join(runDir, 'meta.yaml'), runMeta);
  if (!meta) throw err('NAME_UNKNOWN', `${runDir} has no meta.yaml`);
  const tags = await keyValues(join(runDir, 'tags'));
  const found = await models(runDir, expDir);
  return {
    runId: meta.run_id,
    runName: meta.run_name ?? tags['mlflow.runName'] ?? undefined,
    experimentId: meta.experiment_id,
    runDir,
    startTime: isoOf(meta.start_time),
    endTime: isoOf(meta.end_time),
    user: meta.user_id ?? tags['mlflow.user'] ?? undefined,
    params: await keyValues(join(runDir, 'params')),
    metrics: await metrics(join(runDir, 'metrics')),
    tags,
    gitCommit: tags['mlflow.source.git.commit'],
    gitRepoURL: tags['mlflow.source.git.repoURL'],
    datasets: await datasets(runDir, expDir),
    model: pickModel(found, opts.model, meta.run_id),
  };
}

/** A dataset source as a local file path, when it is one (relative sources are taken from `base`). */
export function localSourcePath(ds: MlflowDataset, base: string): string | undefined {
  if (ds.sourceType !== 'local' && !ds.source.startsWith('file:')) return undefined;
  const p = ds.source.startsWith('file://') ? fileURLToPath(ds.source) : ds.source.replace(/^file:/, '');
  return isAbsolute(p) ? p : resolve(base, p);
}
