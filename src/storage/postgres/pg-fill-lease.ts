import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { renewedLease, type FillLease, type LeaseHandle } from '../fill-lease.js';

export interface PgFillLeaseOptions {
  /** A lease not renewed for this long is free again (its holder died). */
  readonly ttlMs?: number;
  /** How often waiters look whether the lease was released. */
  readonly pollMs?: number;
}

/**
 * Fill leases as rows in PostgreSQL (`fill_leases`), with expiry judged by the
 * database's clock (replicas' clocks may disagree). A row, not a session advisory
 * lock, so a fill that lasts minutes holds no pool connection; the holder renews
 * it every third of the TTL, and a holder that crashed frees it after one TTL.
 */
export class PgFillLease implements FillLease {
  private readonly ttlMs: number;
  private readonly pollMs: number;
  private readonly holder = randomUUID();

  constructor(
    private readonly pool: pg.Pool,
    o: PgFillLeaseOptions = {},
  ) {
    this.ttlMs = o.ttlMs ?? 30_000;
    this.pollMs = o.pollMs ?? 100;
  }

  async tryAcquire(key: string): Promise<LeaseHandle | undefined> {
    const token = `${this.holder}/${randomUUID()}`;
    const r = await this.pool.query(
      `INSERT INTO fill_leases (key, holder, expires_at) VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond')
       ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE fill_leases.expires_at < clock_timestamp()
       RETURNING holder`,
      [key, token, this.ttlMs],
    );
    if (r.rows.length === 0) return undefined;
    return renewedLease(
      Math.max(50, Math.floor(this.ttlMs / 3)),
      `fill lease ${key} was lost`,
      async () => {
        const u = await this.pool.query(`UPDATE fill_leases SET expires_at = clock_timestamp() + $3 * interval '1 millisecond' WHERE key = $1 AND holder = $2`, [key, token, this.ttlMs]);
        return u.rowCount !== 0;
      },
      () => this.pool.query('DELETE FROM fill_leases WHERE key = $1 AND holder = $2', [key, token]),
    );
  }

  async waitReleased(key: string, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const r = await this.pool.query('SELECT 1 FROM fill_leases WHERE key = $1 AND expires_at >= clock_timestamp()', [key]);
      if (r.rows.length === 0) return;
      await new Promise((resolve) => setTimeout(resolve, this.pollMs));
    }
  }
}
