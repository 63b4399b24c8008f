import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Memory } from './body-sink.js';
import { FillBytes, QUEUE_BYTES, WINDOW_BYTES } from './fill-bytes.js';
import { HashThread, InlineHasher } from './hash-thread.js';

/** Memory that counts its holders, as bulk-get's slabs do. */
class Counted implements Memory {
  refs = 0;
  retain(): void {
    this.refs++;
  }
  release(): void {
    this.refs--;
  }
}

const MiB = 1024 * 1024;
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('FillBytes', () => {
  let dir: string;
  let fh: FileHandle;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fill-bytes-'));
    file = join(dir, 'part');
    fh = await open(file, 'wx+');
  });
  afterEach(async () => {
    await fh.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('hashes and writes every byte once, in order, and lends the newest from memory', async () => {
    const body = randomBytes(3 * MiB + 5);
    const bytes = new FillBytes(fh, () => new InlineHasher('sha256'), () => undefined);
    const mem = new Counted();
    for (let o = 0; o < body.length; o += 100_000) expect(bytes.data(body.subarray(o, o + 100_000), mem)).toBe(true);
    // Lent at once, before any write finished: the very memory that arrived, no copy.
    const lent = bytes.share(1000, 300_000, bytes.received)!;
    expect(lent.length).toBe(300_000);
    expect(lent.bytes[0]!.buffer).toBe(body.buffer);
    expect(Buffer.concat(lent.bytes).equals(body.subarray(1000, 301_000))).toBe(true);
    const heldByFill = mem.refs;
    expect(heldByFill).toBeGreaterThan(0);
    lent.release();
    lent.release(); // once only
    await bytes.flushed();
    expect(bytes.written).toBe(body.length);
    expect(await bytes.digest()).toBe(sha(body));
    expect((await readFile(file)).equals(body)).toBe(true);
    // Under WINDOW_BYTES: all still in memory, until the fill lets go of it.
    expect(bytes.memoryStart).toBe(0);
    bytes.release();
    expect(mem.refs).toBe(0);
  });

  it('keeps a window of WINDOW_BYTES once written; older bytes are the file\'s only', async () => {
    const bytes = new FillBytes(fh, () => new InlineHasher('sha256'), () => undefined);
    const mem = new Counted();
    const piece = randomBytes(MiB);
    const total = WINDOW_BYTES + 4 * MiB;
    for (let o = 0; o < total; o += MiB) {
      bytes.data(piece, mem);
      await bytes.flushed(); // a disk that keeps up
    }
    expect(bytes.memoryStart).toBe(total - WINDOW_BYTES);
    expect(bytes.share(0, 10, bytes.received)).toBeUndefined();
    const out = Buffer.alloc(10);
    expect(bytes.copyOut(out, 0, 10, 0)).toBe(0);
    expect(bytes.copyOut(out, 0, 10, total - 10)).toBe(10);
    expect(out.equals(piece.subarray(MiB - 10))).toBe(true);
    // The window's pieces are still held; the dropped ones were released.
    expect(mem.refs).toBe(WINDOW_BYTES / MiB);
    bytes.release();
    expect(mem.refs).toBe(0);
  });

  it('asks the source to pause when the disk falls QUEUE_BYTES behind, and resumes it once it caught up', async () => {
    const bytes = new FillBytes(fh, () => new InlineHasher('sha256'), () => undefined);
    let resumed = 0;
    bytes.bindResume(() => resumed++);
    const piece = Buffer.alloc(MiB, 7);
    const mem = new Counted();
    let accepted = true;
    let n = 0;
    // Synchronous arrivals: no write can finish in between.
    while (accepted && n < 2 * QUEUE_BYTES) {
      accepted = bytes.data(piece, mem);
      n += MiB;
    }
    expect(accepted).toBe(false);
    expect(n).toBe(QUEUE_BYTES);
    await bytes.flushed();
    expect(resumed).toBe(1);
    expect(bytes.written).toBe(QUEUE_BYTES);
    bytes.release();
  });

  it('a failed write fails flushed(), and memory still goes back', async () => {
    const bytes = new FillBytes(fh, () => new InlineHasher('sha256'), () => undefined);
    const mem = new Counted();
    await fh.close(); // every write now fails (EBADF)
    bytes.data(Buffer.alloc(1000), mem);
    await expect(bytes.flushed()).rejects.toThrow();
    bytes.release();
    expect(mem.refs).toBe(0);
  });

  it('bytes in shared memory are hashed on the hash thread, where they are, and their memory released once hashed', async () => {
    const thread = new HashThread();
    try {
      const shared = Buffer.from(new SharedArrayBuffer(6 * MiB));
      randomBytes(shared.length).copy(shared);
      const mem = new Counted();
      const bytes = new FillBytes(fh, (onHashed) => thread.hasher('sha256', onHashed), () => undefined);
      for (let o = 0; o < shared.length; o += 300_000) bytes.data(shared.subarray(o, o + 300_000), mem);
      expect(await bytes.digest()).toBe(sha(Buffer.from(shared)));
      await bytes.flushed();
      bytes.release();
      expect(mem.refs).toBe(0);
      // Two fills at once keep their states apart.
      const a = new FillBytes(fh, (h) => thread.hasher('sha256', h), () => undefined);
      const b = new FillBytes(fh, (h) => thread.hasher('sha512', h), () => undefined);
      a.data(shared.subarray(0, 1000), mem);
      b.data(shared.subarray(1000, 5000), mem);
      a.data(shared.subarray(1000, 2000), mem);
      expect(await b.digest()).toBe(`sha512:${createHash('sha512').update(shared.subarray(1000, 5000)).digest('hex')}`);
      expect(await a.digest()).toBe(sha(shared.subarray(0, 2000)));
      await Promise.all([a.flushed(), b.flushed()]);
      a.release();
      b.release();
      expect(mem.refs).toBe(0);
    } finally {
      await thread.close();
    }
  });

  it('a hash thread that is gone fails the digest instead of hanging', async () => {
    const thread = new HashThread();
    const shared = Buffer.from(new SharedArrayBuffer(1024));
    const bytes = new FillBytes(fh, (h) => thread.hasher('sha256', h), () => undefined);
    bytes.data(shared, new Counted());
    const digest = bytes.digest();
    await thread.close();
    await expect(digest).rejects.toThrow(/hash thread/);
    await bytes.flushed();
    bytes.release();
  });
});
