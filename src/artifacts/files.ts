import { createReadStream } from 'node:fs';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { Digester, err, type Digest } from '../oci/index.js';

export interface LocalFile {
  /** Absolute path on disk. */
  readonly path: string;
  /** POSIX path relative to the packed root: what `org.cncf.model.filepath` records. */
  readonly relPath: string;
  readonly size: number;
}

/** Directories that are never model content. */
const SKIP_DIRS = new Set(['.git', '.hg', '.svn', '__pycache__', '.ipynb_checkpoints']);

/**
 * The regular files under `root` (or `root` itself when it is a file), sorted by path so
 * that the same tree always gives the same manifest. Symlinks are refused: following one
 * could pack files from outside the tree.
 */
export async function listFiles(root: string): Promise<LocalFile[]> {
  const abs = resolve(root);
  const st = await stat(abs).catch(() => undefined);
  if (!st) throw err('NAME_UNKNOWN', `no such file or directory: ${root}`);
  if (st.isFile()) return [{ path: abs, relPath: posix.basename(abs.split(sep).join('/')), size: st.size }];
  const out: LocalFile[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isSymbolicLink()) throw err('UNSUPPORTED', `refusing to pack symlink ${relative(abs, p)}`);
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) await walk(p);
      } else if (e.isFile()) {
        const s = await stat(p);
        out.push({ path: p, relPath: relative(abs, p).split(sep).join('/'), size: s.size });
      }
    }
  };
  await walk(abs);
  out.sort((a, b) => (a.relPath < b.relPath ? -1 : a.relPath > b.relPath ? 1 : 0));
  if (out.length === 0) throw err('NAME_UNKNOWN', `no files to pack under ${root}`);
  return out;
}

/** sha256 of a file, streamed in 1 MiB reads. */
export async function hashFile(path: string, onBytes?: (n: number) => void): Promise<{ digest: Digest; size: number }> {
  const d = new Digester();
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    d.update(chunk as Buffer);
    onBytes?.((chunk as Buffer).byteLength);
  }
  return { digest: d.digest(), size: d.size };
}

/**
 * Checks an annotated file path before anything is written: relative, no `..`, no empty
 * or `.` segments, no NUL or backslash (a Windows separator smuggled into a POSIX name).
 * Returns the normalised POSIX path.
 */
export function checkRelativePath(p: string): string {
  if (p.length === 0 || p.length > 4096) throw err('MANIFEST_INVALID', 'file path is empty or too long');
  if (p.includes('\0') || p.includes('\\')) throw err('MANIFEST_INVALID', `unsafe file path ${JSON.stringify(p)}`);
  if (p.startsWith('/') || isAbsolute(p) || /^[A-Za-z]:/.test(p)) throw err('MANIFEST_INVALID', `absolute file path refused: ${JSON.stringify(p)}`);
  const parts = p.split('/');
  for (const part of parts) {
    if (part === '..') throw err('MANIFEST_INVALID', `file path with '..' refused: ${JSON.stringify(p)}`);
    if (part === '' || part === '.') throw err('MANIFEST_INVALID', `file path with an empty or '.' segment refused: ${JSON.stringify(p)}`);
  }
  return parts.join('/');
}

/**
 * Resolves `rel` under `root` and proves that the parent directory, after resolving symlinks,
 * is still inside `root`, and that the target itself is not a symlink. Call after creating
 * the parent directories.
 */
export async function containedPath(root: string, rel: string): Promise<string> {
  const safe = checkRelativePath(rel);
  const realRoot = await realpath(root);
  const target = join(realRoot, ...safe.split('/'));
  const parent = await realpath(resolve(target, '..'));
  if (parent !== realRoot && !parent.startsWith(realRoot + sep)) {
    throw err('MANIFEST_INVALID', `file path ${JSON.stringify(rel)} escapes the target directory through a symlink`);
  }
  const existing = await lstat(target).catch(() => undefined);
  if (existing?.isSymbolicLink()) throw err('MANIFEST_INVALID', `refusing to write through symlink ${JSON.stringify(rel)}`);
  return join(parent, posix.basename(safe));
}
