import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer, type ServerProcess } from './helpers/process.js';

/**
 * Issue 15: a key of the config file wins over a CLI default, an explicit flag over the file
 * (`data:` was ignored because commander's default `--data ./data` always won).
 */
describe('customs serve: config keys win over CLI defaults, explicit flags over config', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'customs-precedence-'));
    await writeFile(join(dir, 'customs.yaml'), `data: ${join(dir, 'from-config')}\nlog: { level: info }\n`);
  });
  afterAll(async () => dir && rm(dir, { recursive: true, force: true }));

  async function dataOf(args: string[]): Promise<string> {
    const p: ServerProcess = await spawnServer(args);
    try {
      const line = p.lines.map((l) => JSON.parse(l) as { msg?: string; data?: string }).find((j) => j.msg === 'listening');
      return line!.data!;
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
    }
  }

  it('data: in the config file is used when --data is not given', async () => {
    expect(await dataOf(['--config', join(dir, 'customs.yaml')])).toBe(join(dir, 'from-config'));
    expect((await stat(join(dir, 'from-config', 'admin-token'))).isFile()).toBe(true);
  }, 60_000);

  it('an explicit --data wins over the config file', async () => {
    expect(await dataOf(['--config', join(dir, 'customs.yaml'), '--data', join(dir, 'from-flag')])).toBe(join(dir, 'from-flag'));
  }, 60_000);
});
