import type { Verdict } from '../verify/types.js';
import type { LegacyKind, VerdictSource } from './serving-rule.js';

/**
 * Verdicts about proxied content expire with their upstream's freshness window (`tagFreshness`):
 * a signature pushed to or deleted from the upstream changes the evidence without any push
 * here, so nothing would invalidate the cached verdict otherwise. Local content keeps its
 * verdict until a referrer push/delete, a quarantine or a reload drops it. Evidence verdicts
 * judge immutable bytes (a referrer against its subject), so they do not expire.
 */
export class UpstreamFreshVerdicts implements VerdictSource {
  constructor(
    private readonly inner: VerdictSource,
    /** Milliseconds a verdict about `repository` stays valid; undefined for local repositories. */
    private readonly maxAgeMs: (repository: string) => number | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  async check(repository: string, digest: string): Promise<Verdict> {
    const v = await this.inner.check(repository, digest);
    const max = this.maxAgeMs(repository);
    if (max === undefined || this.now() - Date.parse(v.checkedAt) < max) return v;
    this.inner.invalidate(digest);
    return this.inner.check(repository, digest);
  }

  peek(repository: string, digest: string): Verdict | undefined {
    const v = this.inner.peek?.(repository, digest);
    if (!v) return undefined;
    const max = this.maxAgeMs(repository);
    return max === undefined || this.now() - Date.parse(v.checkedAt) < max ? v : undefined;
  }

  checkEvidence(repository: string, digest: string, subject: string, legacy?: LegacyKind): Promise<Verdict> {
    return this.inner.checkEvidence(repository, digest, subject, legacy);
  }

  invalidate(subject: string): void {
    this.inner.invalidate(subject);
  }
}
