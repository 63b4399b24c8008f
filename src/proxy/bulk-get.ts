import type { FileHandle } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { connect as netConnect, type OnReadOpts, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions, type SecureContext } from 'node:tls';
import { err, type Digester } from '../oci/index.js';
import { fullDiskError, writeAllCapped } from '../storage/index.js';

/**
 * A GET whose body is a blob bound for a file: HTTP/1.1 over a socket that reads
 * into reused 1 MiB slabs (`onread`), hashed and written to the file straight from
 * them. node:http allocates a fresh Buffer for every 64 KiB socket read, and on a
 * gigabyte body that garbage costs more CPU than receiving it (measured: 3.0-5.5
 * CPU-s/GiB with node:http against 1.5 here, hashing and writing included; see
 * bench/proxy.mjs).
 *
 * Deliberately small: GET only, a body framed by Content-Length or by the end of
 * the connection. A chunked response is refused with `BulkUnsupported` and the
 * caller falls back to node:http. Anything else (a redirect, a 401, an error page)
 * is read as an ordinary stream. Connections are kept alive in a `BulkPool` (a
 * registry's 307 and the CDN GET after it, the next layer) when the response
 * allows it; a request that finds its reused connection closed by the server is
 * sent once more on a new one.
 */
export interface BulkResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly headersDistinct: NodeJS.Dict<string[]>;
  readonly body: BulkBody;
}

export interface BulkRequest {
  readonly headers: Record<string, string>;
  readonly signal: AbortSignal;
  /** The socket silent this long (ms) fails the exchange. */
  readonly idleMs?: number;
}

/** The response uses a framing this client does not speak (chunked): ask again with node:http. */
export class BulkUnsupported extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'BulkUnsupported';
  }
}

const SLAB = 1024 * 1024;
/** A read gets at least this much room; less left in a slab and the next slab takes over. */
const MIN_READ = 64 * 1024;
const MAX_HEAD = 32 * 1024;
/** Slabs waiting for the disk before the socket is paused. */
const MAX_QUEUED = 8;
const slabs: Buffer[] = [];
const takeSlab = (): Buffer => slabs.pop() ?? Buffer.allocUnsafeSlow(SLAB);
const giveSlab = (b: Buffer): void => {
  if (slabs.length < 32) slabs.push(b);
};

export async function bulkGet(url: URL, req: BulkRequest, pool?: BulkPool): Promise<BulkResponse> {
  const once = (reuse: boolean) =>
    new Promise<BulkResponse>((resolve, reject) => {
      const conn = (reuse ? pool?.take(url.origin) : undefined) ?? Conn.open(url, pool);
      new Exchange(url, req, conn, resolve, reject).start();
    });
  try {
    return await once(true);
  } catch (e) {
    // The server closed an idle connection as we reused it: nothing was sent back, so ask again on a new one.
    if (e instanceof StaleConnection) return once(false);
    throw e;
  }
}

class StaleConnection extends Error {}

const IDLE_MS = 4000;
const MAX_IDLE_PER_ORIGIN = 8;

/** Idle keep-alive connections by origin. */
export class BulkPool {
  private readonly idle = new Map<string, Conn[]>();
  /** TLS trust for this pool's connections (an upstream's own CAs); Node's default when absent. */
  constructor(readonly secureContext?: SecureContext) {}

  take(origin: string): Conn | undefined {
    const list = this.idle.get(origin);
    const conn = list?.pop();
    if (list?.length === 0) this.idle.delete(origin);
    conn?.leaveIdle();
    return conn;
  }

  /** Keeps `conn` for the next request to its origin (or closes it when there are enough). */
  park(conn: Conn): void {
    const list = this.idle.get(conn.origin) ?? [];
    if (list.length >= MAX_IDLE_PER_ORIGIN) return conn.destroy();
    list.push(conn);
    this.idle.set(conn.origin, list);
    conn.enterIdle(IDLE_MS, () => this.forget(conn));
  }

  forget(conn: Conn): void {
    const list = this.idle.get(conn.origin);
    const i = list?.indexOf(conn) ?? -1;
    if (i >= 0) list!.splice(i, 1);
    if (list?.length === 0) this.idle.delete(conn.origin);
  }

  close(): void {
    for (const list of this.idle.values()) for (const c of list) c.destroy();
    this.idle.clear();
  }
}

/**
 * One connection, used by one exchange at a time. Its `onread` hooks are fixed
 * when it opens, so they pass through to whichever exchange holds it.
 */
class Conn {
  exchange: Exchange | undefined;
  /** Requests sent on it before the current one. */
  uses = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private onIdleEnd: (() => void) | undefined;

  private constructor(
    readonly socket: Socket,
    readonly origin: string,
    private readonly pool: BulkPool | undefined,
  ) {}

  static open(url: URL, pool: BulkPool | undefined): Conn {
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    let conn: Conn | undefined;
    // Where reads land while no exchange holds the connection (and before the first one does).
    const idle = Buffer.allocUnsafe(1024);
    const onread: OnReadOpts = {
      buffer: () => conn?.exchange?.nextBuffer() ?? idle,
      callback: (n: number, buf: Uint8Array) => {
        if (!conn) return false;
        if (conn.exchange) return conn.exchange.onRead(n, buf as Buffer) !== false;
        // Bytes on an idle connection: not a response to anything we asked.
        conn.destroy();
        return false;
      },
    };
    // tls.connect honours `onread` too (node 15.1+), though its typings do not say so.
    const socket =
      url.protocol === 'https:'
        ? tlsConnect({ host, port, servername: isIp(host) ? undefined : host, ALPNProtocols: ['http/1.1'], onread, ...(pool?.secureContext ? { secureContext: pool.secureContext } : {}) } as ConnectionOptions)
        : netConnect({ host, port, onread });
    const c = new Conn(socket, url.origin, pool);
    conn = c;
    socket.setNoDelay(true);
    socket.on('error', (e) => c.exchange?.fail(e));
    socket.on('end', () => c.ended());
    socket.on('close', () => c.ended());
    return c;
  }

  private ended(): void {
    if (this.exchange) this.exchange.onEnd();
    else this.destroy();
  }

  /** The exchange is done with the connection, which may carry another request. */
  release(): void {
    this.exchange = undefined;
    this.uses++;
    this.socket.setTimeout(0);
    if (this.pool && !this.socket.destroyed) this.pool.park(this);
    else this.destroy();
  }

  enterIdle(ms: number, onEnd: () => void): void {
    this.onIdleEnd = onEnd;
    this.idleTimer = setTimeout(() => this.destroy(), ms).unref();
  }

  leaveIdle(): void {
    clearTimeout(this.idleTimer);
    this.onIdleEnd = undefined;
  }

  destroy(): void {
    clearTimeout(this.idleTimer);
    this.onIdleEnd?.();
    this.onIdleEnd = undefined;
    this.socket.destroy();
  }
}

/** Where the bytes of a slab stand: [0, written) handed to the file, [written, filled) not yet. */
interface SlabState {
  readonly buf: Buffer;
  filled: number;
  written: number;
  /** No more bytes will land in it. */
  retired: boolean;
  /** Writes of its bytes still running. */
  pending: number;
}

type Sink = { kind: 'none' } | { kind: 'stream' } | { kind: 'file'; fh: FileHandle; digester: Digester; onWritten: (n: number) => void; done: Deferred };

class Exchange {
  private current: SlabState = { buf: takeSlab(), filled: 0, written: 0, retired: false, pending: 0 };
  /** Slabs holding body bytes not yet written or still being written, oldest first. */
  private queue: SlabState[] = [];
  private headParsed = false;
  /** Body bytes still to come; Infinity when the body runs to the end of the connection. */
  private remaining = Infinity;
  private complete = false;
  private failure: Error | undefined;
  private sink: Sink = { kind: 'none' };
  private body!: BulkBody;
  private position = 0;
  private writing = false;
  private paused = false;
  /** The connection went back to its pool (or closed): no more socket calls from here. */
  private released = false;
  private bytesIn = 0;
  private reusable = false;

  constructor(
    private readonly url: URL,
    private readonly req: BulkRequest,
    private readonly conn: Conn,
    private readonly resolve: (r: BulkResponse) => void,
    private readonly reject: (e: unknown) => void,
  ) {}

  private get socket(): Socket {
    return this.conn.socket;
  }

  start(): void {
    const { url, req, conn } = this;
    if (req.signal.aborted) {
      if (conn.uses === 0) conn.destroy();
      else conn.release();
      return this.reject(req.signal.reason);
    }
    conn.exchange = this;
    const s = this.socket;
    if (req.idleMs) {
      s.setTimeout(req.idleMs);
      s.on('timeout', this.onSilence);
    }
    req.signal.addEventListener('abort', this.onAbort, { once: true });
    const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`];
    for (const [k, v] of Object.entries(req.headers)) lines.push(`${k}: ${v}`);
    s.write(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
    // An idle connection was paused; a new one starts reading by itself.
    s.resume();
  }

  private readonly onSilence = (): void => this.fail(err('UPSTREAM_UNAVAILABLE', `upstream silent for ${this.req.idleMs} ms`));

  private readonly onAbort = (): void => this.fail(this.req.signal.reason instanceof Error ? this.req.signal.reason : err('UPSTREAM_UNAVAILABLE', 'upstream request aborted'));

  /** The memory the next socket read lands in: the rest of the current slab. */
  nextBuffer(): Buffer {
    if (SLAB - this.current.filled < MIN_READ) this.retireCurrent();
    return this.current.buf.subarray(this.current.filled);
  }

  private retireCurrent(): void {
    const c = this.current;
    c.retired = true;
    this.current = { buf: takeSlab(), filled: 0, written: 0, retired: false, pending: 0 };
    if (c.written === c.filled && c.pending === 0) giveSlab(c.buf);
    else if (!this.queue.includes(c)) this.queue.push(c);
  }

  /** `n` bytes landed in `buf`; returns false to pause the socket. */
  onRead(n: number, buf: Buffer): boolean | undefined {
    if (this.failure || this.complete) return;
    const slab = this.current;
    // A read set up before this exchange held the connection landed in its idle buffer: move the bytes over.
    if (buf.buffer !== slab.buf.buffer || buf.byteOffset !== slab.buf.byteOffset + slab.filled) buf.copy(slab.buf, slab.filled, 0, n);
    this.bytesIn += n;
    const start = slab.filled;
    slab.filled += n;
    if (!this.headParsed) return this.onHeadBytes();
    this.onBody(slab, start);
    return this.keepReading();
  }

  private onHeadBytes(): boolean | undefined {
    const slab = this.current;
    const end = slab.buf.subarray(0, slab.filled).indexOf('\r\n\r\n');
    if (end < 0) {
      if (slab.filled > MAX_HEAD) this.fail(err('UPSTREAM_UNAVAILABLE', 'upstream response head too large'));
      return;
    }
    let head: ParsedHead;
    try {
      head = parseHead(slab.buf.toString('latin1', 0, end));
    } catch (e) {
      this.fail(e);
      return;
    }
    // An interim response (100 Continue): drop it and read on.
    if (head.status < 200) {
      slab.buf.copy(slab.buf, 0, end + 4, slab.filled);
      slab.filled -= end + 4;
      return slab.filled > 0 ? this.onHeadBytes() : undefined;
    }
    if (head.chunked) {
      this.fail(new BulkUnsupported('chunked response'));
      return;
    }
    this.headParsed = true;
    // Bytes already received after the head are the body's first; they wait in the slab for the consumer.
    slab.written = end + 4;
    const noBody = head.status === 204 || head.status === 304;
    this.remaining = noBody ? 0 : (head.contentLength ?? Infinity);
    this.reusable = head.http11 && !/(^|,)\s*close\s*(,|$)/i.test(String(head.headers.connection ?? '')) && this.remaining !== Infinity;
    this.body = new BulkBody(this);
    this.resolve({ status: head.status, headers: head.headers, headersDistinct: head.headersDistinct, body: this.body });
    this.onBody(slab, end + 4);
    // The consumer has not chosen how to take the body yet (copyTo or a stream): hold the socket until it does.
    this.paused = true;
    return false;
  }

  /** Body bytes [start, filled) of `slab` arrived. */
  private onBody(slab: SlabState, start: number): void {
    let n = slab.filled - start;
    if (n > this.remaining) {
      // Bytes past the declared length: not ours, and a connection that sends them is not used again.
      slab.filled = start + this.remaining;
      n = this.remaining;
      this.reusable = false;
    }
    this.remaining -= n;
    if (this.remaining === 0) this.complete = true;
    const sink = this.sink;
    if (sink.kind === 'file') {
      if (n > 0) sink.digester.update(slab.buf.subarray(start, slab.filled));
      if (slab.filled > slab.written && !this.queue.includes(slab)) this.queue.push(slab);
      void this.drain();
    } else if (sink.kind === 'stream') {
      if (n > 0) this.body.deliver(Buffer.from(slab.buf.subarray(start, slab.filled)));
      slab.written = slab.filled;
      if (this.complete) this.body.deliver(null);
    }
    if (this.complete) this.finishSocket();
  }

  private keepReading(): boolean | undefined {
    if (this.sink.kind === 'file' && this.queue.length >= MAX_QUEUED) {
      this.paused = true;
      return false;
    }
    if (this.sink.kind === 'stream' && this.body.wantsPause()) {
      this.paused = true;
      return false;
    }
  }

  resume(): void {
    if (!this.paused || this.failure || this.released) return;
    this.paused = false;
    this.socket.resume();
  }

  /** The body goes to a file, hashed on the way, from the slabs the socket read into. */
  copyTo(fh: FileHandle, digester: Digester, onWritten: (n: number) => void): Promise<void> {
    if (this.sink.kind !== 'none') throw new Error('bulk body already taken');
    const done = deferred();
    this.sink = { kind: 'file', fh, digester, onWritten, done };
    const slab = this.current;
    // Bytes that came with the head.
    if (slab.filled > slab.written) {
      digester.update(slab.buf.subarray(slab.written, slab.filled));
      this.queue.push(slab);
    }
    if (this.failure) done.reject(this.failure);
    else {
      void this.drain();
      this.resume();
    }
    return done.promise;
  }

  /** The body is read as an ordinary stream (small bodies: errors, redirects). */
  streamTo(): void {
    if (this.sink.kind !== 'none') return;
    this.sink = { kind: 'stream' };
    const slab = this.current;
    if (slab.filled > slab.written) this.body.deliver(Buffer.from(slab.buf.subarray(slab.written, slab.filled)));
    slab.written = slab.filled;
    if (this.complete) this.body.deliver(null);
    else if (this.failure) this.body.destroy(this.failure);
    else this.resume();
  }

  /** One positional write at a time, of everything that has arrived: the fill's `written` only grows. */
  private async drain(): Promise<void> {
    const sink = this.sink;
    if (sink.kind !== 'file' || this.writing) return;
    this.writing = true;
    try {
      while (this.queue.length > 0 && !this.failure) {
        const batch = this.queue.filter((s) => s.filled > s.written);
        const views = batch.map((s) => s.buf.subarray(s.written, s.filled));
        let n = 0;
        for (const s of batch) {
          n += s.filled - s.written;
          s.written = s.filled;
          s.pending++;
        }
        // Retired slabs fully handed over leave the queue; the current one stays for its later bytes.
        this.queue = this.queue.filter((s) => !s.retired || s.written < s.filled);
        if (n > 0) await writeAllCapped(sink.fh, views, this.position);
        for (const s of batch) {
          s.pending--;
          if (s.retired && s.pending === 0 && s.written === s.filled) giveSlab(s.buf);
        }
        this.position += n;
        if (n > 0) sink.onWritten(n);
        if (this.queue.length < MAX_QUEUED / 2) this.resume();
        this.queue = this.queue.filter((s) => s.filled > s.written);
      }
    } catch (e) {
      // Our disk, not the upstream: the fill reports a full disk as such (507).
      this.fail(fullDiskError(e, 'pull-through fill'));
    } finally {
      this.writing = false;
    }
    if (this.failure) return;
    if (this.queue.some((s) => s.filled > s.written)) return void this.drain();
    if (this.complete) sink.done.resolve();
  }

  /** The whole body is in: the connection goes back to the pool when it may carry another request. */
  private finishSocket(): void {
    this.req.signal.removeEventListener('abort', this.onAbort);
    this.socket.off('timeout', this.onSilence);
    this.released = true;
    if (this.reusable) this.conn.release();
    else this.conn.destroy();
  }

  onEnd(): void {
    if (this.complete || this.failure) return;
    if (this.headParsed && this.remaining === Infinity) {
      // A body framed by the end of the connection.
      this.remaining = 0;
      this.complete = true;
      this.req.signal.removeEventListener('abort', this.onAbort);
      this.released = true;
      this.conn.destroy();
      if (this.sink.kind === 'file') void this.drain();
      else if (this.sink.kind === 'stream') this.body.deliver(null);
      return;
    }
    this.fail(Object.assign(new Error('upstream closed the connection'), { code: 'ECONNRESET' }));
  }

  fail(e: unknown): void {
    if (this.failure || this.complete) return;
    this.failure = e instanceof Error ? e : new Error(String(e));
    this.req.signal.removeEventListener('abort', this.onAbort);
    if (!this.released) {
      this.released = true;
      this.conn.destroy();
    }
    if (!this.headParsed) {
      // Nothing came back on a reused connection before it failed: the server had closed it while idle.
      const code = (e as NodeJS.ErrnoException).code;
      const stale = this.conn.uses > 0 && this.bytesIn === 0 && (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED');
      return this.reject(stale ? new StaleConnection() : this.failure);
    }
    const reason = this.failure.name === 'RegistryError' || this.failure.name === 'BulkUnsupported' ? this.failure : err('UPSTREAM_UNAVAILABLE', 'upstream closed the connection mid-blob');
    if (this.sink.kind === 'file') this.sink.done.reject(reason);
    else if (this.sink.kind === 'stream') this.body.destroy(reason);
    // Slabs still being written go back when their writes finish (drain); the rest now, each once.
    for (const s of new Set([...this.queue, this.current])) if (s.pending === 0) giveSlab(s.buf);
    this.queue = [];
  }

  destroy(): void {
    this.fail(err('UPSTREAM_UNAVAILABLE', 'upstream body abandoned'));
  }
}

/** The body of a bulk response: a Readable for small bodies, `copyTo` for a blob. */
export class BulkBody extends Readable {
  private waiting = false;

  constructor(private readonly exchange: Exchange) {
    super({ highWaterMark: SLAB });
  }

  copyTo(fh: FileHandle, digester: Digester, onWritten: (n: number) => void): Promise<void> {
    return this.exchange.copyTo(fh, digester, onWritten);
  }

  override _read(): void {
    this.waiting = false;
    this.exchange.streamTo();
    this.exchange.resume();
  }

  /** Called by the exchange: a chunk, or null at the end. */
  deliver(chunk: Buffer | null): void {
    if (!this.push(chunk)) this.waiting = true;
  }

  wantsPause(): boolean {
    return this.waiting;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.exchange.destroy();
    callback(error);
  }
}

export const isBulkBody = (b: unknown): b is BulkBody => b instanceof BulkBody;

interface ParsedHead {
  status: number;
  http11: boolean;
  headers: IncomingHttpHeaders;
  headersDistinct: NodeJS.Dict<string[]>;
  contentLength: number | undefined;
  chunked: boolean;
}

/** Status line and header fields of an HTTP/1.1 response (RFC 9112 sections 4 and 5). */
export function parseHead(text: string): ParsedHead {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!status) throw err('UPSTREAM_UNAVAILABLE', 'upstream sent a malformed HTTP status line');
  const headers: Record<string, string | string[]> = {};
  const headersDistinct: Record<string, string[]> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    // Obsolete line folding and nameless fields are errors in a response we then trust.
    if (colon <= 0 || /^[ \t]/.test(line)) throw err('UPSTREAM_UNAVAILABLE', 'upstream sent a malformed HTTP header');
    const name = line.slice(0, colon).toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) throw err('UPSTREAM_UNAVAILABLE', 'upstream sent a malformed HTTP header name');
    const value = line.slice(colon + 1).trim();
    (headersDistinct[name] ??= []).push(value);
  }
  for (const [name, values] of Object.entries(headersDistinct)) headers[name] = name === 'set-cookie' ? values : values.join(', ');
  const te = headersDistinct['transfer-encoding'];
  const chunked = te !== undefined && te.join(',').trim() !== '' && te.join(',').toLowerCase().trim() !== 'identity';
  let contentLength: number | undefined;
  const cl = headersDistinct['content-length'];
  if (cl && !chunked) {
    const values = new Set(cl.flatMap((v) => v.split(',').map((x) => x.trim())));
    const only = [...values][0]!;
    if (values.size !== 1 || !/^\d{1,16}$/.test(only)) throw err('UPSTREAM_UNAVAILABLE', 'upstream sent an invalid Content-Length');
    contentLength = Number(only);
  }
  return { status: Number(status[2]), http11: status[1] === '1', headers: headers as IncomingHttpHeaders, headersDistinct, contentLength, chunked };
}

const isIp = (h: string): boolean => /^[\d.]+$/.test(h) || h.includes(':');

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((a, b) => {
    resolve = a;
    reject = b;
  });
  promise.catch(() => undefined); // a failure before copyTo's caller awaits is not unhandled
  return { promise, resolve, reject };
}
