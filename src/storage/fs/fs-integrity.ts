import { mkdir, open, rename, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Digester, isDigest, parseDigest, type Digest } from '../../oci/index.js';
import type { BlobCheck, SetAsideBlob } from '../integrity.js';
import type { FsLayout } from './fs-layout.js';
import { entries, isNotFound } from './fs-blob-store.js';

const CHUNK = 1024 * 1024;

/** A file's identity: the same inode with the same size and times is the same bytes. */
const identityOf = (s: { ino: number; size: number; mtimeMs: number; ctimeMs: number }): string => `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;

/** Re-reads `<blobs>/<alg>/<2 hex>/<hex>` through one file handle and hashes it. */
export async function checkFile(layout: FsLayout, digest: Digest, pace?: (n: number) => Promise<void>): Promise<BlobCheck> {
  const { algorithm, hex } = parseDigest(digest);
  let fh;
  try {
    fh = await open(layout.blob(algorithm, hex), 'r');
  } catch (e) {
    if (isNotFound(e)) return { state: 'missing' };
    throw e;
  }
  try {
    const before = await fh.stat();
    const d = new Digester(algorithm);
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let pos = 0; ; ) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      d.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
      await pace?.(bytesRead);
    }
    const actual = d.digest();
    if (actual === digest) return { state: 'ok', size: d.size };
    return { state: 'corrupt', size: d.size, actual, identity: identityOf(before) };
  } finally {
    await fh.close();
  }
}

/**
 * Renames the blob into `<root>/corrupt/` (one copy per digest: the latest). With `identity`,
 * only if the file is still the one that was checked: a fill or push may have renamed good
 * bytes into place since (a rename in between is the window left; both are rare and short).
 */
export async function setAsideFile(layout: FsLayout, digest: Digest, identity?: string): Promise<boolean> {
  const { algorithm, hex } = parseDigest(digest);
  const path = layout.blob(algorithm, hex);
  try {
    if (identity !== undefined && identityOf(await stat(path)) !== identity) return false;
    const target = layout.corrupt(algorithm, hex);
    await mkdir(dirname(target), { recursive: true });
    await rename(path, target);
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

export async function wasSetAside(layout: FsLayout, digest: Digest): Promise<boolean> {
  const { algorithm, hex } = parseDigest(digest);
  return stat(layout.corrupt(algorithm, hex)).then(
    (s) => s.isFile(),
    (e: unknown) => (isNotFound(e) ? false : Promise.reject(e)),
  );
}

/** The set-aside copies; `at` is the rename's time (a rename changes the inode's ctime, not its mtime). */
export async function* listSetAside(layout: FsLayout): AsyncIterable<SetAsideBlob> {
  for (const algorithm of await entries(layout.corruptDir())) {
    for (const hex of await entries(join(layout.corruptDir(), algorithm))) {
      const digest = `${algorithm}:${hex}`;
      if (!isDigest(digest)) continue;
      const s = await stat(join(layout.corruptDir(), algorithm, hex)).catch(() => undefined);
      if (s?.isFile()) yield { digest: digest as Digest, size: s.size, at: s.ctimeMs };
    }
  }
}
