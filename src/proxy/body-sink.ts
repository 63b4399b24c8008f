import type { Readable } from 'node:stream';
import { err } from '../oci/index.js';

/**
 * How an upstream body reaches a blob fill without being copied: the source
 * (bulk-get's slabs, or node:http's chunks) hands each arrival to a sink as a
 * view of its own memory. The sink hashes it, queues it for the temporary file
 * and lends it to the clients' sockets; whoever keeps the view beyond the call
 * retains its memory and releases it when done, and the source reuses the memory
 * only once every holder has released it.
 */
export interface Memory {
  retain(): void;
  release(): void;
}

export interface BodySink {
  /** `bytes` (a view of `memory`) arrived; returns false to pause the source until `resume` is called. */
  data(bytes: Buffer, memory: Memory): boolean;
}

/** A body that can deliver itself to a sink (bulk-get's). */
export interface SinkableBody {
  /** Delivers the body to `sink`; resolves at its end, rejects when it breaks off. `resume` restarts a paused source. */
  pipeToSink(sink: BodySink, bindResume: (resume: () => void) => void): Promise<void>;
}

export const isSinkable = (b: unknown): b is SinkableBody & Readable => typeof (b as Partial<SinkableBody>)?.pipeToSink === 'function';

/** Memory the garbage collector owns (node:http's chunks): nothing to count. */
export const GC_MEMORY: Memory = { retain: () => undefined, release: () => undefined };

/** Delivers `body` to `sink`: a bulk body from its slabs, any other stream chunk by chunk. */
export function pipeToSink(body: Readable, sink: BodySink, bindResume: (resume: () => void) => void): Promise<void> {
  if (isSinkable(body)) return body.pipeToSink(sink, bindResume);
  return new Promise<void>((resolve, reject) => {
    let ended = false;
    bindResume(() => {
      if (body.isPaused()) body.resume();
    });
    body.on('data', (c: Buffer) => {
      if (!sink.data(c, GC_MEMORY)) body.pause();
    });
    body.once('end', () => {
      ended = true;
      resolve();
    });
    body.once('error', reject);
    body.once('close', () => {
      if (!ended) reject(err('UPSTREAM_UNAVAILABLE', 'upstream closed the connection mid-blob'));
    });
    // Reset while the temporary file was being opened: its 'close' has passed (and node emits no 'error' without a listener).
    if (body.destroyed && !body.readableEnded) reject(body.errored ?? err('UPSTREAM_UNAVAILABLE', 'upstream closed the connection mid-blob'));
  });
}
