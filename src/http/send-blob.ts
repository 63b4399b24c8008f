import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { BlobBody } from '../registry/index.js';
import type { RandomAccessBlob } from '../storage/index.js';

/**
 * Sends a blob body; `head` writes the status line and headers. For files it reads into a
 * small pool of reused 1 MiB buffers and writes them straight to the socket,
 * two in flight (read the next while the last is being sent): measured ~2.5x the
 * throughput of a stream that allocates a Buffer per chunk, with no GC churn.
 */
const CHUNK = 1024 * 1024;
/** How long an aborted response waits for its queued bytes to leave (a stuck client is not waited for). */
const FLUSH_WAIT_MS = 1000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());
const pool: Buffer[] = [];
const take = (): Buffer => pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK);
const give = (b: Buffer): void => {
  if (pool.length < 64) pool.push(b);
};

export async function sendBlobBody(res: ServerResponse, body: BlobBody, start: number, length: number, head: () => void): Promise<number> {
  if (body.kind === 'stream') {
    head();
    let sent = 0;
    body.stream.on('data', (c: Buffer) => (sent += c.byteLength));
    await pipeline(body.stream, res);
    return sent;
  }
  try {
    return await sendRandomAccess(res, body.blob, start, length, head);
  } finally {
    await body.blob.close();
  }
}

/**
 * The headers wait for the first bytes: a read that fails before them (a
 * pull-through fill whose upstream broke or sent the wrong bytes) still becomes
 * an error response with its code, not a connection closed without a word.
 */
async function sendRandomAccess(res: ServerResponse, blob: RandomAccessBlob, start: number, length: number, head: () => void): Promise<number> {
  let headed = false;
  const headOnce = (): void => {
    if (!headed) head();
    headed = true;
  };
  const buffers = [take(), take()];
  // A buffer goes back to the pool only once the socket is done with it, else another response could overwrite bytes still queued here.
  const inFlight: Array<Promise<void> | undefined> = [undefined, undefined];
  const free = [true, true];
  let closed = false;
  let onClose = (): void => undefined;
  const closedP = new Promise<void>((resolve) => {
    onClose = () => {
      closed = true;
      resolve();
    };
  });
  res.on('close', onClose);
  let sent = 0;
  let failed = false;
  try {
    for (let i = 0; sent < length && !closed; i ^= 1) {
      await Promise.race([inFlight[i], closedP]);
      if (closed) break;
      const buf = buffers[i]!;
      const slot = i;
      const want = Math.min(CHUNK, length - sent);
      // Not free from here until its write completes: a read left running (the client went away) may still fill it.
      free[slot] = false;
      // Raced with the close: a read may wait (a pull-through fill still arriving) for a client that left.
      const n = await Promise.race([blob.read(buf, 0, want, start + sent), closedP.then(() => -1)]);
      if (closed) break;
      if (n <= 0) throw new Error('blob shorter than its recorded size');
      const chunk = n === CHUNK ? buf : buf.subarray(0, n);
      headOnce();
      inFlight[slot] = new Promise<void>((resolve) => {
        // The callback runs once the kernel has the bytes (or the socket died): only then is the buffer free again.
        res.write(chunk, () => {
          free[slot] = true;
          resolve();
        });
      });
      sent += n;
    }
    await Promise.race([Promise.all(inFlight), closedP]);
    if (!closed) headOnce();
    if (!closed) await Promise.race([new Promise<void>((resolve) => res.end(resolve)), closedP]);
    return sent;
  } catch (e) {
    // Nothing sent yet: the connection stays, and the caller answers with the error.
    failed = headed;
    // The status line and the chunks before the failure may still sit in the socket's buffer (node sends
    // the first write on the next tick): let them out before the abort, or the client sees a connection
    // closed without a word instead of a 200 whose body breaks off.
    if (headed && !closed) await Promise.race([Promise.all(inFlight), closedP, sleep(FLUSH_WAIT_MS)]);
    throw e;
  } finally {
    res.off('close', onClose);
    if (closed || failed) res.destroy();
    buffers.forEach((b, i) => free[i] && give(b));
  }
}
