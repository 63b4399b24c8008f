import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { pino, type Logger } from 'pino';
import { ConfigError } from '../config/load.js';
import type { WorkerIdentity } from '../storage/open.js';

/**
 * `customs serve --workers N`: a primary process forks N workers (node:cluster) that each run the
 * whole server on the one listening socket the primary holds, sharing the data directory: SQLite
 * (WAL, one writer at a time, busy timeout), the blob files, and their coordination (fill leases
 * and cache events in the database, storage/sqlite/sqlite-coordination.ts). The primary serves
 * nothing itself: it starts worker 1 alone (it migrates the database and cleans every worker's
 * leftovers), then the others; restarts a worker that dies (same id, so it cleans its own
 * leftovers); passes SIGHUP (reload) to every worker; on SIGTERM or SIGINT asks every worker to
 * stop (each drains as a single process does) and exits once they all have.
 */
const ENV_ID = 'CUSTOMS_WORKER_ID';
const ENV_FIRST = 'CUSTOMS_WORKER_FIRST';
/** Workers that have not exited this long after SIGTERM are killed. */
const STOP_GRACE_MS = 60_000;

/** `--workers` as a count: a positive integer, or `auto` (one per CPU the process may use). */
export function parseWorkers(value: string | undefined): number {
  if (value === undefined) return 1;
  if (value === 'auto') return availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new ConfigError(`--workers must be a positive integer or auto, got ${JSON.stringify(value)}`);
  return n;
}

/** This process's identity when the primary forked it as a worker; undefined in a single process or the primary. */
export function workerIdentity(env: NodeJS.ProcessEnv = process.env): WorkerIdentity | undefined {
  if (!cluster.isWorker) return undefined;
  const id = Number(env[ENV_ID]);
  return Number.isInteger(id) && id > 0 ? { id, first: env[ENV_FIRST] === '1' } : undefined;
}

export const isClusterPrimary = (workers: number): boolean => workers > 1 && cluster.isPrimary;

/** Runs the primary until its workers have stopped; resolves with the exit code. */
export function runPrimary(workers: number, logLevel: string | undefined): Promise<number> {
  const log = pino({ level: logLevel ?? 'info', base: { svc: 'customs', role: 'primary' } });
  return new Primary(workers, log).run();
}

class Primary {
  private readonly byId = new Map<number, Worker>();
  private readonly listening = new Set<number>();
  private stopping = false;
  private url: string | undefined;
  /** Restart delay per worker id: grows while a worker keeps dying young. */
  private readonly backoff = new Map<number, number>();
  private readonly startedAt = new Map<number, number>();
  private resolveDone!: (code: number) => void;

  constructor(
    private readonly count: number,
    private readonly log: Logger,
  ) {}

  run(): Promise<number> {
    const done = new Promise<number>((r) => (this.resolveDone = r));
    cluster.on('listening', (w, address) => this.onListening(w, address));
    cluster.on('exit', (w, code, signal) => this.onExit(w, code, signal));
    process.on('SIGHUP', () => {
      this.log.info({ workers: this.byId.size }, 'reloading every worker (SIGHUP)');
      for (const w of this.byId.values()) w.process.kill('SIGHUP');
    });
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => this.stop(sig));
    // Worker 1 alone first: it migrates the database, writes the admin token and cleans every worker's leftovers.
    this.fork(1, true);
    return done;
  }

  private fork(id: number, first: boolean): void {
    const w = cluster.fork({ [ENV_ID]: String(id), [ENV_FIRST]: first ? '1' : '0' });
    this.byId.set(id, w);
    this.startedAt.set(id, Date.now());
    (w as Worker & { customsId?: number }).customsId = id;
  }

  private idOf(w: Worker): number | undefined {
    return (w as Worker & { customsId?: number }).customsId;
  }

  private onListening(w: Worker, address: { address: string | null; port: number; addressType: number | string }): void {
    const id = this.idOf(w);
    if (id === undefined) return;
    this.listening.add(id);
    const host = address.address ?? '127.0.0.1';
    this.url ??= `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
    if (id === 1 && this.listening.size === 1 && this.byId.size === 1) {
      for (let i = 2; i <= this.count; i++) this.fork(i, false);
    }
    if (this.listening.size === this.count && !this.announced) {
      this.announced = true;
      this.log.info({ url: this.url, workers: this.count, pid: process.pid }, 'listening');
    }
  }
  private announced = false;

  private onExit(w: Worker, code: number | null, signal: string | null): void {
    const id = this.idOf(w);
    if (id === undefined || this.byId.get(id) !== w) return;
    this.byId.delete(id);
    this.listening.delete(id);
    if (this.stopping) {
      if (this.byId.size === 0) this.finish(0);
      return;
    }
    if (!this.announced && id === 1 && this.byId.size === 0) {
      // The first worker could not start (bad config, port taken): nothing to serve.
      this.log.error({ worker: id, code, signal }, 'the first worker exited before listening');
      return this.finish(code || 1);
    }
    const lived = Date.now() - (this.startedAt.get(id) ?? 0);
    const delay = lived < 10_000 ? Math.min(10_000, (this.backoff.get(id) ?? 50) * 2) : 100;
    this.backoff.set(id, delay);
    this.log.warn({ worker: id, pid: w.process.pid, code, signal, restartInMs: delay }, 'worker exited; restarting it');
    setTimeout(() => {
      if (!this.stopping) this.fork(id, false);
    }, delay).unref();
  }

  private stop(signal: string): void {
    if (this.stopping) return;
    this.stopping = true;
    this.log.info({ signal, workers: this.byId.size }, 'stopping every worker');
    if (this.byId.size === 0) return this.finish(0);
    for (const w of this.byId.values()) w.process.kill('SIGTERM');
    setTimeout(() => {
      for (const w of this.byId.values()) w.process.kill('SIGKILL');
    }, STOP_GRACE_MS).unref();
  }

  private finish(code: number): void {
    this.log.info({ code }, 'stopped');
    this.log.flush();
    this.resolveDone(code);
  }
}
