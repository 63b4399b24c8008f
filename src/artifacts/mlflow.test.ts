import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMlflowRun, storeRoot } from './mlflow.js';

/** MLflow 2's file-store layout (the model under the run's artifacts), written as MLflow writes it. */
describe('MLflow file store reader', () => {
  let root: string;
  const id = 'abcdef0123456789abcdef0123456789';
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'customs-mlruns-'));
    const run = join(root, '1', id);
    for (const d of ['params', 'metrics', 'tags', 'artifacts/model', 'inputs/i1']) await mkdir(join(run, d), { recursive: true });
    await mkdir(join(root, '1', 'datasets', 'd1'), { recursive: true });
    await writeFile(join(run, 'meta.yaml'), `artifact_uri: file://${run}/artifacts\nend_time: 1700000060000\nexperiment_id: '1'\nrun_id: ${id}\nrun_name: brave-fox\nstart_time: 1700000000000\nstatus: 3\nuser_id: ml\n`);
    await writeFile(join(run, 'params', 'alpha'), '0.5');
    // timestamp value step: the latest value is that of the highest step, then the latest time.
    await writeFile(join(run, 'metrics', 'loss'), '1700000001000 0.9 0\n1700000003000 0.4 2\n1700000002000 0.1 1\n');
    await writeFile(join(run, 'tags', 'mlflow.source.git.commit'), 'c0ffee');
    await writeFile(join(run, 'artifacts', 'model', 'MLmodel'), 'flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n  sklearn:\n    sklearn_version: 1.2.1\nmlflow_version: 2.9.0\n');
    await writeFile(join(run, 'inputs', 'i1', 'meta.yaml'), 'destination_id: x\ndestination_type: RUN\nsource_id: d1\nsource_type: DATASET\ntags:\n  mlflow.data.context: training\n');
    await writeFile(join(root, '1', 'datasets', 'd1', 'meta.yaml'), `digest: 1a2b3c4d\nname: tx\nsource: '{"uri": "s3://bucket/tx.csv"}'\nsource_type: s3\n`);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('reads params, the latest metric, the commit, dataset inputs and an MLflow 2 model by run id', async () => {
    const r = await readMlflowRun(id, { trackingUri: `file://${root}` });
    expect(r).toMatchObject({ runId: id, runName: 'brave-fox', experimentId: '1', user: 'ml', params: { alpha: '0.5' }, metrics: { loss: 0.4 }, gitCommit: 'c0ffee', startTime: '2023-11-14T22:13:20.000Z' });
    expect(r.datasets).toEqual([{ name: 'tx', digest: '1a2b3c4d', sourceType: 's3', source: 's3://bucket/tx.csv', context: 'training' }]);
    expect(r.model).toMatchObject({ dir: join(root, '1', id, 'artifacts', 'model'), flavor: 'sklearn', flavorVersion: '1.2.1', mlflowVersion: '2.9.0' });
  });

  it('refuses what it cannot read', async () => {
    await expect(readMlflowRun('f'.repeat(32), { trackingUri: root })).rejects.toThrow(/no run f+ in the MLflow store/);
    await expect(readMlflowRun('../etc', { trackingUri: root })).rejects.toThrow(/neither an MLflow run directory nor a run id/);
    await expect(readMlflowRun(id, { trackingUri: root, model: 'other' })).rejects.toThrow(/has no model other/);
    expect(() => storeRoot('sqlite:///mlflow.db')).toThrow(/only MLflow's local file store/);
    expect(storeRoot('file:///srv/mlruns')).toBe('/srv/mlruns');
  });
});
