import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { BlobBody } from '../registry/index.js';
import type { RandomAccessBlob, SharedBytes } from '../storage/index.js';

/**
 * Sends a blob body; `head` writes the status line and headers. For files it reads into a
 * small pool of reused 4 MiB buffers and writes them straight to the socket,
 * two in flight (read the next while the last is being sent): measured ~2.5x the
 * throughput of a stream that allocates a Buffer per chunk, with no GC churn.
 *
 * Node has no sendfile, so each byte is copied twice by the kernel (file to buffer, buffer to
 * socket): about 0.3 CPU-s per GiB of system time on the 2-core VM, against nginx's 0.05 with
 * sendfile. Measured per GiB served (server CPU, 1 client, page cache): 1 MiB reads 0.30-0.49
 * (user 0.04-0.11), 4 MiB 0.32-0.37 (user 0.01-0.06), 8 MiB 0.29-0.33, four reads ahead on the
 * thread pool no better, a read stream 0.52. 4 MiB: the least user time for 8 MiB per response.
 */
const CHUNK = 4 * 1024 * 1024;
/** How long an aborted response waits for its queued bytes to leave (a stuck client is not waited for). */
const FLUSH_WAIT_MS = 1000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());
const pool: Buffer[] = [];
const take = (): Buffer => pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK);
const give = (b: Buffer): void => {
  if (pool.length < 16) pool.push(b);
};

export async function sendBlobBody(res: ServerResponse, body: BlobBody, start: number, length: number, head: () => void): Promise<number> {
  if (body.kind === 'stream') return sendStream(res, body.stream, head);
  try {
    return await sendRandomAccess(res, body.blob, start, length, head);
  } finally {
    await body.blob.close();
  }
}

/**
 * A store's stream (S3) under the same rules as the file path below: headers with the
 * first chunk, and a failure after them lets the queued bytes out before the caller
 * aborts. `pipeline` would destroy the response at once, and a client could see a
 * connection closed before its status line.
 */
async function sendStream(res: ServerResponse, stream: Readable, head: () => void): Promise<number> {
  let headed = false;
  let sent = 0;
  let closed = false;
  let lastWrite: Promise<void> = Promise.resolve();
  let wake = (): void => undefined;
  // A client that leaves also stops a stream still waiting on the store.
  const onClose = (): void => {
    closed = true;
    stream.destroy();
    wake();
  };
  const onDrain = (): void => wake();
  res.on('close', onClose);
  res.on('drain', onDrain);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (closed) break;
      if (!headed) head();
      headed = true;
      sent += chunk.byteLength;
      lastWrite = new Promise<void>((resolve) => res.write(chunk, () => resolve()));
      if (res.writableNeedDrain) await new Promise<void>((resolve) => (wake = resolve));
      if (closed) break;
    }
    if (closed) return sent;
    if (!headed) head();
    await new Promise<void>((resolve) => {
      wake = resolve;
      res.end(resolve);
    });
    return sent;
  } catch (e) {
    if (closed) return sent;
    if (headed) {
      await Promise.race([lastWrite, sleep(FLUSH_WAIT_MS)]);
      res.destroy();
    }
    throw e;
  } finally {
    res.off('close', onClose);
    res.off('drain', onDrain);
  }
}

/**
 * The headers wait for the first bytes: a read that fails before them (a
 * pull-through fill whose upstream broke or sent the wrong bytes) still becomes
 * an error response with its code, not a connection closed without a word.
 *
 * A blob that lends its memory (`readShared`: a pull-through fill, for bytes that
 * just arrived) is sent from it, views written as they are, two lends in flight at
 * most; bytes it does not hold any more are read into the pooled buffers as usual.
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
  // Writes of lent views, oldest first: each releases its lend in its callback.
  const lent: Promise<void>[] = [];
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
    for (let i = 0; sent < length && !closed; ) {
      if (blob.readShared) {
        if (lent.length >= 2) await Promise.race([lent.shift(), closedP]);
        if (closed) break;
        const asked = blob.readShared(start + sent, Math.min(CHUNK, length - sent));
        const shared = await Promise.race([asked, closedP.then(() => null)]);
        if (closed) {
          // A lend that arrives after the client left goes straight back.
          void asked.then((s) => s?.release(), () => undefined);
          break;
        }
        if (shared) {
          if (shared.length <= 0) throw new Error('blob shorter than its recorded size');
          headOnce();
          lent.push(writeViews(res, shared));
          sent += shared.length;
          continue;
        }
        // Not in memory (any more): read it like a file.
      }
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
      i ^= 1;
    }
    await Promise.race([Promise.all([...inFlight, ...lent]), closedP]);
    if (!closed) headOnce();
    if (!closed) await Promise.race([new Promise<void>((resolve) => res.end(resolve)), closedP]);
    return sent;
  } catch (e) {
    // Nothing sent yet: the connection stays, and the caller answers with the error.
    failed = headed;
    // The status line and the chunks before the failure may still sit in the socket's buffer (node sends
    // the first write on the next tick): let them out before the abort, or the client sees a connection
    // closed without a word instead of a 200 whose body breaks off.
    if (headed && !closed) await Promise.race([Promise.all([...inFlight, ...lent]), closedP, sleep(FLUSH_WAIT_MS)]);
    throw e;
  } finally {
    res.off('close', onClose);
    if (closed || failed) res.destroy();
    buffers.forEach((b, i) => free[i] && give(b));
  }
}

/** Writes lent views in one writev (corked) and releases them once the socket has them. */
function writeViews(res: ServerResponse, shared: SharedBytes): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      shared.release();
      resolve();
    };
    const last = shared.bytes.length - 1;
    if (last === 0) {
      res.write(shared.bytes[0]!, done);
      return;
    }
    res.cork();
    for (let i = 0; i < last; i++) res.write(shared.bytes[i]!);
    res.write(shared.bytes[last]!, done);
    res.uncork();
  });
}
