/**
 * One run per key at a time: callers asking for a key already running share its
 * promise (an upstream refresh, a revision import). An injected object, never
 * module state (STYLE.md, "Shared mutable state in the proxy").
 */
export class SingleFlight {
  private readonly flights = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.flights.get(key);
    if (running) return running as Promise<T>;
    const p = fn().finally(() => this.flights.delete(key));
    this.flights.set(key, p);
    return p;
  }
}
