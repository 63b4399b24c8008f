import type { FileHandle } from 'node:fs/promises';
import type { Digest } from '../oci/index.js';
import { writeAllCapped, type SharedBytes } from '../storage/index.js';
import type { BodySink, Memory } from './body-sink.js';
import type { Hasher } from './hash-thread.js';

/**
 * The bytes of one blob fill as they arrive: hashed once (on a worker thread when
 * they arrived in shared memory: hash-thread.ts), queued for the temporary file,
 * and kept in memory for a while so that clients who keep up with the fill are
 * sent the very buffers that arrived (no re-read of the file, no copy). Only a
 * client that falls behind the memory window (a late joiner, a range, a slow
 * socket) reads the file.
 *
 * Writes go to libuv's thread pool, one writev of at most 1 MiB at a time
 * (file-writes.ts), so the main thread never waits on the disk: measured on the
 * 2-core VM, a new 1 GiB file costs the same 0.2 CPU-s however it is written (one
 * large write, a queue of 1 MiB writes, or writeSync on a worker thread), and only
 * the queue keeps the event loop free. When the disk or the hash falls more than
 * QUEUE_BYTES behind the network, the upstream is paused (bounded memory).
 */
export const QUEUE_BYTES = 16 * 1024 * 1024;
/** Bytes kept in memory behind the newest, for clients slightly behind (their socket was full for a moment). */
export const WINDOW_BYTES = 8 * 1024 * 1024;

interface Piece {
  readonly start: number;
  readonly bytes: Buffer;
  readonly memory: Memory;
}

export class FillBytes implements BodySink {
  /** Bytes arrived (and hashed). */
  received = 0;
  /** Bytes in the temporary file. */
  written = 0;
  /** In order, covering [memoryStart, received). */
  private pieces: Piece[] = [];
  private writing = false;
  private writeError: Error | undefined;
  private resumeSource: (() => void) | undefined;
  private sourcePaused = false;
  private flushedWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private released = false;

  private readonly hasher: Hasher;

  constructor(
    private readonly fh: FileHandle,
    /** Makes the fill's hasher; its progress callback lets a paused source go on. */
    makeHasher: (onHashed: () => void) => Hasher,
    /** Called after every arrival and every write. */
    private readonly onProgress: () => void,
    /** Called once when a write fails (the bytes can no longer be kept). */
    private readonly onWriteError: (e: Error) => void = () => undefined,
  ) {
    this.hasher = makeHasher(() => this.maybeResume());
  }

  /** The digest of every byte received, once they are all hashed. */
  digest(): Promise<Digest> {
    return this.hasher.digest();
  }

  private behind(): number {
    return Math.max(this.received - this.written, this.hasher.lag);
  }

  private maybeResume(): void {
    if (this.sourcePaused && this.behind() < QUEUE_BYTES / 2) {
      this.sourcePaused = false;
      this.resumeSource?.();
    }
  }

  bindResume(resume: () => void): void {
    this.resumeSource = resume;
  }

  data(bytes: Buffer, memory: Memory): boolean {
    if (this.released) return false;
    if (bytes.length === 0) return true;
    this.hasher.update(bytes, memory);
    memory.retain();
    this.pieces.push({ start: this.received, bytes, memory });
    this.received += bytes.length;
    this.onProgress();
    void this.drain();
    if (this.behind() >= QUEUE_BYTES) this.sourcePaused = true;
    return !this.sourcePaused;
  }

  /** Where memory starts: bytes before it are only in the file. */
  get memoryStart(): number {
    return this.pieces[0]?.start ?? this.received;
  }

  /** Resolves once every byte received is in the file. */
  flushed(): Promise<void> {
    if (this.writeError) return Promise.reject(this.writeError);
    if (this.written === this.received && !this.writing) return Promise.resolve();
    return new Promise((resolve, reject) => this.flushedWaiters.push({ resolve, reject }));
  }

  /** One writev at a time, of whatever has arrived (1 MiB at most per call): `written` only grows. */
  private async drain(): Promise<void> {
    if (this.writing || this.writeError) return;
    this.writing = true;
    try {
      while (this.written < this.received && !this.released) {
        const views = this.unwritten(1024 * 1024);
        const n = await writeAllCapped(this.fh, views, this.written);
        this.written += n;
        this.trim();
        this.onProgress();
        this.maybeResume();
      }
    } catch (e) {
      this.writeError = e as Error;
      this.onWriteError(this.writeError);
    } finally {
      this.writing = false;
    }
    // Released while a write still read from the pieces: they go back only now.
    if (this.released) this.freePieces();
    if (this.writeError || this.written === this.received) {
      for (const w of this.flushedWaiters.splice(0)) this.writeError ? w.reject(this.writeError) : w.resolve();
    }
  }

  /** Views of the bytes not yet written, `max` at most. */
  private unwritten(max: number): Buffer[] {
    const out: Buffer[] = [];
    let pos = this.written;
    let left = max;
    for (let i = this.indexOf(pos); i >= 0 && i < this.pieces.length && left > 0; i++) {
      const p = this.pieces[i]!;
      const from = pos - p.start;
      const take = Math.min(p.bytes.length - from, left);
      out.push(from === 0 && take === p.bytes.length ? p.bytes : p.bytes.subarray(from, from + take));
      pos += take;
      left -= take;
    }
    return out;
  }

  /** Drops written pieces that are more than WINDOW_BYTES behind the newest byte. */
  private trim(): void {
    let drop = 0;
    const keepFrom = Math.min(this.written, this.received - WINDOW_BYTES);
    while (drop < this.pieces.length && this.pieces[drop]!.start + this.pieces[drop]!.bytes.length <= keepFrom) drop++;
    if (drop === 0) return;
    for (const p of this.pieces.splice(0, drop)) p.memory.release();
  }

  /** Index of the piece holding byte `pos`, -1 when it is not in memory. */
  private indexOf(pos: number): number {
    const ps = this.pieces;
    let lo = 0;
    let hi = ps.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const p = ps[mid]!;
      if (pos < p.start) hi = mid - 1;
      else if (pos >= p.start + p.bytes.length) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  /** Views of bytes [position, min(position + max, limit)), retained; undefined when `position` is not in memory. */
  share(position: number, max: number, limit: number): SharedBytes | undefined {
    const first = this.indexOf(position);
    if (first < 0) return undefined;
    const bytes: Buffer[] = [];
    const held: Memory[] = [];
    let pos = position;
    const end = Math.min(position + max, limit);
    for (let i = first; i < this.pieces.length && pos < end; i++) {
      const p = this.pieces[i]!;
      const from = pos - p.start;
      const take = Math.min(p.bytes.length - from, end - pos);
      bytes.push(from === 0 && take === p.bytes.length ? p.bytes : p.bytes.subarray(from, from + take));
      if (held[held.length - 1] !== p.memory) {
        p.memory.retain();
        held.push(p.memory);
      }
      pos += take;
    }
    let done = false;
    return {
      bytes,
      length: pos - position,
      release: () => {
        if (done) return;
        done = true;
        for (const m of held) m.release();
      },
    };
  }

  /** Copies bytes at `position` from memory into `buffer`; 0 when `position` is not in memory. */
  copyOut(buffer: Buffer, offset: number, length: number, position: number): number {
    let copied = 0;
    for (let i = this.indexOf(position); i >= 0 && i < this.pieces.length && copied < length; i++) {
      const p = this.pieces[i]!;
      const from = position + copied - p.start;
      copied += p.bytes.copy(buffer, offset + copied, from, from + Math.min(p.bytes.length - from, length - copied));
    }
    return copied;
  }

  /** The fill is over and nobody reads it any more: the memory goes back to its source. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.hasher.abort(); // a no-op once the digest was taken
    if (!this.writing) this.freePieces();
  }

  private freePieces(): void {
    for (const p of this.pieces.splice(0)) p.memory.release();
  }
}
