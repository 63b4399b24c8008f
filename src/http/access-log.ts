import { pino, type Logger } from 'pino';

/** Which requests get an access line (config `log.access`, `log.accessSampleEvery`). */
export interface AccessLogSettings {
  /** `all`: every request. `errors`: refusals and errors (status 400 and up, 499 for a client that left) only. */
  readonly access: 'all' | 'errors';
  /** With `errors`: also one successful request in this many (0: none). */
  readonly sampleEvery: number;
}

export interface AccessLine {
  readonly reqId: string;
  readonly method: string;
  readonly path: string;
  readonly route: string;
  readonly status: number;
  readonly ms: number;
  readonly actor: string | undefined;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** Lines wait at most this long, or until BATCH_CHARS of them, to go out in one write. */
const FLUSH_MS = 100;
const BATCH_CHARS = 4096;

/**
 * One JSON line per request, written as pino writes its lines (same level, time, base fields and
 * message, to the same destination), but formatted here and written in batches: pino's generic
 * serialisation of the fields was the largest single cost of a cached manifest GET (about a fifth
 * of its instructions, callgrind), and a write per line (or sonic-boom's own buffering, which
 * measures its whole buffer at every line) most of the rest. Free text (path, actor) is escaped
 * with JSON.stringify; the rest is ours. A kill -9 loses the last FLUSH_MS of lines; `flush` at
 * shutdown writes them.
 */
export class AccessLog {
  private readonly stream: { write(line: string): unknown } | undefined;
  private readonly base: string;
  private readonly time: () => string;
  private successes = 0;
  private batch = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Logger,
    private readonly settings: AccessLogSettings = { access: 'all', sampleEvery: 0 },
  ) {
    // pino.symbols is pino's sanctioned way for integrations to reach a logger's stream and bindings.
    const l = log as unknown as Record<symbol, unknown>;
    const stream = l[pino.symbols.streamSym] as { write?: (line: string) => unknown } | undefined;
    const time = l[pino.symbols.timeSym];
    const base = l[pino.symbols.chindingsSym];
    const plain = typeof stream?.write === 'function' && typeof time === 'function' && typeof base === 'string';
    this.stream = plain ? (stream as { write(line: string): unknown }) : undefined;
    this.base = plain ? base : '';
    this.time = plain ? (time as () => string) : () => '';
  }

  write(a: AccessLine): void {
    if (this.settings.access === 'errors' && a.status < 400) {
      const every = this.settings.sampleEvery;
      if (every <= 0 || ++this.successes % every !== 0) return;
    }
    if (!this.log.isLevelEnabled('info')) return;
    if (!this.stream) {
      this.log.info({ reqId: a.reqId, method: a.method, path: a.path, route: a.route, status: a.status, ms: a.ms, actor: a.actor, in: a.bytesIn, out: a.bytesOut }, 'request');
      return;
    }
    const actor = a.actor === undefined ? '' : `,"actor":${JSON.stringify(a.actor)}`;
    this.batch += `{"level":30${this.time()}${this.base},"reqId":${JSON.stringify(a.reqId)},"method":${JSON.stringify(a.method)},"path":${JSON.stringify(a.path)},"route":"${a.route}","status":${a.status},"ms":${a.ms}${actor},"in":${a.bytesIn},"out":${a.bytesOut},"msg":"request"}\n`;
    if (this.batch.length >= BATCH_CHARS) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS).unref();
  }

  /** Writes the lines waiting (at shutdown, before the logger's own flush). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.batch === '') return;
    const lines = this.batch;
    this.batch = '';
    this.stream?.write(lines);
  }
}
