import { GENESIS_HASH, verifyAuditChain, type AuditEntry, type AuditFilter, type ChainProblem } from '../storage/index.js';
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
 * What the console knows of the hash chain: a full walk (every entry from the first), then on
 * each page view only the entries added since, linked onto where the last check ended, so
 * the state stays current without rehashing 100,000 entries per view. A full walk runs in
 * the background (it yields between pages of the log, so the registry keeps serving); a page
 * waits for it briefly and otherwise shows how far it got. A rewrite of an old entry after
 * the last full walk shows at the next one (the button on the page, or `customs audit verify`).
 */
export interface ChainState {
  /** Undefined until the first full walk has finished. */
  readonly ok: boolean | undefined;
  /** Entries 1..verifiedTo hash and link correctly. */
  readonly verifiedTo: number;
  readonly head: { readonly seq: number; readonly hash: string } | undefined;
  readonly firstProblem: ChainProblem | undefined;
  /** When the last full walk finished (epoch ms); undefined if none did yet. */
  readonly fullAt: number | undefined;
  readonly checkedAt: number;
  /** A full walk in progress: entries checked so far, and when it started. */
  readonly walking: { readonly checked: number; readonly since: number } | undefined;
}

/** How long a page waits for a full walk before it shows the walk's progress instead. */
const WAIT_MS = 150;

/** Per process: the chain state carried from one page view to the next. */
export class ChainCache {
  private done: Omit<ChainState, 'walking'> | undefined;
  private walk: { promise: Promise<void>; checked: number; since: number } | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  /** Starts a full walk (unless one runs) and waits for it up to WAIT_MS. */
  async full(d: ConsoleDeps): Promise<ChainState> {
    if (!this.walk) {
      const w = { checked: 0, since: this.now(), promise: Promise.resolve() };
      w.promise = d.ops.audit
        .verify(undefined, { onProgress: (n) => (w.checked = n) })
        .then((r) => {
          const t = this.now();
          this.done = { ok: r.ok, verifiedTo: r.ok ? (r.head?.seq ?? 0) : Math.max(0, (r.problems[0]?.seq ?? 1) - 1), head: r.head, firstProblem: r.problems[0], fullAt: t, checkedAt: t };
        })
        .finally(() => {
          if (this.walk === w) this.walk = undefined;
        });
      this.walk = w;
    }
    await Promise.race([this.walk.promise, new Promise((r) => setTimeout(r, WAIT_MS).unref())]);
    return this.state();
  }

  /** The entries added since the last check, linked onto the last verified head; a full walk if there was none. */
  async current(d: ConsoleDeps): Promise<ChainState> {
    const s = this.done;
    if (!s) return this.full(d);
    if (!s.ok || this.walk) return this.state(); // broken stays broken until a full walk says otherwise
    let start = s.head ?? { seq: 0, hash: GENESIS_HASH };
    for (;;) {
      const page = await d.ops.audit.list({ afterSeq: start.seq, limit: 1000 });
      if (page.length === 0) break;
      const r = verifyAuditChain(page, { start: start.seq === 0 ? undefined : start });
      if (!r.ok) {
        this.done = { ...s, ok: false, firstProblem: r.problems[0], verifiedTo: Math.max(0, (r.problems[0]?.seq ?? start.seq + 1) - 1), checkedAt: this.now() };
        return this.state();
      }
      start = r.head!;
      if (page.length < 1000) break;
    }
    this.done = { ...s, verifiedTo: start.seq, head: start.seq === 0 ? undefined : start, checkedAt: this.now() };
    return this.state();
  }

  private state(): ChainState {
    const w = this.walk ? { checked: this.walk.checked, since: this.walk.since } : undefined;
    return this.done ? { ...this.done, walking: w } : { ok: undefined, verifiedTo: 0, head: undefined, firstProblem: undefined, fullAt: undefined, checkedAt: this.now(), walking: w };
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
