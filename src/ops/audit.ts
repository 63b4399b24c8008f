import { verifyAuditChain, type AuditEntry, type AuditInput, type AuditLog, type ChainReport } from '../storage/index.js';

const PAGE = 1000;

/**
 * The audit log as operators and the HTTP layer see it. Tag moves, pins and
 * quarantines are recorded by the metadata store in their own transactions; this
 * records the rest (denies, auth failures, admin operations) and reads the chain
 * back in pages, so verifying or exporting a long log holds one page in memory.
 */
export class AuditService {
  constructor(private readonly log: AuditLog) {}

  /** For the HTTP layer: denies, authentication failures, admin operations. */
  record(entry: AuditInput): Promise<AuditEntry> {
    return this.log.appendAudit(entry);
  }

  list(opts: { since?: number; afterSeq?: number; limit?: number } = {}): Promise<AuditEntry[]> {
    return this.log.listAudit({ since: opts.since, afterSeq: opts.afterSeq, limit: Math.min(opts.limit ?? PAGE, 10_000) });
  }

  /** Every entry, oldest first, page by page. */
  async *all(since?: number): AsyncGenerator<AuditEntry> {
    let after = 0;
    for (;;) {
      const page = await this.log.listAudit({ afterSeq: after, since, limit: PAGE });
      yield* page;
      if (page.length < PAGE) return;
      after = page[page.length - 1]!.seq;
    }
  }

  /**
   * Walks the whole chain. Reads by sequence number without `since`, so a removed
   * entry shows as a gap. `expectHead` (a `seq:hash` recorded earlier, e.g. from a
   * previous verify) detects truncation of the newest entries.
   */
  async verify(expectHead?: { seq: number; hash: string }, opts: { onProgress?: (checked: number) => void } = {}): Promise<ChainReport> {
    // verifyAuditChain takes a sync iterable; collect pages into it lazily by verifying page by page.
    let start: Pick<AuditEntry, 'seq' | 'hash'> | undefined;
    let checked = 0;
    const problems: { seq: number; problem: string }[] = [];
    let after = 0;
    let headSeen = false;
    for (;;) {
      const page = await this.log.listAudit({ afterSeq: after, limit: PAGE });
      if (page.length === 0) break;
      const r = verifyAuditChain(page, { start });
      checked += r.checked;
      problems.push(...r.problems);
      if (expectHead) {
        const e = page.find((x) => x.seq === expectHead.seq);
        if (e) {
          headSeen = true;
          if (e.hash !== expectHead.hash) problems.push({ seq: e.seq, problem: `hash differs from the recorded head ${expectHead.hash}` });
        }
      }
      start = page[page.length - 1]!;
      after = start.seq;
      opts.onProgress?.(checked);
      if (page.length < PAGE) break;
      // SQLite answers synchronously: without this, a walk of 100,000 entries holds the event loop for seconds.
      await new Promise((r) => setImmediate(r));
    }
    if (expectHead && !headSeen) problems.push({ seq: expectHead.seq, problem: 'the recorded head entry is missing: the log was truncated' });
    return { ok: problems.length === 0, checked, head: start ? { seq: start.seq, hash: start.hash } : undefined, problems };
  }
}
