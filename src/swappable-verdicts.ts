import type { Gate } from './verify/index.js';
import type { Verdict } from './verify/types.js';

/**
 * The current verification gate behind one reference, so a reload (SIGHUP: new
 * policy or keys) builds a new gate and swaps it in whole; nothing sees a half
 * updated policy.
 */
export class SwappableVerdicts {
  constructor(private current: Gate) {}
  check(repository: string, digest: string): Promise<Verdict> {
    return this.current.check(repository, digest);
  }
  invalidate(subject: string): void {
    this.current.invalidate(subject);
  }
  clear(): void {
    this.current.clear();
  }
  swap(next: Gate): void {
    this.current = next;
  }
  get gate(): Gate {
    return this.current;
  }
}
