import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commitOfDigest, gitBlobId, isCommit, isSafeRepoPath, isValidRepoId, lfsPointerInfo, localRepository, upstreamRepository } from './names.js';

describe('Hub names', () => {
  it('repo ids as huggingface_hub validates them', () => {
    for (const ok of ['gpt2', 'acme/tiny-bert', 'Org/Model_v1.5', 'models/fraud']) expect(isValidRepoId(ok), ok).toBe(true);
    for (const bad of ['', 'a/b/c', 'a--b', 'a..b', '-a', 'a/', '/a', 'x.git', 'a b', 'a'.repeat(97)]) expect(isValidRepoId(bad), bad).toBe(false);
  });

  it('commits are 40 lower-case hex digits; a digest maps to its first 40', () => {
    expect(isCommit('a'.repeat(40))).toBe(true);
    expect(isCommit('A'.repeat(40))).toBe(false);
    expect(isCommit('main')).toBe(false);
    expect(commitOfDigest(`sha256:${'0123456789'.repeat(6)}abcd`)).toBe('0123456789'.repeat(4));
  });

  it('repositories: local names lower-cased, upstream ones under <upstream>/[datasets/]', () => {
    expect(localRepository('Models/Fraud')).toBe('models/fraud');
    expect(localRepository('a_.b')).toBeUndefined();
    expect(upstreamRepository('hf.co', 'model', 'Acme/Bert')).toBe('hf.co/acme/bert');
    expect(upstreamRepository('hf.co', 'dataset', 'acme/rows')).toBe('hf.co/datasets/acme/rows');
  });

  it('git blob ids and LFS pointers are what git computes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'customs-git-'));
    const bytes = Buffer.from('{"hidden_size": 8}\n');
    writeFileSync(join(dir, 'f'), bytes);
    expect(gitBlobId(bytes)).toBe(execFileSync('git', ['hash-object', join(dir, 'f')]).toString().trim());
    const sha = 'd88b0d6a6ff9c3f8151f9d3228f57092aaea997f09af009eefd7373a77b5abb9';
    const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha}\nsize 497764107\n`;
    writeFileSync(join(dir, 'p'), pointer);
    // The pointer of huggingface_hub's own docstring example (flax_model.msgpack): 134 bytes.
    expect(lfsPointerInfo(sha, 497764107)).toEqual({ oid: execFileSync('git', ['hash-object', join(dir, 'p')]).toString().trim(), pointerSize: 134 });
  });

  it('repo paths: relative, no empty, . or .. segment', () => {
    for (const ok of ['config.json', 'tokenizer/vocab.txt', 'a/.hidden']) expect(isSafeRepoPath(ok), ok).toBe(true);
    for (const bad of ['', '/etc/passwd', '../x', 'a/../b', 'a//b', 'a/./b', 'a\\b', 'a\0b']) expect(isSafeRepoPath(bad), bad).toBe(false);
  });
});
