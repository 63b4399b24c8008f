import { randomBytes } from 'node:crypto';
import { mkdir, open, rm, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { err, isRegistryError, parseDigest, type Digest } from '../oci/index.js';
import { hasRandomAccess, randomAccessStream, type BlobBody, type BlobInfo, type BlobLinks, type BlobStore, type ByteRange, type RandomAccessBlob, type SharedBytes } from '../storage/index.js';
import { leaseOrWait, type FillLease, type LeaseHandle } from '../storage/fill-lease.js';
import { fullDiskError, isStorageFull } from '../storage/storage-errors.js';
import { isSinkable, pipeToSink } from './body-sink.js';
import { FillBytes } from './fill-bytes.js';
import { HashThread, InlineHasher } from './hash-thread.js';
import type { ProxyLogger } from './logger.js';
import type { UpstreamBlob } from './pull-through.js';

/**
 * Single-flight streaming fill of blobs from an upstream.
 *
 * One upstream GET per digest, however many clients ask: the first request starts
 * a `Fill`, which hashes the upstream body as it arrives, writes it to a private
 * temporary file and keeps the newest bytes in memory (fill-bytes.ts). Clients that
 * keep up are sent those very buffers as they arrive; a client that joins late,
 * asks for a range or falls behind reads the growing file, waiting on progress
 * events when it has caught up. The download does not depend on any client staying
 * (it is bounded by the overall timeout), and the file enters the store (renamed
 * in, on a filesystem store) only if its digest verified. A client whose range
 * reaches the last byte is held back by one byte until verification: on a digest
 * mismatch its stream is destroyed with an error instead of ending, so no client
 * mistakes unverified bytes for a blob.
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

export interface BlobFillerOptions {
  readonly blobs: BlobStore;
  readonly links: BlobLinks;
  /** A private directory for temporary files (emptied by `init`). */
  readonly tempDir: string;
  readonly logger: ProxyLogger;
  /**
   * Replicas sharing one store: the lease makes the upstream GET one per digest
   * across them. A replica that waits for another's fill serves the blob from the
   * shared store once committed (no streaming across replicas). Omitted: one process.
   */
  readonly lease?: FillLease;
  /** Hashes bodies that arrive in shared memory off the event loop (set by BlobFiller). */
  readonly hashThread?: HashThread;
  /** Told when an upstream's bytes failed verification (nothing was stored), e.g. to answer retries at once. */
  readonly onVerifyFailure?: (digest: Digest, error: Error) => void;
}

type Head = { kind: 'streaming'; size: number } | { kind: 'local' } | { kind: 'absent' } | { kind: 'unsized' } | { kind: 'failed' };

export class BlobFiller {
  private readonly fills = new Map<Digest, Fill>();
  private readonly opts: BlobFillerOptions;
  private readonly hashThread = new HashThread();
  constructor(opts: BlobFillerOptions) {
    this.opts = { hashThread: this.hashThread, ...opts };
  }

  /** Stops the hash thread (fills still running hash nothing more and fail). */
  async close(): Promise<void> {
    await this.hashThread.close();
  }

  /** Empties the temporary directory (files a crash left behind). */
  async init(): Promise<void> {
    await rm(this.opts.tempDir, { recursive: true, force: true });
    await mkdir(this.opts.tempDir, { recursive: true });
  }

  /** Fills in progress (for tests and metrics). */
  get inFlight(): number {
    return this.fills.size;
  }

  /** Waits until the fills in progress are over (committed and linked, or failed): shutdown lets them finish. */
  async settled(): Promise<void> {
    await Promise.all([...this.fills.values()].map((f) => f.done));
  }

  /**
   * The blob for `repository`: from the store if present, else from the fill of
   * `digest` in progress, else from a new fill. Undefined when the upstream has none.
   * The blob is linked to `repository` once committed.
   */
  async open(repository: string, digest: Digest, source: FillSource): Promise<UpstreamBlob | undefined> {
    return (await this.openFill(repository, digest, source)).blob;
  }

  /** Waits until `digest` is in the store (fetching it if needed); used to prefetch small referrer blobs. */
  async ensure(repository: string, digest: Digest, source: FillSource): Promise<BlobInfo | undefined> {
    const { blob, fill } = await this.openFill(repository, digest, source);
    if (!blob) return undefined;
    await fill?.done;
    if (!(await this.opts.blobs.stat(digest))) throw fill?.error ?? err('UPSTREAM_UNAVAILABLE', `blob ${digest} could not be stored`);
    return { digest, size: blob.size };
  }

  private async openFill(repository: string, digest: Digest, source: FillSource): Promise<{ blob: UpstreamBlob | undefined; fill?: Fill }> {
    const local = await this.fromStore(repository, digest);
    if (local) return { blob: local };
    let fill = this.fills.get(digest);
    // A fill that is over and failed for any reason but wrong bytes (a reset, a timeout) is not this request's
    // answer: it was about to leave the map, and a new one may well succeed.
    if (fill?.isOver() && fill.error && !(isRegistryError(fill.error) && fill.error.code === 'DIGEST_INVALID')) fill = undefined;
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
    if (head.kind === 'absent') return { blob: undefined, fill };
    if (head.kind === 'failed') throw fill.error ?? err('UPSTREAM_UNAVAILABLE', `blob fill of ${digest} failed`);
    // An empty body has no last byte to hold back: it too waits for verification.
    if (head.kind === 'streaming' && head.size > 0 && !fill.isOver()) {
      const f = fill;
      return {
        fill,
        blob: {
          size: head.size,
          // A fill that is over may have removed its temporary file: its result is in the store, or its error stands.
          open: async (range) => {
            const reader = f.reader();
            return reader ? { kind: 'random-access', blob: reader } : this.storeBody(digest, range, f);
          },
        },
      };
    }
    // Without a size we cannot stream a response with a length: wait for the commit (or the failure).
    if (head.kind !== 'local') await fill.done;
    const after = await this.fromStore(repository, digest);
    if (!after) throw fill.error ?? err('BLOB_UNKNOWN', `blob ${digest} vanished after its fill`);
    return { blob: after, fill };
  }

  private async fromStore(repository: string, digest: Digest): Promise<UpstreamBlob | undefined> {
    const info = await this.opts.blobs.stat(digest);
    if (!info) return undefined;
    if (!(await this.opts.links.linkedBlob(repository, digest))) await this.opts.links.linkBlob(repository, info);
    return { size: info.size, open: (range) => this.storeBody(digest, range) };
  }

  private async storeBody(digest: Digest, range: ByteRange | undefined, fill?: Fill): Promise<BlobBody> {
    const { blobs } = this.opts;
    await fill?.done;
    const random = hasRandomAccess(blobs) ? await blobs.openRandomAccess(digest) : undefined;
    if (random) return { kind: 'random-access', blob: random };
    const stream = await blobs.get(digest, range);
    if (!stream) throw fill?.error ?? err('BLOB_UNKNOWN', `blob ${digest} vanished after its fill`);
    return { kind: 'stream', stream };
  }
}

/**
 * Optional capability of a filesystem BlobStore: move a complete, verified, synced
 * file into place (a rename). The fill then writes each byte once; without it the
 * verified temporary file is copied in with `put`.
 */
interface BlobFileCommit {
  commitFile(file: string, digest: Digest): Promise<void>;
}
const hasCommitFile = (s: object): s is BlobFileCommit => typeof (s as Partial<BlobFileCommit>).commitFile === 'function';

/** One upstream download of one digest, and the readers of its bytes. */
class Fill {
  readonly repositories = new Set<string>();
  readonly head: Promise<Head>;
  readonly done: Promise<void>;
  /** The temporary file, opened read-write; readers share it (positional reads), so a rename does not disturb them. */
  fh: FileHandle | undefined;
  /** The body as it arrives: memory window and file writes. Set before `head` resolves as streaming. */
  bytes: FillBytes | undefined;
  size: number | undefined;
  /** The whole body arrived and hashed to the digest (its file writes and the store commit may still be running). */
  verified = false;
  committed = false;
  error: Error | undefined;
  private readers = 0;
  private finished = false;
  private closed = false;
  private renamed = false;
  /** Resolved (and replaced) at each step of the fill: bytes arrived or written, verified, over. */
  private progressed = deferred();
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
    let body: Readable | undefined;
    let lease: LeaseHandle | undefined;
    try {
      const inStore = async () => (await this.opts.blobs.stat(this.digest)) !== undefined;
      if (this.opts.lease) {
        lease = await leaseOrWait(this.opts.lease, `blob-fill:${this.digest}`, inStore, ac.signal);
        // Another replica filled it while we waited.
        if (!lease) return this.resolveHead({ kind: 'local' });
        lease.signal.addEventListener('abort', () => ac.abort(err('UPSTREAM_UNAVAILABLE', 'blob fill lease lost')), { once: true });
      } else if (await inStore()) {
        // A fill that finished between the caller's stat and this point: serve the store.
        return this.resolveHead({ kind: 'local' });
      }
      const res = await source.fetch(ac.signal);
      if (!res) return this.resolveHead({ kind: 'absent' });
      body = res.body;
      this.size = res.size;
      this.fh = await open(this.tempPath, 'wx+', 0o600);
      // Hashed as it arrives: clients get their last byte once the digest verified, without waiting for the disk or the store.
      // Slabs of a bulk body are shared memory: a worker thread hashes them where they are (hash-thread.ts).
      const algorithm = parseDigest(this.digest).algorithm;
      const { hashThread } = this.opts;
      const makeHasher = (onHashed: () => void) => (isSinkable(body) && hashThread ? hashThread.hasher(algorithm, onHashed) : new InlineHasher(algorithm));
      // A write that fails (a full disk) ends the fill at once: the upstream is not read any further.
      const bytes = new FillBytes(this.fh, makeHasher, () => this.emitProgress(), (e) => ac.abort(fullDiskError(e, `pull-through fill of ${this.digest}`)));
      this.bytes = bytes;
      this.resolveHead(res.size === undefined ? { kind: 'unsized' } : { kind: 'streaming', size: res.size });
      await pipeToSink(body, bytes, (resume) => bytes.bindResume(resume));
      if (ac.signal.aborted) throw ac.signal.reason;
      if (res.size !== undefined && bytes.received !== res.size) throw err('SIZE_INVALID', `upstream sent ${bytes.received} bytes, announced ${res.size}`);
      const actual = await bytes.digest();
      if (actual !== this.digest) throw err('DIGEST_INVALID', `upstream bytes hash to ${actual}`);
      this.verified = true;
      this.emitProgress();
      await bytes.flushed();
      const info = await this.commit();
      for (const repository of this.repositories) await this.opts.links.linkBlob(repository, info);
      this.committed = true;
      this.opts.logger.info({ upstream: source.upstream, digest: this.digest, size: info.size }, 'blob filled from upstream');
    } catch (e) {
      // A full disk is ours, not the upstream's: the client is told so (507), and the temporary file goes.
      this.fail(fullDiskError(e, `pull-through fill of ${this.digest}`), source.upstream, ac.signal);
      body?.destroy();
    } finally {
      clearTimeout(timer);
      await lease?.release().catch(() => undefined);
      this.resolveHead({ kind: 'failed' }); // no-op when already resolved; unblocks waiters after an early failure
      this.finished = true;
      this.emitProgress();
      this.resolveDone();
      await this.cleanup();
    }
  }

  /** Moves the verified file into the store (a rename when the store allows it), else copies it in with `put`. */
  private async commit(): Promise<BlobInfo> {
    const { blobs } = this.opts;
    const size = this.bytes!.written;
    if (hasCommitFile(blobs)) {
      try {
        await this.fh!.datasync();
        await this.fh!.chmod(0o644); // as the store's own blobs (the temporary file was private)
        await blobs.commitFile(this.tempPath, this.digest);
        this.renamed = true;
        return { digest: this.digest, size };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e; // another filesystem: copy instead
      }
    }
    return blobs.put(randomAccessStream(this.reader()!, 0, size - 1), { expected: this.digest, expectedSize: size });
  }

  private fail(e: unknown, upstream: string, signal: AbortSignal): void {
    if (this.verified) {
      // Verified bytes whose commit failed (disk full, say): readers may finish; nothing is stored.
      this.opts.logger.error({ upstream, digest: this.digest, err: e instanceof Error ? e.message : String(e) }, 'verified blob could not be stored');
      return;
    }
    const reason = signal.aborted && signal.reason instanceof Error && !isStorageFull(e) ? signal.reason : e;
    const error = reason instanceof Error ? reason : err('UPSTREAM_UNAVAILABLE', String(reason));
    const code = isRegistryError(error) ? error.code : undefined;
    if (code === 'DIGEST_INVALID' || code === 'SIZE_INVALID') {
      this.error = err('DIGEST_INVALID', `upstream ${upstream} sent bytes that do not match ${this.digest}; nothing was stored`);
      this.opts.logger.error(
        { event: 'security', kind: 'upstream-digest-mismatch', upstream, digest: this.digest, repositories: [...this.repositories], detail: error.message },
        'upstream blob failed verification',
      );
      this.opts.onVerifyFailure?.(this.digest, this.error);
    } else {
      this.error = isRegistryError(error) ? error : err('UPSTREAM_UNAVAILABLE', `blob fill from ${upstream} failed: ${error.message}`);
      if (code === 'STORAGE_FULL') this.opts.logger.error({ upstream, digest: this.digest, err: this.error.message }, 'blob fill failed: storage full');
      else this.opts.logger.warn({ upstream, digest: this.digest, err: this.error.message }, 'blob fill failed');
    }
  }

  /** Reads of the fill's bytes; undefined once they are gone (the fill is over and had no readers left). */
  reader(): FillReader | undefined {
    if (this.closed) return undefined;
    this.readers++;
    return new FillReader(this, () => {
      this.readers--;
      void this.cleanup();
    });
  }

  /** Resolves at the next step of the fill. */
  nextProgress(): Promise<void> {
    return this.progressed.promise;
  }

  private emitProgress(): void {
    const p = this.progressed;
    this.progressed = deferred();
    p.resolve();
  }

  isOver(): boolean {
    return this.finished;
  }

  /** The last one out (the fill or a reader) gives the memory back, closes the file and removes it unless the store took it. */
  private async cleanup(): Promise<void> {
    if (!this.finished || this.readers > 0 || this.closed) return;
    this.closed = true;
    this.bytes?.release();
    await this.fh?.close().catch(() => undefined);
    if (!this.renamed) await unlink(this.tempPath).catch(() => undefined);
  }
}

/**
 * A reader of a fill. A read waits until bytes at its position have arrived, and
 * the blob's last byte is held back until the digest verified: on a mismatch the
 * read fails instead, so no client mistakes unverified bytes for a blob. Bytes
 * still in the fill's memory window are lent (`readShared`) or copied; older ones
 * are read from the temporary file.
 */
class FillReader implements RandomAccessBlob {
  readonly size: number;
  private closed = false;
  private readonly closing = deferred();

  constructor(
    private readonly fill: Fill,
    private readonly release: () => void,
  ) {
    this.size = fill.size ?? 0;
  }

  /** Waits until bytes at `position` may be given out; resolves with where they end, or `position` at the verified end. */
  private async ready(position: number, want: number): Promise<number> {
    const f = this.fill;
    let patience: Promise<void> | undefined;
    let impatient = false;
    for (;;) {
      if (this.closed) throw err('INTERNAL', 'read of a closed fill reader');
      if (f.error) throw f.error;
      const received = f.bytes!.received;
      const limit = f.verified || f.size === undefined ? received : Math.min(received, f.size - 1);
      // A reader that has caught up with the fill would otherwise wake at every arrival and send
      // slivers: with 32 readers that is many times the syscalls of sending from the store. It
      // waits for a full chunk or COALESCE_MS, whichever comes first (a trickle still gets through).
      const short = position < limit && limit - position < Math.min(want, COALESCE_BYTES) && !f.verified && !f.isOver();
      if (short && !impatient) {
        patience ??= sleep(COALESCE_MS).then(() => void (impatient = true));
        await Promise.race([f.nextProgress(), patience, this.closing.promise]);
        continue;
      }
      if (position < limit) return limit;
      if (f.verified && position >= received) return position;
      // Over, no error recorded, bytes still missing: the upstream ended short.
      if (f.isOver()) throw f.error ?? err('UPSTREAM_UNAVAILABLE', 'blob fill ended before the requested bytes arrived');
      await Promise.race([f.nextProgress(), this.closing.promise]);
    }
  }

  async readShared(position: number, max: number): Promise<SharedBytes | undefined> {
    const limit = await this.ready(position, max);
    if (limit <= position) return { bytes: [], length: 0, release: () => undefined };
    return this.fill.bytes!.share(position, max, limit);
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    const limit = await this.ready(position, length);
    if (limit <= position) return 0;
    const n = Math.min(length, limit - position);
    const bytes = this.fill.bytes!;
    if (position >= bytes.memoryStart) {
      const copied = bytes.copyOut(buffer, offset, n, position);
      if (copied > 0) return copied;
    }
    // Behind the memory window: those bytes are in the file.
    const { bytesRead } = await this.fill.fh!.read(buffer, offset, Math.min(n, bytes.written - position), position);
    if (bytesRead === 0) throw err('INTERNAL', 'temporary fill file shorter than written');
    return bytesRead;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.resolve();
    this.release();
  }
}

const COALESCE_BYTES = 1024 * 1024;
const COALESCE_MS = 20;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
