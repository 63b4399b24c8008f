import { createServer, request, type Server } from 'node:http';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { BlobBody, RandomAccessBlob } from '../storage/index.js';
import { sendBlobBody } from './send-blob.js';

/**
 * A blob whose reads follow a script: a pull-through fill is the real case (its
 * upstream turns out wrong while a client is reading), but its timing cannot be
 * steered from outside, so the reads are scripted here.
 */
function scripted(size: number, reads: Array<'ok' | 'fail'>): RandomAccessBlob {
  let i = 0;
  return {
    size,
    async read(buffer, offset, length) {
      const step = reads[i++] ?? 'fail';
      if (step === 'fail') throw new Error('upstream bytes hash to something else');
      buffer.fill(7, offset, offset + length);
      return length;
    },
    async close() {},
  };
}

/** What a client sees: the status line if any came, and whether the body ended or broke. */
function client(url: string): Promise<{ status?: number; received: number; outcome: 'ended' | 'aborted' | 'closed without a response' }> {
  return new Promise((resolve) => {
    const req = request(url, (res) => {
      let received = 0;
      res.on('data', (c: Buffer) => (received += c.length));
      res.on('end', () => resolve({ status: res.statusCode, received, outcome: 'ended' }));
      res.on('aborted', () => resolve({ status: res.statusCode, received, outcome: 'aborted' }));
      res.on('error', () => resolve({ status: res.statusCode, received, outcome: 'aborted' }));
    });
    req.on('error', () => resolve({ received: 0, outcome: 'closed without a response' }));
    req.end();
  });
}

describe('sendBlobBody', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  async function serve(blob: RandomAccessBlob | Readable, length: number): Promise<string> {
    const body: BlobBody = blob instanceof Readable ? { kind: 'stream', stream: blob } : { kind: 'random-access', blob };
    server = createServer((_req, res) => {
      sendBlobBody(res, body, 0, length, () => res.writeHead(200, { 'content-length': length })).catch(() => {
        if (!res.headersSent) res.writeHead(400).end('refused');
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  }

  it('sends the status and what was read before a read fails, then aborts (never a silent close)', async () => {
    // The second read fails at once: the first chunk and the headers are still queued when it does.
    const url = await serve(scripted(12 * 1024 * 1024, ['ok', 'fail']), 12 * 1024 * 1024);
    const seen = await client(url);
    expect(seen.status).toBe(200);
    expect(seen.outcome).toBe('aborted');
    expect(seen.received).toBeGreaterThan(0);
  });

  it('leaves the answer to the caller when the first read fails (nothing was sent)', async () => {
    const url = await serve(scripted(1024, ['fail']), 1024);
    const seen = await client(url);
    expect(seen.status).toBe(400);
    expect(seen.outcome).toBe('ended');
  });

  /** A store stream (S3's GetObject body) that yields `chunks` MiB, then ends or fails as soon as it is read again. */
  function storeStream(chunks: number, then: 'end' | 'fail'): Readable {
    let n = 0;
    return new Readable({
      read() {
        if (n++ < chunks) this.push(Buffer.alloc(1024 * 1024, 7));
        else if (then === 'end') this.push(null);
        else this.destroy(new Error('the store reset the connection'));
      },
    });
  }

  it('a store stream that fails after its first chunk: status and bytes arrive, then the abort', async () => {
    const url = await serve(storeStream(1, 'fail'), 3 * 1024 * 1024);
    const seen = await client(url);
    expect(seen.status).toBe(200);
    expect(seen.outcome).toBe('aborted');
    expect(seen.received).toBeGreaterThan(0);
  });

  it('a store stream that fails before any byte leaves the answer to the caller', async () => {
    const url = await serve(storeStream(0, 'fail'), 1024);
    const seen = await client(url);
    expect(seen.status).toBe(400);
    expect(seen.outcome).toBe('ended');
  });

  it('a store stream that ends is sent whole', async () => {
    const url = await serve(storeStream(5, 'end'), 5 * 1024 * 1024);
    const seen = await client(url);
    expect(seen).toEqual({ status: 200, received: 5 * 1024 * 1024, outcome: 'ended' });
  });
});
