import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { TOOLS_DIR } from './helpers/tools.js';

/**
 * examples/fraud-detection/run.sh, the seed scenario of issue 17, run as a user runs it (a built
 * customs, the pinned DVC, MLflow and model_signing): two DVC versions, two MLflow runs, two
 * commits, both pushed to prod; lineage of prod shows all of them; the runbook's drill by DVC md5
 * quarantines the v2 dataset and model and rolls prod back to v1.
 */
const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;
let work: string | undefined;

describe('examples/fraud-detection/run.sh', () => {
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('runs the scenario end to end', async () => {
    expect(existsSync(join(ROOT, 'dist', 'cli', 'main.js')), 'npm run build first').toBe(true);
    work = await mkdtemp(join(tmpdir(), 'customs-example-'));
    const { stdout } = await run('bash', [join(ROOT, 'examples/fraud-detection/run.sh')], {
      env: { ...process.env, WORK: work, CUSTOMS_TOOLS_DIR: TOOLS_DIR, CUSTOMS_TOKEN: '', CUSTOMS_URL: '' },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 600_000,
    });
    const runs = [...stdout.matchAll(/^mlflow run ([0-9a-f]{32})$/gm)].map((m) => m[1]!);
    expect(new Set(runs).size).toBe(2);
    const md5s = [...stdout.matchAll(/^dvc transactions\.csv md5:([0-9a-f]{32}) \(data\/transactions\.csv\.dvc at ([0-9a-f]{40})\)$/gm)];
    expect(md5s).toHaveLength(2);
    const [v1, v2] = md5s.map((m) => ({ md5: m[1]!, commit: m[2]! }));
    expect(v1!.md5).not.toBe(v2!.md5);
    expect(v1!.commit).not.toBe(v2!.commit);
    const models = [...stdout.matchAll(/^models\/fraud@(sha256:[0-9a-f]{64})$/gm)].map((m) => m[1]!);
    const [m1, m2] = models;

    // Lineage of prod: the tag's history names both runs, both DVC md5s and both commits.
    const history = stdout.slice(stdout.indexOf('history of tag prod'), stdout.indexOf('## 4.'));
    for (const id of runs) expect(history).toContain(`mlflow run ${id}`);
    for (const v of [v1!, v2!]) {
      expect(history).toContain(`commit     ${v.commit}`);
      expect(history).toContain(`dvc md5:${v.md5} commit ${v.commit}`);
    }
    expect(history).toMatch(new RegExp(`\\* ${m2}[^\\n]*\\n\\s+mlflow run ${runs[1]}`));

    // The drill: the v2 dataset and model quarantined, prod back on v1; v2 refused.
    expect(stdout).toMatch(new RegExp(`^quarantine +datasets/transactions .*dvc-tracked-data$`, 'm'));
    expect(stdout).toMatch(new RegExp(`^quarantine +models/fraud .*training-dataset$`, 'm'));
    expect(stdout).toMatch(new RegExp(`^rollback +models/fraud +prod +${m2!.slice(0, 19)} +${m1!.slice(0, 19)}`, 'm'));
    expect(stdout).toContain(`$ customs pull models/fraud:prod $WORK/serving\nmodels/fraud@${m1}`);
    expect(stdout).toMatch(/^error: .*403.*quarantined/m);
    // The pulled model is the MLflow model directory, with its MLmodel file.
    expect(await readFile(join(work, 'serving', 'MLmodel'), 'utf8')).toMatch(/sklearn/);
    // The script stopped the server it started (a server left running would outlive the test).
    const listening = (await readFile(join(work, 'server.log'), 'utf8')).split('\n').find((l) => l.includes('"msg":"listening"'));
    const pid = (JSON.parse(listening ?? '{}') as { pid?: number }).pid ?? 0;
    expect(pid).toBeGreaterThan(0);
    expect(() => process.kill(pid, 0)).toThrow();
  }, 600_000);
});
