import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { venvTool } from './tools.js';

/**
 * The real huggingface_hub client (pinned in the test venv, scripts/deps/requirements.txt),
 * run as a Python process with HF_ENDPOINT pointing at customs. Each call prints one JSON
 * line: the result, or the exception the client raised (type, message, status, and the
 * chain of causes), so tests assert what a vLLM or transformers user would see.
 */
export interface HfError {
  readonly type: string;
  readonly message: string;
  readonly status: number | null;
  /** `Type: message` of the exception and each cause. */
  readonly chain: string[];
}

export type HfResult<T = unknown> = { ok: true; value: T } | { ok: false; error: HfError };

const SCRIPT = String.raw`
import json, os, sys, concurrent.futures
import huggingface_hub as h

def describe(e):
    chain, seen, c = [], set(), e
    while c is not None and id(c) not in seen:
        seen.add(id(c))
        chain.append(f"{type(c).__name__}: {c}")
        c = c.__cause__ or c.__context__
    resp = getattr(e, 'response', None)
    return {'type': type(e).__name__, 'message': str(e), 'status': getattr(resp, 'status_code', None), 'chain': chain}

def info(i):
    return {'id': i.id, 'sha': i.sha, 'siblings': [{'rfilename': s.rfilename, 'size': s.size, 'blob_id': s.blob_id, 'lfs': dict(s.lfs) if s.lfs else None} for s in (i.siblings or [])]}

def run(op, args):
    if op == 'snapshot_download': return h.snapshot_download(**args)
    if op == 'hf_hub_download': return h.hf_hub_download(**args)
    if op == 'model_info': return info(h.HfApi().model_info(**args))
    if op == 'dataset_info': return info(h.HfApi().dataset_info(**args))
    if op == 'list_repo_files': return h.HfApi().list_repo_files(**args)
    if op == 'parallel':
        # One process, many threads: each its own cache, so every download really goes to the server.
        with concurrent.futures.ThreadPoolExecutor(len(args)) as pool:
            futures = [pool.submit(h.hf_hub_download, **a) for a in args]
            out = []
            for f in futures:
                try: out.append({'ok': True, 'value': f.result()})
                except Exception as e: out.append({'ok': False, 'error': describe(e)})
            return out
    raise ValueError(op)

try:
    print(json.dumps({'ok': True, 'value': run(sys.argv[1], json.loads(sys.argv[2]))}))
except Exception as e:
    print(json.dumps({'ok': False, 'error': describe(e)}))
`;

export interface HfOptions {
  /** HF_TOKEN: sent as `Authorization: Bearer`. */
  readonly token?: string;
  /** HF_HUB_CACHE (default: a new temporary directory). */
  readonly cache?: string;
  readonly env?: Record<string, string>;
}

export async function hf<T = unknown>(endpoint: string, op: string, args: unknown, opts: HfOptions = {}): Promise<HfResult<T>> {
  const cache = opts.cache ?? (await mkdtemp(join(tmpdir(), 'customs-hf-cache-')));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: cache,
    HF_ENDPOINT: endpoint,
    HF_HUB_CACHE: cache,
    HF_HUB_DISABLE_TELEMETRY: '1',
    HF_HUB_DISABLE_PROGRESS_BARS: '1',
    ...(opts.token ? { HF_TOKEN: opts.token } : {}),
    ...opts.env,
  };
  return new Promise((resolve, reject) => {
    execFile(venvTool('python'), ['-c', SCRIPT, op, JSON.stringify(args)], { env, maxBuffer: 16 * 1024 * 1024, timeout: 600_000 }, (e, stdout, stderr) => {
      const line = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(line) as HfResult<T>);
      } catch {
        reject(new Error(`huggingface_hub run failed (${e?.message ?? 'no JSON'}): ${stderr.slice(-2000)}`));
      }
    });
  });
}

/** A new temporary HF_HUB_CACHE. */
export const newCache = (): Promise<string> => mkdtemp(join(tmpdir(), 'customs-hf-cache-'));
