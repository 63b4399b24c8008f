import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { z } from 'zod';
import { renewedLease, type FillLease, type LeaseHandle } from '../fill-lease.js';
import { Listeners, cacheEventSchema, type CacheEvent, type CacheListener, type Notifier } from '../notifier.js';

/**
 * What worker processes sharing one data directory (`customs serve --workers N`) coordinate
 * through their SQLite database, as PostgreSQL replicas do through theirs: leases (one upstream
 * fill per digest, one link-or-delete of a blob's bytes at a time) and cache events.
 *
 * The tables hold transient state only, so they are created here if missing rather than by a
 * numbered migration: a database written by a single process simply lacks them.
 */
export function ensureCoordinationTables(db: Database.Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS coordination_leases (key TEXT PRIMARY KEY, holder TEXT NOT NULL, pid INTEGER NOT NULL, expires_at INTEGER NOT NULL, info TEXT) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS coordination_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL, event TEXT NOT NULL, at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS coordination_pruned (id INTEGER PRIMARY KEY CHECK (id = 1), upto INTEGER NOT NULL);
  `);
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });

/** Is process `pid` alive (on this machine: the workers share it)? */
function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface SqliteLeaseOptions {
  /** A lease not renewed for this long is free again. */
  readonly ttlMs?: number;
  /** How often waiters look again. */
  readonly pollMs?: number;
}

/**
 * Row leases: a lease is free when its row is absent, expired, or held by a process that is gone
 * (a worker killed with -9 frees its leases at once, not after the TTL). The holder renews every
 * third of the TTL; a renewal that finds the row taken aborts the handle's signal.
 */
export class SqliteLeases {
  private readonly ttlMs: number;
  private readonly pollMs: number;
  private readonly holderPrefix = `${process.pid}/${randomUUID()}`;
  private readonly stmt;

  constructor(
    private readonly db: Database.Database,
    o: SqliteLeaseOptions = {},
  ) {
    this.ttlMs = o.ttlMs ?? 30_000;
    this.pollMs = o.pollMs ?? 20;
    ensureCoordinationTables(db);
    this.stmt = {
      take: db.prepare<[string, string, number, number, string | null, number]>(
        `INSERT INTO coordination_leases (key, holder, pid, expires_at, info) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, pid = excluded.pid, expires_at = excluded.expires_at, info = excluded.info
         WHERE coordination_leases.expires_at < ?`,
      ),
      get: db.prepare<[string]>('SELECT holder, pid, expires_at AS expiresAt, info FROM coordination_leases WHERE key = ?'),
      dropDead: db.prepare<[string, string]>('DELETE FROM coordination_leases WHERE key = ? AND holder = ?'),
      renew: db.prepare<[number, string, string]>('UPDATE coordination_leases SET expires_at = ? WHERE key = ? AND holder = ?'),
      release: db.prepare<[string, string]>('DELETE FROM coordination_leases WHERE key = ? AND holder = ?'),
    };
  }

  /** The current holder's row, if the lease is held (not expired, holder alive). */
  private held(key: string): { holder: string; pid: number; expiresAt: number; info: string | null } | undefined {
    const row = this.stmt.get.get(key) as { holder: string; pid: number; expiresAt: number; info: string | null } | undefined;
    if (!row || row.expiresAt < Date.now()) return undefined;
    if (!alive(row.pid)) {
      this.stmt.dropDead.run(key, row.holder);
      return undefined;
    }
    return row;
  }

  tryAcquire(key: string, info?: string): LeaseHandle | undefined {
    this.held(key); // drops a dead holder's row
    const holder = `${this.holderPrefix}/${randomUUID()}`;
    const now = Date.now();
    if (this.stmt.take.run(key, holder, process.pid, now + this.ttlMs, info ?? null, now).changes === 0) return undefined;
    // A busy database (past its timeout) fails the renewal: tried again at the next tick, until the TTL runs out.
    return renewedLease(
      Math.max(20, Math.floor(this.ttlMs / 3)),
      `lease ${key} was lost`,
      () => this.stmt.renew.run(Date.now() + this.ttlMs, key, holder).changes !== 0,
      () => this.stmt.release.run(key, holder),
    );
  }

  /** What the holder said about the lease when it took it (`tryAcquire`'s info), while it is held. */
  info(key: string): string | undefined {
    return this.held(key)?.info ?? undefined;
  }

  async waitReleased(key: string, signal?: AbortSignal): Promise<void> {
    while (this.held(key)) await sleep(this.pollMs, signal);
  }

  /** Runs `fn` holding `key` (waiting for it as long as needed). */
  async exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let lease = this.tryAcquire(key);
    while (!lease) {
      await sleep(Math.max(2, this.pollMs / 4));
      lease = this.tryAcquire(key);
    }
    try {
      return await fn();
    } finally {
      await lease.release();
    }
  }
}

/** One upstream fill per digest across the worker processes (see fill-lease.ts). */
export class SqliteFillLease implements FillLease {
  constructor(private readonly leases: SqliteLeases) {}
  async tryAcquire(key: string): Promise<LeaseHandle | undefined> {
    return this.leases.tryAcquire(key);
  }
  waitReleased(key: string, signal?: AbortSignal): Promise<void> {
    return this.leases.waitReleased(key, signal);
  }
}


/** Events older than this are pruned; a worker that has not looked for that long drops all its caches. */
const KEEP_MS = 10 * 60_000;

/**
 * Cache events between the worker processes, through a table. `sync()` is cheap when nothing
 * changed (`PRAGMA data_version` answers from shared memory whether another connection wrote),
 * so the server calls it at the start of every request: an event published by one worker before
 * its response is applied by every other worker before its next request is answered.
 */
export class SqliteNotifier implements Notifier {
  private readonly listeners = new Listeners();
  private readonly origin = `${process.pid}/${randomUUID()}`;
  private readonly stmt;
  private seen: number;
  private version: number;
  private readonly pruner: NodeJS.Timeout;

  constructor(private readonly db: Database.Database) {
    ensureCoordinationTables(db);
    this.stmt = {
      version: db.prepare('PRAGMA data_version').pluck(),
      insert: db.prepare<[string, string, number]>('INSERT INTO coordination_events (origin, event, at) VALUES (?, ?, ?)'),
      since: db.prepare<[number]>('SELECT seq, origin, event FROM coordination_events WHERE seq > ? ORDER BY seq'),
      last: db.prepare('SELECT coalesce(max(seq), 0) FROM coordination_events').pluck(),
      pruned: db.prepare('SELECT coalesce((SELECT upto FROM coordination_pruned WHERE id = 1), 0)').pluck(),
      prune: db.prepare<[number]>('DELETE FROM coordination_events WHERE at < ? RETURNING seq'),
      markPruned: db.prepare<[number]>('INSERT INTO coordination_pruned (id, upto) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET upto = max(upto, excluded.upto)'),
    };
    // What happened before this process started is in no cache of it.
    this.seen = this.stmt.last.get() as number;
    this.version = this.stmt.version.get() as number;
    this.pruner = setInterval(() => this.prune(), 60_000);
    this.pruner.unref();
  }

  /** Applies the events other workers published since the last call; nearly free when there were none. */
  sync(): void {
    try {
      this.apply();
    } catch {
      // The database could not be read (busy past its timeout): events may be missed, so no cache is trusted.
      this.listeners.emit({ kind: 'reset' });
    }
  }

  private apply(): void {
    const v = this.stmt.version.get() as number;
    if (v === this.version) return;
    this.version = v;
    if ((this.stmt.pruned.get() as number) > this.seen) {
      // Events this worker never saw were pruned: it cannot know what they named.
      this.seen = this.stmt.last.get() as number;
      this.listeners.emit({ kind: 'reset' });
      return;
    }
    for (const row of this.stmt.since.all(this.seen) as { seq: number; origin: string; event: string }[]) {
      this.seen = row.seq;
      if (row.origin === this.origin) continue; // delivered locally when published
      const parsed = cacheEventSchema.safeParse(JSON.parse(row.event));
      this.listeners.emit(parsed.success ? (parsed.data as CacheEvent) : { kind: 'reset' });
    }
  }

  async publish(event: CacheEvent): Promise<void> {
    this.listeners.emit(event);
    // Synchronous: committed before the caller answers its client.
    this.stmt.insert.run(this.origin, JSON.stringify(event), Date.now());
  }

  subscribe(listener: CacheListener): () => void {
    return this.listeners.add(listener);
  }

  private prune(): void {
    try {
      this.db.transaction(() => {
        const gone = this.stmt.prune.all(Date.now() - KEEP_MS) as { seq: number }[];
        if (gone.length > 0) this.stmt.markPruned.run(gone.reduce((m, g) => Math.max(m, g.seq), 0));
      }).immediate();
    } catch {
      // Busy: the next round prunes.
    }
  }

  async close(): Promise<void> {
    clearInterval(this.pruner);
  }
}
