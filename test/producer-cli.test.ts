import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register } from '../src/cli/producer/index.js';
import { startDockerRegistry, type DockerRegistry } from './producer-fixtures.js';

/** The producer commands as a user runs them: parsed by commander, errors as messages and exit code 1. */
async function runCli(args: string[]): Promise<{ out: string; err: string; code: number }> {
  const program = new Command().exitOverride();
  register(program);
  let out = '';
  let err = '';
  const w1 = process.stdout.write.bind(process.stdout);
  const w2 = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((c: string) => ((out += String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string) => ((err += String(c)), true)) as typeof process.stderr.write;
  const before = process.exitCode;
  process.exitCode = 0;
  try {
    await program.parseAsync(['node', 'customs', ...args]);
  } finally {
    process.stdout.write = w1;
    process.stderr.write = w2;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { out, err, code };
}

describe('producer CLI', () => {
  let reg: DockerRegistry;
  let work: string;
  beforeAll(async () => {
    reg = await startDockerRegistry();
    work = await mkdtemp(join(tmpdir(), 'customs-cli-'));
  });
  afterAll(async () => {
    await reg?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('sbom python -o writes a valid CycloneDX 1.6 SBOM of that interpreter', async () => {
    const file = join(work, 'env.cdx.json');
    const r = await runCli(['sbom', 'python', '--python', '/usr/bin/python3', '-o', file]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/distributions, Python 3\./);
    const text = await readFile(file, 'utf8');
    expect(await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(text)).toBeNull();
    expect(JSON.parse(text).components.some((c: { purl?: string }) => c.purl?.startsWith('pkg:pypi/scikit-learn@'))).toBe(true);
  }, 60_000);

  it('push model refuses a dirty work tree, naming the fix, and exits 1', async () => {
    const code = join(work, 'code');
    const g = (...a: string[]) => execFileSync('git', ['-C', code, '-c', 'user.name=t', '-c', 'user.email=t@e', ...a]);
    execFileSync('git', ['init', '-q', '-b', 'main', code]);
    await writeFile(join(code, 'train.py'), 'x = 1\n');
    g('add', '.');
    g('commit', '-q', '-m', 'c');
    await writeFile(join(code, 'train.py'), 'x = 2\n');
    const model = join(work, 'model');
    execFileSync('mkdir', ['-p', model]);
    await writeFile(join(model, 'model.joblib'), 'w');
    const r = await runCli(['push', 'model', model, '--to', 'models/m:v1', '--code', code, '--url', reg.url]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/uncommitted changes.*--allow-dirty/);
    // For people: the changed files one per line, not a JSON array.
    expect(r.err.split('\n')).toContain('   M train.py');
    expect(r.err).not.toMatch(/[[\]"]/);
    execFileSync('git', ['-C', code, 'checkout', '--', 'train.py']);
    await writeFile(join(code, 'features.py'), 'y = 1\n'); // untracked: code that ran but is in no commit
    const untracked = await runCli(['push', 'model', model, '--to', 'models/m:v1', '--code', code, '--url', reg.url]);
    expect(untracked.code).toBe(1);
    expect(untracked.err.split('\n')).toContain('  ?? features.py');
    const ok = await runCli(['push', 'model', model, '--to', 'models/m:v1', '--code', code, '--allow-dirty', '--url', reg.url]);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.err).toMatch(/uncommitted changes or untracked files; the provenance records them/);
    expect(ok.out.trim()).toMatch(/^models\/m@sha256:[0-9a-f]{64}$/);
  });

  it('attach needs exactly one kind; pull of a missing tag is a clear error', async () => {
    const none = await runCli(['attach', 'models/m:v1', '--url', reg.url]);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/exactly one of --sbom, --provenance, --signature/);
    const missing = await runCli(['pull', 'models/m:nope', join(work, 'o'), '--url', reg.url]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^error: GET manifest models\/m:nope failed \(HTTP 404\): MANIFEST_UNKNOWN/);
  });
});
