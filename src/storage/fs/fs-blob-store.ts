import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, opendir, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { Digester, err, isDigest, parseDigest, type Digest } from '../../oci/index.js';
import type { BlobInfo, BlobLister, BlobPutOptions, BlobRandomAccess, BlobStore, ByteRange, RandomAccessBlob, StoredBlob } from '../blob-store.js';
import { FsLayout } from './fs-layout.js';
import type { BlobCheck, BlobIntegrity, SetAsideBlob } from '../integrity.js';
import type { Leftover, LeftoverLister } from '../leftovers.js';
import { checkFile, listSetAside, setAsideFile, wasSetAside } from './fs-integrity.js';
import { HashingFileWriter } from '../hashing-writer.js';
import { fullDiskError, pump } from '../storage-errors.js';

/**
 * Content-addressed blobs on a filesystem. Writes go to a private ingest file while
 * hashing, are fsynced, and are renamed into place only when the digest matches:
 * a partial blob is never visible under its digest.
 */
export class FsBlobStore implements BlobStore, BlobRandomAccess, BlobLister, BlobIntegrity, LeftoverLister {
  readonly layout: FsLayout;
  /** `instance`: this worker process's name, when several share the directory (its ingest files are its own). */
  constructor(root: string, instance?: string) {
    this.layout = new FsLayout(root, instance);
  }

  /**
   * Creates directories and removes ingest files a crash left behind: this process's own, or
   * with `allInstances` (the first process of a start, alone) every process's.
   */
  async init(o: { allInstances?: boolean } = {}): Promise<void> {
    await rm(o.allInstances ? this.layout.ingestRoot() : this.layout.ingestDir(), { recursive: true, force: true });
    await mkdir(this.layout.ingestDir(), { recursive: true });
    await mkdir(this.layout.blobsDir(), { recursive: true });
  }

  async ready(): Promise<void> {
    await stat(this.layout.blobsDir());
  }

  private path(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest);
    return this.layout.blob(algorithm, hex);
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(this.path(digest));
      return { digest, size: s.size };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async get(digest: Digest, range?: ByteRange): Promise<Readable | undefined> {
    const path = this.path(digest);
    try {
      // Opened first so that ENOENT is an answer here, not an error event later; the stream closes the handle.
      const fh = await open(path, 'r');
      return createReadStream('', { fd: fh, start: range?.start, end: range?.end, highWaterMark: 1024 * 1024 });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async openRandomAccess(digest: Digest): Promise<RandomAccessBlob | undefined> {
    try {
      const fh = await open(this.path(digest), 'r');
      const { size } = await fh.stat();
      return {
        size,
        read: async (buffer, offset, length, position) => (await fh.read(buffer, offset, length, position)).bytesRead,
        close: () => fh.close(),
      };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async put(source: Readable, options: BlobPutOptions = {}): Promise<BlobInfo> {
    const algorithm = options.expected ? parseDigest(options.expected).algorithm : 'sha256';
    const tmp = this.layout.ingest(randomBytes(12).toString('hex'));
    const fh = await open(tmp, 'wx', 0o644).catch((e: unknown) => {
      throw fullDiskError(e, 'blob write');
    });
    const writer = new HashingFileWriter(fh, new Digester(algorithm), { maxSize: options.maxSize });
    try {
      // Not `pipeline`: on a full disk the client must still get the answer, so its body is drained, not reset.
      await pump(source, writer);
      if (options.expectedSize !== undefined && writer.bytesWritten !== options.expectedSize) {
        throw err('SIZE_INVALID', `blob is ${writer.bytesWritten} bytes, expected ${options.expectedSize}`);
      }
      const digest = writer.digester.digest();
      if (options.expected && digest !== options.expected) {
        throw err('DIGEST_INVALID', `content digest ${digest} does not match ${options.expected}`);
      }
      await fh.datasync();
      await fh.close();
      await this.commitFile(tmp, digest);
      return { digest, size: writer.bytesWritten };
    } catch (e) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw fullDiskError(e, 'blob write');
    }
  }

  /**
   * Moves a complete, verified, synced file into place under `digest`.
   * Used by `put` and by the filesystem upload store (same filesystem, so a rename).
   */
  async commitFile(file: string, digest: Digest): Promise<void> {
    const target = this.path(digest);
    await mkdir(dirname(target), { recursive: true });
    await rename(file, target);
    await syncDir(dirname(target));
  }

  /** blobs/<algorithm>/<2 hex>/<hex>, a directory at a time; anything else there is not a blob and is skipped. */
  async *list(): AsyncIterable<StoredBlob> {
    for (const algorithm of await entries(this.layout.blobsDir())) {
      for (const shard of await entries(join(this.layout.blobsDir(), algorithm))) {
        for (const hex of await entries(join(this.layout.blobsDir(), algorithm, shard))) {
          const digest = `${algorithm}:${hex}`;
          if (!isDigest(digest) || !hex.startsWith(shard)) continue;
          const s = await stat(this.path(digest as Digest)).catch((e: unknown) => (isNotFound(e) ? undefined : Promise.reject(e)));
          if (s?.isFile()) yield { digest: digest as Digest, size: s.size, modifiedAt: s.mtimeMs };
        }
      }
    }
  }

  check(digest: Digest, pace?: (bytes: number) => Promise<void>): Promise<BlobCheck> {
    return checkFile(this.layout, digest, pace);
  }

  setAside(digest: Digest, identity?: string): Promise<boolean> {
    return setAsideFile(this.layout, digest, identity);
  }

  wasSetAside(digest: Digest): Promise<boolean> {
    return wasSetAside(this.layout, digest);
  }

  listSetAside(): AsyncIterable<SetAsideBlob> {
    return listSetAside(this.layout);
  }

  /** Ingest files: a write in progress, or one a crash left (startup removes them). */
  async *leftovers(): AsyncIterable<Leftover> {
    for (const name of await entries(this.layout.ingestDir())) {
      const s = await stat(this.layout.ingest(name)).catch(() => undefined);
      if (s) yield { kind: 'ingest', name: `ingest/${name}`, since: s.mtimeMs };
    }
  }

  async delete(digest: Digest): Promise<boolean> {
    try {
      await unlink(this.path(digest));
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }
}

/** Names in a directory (sorted), or none when it is gone. */
export async function entries(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of await opendir(dir)) names.push(e.name);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  return names.sort();
}

/** fsync the directory so the rename itself survives a power loss. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export const isNotFound = (e: unknown): boolean => (e as NodeJS.ErrnoException)?.code === 'ENOENT';
