import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { z } from 'zod';
import { Listeners, cacheEventSchema, type CacheEvent, type CacheListener, type Notifier } from '../notifier.js';
import { pgTypes } from './pg-pool.js';

const CHANNEL = 'customs_cache';
const messageSchema = z.object({ from: z.string(), event: cacheEventSchema });

export interface PgNotifierOptions {
  readonly url: string;
  /** The pool used to publish (NOTIFY works from any connection). */
  readonly pool: pg.Pool;
  /** How often the listening connection is probed; a failed probe counts as a lost connection. */
  readonly heartbeatMs?: number;
  readonly log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

/**
 * PostgreSQL LISTEN/NOTIFY between replicas. A dedicated connection LISTENs; NOTIFY
 * is delivered after the publishing transaction commits, typically within a few
 * milliseconds. When the listening connection fails (or a heartbeat does not come
 * back), events may have been missed: listeners get `reset` at once, again every
 * heartbeat while disconnected (caches refilled meanwhile are dropped again), and
 * once more after reconnecting.
 */
export class PgNotifier implements Notifier {
  private readonly listeners = new Listeners();
  private readonly id = randomUUID();
  private client: pg.Client | undefined;
  private connected = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly heartbeatMs: number;

  private constructor(private readonly o: PgNotifierOptions) {
    this.heartbeatMs = o.heartbeatMs ?? 500;
  }

  /** Connects and LISTENs; rejects when PostgreSQL is unreachable. */
  static async start(o: PgNotifierOptions): Promise<PgNotifier> {
    const n = new PgNotifier(o);
    await n.connect();
    n.timer = setInterval(() => void n.tick(), n.heartbeatMs);
    n.timer.unref();
    return n;
  }

  /** True while events are being received. */
  get isConnected(): boolean {
    return this.connected;
  }

  private async connect(): Promise<void> {
    const c = new pg.Client({ connectionString: this.o.url, types: pgTypes, keepAlive: true, connectionTimeoutMillis: 5000, application_name: 'customs-notify' });
    c.on('notification', (m) => this.onMessage(m.payload));
    c.on('error', () => this.lost(c, 'connection error'));
    c.on('end', () => this.lost(c, 'connection ended'));
    await c.connect();
    await c.query(`LISTEN ${CHANNEL}`);
    this.client = c;
    this.connected = true;
  }

  private lost(c: pg.Client, why: string): void {
    if (this.client !== c || this.closed) return;
    this.client = undefined;
    this.connected = false;
    c.end().catch(() => undefined);
    this.o.log?.warn({ why }, 'lost the PostgreSQL notification connection: caches dropped until it is back');
    this.listeners.emit({ kind: 'reset' });
  }

  private busy = false;
  private async tick(): Promise<void> {
    if (this.closed || this.busy) return;
    this.busy = true;
    try {
      const c = this.client;
      if (!c) {
        this.listeners.emit({ kind: 'reset' }); // still blind: keep the caches empty
        await this.connect().then(
          () => {
            this.o.log?.info({}, 'PostgreSQL notification connection restored');
            this.listeners.emit({ kind: 'reset' }); // events sent while away are lost: start clean
          },
          () => undefined,
        );
        return;
      }
      // A silently dead TCP connection delivers nothing and reports nothing: probe it.
      const probe = c.query('SELECT 1');
      const timeout = new Promise<never>((_, rej) => setTimeout(() => rej(new Error('heartbeat timed out')), this.heartbeatMs * 2).unref());
      await Promise.race([probe, timeout]).catch((e: Error) => this.lost(c, e.message));
    } finally {
      this.busy = false;
    }
  }

  private onMessage(payload: string | undefined): void {
    if (!payload) return;
    let parsed: z.infer<typeof messageSchema>;
    try {
      parsed = messageSchema.parse(JSON.parse(payload));
    } catch {
      return; // not ours, or from an incompatible version: ignore
    }
    if (parsed.from === this.id) return; // delivered locally when published
    this.listeners.emit(parsed.event as CacheEvent);
  }

  async publish(event: CacheEvent): Promise<void> {
    this.listeners.emit(event);
    await this.o.pool.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify({ from: this.id, event })]);
  }

  subscribe(listener: CacheListener): () => void {
    return this.listeners.add(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    const c = this.client;
    this.client = undefined;
    this.connected = false;
    await c?.end().catch(() => undefined);
  }
}
