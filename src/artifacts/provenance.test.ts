import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Digest } from '../oci/index.js';
import { buildProvenance, gitSource, ociMaterial, parseParams, scrubRemote } from './provenance.js';
import { ociSubject } from './sign.js';

const git = (dir: string, ...args: string[]): string =>
  execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { encoding: 'utf8' }).trim();

async function repo(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'customs-git-'));
  git(dir, 'init', '-q', '-b', 'main');
  await writeFile(join(dir, 'train.py'), 'print(1)\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '-q', '-m', 'first');
  return dir;
}

const D1 = `sha256:${'a'.repeat(64)}` as Digest;
const M = `sha256:${'b'.repeat(64)}` as Digest;

describe('provenance', () => {
  it('reads commit, ref and remote of a clean tree, and refuses a dirty one unless allowed', async () => {
    const dir = await repo();
    git(dir, 'remote', 'add', 'origin', 'https://user:s3cret@git.example/org/fraud.git');
    const commit = git(dir, 'rev-parse', 'HEAD');
    const clean = await gitSource(dir, false);
    expect(clean).toEqual({ uri: `git+https://git.example/org/fraud.git@refs/heads/main`, remote: 'https://git.example/org/fraud.git', ref: 'refs/heads/main', commit, dirty: false });
    await writeFile(join(dir, 'train.py'), 'print(2)\n');
    await expect(gitSource(dir, false)).rejects.toThrow(/uncommitted changes/);
    const dirty = await gitSource(dir, true);
    expect(dirty.dirty).toBe(true);
    const st = buildProvenance({ subject: ociSubject('h/m', M), builderId: 'b', parameters: {}, code: dirty, datasets: [], baseModels: [], finishedOn: 't' });
    const p = st.predicate as any;
    expect(p.buildDefinition.resolvedDependencies[0].annotations.dirty).toBe(true);
    expect(p.buildDefinition.internalParameters.dirtyWorkTree).toBe(true);
  });

  it('refuses untracked files too (ignored ones are fine); --allow-dirty records them', async () => {
    const dir = await repo();
    await writeFile(join(dir, '.gitignore'), 'out/\n');
    git(dir, 'add', '.gitignore');
    git(dir, 'commit', '-q', '-m', 'ignore out/');
    await mkdir(join(dir, 'out'));
    await writeFile(join(dir, 'out', 'model.joblib'), 'w');
    expect((await gitSource(dir, false)).dirty).toBe(false); // ignored output is not code
    await writeFile(join(dir, 'helpers.py'), 'def f(): pass\n');
    await expect(gitSource(dir, false)).rejects.toMatchObject({ code: 'DENIED', detail: ['?? helpers.py'] });
    const dirty = await gitSource(dir, true);
    expect(dirty).toMatchObject({ dirty: true, changes: ['?? helpers.py'] });
    const p = buildProvenance({ subject: ociSubject('h/m', M), builderId: 'b', parameters: {}, code: dirty, datasets: [], baseModels: [], finishedOn: 't' }).predicate as any;
    expect(p.buildDefinition.internalParameters).toEqual({ dirtyWorkTree: true, uncommitted: ['?? helpers.py'] });
  });

  it('records the folder inside the repository, the entry point, start and finish, and the invocation id', async () => {
    const dir = await repo();
    await mkdir(join(dir, 'ml', 'fraud'), { recursive: true });
    await writeFile(join(dir, 'ml', 'fraud', 'train.py'), 'print(3)\n');
    git(dir, 'add', '.');
    git(dir, 'commit', '-q', '-m', 'sub');
    const code = await gitSource(join(dir, 'ml', 'fraud'), false);
    expect(code.subpath).toBe('ml/fraud');
    expect((await gitSource(dir, false)).subpath).toBeUndefined();
    const p = buildProvenance({
      subject: ociSubject('h/m', M),
      builderId: 'b',
      parameters: { seed: '7' },
      code,
      datasets: [],
      baseModels: [],
      startedOn: '2026-01-01T00:00:00Z',
      finishedOn: '2026-01-01T01:00:00Z',
      invocationId: 'https://ci.example/runs/42',
      entryPoint: 'train.py',
    }).predicate as any;
    expect(p.buildDefinition.externalParameters).toEqual({ seed: '7', entryPoint: 'train.py', subpath: 'ml/fraud' });
    expect(p.buildDefinition.resolvedDependencies[0].annotations).toEqual({ role: 'source', subpath: 'ml/fraud' });
    expect(p.runDetails.metadata).toEqual({ invocationId: 'https://ci.example/runs/42', startedOn: '2026-01-01T00:00:00Z', finishedOn: '2026-01-01T01:00:00Z' });
    expect(() => parseParams(['entryPoint=x'])).toThrow(/recorded by customs/);
  });

  it('uses a file:// URI when the repository has no remote', async () => {
    const dir = await repo();
    const s = await gitSource(dir, false);
    expect(s.uri).toMatch(/^git\+file:\/\/.*@refs\/heads\/main$/);
  });

  it('builds an in-toto v1 statement with SLSA v1 provenance naming code, datasets and base models', async () => {
    const dir = await repo();
    const code = await gitSource(dir, false);
    const st = buildProvenance({
      subject: ociSubject('127.0.0.1:5000/models/fraud', M),
      builderId: 'https://ci.example/trainer',
      parameters: { n_estimators: '100' },
      code,
      datasets: [ociMaterial({ given: 'data/tx:v1', repository: 'data/tx', digest: D1 }, '127.0.0.1:5000', 'training-dataset')],
      baseModels: [ociMaterial({ given: D1, digest: D1 }, '127.0.0.1:5000', 'base-model')],
      finishedOn: '2025-01-01T00:00:00Z',
    });
    expect(st._type).toBe('https://in-toto.io/Statement/v1');
    expect(st.predicateType).toBe('https://slsa.dev/provenance/v1');
    expect(st.subject).toEqual([{ name: '127.0.0.1:5000/models/fraud', digest: { sha256: 'b'.repeat(64) } }]);
    const p = st.predicate as any;
    expect(p.runDetails.builder.id).toBe('https://ci.example/trainer');
    expect(p.buildDefinition.externalParameters).toEqual({ n_estimators: '100' });
    const deps = p.buildDefinition.resolvedDependencies;
    expect(deps[0]).toMatchObject({ uri: code.uri, digest: { gitCommit: code.commit } });
    expect(deps[1]).toEqual({ name: 'data/tx', uri: `oci://127.0.0.1:5000/data/tx@${D1}`, digest: { sha256: 'a'.repeat(64) }, annotations: { role: 'training-dataset', reference: 'data/tx:v1' } });
    expect(deps[2]).toEqual({ name: D1, digest: { sha256: 'a'.repeat(64) }, annotations: { role: 'base-model' } });
  });

  it('parses --param and scrubs credentials from remotes', () => {
    expect(parseParams(['a=1', 'b=x=y'])).toEqual({ a: '1', b: 'x=y' });
    expect(() => parseParams(['a'])).toThrow();
    expect(() => parseParams(['a=1', 'a=2'])).toThrow(/twice/);
    expect(scrubRemote('https://tok@github.com/o/r.git')).toBe('https://github.com/o/r.git');
    expect(scrubRemote('git@github.com:o/r.git')).toBe('git@github.com:o/r.git');
  });
});
