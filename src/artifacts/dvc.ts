import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { err } from '../oci/index.js';
import { listFiles } from './files.js';
import { scrubRemote } from './provenance.js';

const run = promisify(execFile);

/**
 * DVC's identity of tracked data, read from the `.dvc` file or the `dvc.lock` stage output that
 * tracks a path, and checked against the bytes on disk: DVC 3 records a file's plain md5 (`hash: md5`),
 * and a directory's md5 is that of its `.dir` listing (`[{"md5": ..., "relpath": ...}]`, sorted by
 * relpath, Python's `json.dumps(..., sort_keys=True)`), so both can be recomputed without DVC or its cache.
 */
const outSchema = z.looseObject({
  path: z.string().min(1),
  md5: z.string().regex(/^[a-f0-9]{32}(\.dir)?$/),
  size: z.number().int().nonnegative().optional(),
  nfiles: z.number().int().nonnegative().optional(),
  hash: z.string().optional(),
});
const dvcFileSchema = z.looseObject({ outs: z.array(outSchema).min(1) });
const lockSchema = z.looseObject({ schema: z.string().optional(), stages: z.record(z.string(), z.looseObject({ outs: z.array(outSchema).optional() })) });

export interface DvcFile {
  /** Path relative to the tracked output (`.` for a single file). */
  readonly relPath: string;
  readonly md5: string;
  readonly size: number;
}

export interface DvcIdentity {
  /** The tracked path, as DVC names it relative to the `.dvc` file or `dvc.lock`. */
  readonly path: string;
  /** md5 of the file, or of the directory listing (without DVC's `.dir` suffix). */
  readonly md5: string;
  readonly isDir: boolean;
  readonly size: number | undefined;
  readonly nfiles: number | undefined;
  /** The `.dvc` file or `dvc.lock`, absolute. */
  readonly trackedBy: string;
  /** The `dvc.lock` stage that outputs it. */
  readonly stage: string | undefined;
  readonly files: readonly DvcFile[];
  /** The git commit that last changed the `.dvc` file / lock, and where that repository lives. */
  readonly git: { readonly commit: string; readonly head: string; readonly remote: string | undefined; readonly file: string } | undefined;
}

async function yamlOf<T extends z.ZodType>(path: string, schema: T): Promise<z.output<T> | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const r = schema.safeParse(parseYaml(text));
  if (!r.success) throw err('MANIFEST_INVALID', `${path} is not a DVC file: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** The `.dvc` file beside `abs`, else the nearest `dvc.lock` upwards (to the git root) with a stage output at `abs`. */
async function findTracking(abs: string): Promise<{ file: string; out: z.infer<typeof outSchema>; stage?: string }> {
  const single = await yamlOf(`${abs}.dvc`, dvcFileSchema);
  if (single) {
    const out = single.outs.find((o) => resolve(dirname(abs), o.path) === abs);
    if (out) return { file: `${abs}.dvc`, out };
  }
  for (let dir = dirname(abs); ; dir = dirname(dir)) {
    const lock = await yamlOf(join(dir, 'dvc.lock'), lockSchema);
    if (lock) {
      for (const [stage, s] of Object.entries(lock.stages)) {
        const out = (s.outs ?? []).find((o) => resolve(dir, o.path) === abs);
        if (out) return { file: join(dir, 'dvc.lock'), out, stage };
      }
    }
    if (dirname(dir) === dir || (await stat(join(dir, '.git')).catch(() => undefined))) break;
  }
  throw err('NAME_UNKNOWN', `${abs} is not tracked by DVC: no ${abs}.dvc and no dvc.lock stage outputs it (dvc add, or dvc repro)`);
}

async function md5File(path: string): Promise<{ md5: string; size: number }> {
  const h = createHash('md5');
  let size = 0;
  for await (const c of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    h.update(c as Buffer);
    size += (c as Buffer).byteLength;
  }
  return { md5: h.digest('hex'), size };
}

/** Python's json.dumps default: `", "` and `": "` separators, non-ASCII as \uXXXX. */
const pyJson = (s: string): string => JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** md5 of DVC's `.dir` listing for these files. */
export function dirMd5(files: readonly { relPath: string; md5: string }[]): string {
  const sorted = [...files].sort((a, b) => (a.relPath < b.relPath ? -1 : a.relPath > b.relPath ? 1 : 0));
  const body = `[${sorted.map((f) => `{"md5": ${pyJson(f.md5)}, "relpath": ${pyJson(f.relPath)}}`).join(', ')}]`;
  return createHash('md5').update(body, 'utf8').digest('hex');
}

async function git(dir: string, ...args: string[]): Promise<string> {
  return (await run('git', ['-C', dir, ...args])).stdout.trim();
}

/** The commit that last changed `file`, refusing a file with uncommitted changes (its commit would not describe it). */
async function gitOf(file: string, allowDirty: boolean): Promise<DvcIdentity['git']> {
  const root = await git(dirname(file), 'rev-parse', '--show-toplevel').catch(() => undefined);
  if (!root) return undefined;
  const rel = relative(root, file).split(sep).join('/');
  const status = await git(root, 'status', '--porcelain', '--', rel);
  if (status && !allowDirty) throw err('DENIED', `${rel} has uncommitted changes (${status.slice(0, 2).trim()}); commit it so the dataset names the commit of its DVC record`);
  const commit = await git(root, 'log', '-1', '--format=%H', '--', rel).catch(() => '');
  if (!commit) {
    if (!allowDirty) throw err('DENIED', `${rel} is not committed to git yet; commit it so the dataset names the commit of its DVC record`);
    return undefined;
  }
  const head = await git(root, 'rev-parse', 'HEAD');
  const remote = await git(root, 'remote', 'get-url', 'origin').catch(() => '');
  return { commit, head, remote: remote ? scrubRemote(remote) : undefined, file: rel };
}

/**
 * Reads what DVC recorded for `path` and checks the bytes on disk still have that identity: a file
 * changed since `dvc add` / `dvc commit` is refused, with its name.
 */
export async function dvcIdentity(path: string, opts: { allowDirty?: boolean } = {}): Promise<DvcIdentity> {
  const abs = resolve(path);
  const st = await stat(abs).catch(() => undefined);
  if (!st) throw err('NAME_UNKNOWN', `no such file or directory: ${path}`);
  const { file, out, stage } = await findTracking(abs);
  if (out.hash !== undefined && out.hash !== 'md5') throw err('UNSUPPORTED', `${file} records ${out.path} with hash ${out.hash}; customs checks DVC 3's md5`);
  if (out.hash === undefined) throw err('UNSUPPORTED', `${file} was written by DVC 2 (md5 of text with CRLF converted); run \`dvc cache migrate --dvc-files\` first`);
  const isDir = out.md5.endsWith('.dir');
  const md5 = out.md5.replace(/\.dir$/, '');
  const files: DvcFile[] = [];
  if (isDir !== st.isDirectory()) throw err('MANIFEST_INVALID', `${file} records ${out.path} as a ${isDir ? 'directory' : 'file'}`);
  if (isDir) {
    for (const f of await listFiles(abs)) files.push({ relPath: f.relPath, ...(await md5File(f.path)) });
    const actual = dirMd5(files);
    if (actual !== md5) throw err('DENIED', `${path} differs from what ${relative(process.cwd(), file)} records (directory md5 ${actual}, recorded ${md5}): run dvc add / dvc commit, or restore the data`);
  } else {
    const f = await md5File(abs);
    if (f.md5 !== md5) throw err('DENIED', `${path} changed since ${relative(process.cwd(), file)} recorded it (md5 ${f.md5}, recorded ${md5}): run dvc add / dvc commit, or restore the data`);
    files.push({ relPath: '.', ...f });
  }
  return { path: out.path, md5, isDir, size: out.size, nfiles: out.nfiles, trackedBy: file, stage, files, git: await gitOf(file, opts.allowDirty ?? false) };
}

/** DVC md5 of a file when a `.dvc` file or `dvc.lock` tracks it and the bytes still match; else undefined. */
export async function dvcMd5If(path: string): Promise<string | undefined> {
  try {
    return (await dvcIdentity(path, { allowDirty: true })).md5;
  } catch {
    return undefined;
  }
}
