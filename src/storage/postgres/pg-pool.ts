import pg from 'pg';
import { isNetworkError, originalError, unavailable } from '../storage-errors.js';

/**
 * The PostgreSQL connection pool shared by the metadata store, the upload
 * sessions and the fill leases, with the helpers they share: transactions,
 * versioned migrations under an advisory lock, readable connection errors.
 */
export type Queryable = Pick<pg.PoolClient, 'query'>;

// BIGINT columns hold sizes and millisecond times, all below 2^53: parse them as numbers.
const INT8 = 20;
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8 && format !== 'binary' ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

export interface PgOptions {
  readonly url: string;
  /** Connections per replica. */
  readonly poolSize?: number;
}

export function createPgPool(o: PgOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: o.url,
    max: o.poolSize ?? 20,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    types,
    application_name: 'customs',
  });
  // An idle client losing its connection emits on the pool; without a listener that would crash the process.
  pool.on('error', () => undefined);
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  // Every statement of every store goes through here: a restart of PostgreSQL is waited out, a lost connection answers 503.
  pool.query = ((...args: unknown[]) => withReconnect(() => query(...args))) as typeof pool.query;
  return pool;
}

/** How long a request waits for PostgreSQL to accept connections again (a restart takes about a second). */
const RECONNECT_MS = 3000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Connection-level failures, in the error vocabulary: PostgreSQL is unavailable (503), not broken.
 * Errors about the statement itself (a constraint, a syntax error) stay as they are.
 */
const PG_CONNECTION_CODES = new Set(['57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08004', '08006']);
const isConnectionFailure = (e: unknown): boolean => {
  const x = e as { code?: string; message?: string } | undefined;
  return isNetworkError(e) || PG_CONNECTION_CODES.has(x?.code ?? '') || /^Connection terminated|connection error|not queryable|timeout exceeded when trying to connect/i.test(x?.message ?? '');
};

/** Failures that happen before a statement is sent (refused, "the database system is starting up"): safe to try again. */
const notYetSent = (e: unknown): boolean => {
  const code = (e as { code?: string; errors?: Array<{ code?: string }> } | undefined)?.code ?? (e as { errors?: Array<{ code?: string }> }).errors?.[0]?.code;
  return code === 'ECONNREFUSED' || code === 'ENOENT' || code === '57P03';
};

/** Runs `fn`, retrying while PostgreSQL refuses connections (up to RECONNECT_MS); connection failures become STORAGE_UNAVAILABLE. */
async function withReconnect<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + RECONNECT_MS;
  for (let wait = 50; ; wait = Math.min(wait * 2, 500)) {
    try {
      return await fn();
    } catch (e) {
      if (notYetSent(e) && Date.now() + wait < deadline) {
        await sleep(wait);
        continue;
      }
      throw isConnectionFailure(e) ? unavailable('PostgreSQL', e) : e;
    }
  }
}

export const pgTypes = types;

/** Runs `fn` in one transaction on one connection; rolls back on any error. */
export async function withTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await withReconnect(() => pool.connect());
  let broken = false;
  // Between two statements (the transaction awaits S3, say) the connection may die: pg then emits
  // 'error' on the client, which the pool listens to only while the client is idle in the pool.
  // Unheard, it would crash the process; heard, the next statement fails and the transaction with it.
  const onError = (): void => void (broken = true);
  c.on('error', onError);
  try {
    await c.query('BEGIN');
    const result = await fn(c);
    await c.query('COMMIT');
    return result;
  } catch (e) {
    broken ||= isConnectionFailure(e);
    if (!broken) await c.query('ROLLBACK').catch(() => undefined);
    // A transaction cut off by a lost connection was rolled back by PostgreSQL: nothing of it is visible.
    throw broken ? unavailable('PostgreSQL', e) : e;
  } finally {
    c.off('error', onError);
    c.release(broken || undefined); // a broken connection is discarded, not put back into the pool
  }
}

/** Advisory lock keys of customs (one namespace: the first int of the two-int form). */
export const LOCK_NAMESPACE = 0x637573; // 'cus'
export const LOCK_MIGRATIONS = 1;
export const LOCK_AUDIT = 2;

/**
 * Applies the migrations this database lacks, in one transaction, under an advisory
 * lock so replicas starting together migrate once. Refuses a database newer than
 * this code (a rolled-back deployment must not write with an old schema).
 */
export async function migrate(pool: pg.Pool, migrations: readonly string[]): Promise<{ from: number; to: number }> {
  return withTransaction(pool, async (c) => {
    await c.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_NAMESPACE, LOCK_MIGRATIONS]);
    await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
    const { rows } = await c.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
    const current = rows[0]?.v ?? 0;
    if (current > migrations.length) {
      throw new Error(`PostgreSQL: metadata database is at schema version ${current}, newer than this customs (${migrations.length})`);
    }
    for (let v = current + 1; v <= migrations.length; v++) {
      await c.query(migrations[v - 1]!);
      await c.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [v, Date.now()]);
    }
    return { from: current, to: migrations.length };
  });
}

/** Says in words why PostgreSQL could not be used, for startup errors. */
export function describePgError(e: unknown, url: string): string {
  e = originalError(e);
  const where = `PostgreSQL at ${redact(url)}`;
  const x = e as NodeJS.ErrnoException & { errors?: NodeJS.ErrnoException[]; severity?: string };
  const code = x?.code ?? x?.errors?.[0]?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return `${where} is unreachable: connection refused`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${where} is unreachable: host not found`;
    case 'ETIMEDOUT':
      return `${where} is unreachable: timed out`;
    case '28P01':
    case '28000':
      return `${where}: authentication failed (${x.message})`;
    case '3D000':
      return `${where}: database does not exist (${x.message})`;
    case '42501':
      return `${where}: permission denied (${x.message})`;
  }
  if (/timeout/i.test(x?.message ?? '')) return `${where} is unreachable: ${x.message}`;
  return `${where}: ${x?.message ?? String(e)}${code ? ` (${code})` : ''}`;
}

/** The URL without its password, for messages and logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<invalid url>';
  }
}
