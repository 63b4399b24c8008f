import type { IncomingHttpHeaders } from 'node:http';
import { connect as netConnect, type OnReadOpts, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions, type SecureContext } from 'node:tls';
import { err } from '../oci/index.js';
import type { BodySink, Memory, SinkableBody } from './body-sink.js';

/**
 * A GET whose body is a blob bound for a fill: HTTP/1.1 over a socket that reads
 * into reused 1 MiB slabs (`onread`), handed to the fill (body-sink.ts) as views
 * of those slabs, which the fill hashes, writes and lends to its clients. A slab
 * is reused only once every holder has released it. node:http allocates a fresh
 * Buffer for every 64 KiB socket read, and on a gigabyte body that garbage costs
 * more CPU than receiving it (measured: 3.0-5.5 CPU-s/GiB with node:http against
 * 1.5 here, hashing and writing included; see bench/proxy.mjs).
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

/**
 * 1 MiB of socket reads, reference counted: the exchange reads into it until it is
 * full (retired), and whoever keeps a view of its bytes (the fill's write queue,
 * its memory window, a client's socket write) holds a reference. Back to the pool
 * when retired and unreferenced, never sooner.
 */
class Slab implements Memory {
  // Shared memory: a fill's hash thread reads the bytes where they landed (hash-thread.ts).
  readonly buf = Buffer.from(new SharedArrayBuffer(SLAB));
  filled = 0;
  private refs = 0;
  private retired = false;
  retain(): void {
    this.refs++;
  }
  release(): void {
    if (--this.refs === 0 && this.retired) recycle(this);
  }
  retire(): void {
    this.retired = true;
    if (this.refs === 0) recycle(this);
  }
  reset(): this {
    this.filled = 0;
    this.retired = false;
    return this;
  }
}
const slabs: Slab[] = [];
const takeSlab = (): Slab => slabs.pop()?.reset() ?? new Slab();
const recycle = (s: Slab): void => {
  if (slabs.length < 32) slabs.push(s);
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

type Sink = { kind: 'none' } | { kind: 'stream' } | { kind: 'sink'; sink: BodySink; done: Deferred };

class Exchange {
  private current: Slab = takeSlab();
  /** The current slab's bytes from here on are not yet handed to the consumer. */
  private handed = 0;
  /** The current slab's bytes up to here are counted against the framing. */
  private counted = 0;
  /** The current slab was retired for good (the exchange is over): never twice, it may be someone else's by then. */
  private slabDropped = false;
  private headParsed = false;
  /** Body bytes still to come; Infinity when the body runs to the end of the connection. */
  private remaining = Infinity;
  private complete = false;
  private failure: Error | undefined;
  private sink: Sink = { kind: 'none' };
  private body!: BulkBody;
  /** Reading is stopped (returned false from onread): after the head until a consumer takes the body, or at its request. */
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
      this.dropSlab();
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

  /** The memory the next socket read lands in: the rest of the current slab (every byte before it was handed over). */
  nextBuffer(): Buffer {
    if (SLAB - this.current.filled < MIN_READ && !this.slabDropped) {
      this.current.retire();
      this.current = takeSlab();
      this.handed = 0;
      this.counted = 0;
    }
    return this.current.buf.subarray(this.current.filled);
  }

  /** `n` bytes landed in `buf`; returns false to pause the socket. */
  onRead(n: number, buf: Buffer): boolean | undefined {
    if (this.failure || this.complete) return;
    const slab = this.current;
    // A read set up before this exchange held the connection landed in its idle buffer: move the bytes over.
    if (buf.buffer !== slab.buf.buffer || buf.byteOffset !== slab.buf.byteOffset + slab.filled) buf.copy(slab.buf, slab.filled, 0, n);
    this.bytesIn += n;
    slab.filled += n;
    if (!this.headParsed) return this.onHeadBytes();
    this.countBody();
    const more = this.handOver();
    if (this.complete) this.finishSocket();
    if (!more) {
      this.paused = true;
      return false;
    }
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
    this.handed = end + 4;
    this.counted = end + 4;
    const noBody = head.status === 204 || head.status === 304;
    this.remaining = noBody ? 0 : (head.contentLength ?? Infinity);
    this.reusable = head.http11 && !/(^|,)\s*close\s*(,|$)/i.test(String(head.headers.connection ?? '')) && this.remaining !== Infinity;
    this.body = new BulkBody(this);
    this.countBody();
    if (this.complete) this.finishSocket();
    this.resolve({ status: head.status, headers: head.headers, headersDistinct: head.headersDistinct, body: this.body });
    // The consumer has not chosen how to take the body yet (a sink or a stream): hold the socket until it does.
    this.paused = true;
    return false;
  }

  /** Counts the current slab's new bytes against the framing; drops bytes past the declared length. */
  private countBody(): void {
    const slab = this.current;
    let n = slab.filled - this.counted;
    if (n > this.remaining) {
      // Bytes past the declared length: not ours, and a connection that sends them is not used again.
      slab.filled = this.counted + this.remaining;
      n = this.remaining;
      this.reusable = false;
    }
    this.remaining -= n;
    this.counted = slab.filled;
    if (this.remaining === 0) this.complete = true;
  }

  /**
   * Hands the current slab's counted, new bytes to the consumer (once it has chosen how to take
   * them), and the end of the body after them. False when the consumer asks for a pause.
   */
  private handOver(): boolean {
    const sink = this.sink;
    if (sink.kind === 'none') return false;
    const slab = this.current;
    const from = this.handed;
    let more = true;
    if (this.counted > from) {
      this.handed = this.counted;
      if (sink.kind === 'sink') more = sink.sink.data(slab.buf.subarray(from, this.counted), slab);
      else {
        this.body.deliver(Buffer.from(slab.buf.subarray(from, this.counted)));
        more = !this.body.wantsPause();
      }
    }
    if (this.complete && !this.failure) {
      if (sink.kind === 'sink') sink.done.resolve();
      else this.body.deliver(null);
      this.dropSlab();
    }
    return more;
  }

  resume(): void {
    if (!this.paused || this.failure || this.released) return;
    this.paused = false;
    this.socket.resume();
  }

  /** The body goes to `sink` as views of the slabs the socket read into (see body-sink.ts). */
  pipeToSink(sink: BodySink, bindResume: (resume: () => void) => void): Promise<void> {
    if (this.sink.kind !== 'none') throw new Error('bulk body already taken');
    const done = deferred();
    this.sink = { kind: 'sink', sink, done };
    bindResume(() => this.resume());
    if (this.failure) done.reject(this.failure);
    else if (this.handOver()) this.resume(); // the bytes that came with the head
    return done.promise;
  }

  /** The body is read as an ordinary stream (small bodies: errors, redirects). */
  streamTo(): void {
    if (this.sink.kind !== 'none') return;
    this.sink = { kind: 'stream' };
    if (this.failure) this.body.destroy(this.failure);
    else if (this.handOver()) this.resume();
  }

  /** The whole body is in: the connection goes back to the pool when it may carry another request. */
  private finishSocket(): void {
    this.req.signal.removeEventListener('abort', this.onAbort);
    this.socket.off('timeout', this.onSilence);
    this.released = true;
    if (this.reusable) this.conn.release();
    else this.conn.destroy();
  }

  private dropSlab(): void {
    if (this.slabDropped) return;
    this.slabDropped = true;
    // Views a consumer still holds keep it from the pool until they are released.
    this.current.retire();
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
      this.handOver();
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
    this.dropSlab();
    if (!this.headParsed) {
      // Nothing came back on a reused connection before it failed: the server had closed it while idle.
      const code = (e as NodeJS.ErrnoException).code;
      const stale = this.conn.uses > 0 && this.bytesIn === 0 && (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED');
      return this.reject(stale ? new StaleConnection() : this.failure);
    }
    const reason = this.failure.name === 'RegistryError' || this.failure.name === 'BulkUnsupported' ? this.failure : err('UPSTREAM_UNAVAILABLE', 'upstream closed the connection mid-blob');
    if (this.sink.kind === 'sink') this.sink.done.reject(reason);
    else if (this.sink.kind === 'stream') this.body.destroy(reason);
  }

  destroy(): void {
    this.fail(err('UPSTREAM_UNAVAILABLE', 'upstream body abandoned'));
  }
}

/** The body of a bulk response: a Readable for small bodies, `pipeToSink` for a blob. */
export class BulkBody extends Readable implements SinkableBody {
  private waiting = false;

  constructor(private readonly exchange: Exchange) {
    super({ highWaterMark: SLAB });
  }

  pipeToSink(sink: BodySink, bindResume: (resume: () => void) => void): Promise<void> {
    return this.exchange.pipeToSink(sink, bindResume);
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
