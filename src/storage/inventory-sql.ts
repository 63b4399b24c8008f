import type { Digest } from '../oci/index.js';
import { prefixEnd, toAudit, toMove, type AuditRow, type HistoryRow } from './rows.js';
import type { AuditEntry } from './ops-store.js';
import type { AuditFilter, HistoryEntry, Inventory, InventoryCounts, RepositoryQuery, RepositorySummary, TagDetail } from './inventory.js';

/**
 * The inventory's queries, written once for both metadata stores: a dialect says how a
 * parameter and a substring test are spelled (SQLite `?`/`instr`, PostgreSQL `$n`/`strpos`),
 * so the two backends cannot drift apart in what they filter.
 */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
}

export interface Sql {
  readonly text: string;
  readonly params: unknown[];
}

class Builder {
  readonly params: unknown[] = [];
  constructor(private readonly d: Dialect) {}
  /** A placeholder bound to `v`. */
  p(v: unknown): string {
    this.params.push(v);
    return this.d.name === 'sqlite' ? '?' : `$${this.params.length}`;
  }
  contains(column: string, v: string): string {
    return this.d.name === 'sqlite' ? `instr(${column}, ${this.p(v)}) > 0` : `strpos(${column}, ${this.p(v)}) > 0`;
  }
  sql(text: string): Sql {
    return { text, params: this.params };
  }
}

export function searchRepositoriesSql(d: Dialect, q: RepositoryQuery): Sql | undefined {
  const b = new Builder(d);
  const where = [`r.name > ${b.p(q.after ?? '')}`];
  if (q.contains) where.push(b.contains('r.name', q.contains));
  if (q.prefixes) {
    const names = q.names ?? [];
    // No prefix and no name: the caller may see nothing, so there is nothing to ask.
    if (q.prefixes.length === 0 && names.length === 0) return undefined;
    if (!q.prefixes.includes('')) {
      const any = [...q.prefixes.map((x) => `(r.name >= ${b.p(x)} AND r.name < ${b.p(prefixEnd(x))})`), ...names.map((n) => `r.name = ${b.p(n)}`)];
      where.push(`(${any.join(' OR ')})`);
    }
  }
  return b.sql(`SELECT r.name,
      (SELECT COUNT(*) FROM tags t WHERE t.repository = r.name) AS tags,
      (SELECT max(t.updated_at) FROM tags t WHERE t.repository = r.name) AS updated_at
    FROM repositories r WHERE ${where.join(' AND ')} ORDER BY r.name LIMIT ${b.p(q.limit)}`);
}

export function tagDetailsSql(d: Dialect, repository: string, page: { after?: string; contains?: string; limit: number }): Sql {
  const b = new Builder(d);
  const where = [`t.repository = ${b.p(repository)}`, `t.tag > ${b.p(page.after ?? '')}`];
  if (page.contains) where.push(b.contains('t.tag', page.contains));
  return b.sql(`SELECT t.tag, t.digest, t.updated_at, m.media_type, m.artifact_type, m.size, m.subject, m.bytes,
      p.actor AS pin_actor, p.reason AS pin_reason, CASE WHEN q.digest IS NULL THEN 0 ELSE 1 END AS quarantined
    FROM tags t JOIN manifests m ON m.repository = t.repository AND m.digest = t.digest
    LEFT JOIN pins p ON p.repository = t.repository AND p.tag = t.tag
    LEFT JOIN quarantine q ON q.digest = t.digest
    WHERE ${where.join(' AND ')} ORDER BY t.tag LIMIT ${b.p(page.limit)}`);
}

export function tagHistoryPageSql(d: Dialect, repository: string, tag: string, page: { before?: number; limit: number }): Sql {
  // Placeholders are bound in the order they are written (SQLite's `?` are positional).
  const b = new Builder(d);
  const where = [`repository = ${b.p(repository)}`, `tag = ${b.p(tag)}`];
  if (page.before !== undefined) where.push(`id < ${b.p(page.before)}`);
  return b.sql(`SELECT * FROM tag_history WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT ${b.p(page.limit)}`);
}

function auditWhere(b: Builder, f: AuditFilter): string[] {
  const where: string[] = [];
  if (f.since !== undefined) where.push(`at >= ${b.p(f.since)}`);
  if (f.until !== undefined) where.push(`at < ${b.p(f.until)}`);
  if (f.actor) where.push(b.contains('actor', f.actor));
  if (f.action) where.push(`(action = ${b.p(f.action)} OR substr(action, 1, ${b.p(f.action.length + 1)}) = ${b.p(`${f.action}.`)})`);
  if (f.target) where.push(`(${b.contains("coalesce(target, '')", f.target)} OR ${b.contains("coalesce(repository, '')", f.target)})`);
  return where;
}

export function queryAuditSql(d: Dialect, f: AuditFilter, page: { beforeSeq?: number; limit: number }): Sql {
  const b = new Builder(d);
  const where = auditWhere(b, f);
  if (page.beforeSeq !== undefined) where.push(`seq < ${b.p(page.beforeSeq)}`);
  return b.sql(`SELECT * FROM audit_log${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ${b.p(page.limit)}`);
}

export function countAuditSql(d: Dialect, f: AuditFilter): Sql {
  const b = new Builder(d);
  const where = auditWhere(b, f);
  return b.sql(`SELECT COUNT(*) AS n FROM audit_log${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`);
}

/** Counting manifests by subject uses the partial subject index; the total uses the digest index (never the manifest bytes). */
export const COUNTS_SQL = `SELECT
  (SELECT COUNT(*) FROM repositories) AS repositories,
  (SELECT COUNT(*) FROM manifests) AS manifests,
  (SELECT COUNT(*) FROM manifests WHERE subject IS NOT NULL) AS referrers,
  (SELECT COUNT(*) FROM tags) AS tags,
  (SELECT COUNT(*) FROM quarantine) AS quarantined`;

/** Runs one query and returns its rows. */
export type RunQuery = (sql: Sql) => Promise<Record<string, unknown>[]>;

/** The inventory over either database: the store supplies its dialect and how to run a query. */
export class SqlInventory implements Inventory {
  constructor(
    private readonly d: Dialect,
    private readonly run: RunQuery,
  ) {}

  async searchRepositories(q: RepositoryQuery): Promise<RepositorySummary[]> {
    const sql = searchRepositoriesSql(this.d, q);
    if (!sql) return [];
    return (await this.run(sql)).map((r) => ({ name: r.name as string, tags: Number(r.tags), updatedAt: r.updated_at == null ? undefined : Number(r.updated_at) }));
  }

  async tagDetails(repository: string, page: { after?: string; contains?: string; limit: number }): Promise<TagDetail[]> {
    return (await this.run(tagDetailsSql(this.d, repository, page))).map((r) => ({
      tag: r.tag as string,
      digest: r.digest as Digest,
      updatedAt: Number(r.updated_at),
      mediaType: r.media_type as string,
      artifactType: (r.artifact_type ?? undefined) as string | undefined,
      size: Number(r.size),
      subject: (r.subject ?? undefined) as Digest | undefined,
      bytes: r.bytes as Buffer,
      pin: r.pin_actor == null ? undefined : { actor: r.pin_actor as string, reason: (r.pin_reason ?? undefined) as string | undefined },
      quarantined: Number(r.quarantined) === 1,
    }));
  }

  async tagHistoryPage(repository: string, tag: string, page: { before?: number; limit: number }): Promise<HistoryEntry[]> {
    return (await this.run(tagHistoryPageSql(this.d, repository, tag, page))).map((r) => ({ ...toMove(r as unknown as HistoryRow), id: Number(r.id) }));
  }

  async queryAudit(filter: AuditFilter, page: { beforeSeq?: number; limit: number }): Promise<AuditEntry[]> {
    return (await this.run(queryAuditSql(this.d, filter, page))).map((r) => toAudit(r as unknown as AuditRow));
  }

  async countAudit(filter: AuditFilter): Promise<number> {
    return Number((await this.run(countAuditSql(this.d, filter)))[0]?.n ?? 0);
  }

  async counts(): Promise<InventoryCounts> {
    const r = (await this.run({ text: COUNTS_SQL, params: [] }))[0] ?? {};
    const manifests = Number(r.manifests ?? 0);
    const referrers = Number(r.referrers ?? 0);
    return { repositories: Number(r.repositories ?? 0), artifacts: manifests - referrers, referrers, tags: Number(r.tags ?? 0), quarantined: Number(r.quarantined ?? 0) };
  }
}
