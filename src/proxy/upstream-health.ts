/**
 * What each upstream's recent exchanges say about it, for operators (the console's
 * overview): passive, from the requests pull-through makes anyway, so it costs no probe
 * traffic. In memory and per replica: a restart starts at "no request yet".
 */
export interface UpstreamStatus {
  readonly name: string;
  readonly url: string;
  /** ok: the last exchange succeeded; failing: it failed; unknown: none since start. */
  readonly state: 'ok' | 'failing' | 'unknown';
  readonly lastOkAt: number | undefined;
  readonly lastErrorAt: number | undefined;
  readonly lastError: string | undefined;
}

export class UpstreamHealth {
  private readonly byName = new Map<string, { url: string; lastOkAt?: number; lastErrorAt?: number; lastError?: string }>();

  constructor(
    upstreams: readonly { readonly name: string; readonly url: string }[],
    private readonly clock: () => number = Date.now,
  ) {
    for (const u of upstreams) this.byName.set(u.name, { url: u.url });
  }

  ok(name: string): void {
    const s = this.byName.get(name);
    if (s) s.lastOkAt = this.clock();
  }

  failed(name: string, error: string): void {
    const s = this.byName.get(name);
    if (!s) return;
    s.lastErrorAt = this.clock();
    s.lastError = error.slice(0, 500);
  }

  snapshot(): UpstreamStatus[] {
    return [...this.byName].map(([name, s]) => ({
      name,
      url: s.url,
      state: s.lastOkAt === undefined && s.lastErrorAt === undefined ? 'unknown' : (s.lastErrorAt ?? 0) > (s.lastOkAt ?? 0) ? 'failing' : 'ok',
      lastOkAt: s.lastOkAt,
      lastErrorAt: s.lastErrorAt,
      lastError: s.lastError,
    }));
  }
}
