import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './proxy-harness.js';

/**
 * Issue 15: every ```sh block of README.md, extracted from the README itself and run in order as one
 * bash script (`set -euo pipefail`) in a fresh clone-like directory, against the server the quickstart
 * starts under the default gate. Two substitutions only, because port 5000 may be taken on a shared
 * machine: `127.0.0.1:5000` becomes a free port, and CUSTOMS_URL points the CLI's default there.
 */
const ROOT = new URL('..', import.meta.url).pathname;

/** A fresh Debian machine's PATH (not a developer's pyenv or venv), with the node running this test. */
const FRESH_PATH = [...new Set([dirname(process.execPath), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'])].join(':');

export function shBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

/**
 * A directory as a fresh clone after `npm ci` looks: the committed sources (copied) and node_modules (linked,
 * not reinstalled). `npx customs` then does what it does in a clone: npm links the project into its npx cache
 * and runs `prepare` (the build) once, so dist/ is built here, not borrowed.
 */
async function freshClone(dir: string): Promise<void> {
  const tracked = execFileSync('git', ['-C', ROOT, 'ls-files'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  const wanted = (f: string) => /^(package\.json|package-lock\.json|tsconfig[^/]*\.json|\.gitignore|README\.md)$/.test(f) || /^(src|bin|examples|config)\//.test(f);
  for (const f of tracked.filter(wanted)) {
    await mkdir(join(dir, f, '..'), { recursive: true });
    await cp(join(ROOT, f), join(dir, f)); // the working tree's version: what is being tested
  }
  await mkdir(join(dir, 'node_modules'));
  for (const e of await readdir(join(ROOT, 'node_modules'))) await symlink(join(ROOT, 'node_modules', e), join(dir, 'node_modules', e));
  const git = (...a: string[]) => execFileSync('git', ['-C', dir, '-c', 'user.name=readme', '-c', 'user.email=readme@example.com', ...a]);
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-q', '-m', 'clone');
}

describe('README.md: every sh block runs as written under the default gate', () => {
  let dir: string;
  let transcript = '';
  let code: number | null = null;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'customs-readme-'));
    const proj = join(dir, 'customs');
    await mkdir(proj);
    await freshClone(proj);
    const blocks = shBlocks(await readFile(join(ROOT, 'README.md'), 'utf8'));
    const port = await freePort();
    const script = ['set -euo pipefail', 'set -x', ...blocks].join('\n').replaceAll('127.0.0.1:5000', `127.0.0.1:${port}`);
    await writeFile(join(dir, 'readme.sh'), script);
    await mkdir(join(dir, 'home'));
    // Its own process group: the server the quickstart starts in the background is ended with the script.
    const child = spawn('bash', [join(dir, 'readme.sh')], {
      cwd: proj,
      detached: true,
      env: { PATH: FRESH_PATH, HOME: join(dir, 'home'), LANG: 'C.UTF-8', CUSTOMS_URL: `http://127.0.0.1:${port}`, npm_config_update_notifier: 'false', npm_config_fund: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (d: Buffer) => (transcript += d.toString()));
    child.stderr.on('data', (d: Buffer) => (transcript += d.toString()));
    code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      // the group is already gone
    }
  }, 900_000);
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true, maxRetries: 5 });
  });

  it('finds the quickstart, producing and operating blocks', async () => {
    const blocks = shBlocks(await readFile(join(ROOT, 'README.md'), 'utf8'));
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    const all = blocks.join('\n');
    for (const step of ['npx customs keygen', 'npx customs serve', 'npx customs sign', 'npx customs push model', 'npx customs pull', 'npx customs rollback']) expect(all).toContain(step);
  });

  it('the script exits 0', () => {
    expect(code, transcript.slice(-6000)).toBe(0);
  });

  it('the quickstart explains the gate: unsigned is DENIED, signed is pulled back', async () => {
    expect(transcript).toMatch(/demo\/app@sha256:[0-9a-f]{64}: DENIED/);
    expect((await stat(join(dir, 'customs', 'out', 'pulled', 'index.json'))).isFile()).toBe(true);
  });

  it('producing models: the pulled files are the trained ones; the provenance names the code folder', async () => {
    const out = join(dir, 'customs', 'out');
    expect((await readFile(join(out, 'pulled-fraud', 'model.joblib'))).equals(await readFile(join(out, 'fraud-v1', 'model.joblib')))).toBe(true);
    expect(await readFile(join(out, 'pulled-fraud', 'metrics.json'), 'utf8')).toBe(await readFile(join(out, 'fraud-v1', 'metrics.json'), 'utf8'));
    expect(transcript).toMatch(/code\s+git\+file:\/\/.*@refs\/heads\/main gitCommit:[0-9a-f]{40}/);
  });

  it('operating: rollback to v1, lineage, quarantine, an intact audit log', () => {
    expect(transcript).toMatch(/rolled models\/fraud:prod back from sha256:[0-9a-f]{12} to sha256:[0-9a-f]{64} \(pinned\)/);
    expect(transcript).toMatch(/material sha256:[0-9a-f]{64}: [1-9]\d* artifact\(s\) quarantined/);
    expect(transcript).toMatch(/audit log intact: \d+ entries/);
  });
});
