import { Readable } from 'node:stream';
import type { BlobBody, RandomAccessBlob } from './blob-store.js';

const CHUNK = 1024 * 1024;

/**
 * Bytes [start, end] of a random-access blob as a stream, closing the blob when
 * the stream ends or is destroyed. For callers that need a stream (a store's
 * `put`, tests); the HTTP layer reads random-access blobs into pooled buffers instead.
 */
export function randomAccessStream(blob: RandomAccessBlob, start: number, end: number): Readable {
  let pos = start;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      if (pos > end) return void this.push(null);
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, end + 1 - pos));
      blob.read(buf, 0, buf.length, pos).then(
        (n) => {
          if (n <= 0) return void this.destroy(new Error('blob shorter than its recorded size'));
          pos += n;
          this.push(n === buf.length ? buf : buf.subarray(0, n));
        },
        (e: unknown) => this.destroy(e as Error),
      );
    },
    destroy(error, cb) {
      blob.close().then(
        () => cb(error),
        () => cb(error),
      );
    },
  });
}

/** A body as a stream of bytes [start, end] (a stream body already carries its range). */
export const bodyStream = (body: BlobBody, start: number, end: number): Readable =>
  body.kind === 'stream' ? body.stream : randomAccessStream(body.blob, start, end);
