/**
 * Cluster-wide "one upstream fetch per blob". Before a replica fetches a blob from
 * an upstream it takes the lease for the blob's digest; a replica that finds the
 * lease taken waits for it to be released and then reads the blob from the shared
 * store (the holder committed it) or, if the holder failed, takes the lease itself.
 * One process: `LocalFillLease`. Several replicas: `PgFillLease`.
 */
export interface LeaseHandle {
  /** Aborted when the lease was lost (its renewal failed): stop filling, another replica may start. */
  readonly signal: AbortSignal;
  release(): Promise<void>;
}

export interface FillLease {
  /** Takes the lease for `key` if nobody holds it; undefined when another holder has it. */
  tryAcquire(key: string): Promise<LeaseHandle | undefined>;
  /** Resolves once nobody holds `key` (or `signal` aborts, which rejects). */
  waitReleased(key: string, signal?: AbortSignal): Promise<void>;
}

/**
 * The usual loop: take the lease, or wait for its holder and ask `ready()` whether
 * the result is now there. Returns a handle when the caller must fill, undefined
 * when `ready()` said the content arrived meanwhile.
 */
export async function leaseOrWait(leases: FillLease, key: string, ready: () => Promise<boolean>, signal?: AbortSignal): Promise<LeaseHandle | undefined> {
  for (;;) {
    const lease = await leases.tryAcquire(key);
    if (lease) {
      if (!(await ready())) return lease;
      await lease.release();
      return undefined;
    }
    await leases.waitReleased(key, signal);
    if (await ready()) return undefined;
  }
}

/**
 * The handle of a lease held in a shared database: `renew` runs every `periodMs` until the lease is
 * released; its answering false (the row is gone or another holder has it) aborts the signal; a renewal
 * that fails (the database briefly away or busy) is tried again at the next tick, until the TTL runs out.
 */
export function renewedLease(periodMs: number, lost: string, renew: () => boolean | Promise<boolean>, release: () => unknown): LeaseHandle {
  const ac = new AbortController();
  const timer = setInterval(() => {
    void Promise.resolve()
      .then(renew)
      .then(
        (held) => {
          if (!held && !released) ac.abort(new Error(lost));
        },
        () => undefined,
      );
  }, periodMs);
  timer.unref();
  let released = false;
  return {
    signal: ac.signal,
    release: async () => {
      if (released) return;
      released = true;
      clearInterval(timer);
      await release();
    },
  };
}

/** One process: an in-memory set of held keys. */
export class LocalFillLease implements FillLease {
  private readonly held = new Map<string, Array<() => void>>();
  async tryAcquire(key: string): Promise<LeaseHandle | undefined> {
    if (this.held.has(key)) return undefined;
    this.held.set(key, []);
    const ac = new AbortController();
    return {
      signal: ac.signal,
      release: async () => {
        const waiters = this.held.get(key) ?? [];
        this.held.delete(key);
        for (const w of waiters) w();
      },
    };
  }
  waitReleased(key: string, signal?: AbortSignal): Promise<void> {
    const waiters = this.held.get(key);
    if (!waiters) return Promise.resolve();
    return new Promise((resolve, reject) => {
      waiters.push(resolve);
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  }
}
