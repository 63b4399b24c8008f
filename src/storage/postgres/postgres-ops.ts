import { err, type Digest } from '../../oci/index.js';
import { toAudit, toMove, toPin, toProvenance, type AuditRow, type HistoryRow, type PinRow, type ProvenanceRow } from '../rows.js';
export { toMove, type HistoryRow } from '../rows.js';
import { chainEntry } from '../audit-chain.js';
import type { Actor, TagMove } from '../metadata-store.js';
import {
  materialKeys,
  type AuditEntry,
  type AuditInput,
  type AuditQuery,
  type MaterialConsumer,
  type NewProvenance,
  type PinRecord,
  type ProvenanceMaterial,
  type ProvenanceRecord,
  type QuarantineRecord,
} from '../ops-store.js';
import { LOCK_AUDIT, LOCK_NAMESPACE, type Queryable } from './pg-pool.js';

/**
 * The operator tables of the PostgreSQL store (pins, quarantine, audit, lineage),
 * the same rules as sqlite-ops.ts. Functions take the connection of the caller's
 * transaction (`q`), so a tag move and its audit entry commit together.
 */

/**
 * Serialises the writers of the audit chain cluster-wide. Taken first in every
 * transaction that will append (all tag moves), so no transaction holds a row lock
 * while waiting for it, and the chain never forks.
 */
export async function lockAudit(q: Queryable): Promise<void> {
  await q.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_NAMESPACE, LOCK_AUDIT]);
}

export async function appendAuditTx(q: Queryable, input: AuditInput, now: number): Promise<AuditEntry> {
  const head = (await q.query<{ seq: number; hash: string }>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1')).rows[0];
  const e = chainEntry(head, input, now);
  await q.query(
    `INSERT INTO audit_log (seq, at, actor, action, repository, target, reason, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [e.seq, e.at, e.actor, e.action, e.repository ?? null, e.target ?? null, e.reason ?? null, e.detail ? JSON.stringify(e.detail) : null, e.prevHash, e.hash],
  );
  return e;
}

export async function listAudit(q: Queryable, query: AuditQuery): Promise<AuditEntry[]> {
  const { rows } = await q.query<AuditRow>('SELECT * FROM audit_log WHERE seq > $1 AND at >= $2 ORDER BY seq LIMIT $3', [
    query.afterSeq ?? 0,
    query.since ?? 0,
    query.limit ?? null,
  ]);
  return rows.map(toAudit);
}

export async function auditMoveTx(q: Queryable, action: string, move: TagMove, now: number, extra: Record<string, unknown> = {}): Promise<void> {
  await appendAuditTx(
    q,
    { actor: move.actor, action, repository: move.repository, target: `${move.repository}:${move.tag}`, reason: move.reason, detail: { tag: move.tag, from: move.from, to: move.to, ...extra } },
    now,
  );
}

// --- pins ---
export async function pinOf(q: Queryable, repository: string, tag: string): Promise<PinRecord | undefined> {
  const row = (await q.query<PinRow>('SELECT * FROM pins WHERE repository = $1 AND tag = $2', [repository, tag])).rows[0];
  return row ? toPin(row) : undefined;
}

export async function assertUnpinned(q: Queryable, repository: string, tag: string, what: string): Promise<void> {
  const pin = await pinOf(q, repository, tag);
  if (pin) {
    throw err('DENIED', `tag ${repository}:${tag} is pinned to ${pin.digest} by ${pin.actor}${pin.reason ? ` (${pin.reason})` : ''}: ${what} refused; unpin it first`, {
      pinned: { repository, tag, digest: pin.digest, actor: pin.actor, reason: pin.reason },
    });
  }
}

export async function assertNoPinnedTags(q: Queryable, repository: string, digest: Digest): Promise<void> {
  const row = (
    await q.query<{ tag: string }>('SELECT tag FROM pins WHERE repository = $1 AND tag IN (SELECT tag FROM tags WHERE repository = $1 AND digest = $2) LIMIT 1', [
      repository,
      digest,
    ])
  ).rows[0];
  if (row) await assertUnpinned(q, repository, row.tag, `deleting ${digest}`);
}

export async function setPinTx(q: Queryable, repository: string, tag: string, digest: Digest, by: Actor, now: number): Promise<PinRecord> {
  await q.query(
    `INSERT INTO pins (repository, tag, digest, actor, reason, at) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, actor = excluded.actor, reason = excluded.reason, at = excluded.at`,
    [repository, tag, digest, by.actor, by.reason ?? null, now],
  );
  return { repository, tag, digest, actor: by.actor, reason: by.reason, at: now };
}

export async function followPinTx(q: Queryable, repository: string, tag: string, digest: Digest): Promise<void> {
  await q.query('UPDATE pins SET digest = $1 WHERE repository = $2 AND tag = $3', [digest, repository, tag]);
}

export async function deletePinTx(q: Queryable, repository: string, tag: string): Promise<boolean> {
  return ((await q.query('DELETE FROM pins WHERE repository = $1 AND tag = $2', [repository, tag])).rowCount ?? 0) > 0;
}

export async function listPins(q: Queryable, repository?: string): Promise<PinRecord[]> {
  const { rows } =
    repository === undefined
      ? await q.query<PinRow>('SELECT * FROM pins ORDER BY repository, tag')
      : await q.query<PinRow>('SELECT * FROM pins WHERE repository = $1 ORDER BY tag', [repository]);
  return rows.map(toPin);
}

// --- quarantine ---
export async function quarantineTx(q: Queryable, digest: Digest, by: Actor, now: number): Promise<boolean> {
  const r = await q.query('INSERT INTO quarantine (digest, actor, reason, at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING', [digest, by.actor, by.reason ?? null, now]);
  return (r.rowCount ?? 0) > 0;
}
export async function releaseTx(q: Queryable, digest: Digest): Promise<boolean> {
  return ((await q.query('DELETE FROM quarantine WHERE digest = $1', [digest])).rowCount ?? 0) > 0;
}
export async function quarantinedAmong(q: Queryable, digests: readonly Digest[]): Promise<Digest[]> {
  const unique = [...new Set(digests)];
  if (unique.length === 0) return [];
  const found = new Set((await q.query<{ digest: Digest }>('SELECT digest FROM quarantine WHERE digest = ANY($1::text[])', [unique])).rows.map((r) => r.digest));
  return unique.filter((d) => found.has(d));
}
export async function listQuarantine(q: Queryable): Promise<QuarantineRecord[]> {
  const { rows } = await q.query<{ digest: string; actor: string; reason: string | null; at: number }>('SELECT * FROM quarantine ORDER BY at, digest');
  return rows.map((r) => ({ digest: r.digest as Digest, actor: r.actor, reason: r.reason ?? undefined, at: r.at }));
}

// --- lineage ---
export async function recordProvenanceTx(q: Queryable, p: NewProvenance, now: number): Promise<void> {
  await forgetProvenanceTx(q, p.repository, p.referrer);
  await q.query(
    `INSERT INTO provenance (repository, referrer, subject, predicate_type, builder_id, build_type, started_on, finished_on, signers, materials, recorded_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    [
      p.repository,
      p.referrer,
      p.subject,
      p.predicateType,
      p.builderId ?? null,
      p.buildType ?? null,
      p.startedOn ?? null,
      p.finishedOn ?? null,
      JSON.stringify(p.signers),
      JSON.stringify(p.materials),
      now,
    ],
  );
  for (const m of p.materials) {
    for (const key of materialKeys(m.digest)) {
      await q.query('INSERT INTO provenance_materials (repository, referrer, material, role, name) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING', [
        p.repository,
        p.referrer,
        key,
        m.role ?? null,
        m.name ?? null,
      ]);
    }
  }
}
export async function forgetProvenanceTx(q: Queryable, repository: string, referrer: Digest): Promise<void> {
  await q.query('DELETE FROM provenance WHERE repository = $1 AND referrer = $2', [repository, referrer]);
  await q.query('DELETE FROM provenance_materials WHERE repository = $1 AND referrer = $2', [repository, referrer]);
}
export async function provenanceFor(q: Queryable, repository: string | undefined, subject: Digest): Promise<ProvenanceRecord[]> {
  const { rows } = await q.query<ProvenanceRow>(
    'SELECT * FROM provenance WHERE subject = $1 AND ($2::text IS NULL OR repository = $2) ORDER BY recorded_at, repository, referrer',
    [subject, repository ?? null],
  );
  return rows.map(toProvenance);
}
export async function consumersOf(q: Queryable, material: string): Promise<MaterialConsumer[]> {
  const i = material.indexOf(':');
  const key = i > 0 ? `${material.slice(0, i)}:${material.slice(i + 1).toLowerCase()}` : material;
  const { rows } = await q.query<{ repository: string; subject: string; referrer: string; role: string | null; name: string | null }>(
    `SELECT m.repository, p.subject, m.referrer, m.role, m.name FROM provenance_materials m
     JOIN provenance p ON p.repository = m.repository AND p.referrer = m.referrer
     WHERE m.material = $1 ORDER BY m.repository, p.subject COLLATE "C", m.referrer`,
    [key],
  );
  return rows.map((r) => ({ repository: r.repository, subject: r.subject as Digest, referrer: r.referrer as Digest, role: r.role ?? undefined, name: r.name ?? undefined }));
}

// --- locating content ---
export async function repositoriesOf(q: Queryable, digest: Digest): Promise<string[]> {
  return (await q.query<{ repository: string }>('SELECT repository FROM manifests WHERE digest = $1 ORDER BY repository', [digest])).rows.map((r) => r.repository);
}
export async function manifestsContaining(q: Queryable, digest: Digest): Promise<{ repository: string; digest: Digest }[]> {
  const { rows } = await q.query<{ repository: string; manifest: Digest }>('SELECT repository, manifest FROM manifest_refs WHERE ref = $1 ORDER BY repository, manifest LIMIT 1000', [digest]);
  return rows.map((r) => ({ repository: r.repository, digest: r.manifest }));
}
export async function tagMovesOf(q: Queryable, repository: string, digest: Digest): Promise<TagMove[]> {
  const { rows } = await q.query<HistoryRow>('SELECT * FROM tag_history WHERE repository = $1 AND (to_digest = $2 OR from_digest = $2) ORDER BY id DESC', [repository, digest]);
  return rows.map(toMove);
}

