import type { Logger } from 'pino';
import type { VerdictStore } from './storage/verdict-store.js';
import type { Gate } from './verify/index.js';
import type { Verdict } from './verify/types.js';

/**
 * The current verification gate behind one reference, so a reload (SIGHUP: new
 * policy or keys) builds a new gate and swaps it in whole; nothing sees a half
 * updated policy. Verdicts are also persisted (when the metadata store can), so a
 * restart or another replica starts warm; a persisted verdict is used only if it
 * was made under the current policy and trust hashes.
 */
export class SwappableVerdicts {
  constructor(
    private current: Gate,
    private readonly store: VerdictStore | undefined,
    private readonly log: Pick<Logger, 'warn'>,
  ) {}

  private key(g: Gate, repository: string, digest: string): string {
    return `${repository}|${digest}|${g.policyHash}|${g.trustHash}`;
  }

  peek(repository: string, digest: string): Verdict | undefined {
    return this.current.peek(repository, digest);
  }

  async check(repository: string, digest: string): Promise<Verdict> {
    const g = this.current;
    const hit = g.peek(repository, digest);
    if (hit) return hit;
    if (this.store) {
      const saved = await this.store.loadVerdict(this.key(g, repository, digest)).catch(() => undefined);
      if (saved) {
        const v = JSON.parse(saved) as Verdict;
        if (g.remember(v)) return v;
      }
    }
    const v = await g.check(repository, digest);
    // Only what the gate itself decided to cache (complete content, no errors) is persisted.
    if (this.store && g.peek(repository, digest) === v) {
      this.store.saveVerdict(this.key(g, repository, digest), digest, JSON.stringify(v)).catch((e: Error) => this.log.warn({ err: e.message }, 'could not persist verdict'));
    }
    return v;
  }

  async checkEvidence(repository: string, digest: string, subject: string, legacy?: 'sig' | 'att' | 'sbom'): Promise<Verdict> {
    const g = this.current;
    const hit = g.peekEvidence(repository, digest, subject, legacy);
    if (hit) return hit;
    const key = `${this.key(g, repository, digest)}|evidence ${subject} ${legacy ?? ''}`;
    if (this.store) {
      const saved = await this.store.loadVerdict(key).catch(() => undefined);
      if (saved) {
        const v = JSON.parse(saved) as Verdict;
        if (g.remember(v)) return v;
      }
    }
    const v = await g.checkEvidence(repository, digest, subject, legacy);
    if (this.store && g.peekEvidence(repository, digest, subject, legacy) === v) {
      this.store.saveVerdict(key, digest, JSON.stringify(v)).catch((e: Error) => this.log.warn({ err: e.message }, 'could not persist verdict'));
    }
    return v;
  }

  invalidate(subject: string): void {
    this.current.invalidate(subject);
    this.store?.deleteVerdicts(subject).catch((e: Error) => this.log.warn({ err: e.message }, 'could not drop persisted verdicts'));
  }

  clear(): void {
    this.current.clear();
    this.store?.deleteAllVerdicts().catch((e: Error) => this.log.warn({ err: e.message }, 'could not drop persisted verdicts'));
  }

  swap(next: Gate): void {
    this.current = next;
  }

  get gate(): Gate {
    return this.current;
  }
}
