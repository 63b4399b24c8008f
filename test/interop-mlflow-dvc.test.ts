import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { appendFile, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../src/artifacts/client.js';
import { opsCommands as cmd, type AdminTarget } from '../src/cli/ops/index.js';
import type { Output } from '../src/cli/producer/common.js';
import { pushDatasetCommand, pushModelCommand } from '../src/cli/producer/index.js';
import { imageManifestSchema } from '../src/oci/index.js';
import { capture } from './ops-fixtures.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { venvTool } from './helpers/tools.js';

/**
 * MLflow (mlflow-skinny 3.17.2, file store) and DVC (3.67.1) as the training side writes them,
 * read by customs: `push dataset --dvc` checks and records DVC's md5 and the commit of its record;
 * `push model --mlflow-run` records the run's params, metrics, commit, dataset inputs and flavour.
 * Lineage then finds models by DVC md5 (file or directory) and by the logged CSV's sha256.
 */
const run = promisify(execFile);
const quiet: Output = { out() {}, err() {} };
const EXAMPLE = new URL('../examples/fraud-detection/', import.meta.url).pathname;
const DVC = venvTool('dvc');
const PY = venvTool('python');
const ENV = { ...process.env, DVC_NO_ANALYTICS: '1', MLFLOW_ALLOW_FILE_STORE: 'true', GIT_AUTHOR_NAME: 'ml', GIT_AUTHOR_EMAIL: 'ml@example.com', GIT_COMMITTER_NAME: 'ml', GIT_COMMITTER_EMAIL: 'ml@example.com' };

let s: TestServer;
let work: string;
let repo: string;
let keyPath: string;
let runId: string;
let t: AdminTarget;
const saved = process.env.CUSTOMS_TOKEN;

const sh = (cmdName: string, args: string[]) => run(cmdName, args, { cwd: repo, env: ENV, maxBuffer: 16 * 1024 * 1024 }).then((r) => r.stdout.trim());
const git = (...args: string[]) => sh('git', args);
const dvc = (...args: string[]) => sh(DVC, args);
const sha256 = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');
const md5 = async (p: string) => createHash('md5').update(await readFile(p)).digest('hex');

/** The provenance statement customs pushed (the layer of the referrer whose predicate is SLSA). */
async function provenanceOf(repository: string, digest: string): Promise<Record<string, any>> {
  const client = new RegistryClient({ url: s.url, token: s.token });
  const idx = await client.listReferrers(repository, digest as `sha256:${string}`);
  const ref = idx.manifests.find((m) => m.annotations?.['dev.sigstore.bundle.predicateType'] === 'https://slsa.dev/provenance/v1')!;
  const m = imageManifestSchema.parse(JSON.parse((await client.getManifest(repository, ref.digest)).bytes.toString()));
  const { body } = await client.getBlob(repository, m.layers[0]!.digest);
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c));
  const bundle = JSON.parse(Buffer.concat(chunks).toString());
  return JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString());
}

describe('MLflow and DVC records into provenance and lineage', () => {
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'customs-mlflow-dvc-'));
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    keyPath = join(work, 'ml.key');
    await writeFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    s = await startTestServer({ gate: 'enforce' });
    await s.trustKey(publicKey, 'ml');
    process.env.CUSTOMS_TOKEN = s.token ?? '';
    t = { url: s.url, token: s.token };
    repo = join(work, 'repo');
    await mkdir(join(repo, 'data', 'images'), { recursive: true });
    await copyFile(join(EXAMPLE, 'data', 'transactions.csv'), join(repo, 'data', 'transactions.csv'));
    await copyFile(join(EXAMPLE, 'train_mlflow.py'), join(repo, 'train_mlflow.py'));
    for (const [n, body] of [['a.txt', 'a'], ['b/c.txt', 'c'], ['é.txt', 'accent']] as const) {
      await mkdir(join(repo, 'data', 'images', n, '..'), { recursive: true });
      await writeFile(join(repo, 'data', 'images', n), body);
    }
    await git('init', '-q', '-b', 'main');
    await git('remote', 'add', 'origin', 'https://git.example/ml/fraud.git');
    await writeFile(join(repo, '.gitignore'), 'mlruns/\n');
    await dvc('init', '-q');
    await dvc('config', 'core.analytics', 'false');
    await dvc('add', '-q', 'data/transactions.csv', 'data/images');
    await git('add', '-A');
    await git('commit', '-qm', 'data v1');
    runId = (await sh(PY, ['train_mlflow.py', '--data', 'data/transactions.csv', '--n-estimators', '20'])).split('\n').pop()!;
  }, 240_000);
  afterAll(async () => {
    process.env.CUSTOMS_TOKEN = saved;
    await s?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('push dataset --dvc records the .dvc md5 and commit beside the OCI digest; consumers accept md5:<hex>', async () => {
    const csv = join(repo, 'data', 'transactions.csv');
    const r = await pushDatasetCommand(csv, { url: s.url, to: 'datasets/tx:v1', sign: keyPath, dvc: true }, quiet);
    expect(r.dvc).toMatchObject({ md5: await md5(csv), isDir: false, git: { commit: await git('rev-parse', 'HEAD'), file: 'data/transactions.csv.dvc' } });
    const st = await provenanceOf('datasets/tx', r.digest);
    expect(st.predicate.buildDefinition.buildType).toBe('https://customs.dev/dvc-dataset/v1');
    expect(st.predicate.buildDefinition.resolvedDependencies).toEqual(
      expect.arrayContaining([expect.objectContaining({ digest: { gitCommit: r.dvc!.git!.commit } }), expect.objectContaining({ name: 'transactions.csv', digest: { md5: r.dvc!.md5 } })]),
    );
    const c = capture();
    const report = await cmd.consumers(t, c.io, `md5:${r.dvc!.md5}`, { json: true });
    expect(report.consumers.map((x) => `${x.repository}@${x.digest}`)).toEqual([`datasets/tx@${r.digest}`]);
  });

  it('a DVC-tracked directory: its .dir md5 is recomputed from the files; consumers accept md5:<hex>.dir', async () => {
    const r = await pushDatasetCommand(join(repo, 'data', 'images'), { url: s.url, to: 'datasets/images:v1', sign: keyPath, dvc: true }, quiet);
    const recorded = (await readFile(join(repo, 'data', 'images.dvc'), 'utf8')).match(/md5: ([0-9a-f]{32})\.dir/)![1]!;
    expect(r.dvc).toMatchObject({ md5: recorded, isDir: true });
    expect(r.dvc!.files.map((f) => f.relPath).sort()).toEqual(['a.txt', 'b/c.txt', 'é.txt']);
    const report = await cmd.consumers(t, capture().io, `md5:${recorded}.dir`, { json: true });
    expect(report.consumers.map((x) => x.digest)).toEqual([r.digest]);
  });

  it('a dvc.lock stage output is read like a .dvc file', async () => {
    await dvc('stage', 'add', '-q', '-n', 'prep', '-d', 'data/transactions.csv', '-o', 'data/prep.csv', 'head -n 50 data/transactions.csv > data/prep.csv');
    await dvc('repro', '-q');
    await git('add', '-A');
    await git('commit', '-qm', 'prep stage');
    const r = await pushDatasetCommand(join(repo, 'data', 'prep.csv'), { url: s.url, to: 'datasets/prep:v1', sign: keyPath, dvc: true }, quiet);
    expect(r.dvc).toMatchObject({ md5: await md5(join(repo, 'data', 'prep.csv')), stage: 'prep', git: { file: 'dvc.lock' } });
  }, 120_000);

  it('refuses data changed since DVC recorded it, and a DVC record not committed, naming the file', async () => {
    const csv = join(repo, 'data', 'transactions.csv');
    const before = await readFile(csv);
    await appendFile(csv, 'tx99999,1.00,3,fuel,1.0,0,0\n');
    await expect(pushDatasetCommand(csv, { url: s.url, to: 'datasets/tx:tampered', sign: keyPath, dvc: true }, quiet)).rejects.toThrow(/transactions\.csv changed since .*transactions\.csv\.dvc recorded it/);
    await dvc('add', '-q', 'data/transactions.csv');
    await expect(pushDatasetCommand(csv, { url: s.url, to: 'datasets/tx:uncommitted', sign: keyPath, dvc: true }, quiet)).rejects.toThrow(/data\/transactions\.csv\.dvc has uncommitted changes/);
    await writeFile(csv, before);
    await dvc('add', '-q', 'data/transactions.csv');
    expect(await git('status', '--porcelain', '--untracked-files=no')).toBe('');
    await expect(pushDatasetCommand(join(repo, 'train_mlflow.py'), { url: s.url, to: 'datasets/x:v1', dvc: true }, quiet)).rejects.toThrow(/not tracked by DVC/);
  }, 60_000);

  it('push model --mlflow-run: params, metrics, commit, dataset inputs and flavour in the provenance and ModelPack config; lineage shows the run', async () => {
    const csv = join(repo, 'data', 'transactions.csv');
    const commit = await git('rev-parse', 'HEAD~1'); // the run trained on the first commit
    const m = await pushModelCommand(undefined, { url: s.url, to: 'models/fraud:v1', mlflowRun: runId, mlflowTrackingUri: `file:${join(repo, 'mlruns')}`, mlflowDataRoot: [repo], dataset: ['datasets/tx:v1'], sign: keyPath }, quiet);
    const st = m.provenance as any;
    const def = st.predicate.buildDefinition;
    expect(def.externalParameters).toMatchObject({ n_estimators: '20', contamination: '0.04', random_state: '7', mlflowRun: { runId, experimentId: '0' } });
    expect(def.resolvedDependencies).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ digest: { gitCommit: commit }, annotations: expect.objectContaining({ role: 'source', recordedBy: 'mlflow' }) }),
        expect.objectContaining({ name: 'transactions', digest: { sha256: await sha256(csv), md5: await md5(csv) }, annotations: expect.objectContaining({ role: 'training-dataset', mlflowSource: 'data/transactions.csv', mlflowContext: 'training' }) }),
      ]),
    );
    const byproduct = st.predicate.runDetails.byproducts[0];
    expect(byproduct).toMatchObject({ name: `mlflow-run/${runId}`, annotations: { runId, flavor: 'sklearn', flavors: expect.arrayContaining(['python_function', 'sklearn']), metrics: { precision: expect.any(Number), recall: expect.any(Number) } } });
    expect(m.files.map((f) => f.relPath)).toEqual(expect.arrayContaining(['MLmodel', 'model.pkl']));
    const client = new RegistryClient({ url: s.url, token: s.token });
    const manifest = imageManifestSchema.parse(JSON.parse((await client.getManifest('models/fraud', m.digest)).bytes.toString()));
    const { body } = await client.getBlob('models/fraud', manifest.config.digest);
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(Buffer.from(c));
    const config = JSON.parse(Buffer.concat(chunks).toString());
    expect(config.config).toMatchObject({ format: 'sklearn', architecture: 'IsolationForest' });
    expect(config.descriptor).toMatchObject({ revision: commit, sourceURL: 'https://git.example/ml/fraud.git' });

    const c = capture();
    const lin = await cmd.lineage(t, c.io, 'models/fraud:v1', {});
    expect(lin.provenance[0]!.mlflowRun).toMatchObject({ runId, flavor: 'sklearn' });
    expect(c.out.join('\n')).toContain(`mlflow run ${runId}`);
    // By the logged dataset: the CSV's sha256 (also a file of datasets/tx) and its DVC md5 find the model.
    const bySha = await cmd.consumers(t, capture().io, `sha256:${await sha256(csv)}`, { json: true });
    expect(bySha.consumers.map((x) => x.repository)).toContain('models/fraud');
    const byMd5 = await cmd.consumers(t, capture().io, `md5:${await md5(csv)}`, { json: true });
    expect(byMd5.consumers.map((x) => `${x.repository}@${x.digest}`).sort()).toEqual([`datasets/tx@${(await client.resolve('datasets/tx', 'v1')).digest}`, `models/fraud@${m.digest}`].sort());
  }, 120_000);

  it('reads a run by its directory; refuses --code at another commit than MLflow recorded, and an unknown run', async () => {
    const runDir = join(repo, 'mlruns', '0', runId);
    const m = await pushModelCommand(undefined, { url: s.url, to: 'models/fraud:by-path', mlflowRun: runDir, sign: keyPath }, quiet);
    expect((m.provenance as any).predicate.runDetails.byproducts[0].annotations.runId).toBe(runId);
    await expect(pushModelCommand(undefined, { url: s.url, to: 'models/fraud:x', mlflowRun: runId, mlflowTrackingUri: join(repo, 'mlruns'), code: repo, sign: keyPath }, quiet)).rejects.toThrow(
      /MLflow run .* recorded commit .* but --code is at/,
    );
    await expect(pushModelCommand(undefined, { url: s.url, to: 'models/fraud:y', mlflowRun: 'f'.repeat(32), mlflowTrackingUri: join(repo, 'mlruns') }, quiet)).rejects.toThrow(/no run f+ in the MLflow store/);
  }, 60_000);
});
