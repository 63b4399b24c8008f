import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir, open, rm, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { err, isRegistryError, type Digest } from '../oci/index.js';
import type { BlobInfo, BlobLinks, BlobStore, ByteRange } from '../storage/index.js';
import type { ProxyLogger } from './logger.js';

/**
 * Single-flight streaming fill of blobs from an upstream.
 *
 * One upstream GET per digest, however many clients ask: the first request starts
 * a `Fill`, which writes the upstream body to a private temporary file; every client
 * (and `BlobStore.put`, which verifies and commits) reads that growing file, waiting
 * on progress events when it has caught up. Clients therefore get bytes as they
 * arrive, the download does not depend on any client staying (it is bounded by the
 * overall timeout), and nothing is visible in the store unless its digest verified.
 * A client whose range reaches the last byte is held back by one byte until the
 * commit: on a digest mismatch its stream is destroyed with an error instead of
 * ending, so no client mistakes unverified bytes for a complete blob.
 *
 * Keyed by digest (content is the same whichever repository asked), reference
 * counted (the temporary file goes when the fill is over and its last reader has
 * closed), and an injected object: no module-level state.
 */
export interface FillSource {
  /** Upstream name, for logs. */
  readonly upstream: string;
  /** Starts the upstream GET; undefined when the upstream has no such blob. */
  fetch(signal: AbortSignal): Promise<{ size: number | undefined; body: Readable } | undefined>;
  /** Upper bound of the whole fill (ms). */
  readonly overallMs: number;
}

export interface FilledBlob {
  readonly size: number;
  readonly stream: Readable;
}

export interface BlobFillerOptions {
  readonly blobs: BlobStore;
  readonly links: BlobLinks;
  /** A private directory for temporary files (emptied by `init`). */
  readonly tempDir: string;
  readonly logger: ProxyLogger;
}

type Head = { kind: 'streaming'; size: number } | { kind: 'local' } | { kind: 'absent' } | { kind: 'unsized' } | { kind: 'failed' };

const READ_CHUNK = 1024 * 1024;

export class BlobFiller {
  private readonly fills = new Map<Digest, Fill>();
  constructor(private readonly opts: BlobFillerOptions) {}

  /** Empties the temporary directory (files a crash left behind). */
  async init(): Promise<void> {
    await rm(this.opts.tempDir, { recursive: true, force: true });
    await mkdir(this.opts.tempDir, { recursive: true });
  }

  /** Fills in progress (for tests and metrics). */
  get inFlight(): number {
    return this.fills.size;
  }

  /**
   * The blob for `repository`: from the store if present, else from the fill of
   * `digest` in progress, else from a new fill. Undefined when the upstream has none.
   * The blob is linked to `repository` once committed.
   */
  async open(repository: string, digest: Digest, range: ByteRange | undefined, source: FillSource): Promise<FilledBlob | undefined> {
    const local = await this.fromStore(repository, digest, range);
    if (local) return local;
    let fill = this.fills.get(digest);
    if (!fill) {
      fill = new Fill(digest, join(this.opts.tempDir, `${randomBytes(12).toString('hex')}.part`), this.opts);
      const f = fill;
      this.fills.set(digest, f);
      void f.run(source).finally(() => {
        if (this.fills.get(digest) === f) this.fills.delete(digest);
      });
    }
    fill.repositories.add(repository);
    const head = await fill.head;
    if (head.kind === 'absent') return undefined;
    if (head.kind === 'failed') throw fill.error ?? err('UPSTREAM_UNAVAILABLE', `blob fill of ${digest} failed`);
    // A fill that is over may have removed its temporary file: its result is in the store, or its error stands.
    if (head.kind === 'streaming' && !fill.isOver()) {
      checkRange(range, head.size);
      return { size: head.size, stream: fill.reader(range?.start ?? 0, range?.end ?? head.size - 1, true) };
    }
    // Without a size we cannot stream a response with a length: wait for the commit.
    if (head.kind !== 'local') await fill.done;
    const after = await this.fromStore(repository, digest, range);
    if (!after) throw fill.error ?? err('BLOB_UNKNOWN', `blob ${digest} vanished after its fill`);
    return after;
  }

  /** Waits until `digest` is in the store (fetching it if needed); used to prefetch small referrer blobs. */
  async ensure(repository: string, digest: Digest, source: FillSource): Promise<BlobInfo | undefined> {
    const blob = await this.open(repository, digest, undefined, source);
    if (!blob) return undefined;
    blob.stream.resume();
    await new Promise<void>((resolve, reject) => blob.stream.once('end', resolve).once('error', reject));
    return { digest, size: blob.size };
  }

  private async fromStore(repository: string, digest: Digest, range: ByteRange | undefined): Promise<FilledBlob | undefined> {
    const info = await this.opts.blobs.stat(digest);
    if (!info) return undefined;
    checkRange(range, info.size);
    const stream = await this.opts.blobs.get(digest, range);
    if (!stream) return undefined;
    if (!(await this.opts.links.linkedBlob(repository, digest))) await this.opts.links.linkBlob(repository, info);
    return { size: info.size, stream };
  }
}

function checkRange(range: ByteRange | undefined, size: number): void {
  if (range && (range.start > range.end || range.end >= size)) throw err('RANGE_INVALID', `range ${range.start}-${range.end} is outside a blob of ${size} bytes`);
}

/** One upstream download of one digest, and the readers of its temporary file. */
class Fill {
  readonly repositories = new Set<string>();
  readonly progress = new EventEmitter().setMaxListeners(0);
  readonly head: Promise<Head>;
  readonly done: Promise<void>;
  written = 0;
  size: number | undefined;
  downloaded = false;
  committed = false;
  error: Error | undefined;
  private readers = 0;
  private finished = false;
  private resolveHead!: (h: Head) => void;
  private resolveDone!: () => void;

  constructor(
    readonly digest: Digest,
    readonly tempPath: string,
    private readonly opts: BlobFillerOptions,
  ) {
    this.head = new Promise((r) => (this.resolveHead = r));
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  async run(source: FillSource): Promise<void> {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(err('UPSTREAM_UNAVAILABLE', `blob fill exceeded ${source.overallMs} ms`)), source.overallMs);
    let fh: FileHandle | undefined;
    let body: Readable | undefined;
    try {
      // A fill that finished between the caller's stat and this point: serve the store.
      if (await this.opts.blobs.stat(this.digest)) return this.resolveHead({ kind: 'local' });
      const res = await source.fetch(ac.signal);
      if (!res) return this.resolveHead({ kind: 'absent' });
      body = res.body;
      this.size = res.size;
      fh = await open(this.tempPath, 'wx', 0o600);
      this.resolveHead(res.size === undefined ? { kind: 'unsized' } : { kind: 'streaming', size: res.size });
      const put = this.opts.blobs.put(this.reader(0, Number.MAX_SAFE_INTEGER, false), { expected: this.digest, expectedSize: res.size });
      put.catch((e: unknown) => ac.abort(e)); // a store failure stops the download
      for await (const chunk of body as AsyncIterable<Buffer>) {
        await fh.write(chunk, 0, chunk.length, this.written);
        this.written += chunk.length;
        this.progress.emit('progress');
      }
      if (ac.signal.aborted) throw ac.signal.reason;
      this.downloaded = true;
      this.progress.emit('progress');
      const info = await put;
      for (const repository of this.repositories) await this.opts.links.linkBlob(repository, info);
      this.committed = true;
      this.opts.logger.info({ upstream: source.upstream, digest: this.digest, size: info.size }, 'blob filled from upstream');
    } catch (e) {
      this.fail(e, source.upstream, ac.signal);
      body?.destroy();
    } finally {
      clearTimeout(timer);
      this.resolveHead({ kind: 'failed' }); // no-op when already resolved; unblocks waiters after an early failure
      await fh?.close().catch(() => undefined);
      this.finished = true;
      this.progress.emit('progress');
      this.resolveDone();
      await this.cleanup();
    }
  }

  private fail(e: unknown, upstream: string, signal: AbortSignal): void {
    const reason = signal.aborted && signal.reason instanceof Error ? signal.reason : e;
    const error = reason instanceof Error ? reason : err('UPSTREAM_UNAVAILABLE', String(reason));
    const code = isRegistryError(error) ? error.code : undefined;
    if (code === 'DIGEST_INVALID' || code === 'SIZE_INVALID') {
      this.error = err('DIGEST_INVALID', `upstream ${upstream} sent bytes that do not match ${this.digest}; nothing was stored`);
      this.opts.logger.error(
        { event: 'security', kind: 'upstream-digest-mismatch', upstream, digest: this.digest, repositories: [...this.repositories], detail: error.message },
        'upstream blob failed verification',
      );
    } else {
      this.error = isRegistryError(error) ? error : err('UPSTREAM_UNAVAILABLE', `blob fill from ${upstream} failed: ${error.message}`);
      this.opts.logger.warn({ upstream, digest: this.digest, err: this.error.message }, 'blob fill failed');
    }
  }

  /** A stream of bytes [start, end] of the growing file; `holdLast` keeps the final byte until the commit. */
  reader(start: number, end: number, holdLast: boolean): Readable {
    this.readers++;
    return new GrowingFileReader(this, start, end, holdLast, () => {
      this.readers--;
      void this.cleanup();
    });
  }

  isOver(): boolean {
    return this.finished;
  }

  private async cleanup(): Promise<void> {
    if (this.finished && this.readers === 0) await unlink(this.tempPath).catch(() => undefined);
  }
}

class GrowingFileReader extends Readable {
  private fh: FileHandle | undefined;
  private pos: number;
  private released = false;

  constructor(
    private readonly fill: Fill,
    start: number,
    private readonly end: number,
    private readonly holdLast: boolean,
    private readonly release: () => void,
  ) {
    super({ highWaterMark: READ_CHUNK });
    this.pos = start;
  }

  override _read(): void {
    this.pump().catch((e: unknown) => this.destroy(e as Error));
  }

  private async pump(): Promise<void> {
    for (;;) {
      const f = this.fill;
      if (f.error) return void this.destroy(f.error);
      const last = this.end === Number.MAX_SAFE_INTEGER ? (f.downloaded ? f.written - 1 : Number.MAX_SAFE_INTEGER) : this.end;
      if (this.pos > last) return void this.push(null);
      let limit = Math.min(last + 1, f.written);
      if (this.holdLast && !f.committed && f.size !== undefined) limit = Math.min(limit, f.size - 1);
      if (limit > this.pos) {
        this.fh ??= await open(f.tempPath, 'r');
        const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, limit - this.pos));
        const { bytesRead } = await this.fh.read(buf, 0, buf.length, this.pos);
        if (bytesRead === 0) throw err('INTERNAL', 'temporary fill file shorter than written');
        this.pos += bytesRead;
        this.push(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
        return;
      }
      if (f.isOver()) {
        // Over but not committed and no error recorded: the upstream ended short.
        return void this.destroy(f.error ?? err('UPSTREAM_UNAVAILABLE', 'blob fill ended before the requested bytes arrived'));
      }
      await new Promise<void>((resolve) => f.progress.once('progress', resolve));
    }
  }

  override _destroy(error: Error | null, cb: (error?: Error | null) => void): void {
    const fh = this.fh;
    this.fh = undefined;
    if (!this.released) {
      this.released = true;
      this.release();
    }
    if (fh) fh.close().then(() => cb(error), () => cb(error));
    else cb(error);
  }
}
