import { Option, type Command } from 'commander';
import type { ImportEvent, ImportResult } from '../hub/import.js';
import { RegistryError, ERROR_CODES, err, type ErrorCode } from '../oci/index.js';
import { failure, targetFrom } from './ops/client.js';
import { DEFAULT_URL, runAction, stdio, terminalProgress, type Output } from './producer/common.js';
import type { Progress } from '../artifacts/progress.js';

/** `customs hub import`: a Hub revision brought in through the server's pull-through, with progress and the gate's verdict. */
export interface HubImportOptions {
  readonly to?: string;
  readonly upstream?: string;
  readonly dataset?: boolean;
  readonly reason?: string;
  readonly url?: string;
  readonly json?: boolean;
}

/** Exit status when the revision was imported but the gate denies it (an operator may now sign it). */
export const DENIED_EXIT = 3;

export function registerHub(program: Command): void {
  const hub = program.command('hub').description('Hugging Face Hub upstreams (hub.upstreams in the config)');
  hub
    .command('import')
    .description('fetch a revision from a Hub upstream into customs (every file verified), optionally tag it as <repo>:<tag>, and print the gate\'s verdict (exit 3 when it denies)')
    .argument('<repo>', '<org>/<model>[@<revision>] (revision: branch, tag or commit; default main)')
    .option('--to <repo:tag>', 'also tag the imported artifact in this repository')
    .option('--upstream <name>', 'hub upstream (default: hub.defaultUpstream, or the only one)')
    .option('--dataset', 'a dataset repo, not a model')
    .option('--reason <text>', 'recorded with the tag move')
    .option('--json', 'print the events as JSON lines')
    .addOption(new Option('--url <url>', 'customs server URL (token from CUSTOMS_TOKEN)').env('CUSTOMS_URL').default(DEFAULT_URL))
    .action(runAction((repo: string, o: HubImportOptions) => hubImportCommand(repo, o)));
}

export async function hubImportCommand(spec: string, opts: HubImportOptions, io: Output = stdio, progress: Progress = terminalProgress()): Promise<ImportResult> {
  const at = spec.lastIndexOf('@');
  const repo = at > 0 ? spec.slice(0, at) : spec;
  const revision = at > 0 ? spec.slice(at + 1) : 'main';
  const t = targetFrom(opts);
  const res = await fetch(`${t.url}/admin/hub/import`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(t.token ? { authorization: `Bearer ${t.token}` } : {}) },
    body: JSON.stringify({ repo, revision, type: opts.dataset ? 'dataset' : 'model', ...(opts.to ? { to: opts.to } : {}), ...(opts.upstream ? { upstream: opts.upstream } : {}), ...(opts.reason ? { reason: opts.reason } : {}) }),
  });
  if (!res.ok || !res.body) throw await failure(res, 'POST /admin/hub/import');
  let result: ImportResult | undefined;
  let current: string | undefined;
  let lastBytes = 0;
  let buffered = '';
  const decoder = new TextDecoder();
  const handle = (line: string): void => {
    if (!line.trim()) return;
    const e = JSON.parse(line) as ImportEvent | { event: 'done'; repository: string; commit: string; digest: string; allowed: boolean } | { event: 'error'; code: string; message: string; detail?: unknown };
    if (opts.json) io.out(line);
    switch (e.event) {
      case 'revision':
        if (!opts.json) io.err(`${e.repository}@${e.commit}: ${e.files.length} file(s), ${mib(e.files.reduce((n, f) => n + f.size, 0))}`);
        return;
      case 'progress':
        if (current !== e.path) {
          progress.end();
          progress.begin(e.path.length > 11 ? `…${e.path.slice(-10)}` : e.path, e.size);
          current = e.path;
          progress.tick(e.bytes);
        } else progress.tick(e.bytes - lastBytes);
        lastBytes = e.bytes;
        return;
      case 'file':
        if (current === e.path) progress.end();
        current = undefined;
        lastBytes = 0;
        if (!opts.json) io.err(`${e.fetched ? 'fetched' : 'stored  '} ${e.path} (${mib(e.size)})`);
        return;
      case 'tagged':
        if (!opts.json) io.err(`tagged ${e.repository}:${e.tag} -> ${e.digest}`);
        return;
      case 'verdict':
        if (!opts.json) {
          io.out(`${e.repository}@${e.digest}: ${e.allowed ? 'ALLOWED' : 'DENIED'}`);
          for (const f of e.findings) io.out(`  FAIL  ${f}`);
        }
        return;
      case 'done':
        result = { repository: e.repository, commit: e.commit, digest: e.digest as ImportResult['digest'], allowed: e.allowed };
        return;
      case 'error': {
        const code = (ERROR_CODES as readonly string[]).includes(e.code) ? (e.code as ErrorCode) : 'INTERNAL';
        throw new RegistryError(code, e.message, e.detail);
      }
    }
  };
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      handle(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
  }
  handle(buffered);
  progress.end();
  if (!result) throw err('UPSTREAM_UNAVAILABLE', 'the server ended the import without a result');
  if (!result.allowed) process.exitCode = DENIED_EXIT;
  return result;
}

const mib = (n: number): string => `${(n / (1024 * 1024)).toFixed(1)} MiB`;
