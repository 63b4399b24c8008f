import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { Digester, err, parseDigest, type Algorithm, type Digest } from '../../oci/index.js';
import type { BlobInfo } from '../blob-store.js';
import { FsBlobStore, isNotFound } from './fs-blob-store.js';
import { HashingFileWriter } from '../hashing-writer.js';
import { KeyedMutex } from '../keyed-mutex.js';
import { fullDiskError, isStorageFull, pump } from '../storage-errors.js';
import type { UploadSession, UploadStore } from '../upload-store.js';
import type { Leftover, LeftoverLister } from '../leftovers.js';

const infoSchema = z.object({ repository: z.string(), startedAt: z.number() });
const SESSION_ID = /^[a-f0-9-]{36}$/;

/**
 * Upload sessions as files under <data>/uploads/<id>. The running hash of each
 * session is kept in memory so `finish` need not re-read the bytes; after a
 * restart (or a failed write) it is gone and `finish` re-hashes the file.
 */
export class FsUploadStore implements UploadStore, LeftoverLister {
  private readonly hashers = new Map<string, Digester>();
  private readonly locks = new KeyedMutex();
  constructor(private readonly blobs: FsBlobStore) {}

  private get layout() {
    return this.blobs.layout;
  }

  async init(): Promise<void> {
    await mkdir(this.layout.uploadsDir(), { recursive: true });
  }

  async start(repository: string): Promise<UploadSession> {
    const id = randomUUID();
    const p = this.layout.upload(id);
    await mkdir(p.dir, { recursive: true });
    const startedAt = Date.now();
    try {
      await writeFile(p.data, '');
      await writeFile(p.info, JSON.stringify({ repository, startedAt }));
    } catch (e) {
      await rm(p.dir, { recursive: true, force: true });
      throw fullDiskError(e, 'upload session');
    }
    this.hashers.set(id, new Digester('sha256'));
    return { id, repository, size: 0, startedAt, updatedAt: startedAt };
  }

  async status(id: string): Promise<UploadSession | undefined> {
    if (!SESSION_ID.test(id)) return undefined;
    const p = this.layout.upload(id);
    try {
      const info = infoSchema.parse(JSON.parse(await readFile(p.info, 'utf8')));
      const s = await stat(p.data);
      return { id, repository: info.repository, size: s.size, startedAt: info.startedAt, updatedAt: s.mtimeMs };
    } catch (e) {
      if (isNotFound(e) || e instanceof SyntaxError || e instanceof z.ZodError) return undefined;
      throw e;
    }
  }

  private async mustStatus(id: string): Promise<UploadSession> {
    const s = await this.status(id);
    if (!s) throw err('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry');
    return s;
  }

  append(id: string, source: Readable, offset: number, options: { expectedLength?: number; maxSize?: number } = {}): Promise<UploadSession> {
    return this.locks.run(id, async () => {
      const session = await this.mustStatus(id);
      if (offset !== session.size) {
        source.resume();
        throw err('RANGE_INVALID', `chunk starts at ${offset}, but the upload has ${session.size} bytes`, { size: session.size });
      }
      const hasher = this.hashers.get(id);
      this.hashers.delete(id); // re-added only if the write completes
      const fh = await open(this.layout.upload(id).data, 'a');
      const writer = new HashingFileWriter(fh, hasher ?? new Digester('sha256'), { startSize: session.size, maxSize: options.maxSize });
      try {
        await pump(source, writer);
      } catch (e) {
        // A full disk: the chunk is taken back whole (the session is as before it, and the space is free
        // again). A client that went away keeps what arrived: it may resume from the session's Range.
        if (isStorageFull(e)) await fh.truncate(session.size).catch(() => undefined);
        throw fullDiskError(e, 'upload chunk');
      } finally {
        await fh.close();
      }
      const added = writer.bytesWritten - session.size;
      if (options.expectedLength !== undefined && added !== options.expectedLength) {
        // The bytes are kept (the session's Range tells the client where it stands), but the hash is no longer trusted.
        throw err('SIZE_INVALID', `chunk was ${added} bytes, Content-Length/Content-Range said ${options.expectedLength}`);
      }
      if (hasher) this.hashers.set(id, writer.digester);
      return { ...session, size: writer.bytesWritten, updatedAt: Date.now() };
    });
  }

  finish(id: string, digest: Digest): Promise<BlobInfo> {
    return this.locks.run(id, async () => {
      const session = await this.mustStatus(id);
      const { algorithm } = parseDigest(digest);
      const p = this.layout.upload(id);
      const hasher = this.hashers.get(id);
      const actual = hasher && hasher.algorithm === algorithm && hasher.size === session.size ? hasher.digest() : await hashFile(p.data, algorithm);
      this.hashers.delete(id);
      if (actual !== digest) {
        // The session stays, so the client can still inspect or cancel it (the spec leaves this open).
        this.hashers.delete(id);
        throw err('DIGEST_INVALID', `uploaded content has digest ${actual}, not ${digest}`);
      }
      const fh = await open(p.data, 'r+');
      try {
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await this.blobs.commitFile(p.data, digest);
      await rm(p.dir, { recursive: true, force: true });
      return { digest, size: session.size };
    });
  }

  cancel(id: string): Promise<boolean> {
    return this.locks.run(id, async () => {
      if (!(await this.status(id))) return false;
      this.hashers.delete(id);
      await rm(this.layout.upload(id).dir, { recursive: true, force: true });
      return true;
    });
  }

  async expire(maxAgeMs: number): Promise<number> {
    let n = 0;
    const now = Date.now();
    for (const id of await readdir(this.layout.uploadsDir()).catch(() => [] as string[])) {
      const s = await this.status(id);
      if (!s || now - s.updatedAt > maxAgeMs) {
        if (await this.cancel(id) || !s) {
          await rm(this.layout.upload(id).dir, { recursive: true, force: true });
          n++;
        }
      }
    }
    return n;
  }

  /** Session directories that are not a session (no valid info.json: a crash or a full disk while starting one). */
  async *leftovers(): AsyncIterable<Leftover> {
    for (const id of await readdir(this.layout.uploadsDir()).catch(() => [] as string[])) {
      if (await this.status(id)) continue;
      const s = await stat(this.layout.upload(id).dir).catch(() => undefined);
      if (s) yield { kind: 'session', name: `uploads/${id}`, since: s.mtimeMs };
    }
  }

  /** For tests of expiry: pretend the session was last touched at `when`. */
  async touch(id: string, when: Date): Promise<void> {
    await utimes(this.layout.upload(id).data, when, when);
  }
}

async function hashFile(path: string, algorithm: Algorithm): Promise<Digest> {
  const d = new Digester(algorithm);
  await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), async function* (src: AsyncIterable<Buffer>) {
    for await (const chunk of src) d.update(chunk);
  });
  return d.digest();
}
