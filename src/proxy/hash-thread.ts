import { Worker } from 'node:worker_threads';
import { Digester, type Algorithm, type Digest } from '../oci/index.js';
import type { Memory } from './body-sink.js';

/**
 * Hashing a fill's body as it arrives. SHA-256 costs about 0.7 CPU-s per GiB here, as much
 * as receiving and sending the bytes together: on the event loop it made the main thread the
 * bottleneck of a cold pull (measured: 1.4 s of main-thread work per GiB against 0.9 s for the
 * upstream, the client and the file writes on the other core). So bytes that arrived in shared
 * memory (bulk-get's slabs are SharedArrayBuffers) are hashed on a worker thread, from the very
 * memory they arrived in: the main thread only passes ranges and releases them when hashed.
 * Other bodies (node:http's chunks, after a chunked response) are hashed in place.
 */
export interface Hasher {
  /** Hashes `bytes`; keeps `memory` retained until they are. */
  update(bytes: Buffer, memory: Memory): void;
  /** Bytes handed to `update` and not hashed yet. */
  readonly lag: number;
  /** The digest of everything handed to `update`, once it is all hashed. */
  digest(): Promise<Digest>;
  /** The fill is abandoned: drop the state, release what is held. */
  abort(): void;
}

/** On the calling thread. */
export class InlineHasher implements Hasher {
  private readonly d: Digester;
  readonly lag = 0;
  constructor(algorithm: Algorithm) {
    this.d = new Digester(algorithm);
  }
  update(bytes: Buffer): void {
    this.d.update(bytes);
  }
  async digest(): Promise<Digest> {
    return this.d.digest();
  }
  abort(): void {}
}

/** Ranges are posted in batches of about this many bytes (fewer messages), and at least once per turn of the event loop. */
const BATCH_BYTES = 1024 * 1024;

interface Range {
  readonly s: SharedArrayBuffer;
  readonly o: number;
  readonly n: number;
}

type Reply = { t: 'a'; j: number; q: number } | { t: 'd'; j: number; d: string };

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const jobs = new Map();
parentPort.on('message', (m) => {
  if (m.t === 'u') {
    let h = jobs.get(m.j);
    if (!h) jobs.set(m.j, (h = createHash(m.a)));
    for (const r of m.r) h.update(new Uint8Array(r.s, r.o, r.n));
    parentPort.postMessage({ t: 'a', j: m.j, q: m.q });
  } else if (m.t === 'e') {
    const h = jobs.get(m.j) || createHash(m.a);
    jobs.delete(m.j);
    parentPort.postMessage({ t: 'd', j: m.j, d: h.digest('hex') });
  } else if (m.t === 'x') jobs.delete(m.j);
});`;

/** One worker thread hashing for every fill of a BlobFiller; started when first needed, never keeps the process alive. */
export class HashThread {
  private worker: Worker | undefined;
  private nextJob = 1;
  private readonly jobs = new Map<number, ThreadHasher>();

  hasher(algorithm: Algorithm, onProgress: () => void): Hasher {
    const w = (this.worker ??= this.start());
    const job = new ThreadHasher(this.nextJob++, algorithm, w, onProgress, () => this.jobs.delete(job.id));
    this.jobs.set(job.id, job);
    return job;
  }

  private start(): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.unref();
    w.on('message', (m: Reply) => this.jobs.get(m.j)?.onReply(m));
    w.on('error', (e) => this.failAll(e));
    w.on('exit', () => {
      if (this.worker === w) this.worker = undefined;
      this.failAll(new Error('hash thread exited'));
    });
    return w;
  }

  private failAll(e: Error): void {
    for (const j of this.jobs.values()) j.fail(e);
    this.jobs.clear();
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
  }
}

class ThreadHasher implements Hasher {
  private pending: Range[] = [];
  private pendingHeld: Memory[] = [];
  private pendingBytes = 0;
  private scheduled = false;
  private seq = 0;
  /** Posted batches not yet acknowledged: their memory and size. */
  private readonly inFlight = new Map<number, { held: Memory[]; bytes: number }>();
  private lagBytes = 0;
  private failure: Error | undefined;
  private done: { resolve: (d: Digest) => void; reject: (e: Error) => void } | undefined;
  private over = false;

  constructor(
    readonly id: number,
    private readonly algorithm: Algorithm,
    private readonly worker: Worker,
    private readonly onProgress: () => void,
    private readonly forget: () => void,
  ) {}

  get lag(): number {
    return this.lagBytes;
  }

  update(bytes: Buffer, memory: Memory): void {
    if (this.over) return;
    if (!(bytes.buffer instanceof SharedArrayBuffer)) throw new Error('ThreadHasher needs bytes in shared memory');
    memory.retain();
    this.pending.push({ s: bytes.buffer, o: bytes.byteOffset, n: bytes.length });
    this.pendingHeld.push(memory);
    this.pendingBytes += bytes.length;
    this.lagBytes += bytes.length;
    if (this.pendingBytes >= BATCH_BYTES) this.post();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.post();
      });
    }
  }

  private post(): void {
    if (this.pending.length === 0 || this.over) return;
    const q = ++this.seq;
    this.inFlight.set(q, { held: this.pendingHeld, bytes: this.pendingBytes });
    this.worker.postMessage({ t: 'u', j: this.id, a: this.algorithm, q, r: this.pending });
    this.pending = [];
    this.pendingHeld = [];
    this.pendingBytes = 0;
  }

  onReply(m: Reply): void {
    if (m.t === 'a') {
      const batch = this.inFlight.get(m.q);
      if (!batch) return;
      this.inFlight.delete(m.q);
      for (const h of batch.held) h.release();
      this.lagBytes -= batch.bytes;
      this.onProgress();
    } else {
      this.finish();
      this.done?.resolve(`${this.algorithm}:${m.d}`);
    }
  }

  digest(): Promise<Digest> {
    if (this.failure) return Promise.reject(this.failure);
    this.post();
    this.worker.postMessage({ t: 'e', j: this.id, a: this.algorithm });
    return new Promise((resolve, reject) => (this.done = { resolve, reject }));
  }

  abort(): void {
    if (this.over) return;
    this.worker.postMessage({ t: 'x', j: this.id });
    this.finish();
  }

  fail(e: Error): void {
    this.failure = e;
    this.finish();
    this.done?.reject(e);
  }

  /** Gives back all memory held (acknowledged or not, the fill is over). */
  private finish(): void {
    this.over = true;
    this.forget();
    for (const h of this.pendingHeld) h.release();
    for (const b of this.inFlight.values()) for (const h of b.held) h.release();
    this.pending = [];
    this.pendingHeld = [];
    this.inFlight.clear();
    this.lagBytes = 0;
  }
}
