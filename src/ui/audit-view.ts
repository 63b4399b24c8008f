import { verifyAuditChain, type AuditEntry, type AuditFilter, type ChainProblem } from '../storage/index.js';
import type { ConsoleDeps } from './deps.js';
import { requirePermission, type Viewer } from './viewer.js';

export const AUDIT_PAGE = 100;

export interface AuditPageView {
  readonly filter: AuditFilter;
  readonly entries: readonly AuditEntry[];
  /** `beforeSeq` of the next (older) page. */
  readonly older: number | undefined;
  readonly chain: ChainState;
}

/**
 * What the console knows of the hash chain: a full walk (every entry from the first) at
 * `fullAt`, then each page view checks only the entries added since from where the last
 * check ended, so the state stays current without rehashing 100,000 entries per view. A
 * rewrite of an old entry after the last full walk shows at the next full walk (the
 * button on the page, or `customs audit verify`).
 */
export interface ChainState {
  readonly ok: boolean;
  /** Entries 1..verifiedTo hash and link correctly (when ok). */
  readonly verifiedTo: number;
  readonly head: { readonly seq: number; readonly hash: string } | undefined;
  readonly firstProblem: ChainProblem | undefined;
  /** When the last full walk ran (epoch ms); undefined if none ran yet. */
  readonly fullAt: number | undefined;
  readonly checkedAt: number;
}

/** Per process: the chain state carried from one page view to the next. */
export class ChainCache {
  private state: ChainState | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** A full walk of the chain from its first entry. */
  async full(d: ConsoleDeps): Promise<ChainState> {
    const r = await d.ops.audit.verify();
    const t = this.now();
    this.state = { ok: r.ok, verifiedTo: r.ok ? (r.head?.seq ?? 0) : Math.max(0, (r.problems[0]?.seq ?? 1) - 1), head: r.head, firstProblem: r.problems[0], fullAt: t, checkedAt: t };
    return this.state;
  }

  /** The entries added since the last check, linked onto the last verified head; a full walk if there was none. */
  async current(d: ConsoleDeps): Promise<ChainState> {
    const s = this.state;
    if (!s || !s.head) return this.full(d); // never walked, or the log was empty then
    if (!s.ok) return s; // broken stays broken until a full walk says otherwise
    let start = s.head;
    for (;;) {
      const page = await d.ops.audit.list({ afterSeq: start.seq, limit: 1000 });
      if (page.length === 0) break;
      const r = verifyAuditChain(page, { start });
      if (!r.ok) {
        this.state = { ...s, ok: false, firstProblem: r.problems[0], verifiedTo: Math.max(0, (r.problems[0]?.seq ?? start.seq + 1) - 1), checkedAt: this.now() };
        return this.state;
      }
      start = r.head!;
      if (page.length < 1000) break;
    }
    this.state = { ...s, verifiedTo: start.seq, head: start, checkedAt: this.now() };
    return this.state;
  }
}

export async function auditPage(d: ConsoleDeps, v: Viewer, chain: ChainCache, filter: AuditFilter, beforeSeq: number | undefined, fullCheck: boolean): Promise<AuditPageView> {
  requirePermission(v, undefined, 'admin'); // as GET /admin/audit
  const rows = await d.inventory.queryAudit(filter, { beforeSeq, limit: AUDIT_PAGE + 1 });
  const entries = rows.slice(0, AUDIT_PAGE);
  return {
    filter,
    entries,
    older: rows.length > AUDIT_PAGE ? entries[entries.length - 1]!.seq : undefined,
    chain: fullCheck ? await chain.full(d) : await chain.current(d),
  };
}

/** The same filter as the database applies (inventory-sql.ts), for streaming an export oldest first. */
export function matchesAudit(e: AuditEntry, f: AuditFilter): boolean {
  if (f.since !== undefined && e.at < f.since) return false;
  if (f.until !== undefined && e.at >= f.until) return false;
  if (f.actor && !e.actor.includes(f.actor)) return false;
  if (f.action && e.action !== f.action && !e.action.startsWith(`${f.action}.`)) return false;
  if (f.target && !(e.target ?? '').includes(f.target) && !(e.repository ?? '').includes(f.target)) return false;
  return true;
}

/** JSON lines of the matching entries, oldest first, one page of the log in memory at a time. */
export function auditExport(d: ConsoleDeps, v: Viewer, filter: AuditFilter): AsyncGenerator<string> {
  requirePermission(v, undefined, 'admin'); // as GET /admin/audit/export
  return (async function* () {
    for await (const e of d.ops.audit.all(filter.since)) if (matchesAudit(e, filter)) yield `${JSON.stringify(e)}\n`;
  })();
}
