import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { Digester, err } from '../oci/index.js';
import { writeAllCapped } from './file-writes.js';

/**
 * A Writable that appends to a file and hashes what was written. Chunks are
 * batched into writev calls of up to 1 MiB (fewer syscalls than a write per 64 KiB
 * socket chunk, and no larger: see file-writes.ts). A batch is hashed while it
 * is being written; if the write fails the stream errors and its owner must
 * discard the digester (the upload store re-hashes the file, a put throws).
 */
export class HashingFileWriter extends Writable {
  readonly digester: Digester;
  private written = 0;
  private readonly maxSize: number;
  constructor(
    private readonly fh: FileHandle,
    digester: Digester,
    opts: { maxSize?: number; startSize?: number } = {},
  ) {
    super({ highWaterMark: 4 * 1024 * 1024 });
    this.digester = digester;
    this.maxSize = opts.maxSize ?? Number.MAX_SAFE_INTEGER;
    this.written = opts.startSize ?? 0;
  }
  get bytesWritten(): number {
    return this.written;
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this._writev([{ chunk }], cb);
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (e?: Error | null) => void): void {
    const buffers = chunks.map((c) => c.chunk);
    let total = 0;
    for (const b of buffers) total += b.byteLength;
    if (this.written + total > this.maxSize) {
      cb(err('TOO_LARGE', `body exceeds the limit of ${this.maxSize} bytes`));
      return;
    }
    const writing = writeAllCapped(this.fh, buffers);
    // Hashed while the write runs on libuv's pool: the two no longer take turns.
    for (const b of buffers) this.digester.update(b);
    writing.then(() => {
      this.written += total;
      cb();
    }, cb);
  }
}
