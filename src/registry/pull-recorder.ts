import type { Digest } from '../oci/index.js';
import type { ManifestPull, PullLog } from '../storage/index.js';

/**
 * When cached (pull-through) manifests were last pulled, for eviction. A pull only touches a map;
 * `flush` writes the batch in one statement (the server flushes every few seconds, before each
 * garbage collection run and at shutdown), so the hot path never waits for the database.
 */
export class PullRecorder {
  private pending = new Map<string, ManifestPull>();
  constructor(
    private readonly log: Pick<PullLog, 'recordPulls'>,
    private readonly now: () => number = Date.now,
  ) {}

  touch(repository: string, digest: Digest): void {
    this.pending.set(`${repository}@${digest}`, { repository, digest, at: this.now() });
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    await this.log.recordPulls(batch);
  }
}
