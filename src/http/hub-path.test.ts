import { describe, expect, it } from 'vitest';
import { parseHubPath } from './hub-path.js';

const up = new Set(['hf.co']);

describe('Hub API paths (as huggingface_hub 2.4 builds them)', () => {
  it('model_info and repo_info', () => {
    expect(parseHubPath('/api/models/acme/bert', up)).toEqual({ kind: 'info', upstream: undefined, type: 'model', repoId: 'acme/bert', revision: undefined });
    expect(parseHubPath('/api/models/gpt2/revision/main', up)).toEqual({ kind: 'info', upstream: undefined, type: 'model', repoId: 'gpt2', revision: 'main' });
    expect(parseHubPath('/api/datasets/acme/rows/revision/refs%2Fpr%2F1', up)).toEqual({ kind: 'info', upstream: undefined, type: 'dataset', repoId: 'acme/rows', revision: 'refs/pr/1' });
    expect(parseHubPath('/hf.co/api/models/acme/bert/revision/v1', up)).toMatchObject({ kind: 'info', upstream: 'hf.co', repoId: 'acme/bert', revision: 'v1' });
  });

  it('list_repo_tree', () => {
    expect(parseHubPath('/api/models/acme/bert/tree/abc', up)).toEqual({ kind: 'tree', upstream: undefined, type: 'model', repoId: 'acme/bert', revision: 'abc', path: '' });
    expect(parseHubPath('/api/models/gpt2/tree/main/onnx', up)).toEqual({ kind: 'tree', upstream: undefined, type: 'model', repoId: 'gpt2', revision: 'main', path: 'onnx' });
  });

  it('resolve, for models and datasets, with nested and encoded file names', () => {
    expect(parseHubPath('/acme/bert/resolve/main/config.json', up)).toEqual({ kind: 'resolve', upstream: undefined, type: 'model', repoId: 'acme/bert', revision: 'main', path: 'config.json' });
    expect(parseHubPath('/gpt2/resolve/v1/onnx/model%20a.onnx', up)).toEqual({ kind: 'resolve', upstream: undefined, type: 'model', repoId: 'gpt2', revision: 'v1', path: 'onnx/model a.onnx' });
    expect(parseHubPath('/datasets/datasets/rows/resolve/v1/rows.csv', up)).toEqual({ kind: 'resolve', upstream: undefined, type: 'dataset', repoId: 'datasets/rows', revision: 'v1', path: 'rows.csv' });
    expect(parseHubPath('/hf.co/acme/bert/resolve/sha256%3Aab/x', up)).toMatchObject({ upstream: 'hf.co', revision: 'sha256:ab', path: 'x' });
  });

  it('anything else is unknown', () => {
    for (const p of ['/', '/api/whoami-v2', '/api/spaces/a/b', '/spaces/a/b/resolve/main/x', '/acme/bert/resolve/main', '/acme/bert/blob/main/x', '/a/b/c/resolve/main/x', '/%E0%A4%A/resolve/main/x', '/acme/bert/resolve/main/a//b']) {
      expect(parseHubPath(p, up), p).toEqual({ kind: 'unknown' });
    }
  });
});
