import type Database from 'better-sqlite3';
import { err, type Digest } from '../../oci/index.js';
import { toAudit, toMove, toPin, toProvenance, type HistoryRow, type AuditRow, type PinRow, type ProvenanceRow } from '../rows.js';
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

/**
 * The operator tables of the SQLite store (pins, quarantine, audit, lineage).
 * Methods ending in `Tx` run inside the caller's transaction, so a tag move and
 * its audit entry commit together; the store wraps the rest.
 */
export class SqliteOpsTables {
  private readonly stmt;
  /**
   * The quarantined digests, read once and dropped whenever this store writes the
   * table, and, when worker processes share the database, whenever `othersWrote()`
   * says another connection committed anything: the gate asks on every pull, and a
   * Set lookup is much cheaper than a query.
   */
  private quarantined: Set<Digest> | undefined;

  constructor(
    private readonly db: Database.Database,
    private readonly othersWrote: () => boolean = () => false,
  ) {
    const p = <T extends unknown[] = unknown[]>(sql: string) => db.prepare<T>(sql);
    this.stmt = {
      auditHead: p('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1'),
      auditInsert: p(`INSERT INTO audit_log (seq, at, actor, action, repository, target, reason, detail, prev_hash, hash)
                      VALUES (@seq, @at, @actor, @action, @repository, @target, @reason, @detail, @prevHash, @hash)`),
      auditList: p('SELECT * FROM audit_log WHERE seq > ? AND at >= ? ORDER BY seq LIMIT ?'),
      getPin: p('SELECT * FROM pins WHERE repository = ? AND tag = ?'),
      pinsOfDigest: p('SELECT tag FROM pins WHERE repository = ? AND tag IN (SELECT tag FROM tags WHERE repository = ? AND digest = ?)'),
      setPin: p(`INSERT INTO pins (repository, tag, digest, actor, reason, at) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, actor = excluded.actor, reason = excluded.reason, at = excluded.at`),
      followPin: p('UPDATE pins SET digest = ? WHERE repository = ? AND tag = ?'),
      delPin: p('DELETE FROM pins WHERE repository = ? AND tag = ?'),
      listPins: p('SELECT * FROM pins ORDER BY repository, tag'),
      listPinsOf: p('SELECT * FROM pins WHERE repository = ? ORDER BY tag'),
      addQuarantine: p('INSERT OR IGNORE INTO quarantine (digest, actor, reason, at) VALUES (?, ?, ?, ?)'),
      delQuarantine: p('DELETE FROM quarantine WHERE digest = ?'),
      // One statement for any number of digests (a blob's owners can be many).
      isQuarantined: p('SELECT 1 FROM quarantine WHERE digest = ?'),
      allQuarantined: p('SELECT digest FROM quarantine'),
      quarantinedAmong: p('SELECT digest FROM quarantine WHERE digest IN (SELECT value FROM json_each(?))'),
      listQuarantine: p('SELECT * FROM quarantine ORDER BY at, digest'),
      delProvenance: p('DELETE FROM provenance WHERE repository = ? AND referrer = ?'),
      delMaterials: p('DELETE FROM provenance_materials WHERE repository = ? AND referrer = ?'),
      addProvenance: p(`INSERT INTO provenance (repository, referrer, subject, predicate_type, builder_id, build_type, started_on, finished_on, signers, materials, recorded_at)
                        VALUES (@repository, @referrer, @subject, @predicate_type, @builder_id, @build_type, @started_on, @finished_on, @signers, @materials, @recorded_at)`),
      addMaterial: p('INSERT OR IGNORE INTO provenance_materials (repository, referrer, material, role, name) VALUES (?, ?, ?, ?, ?)'),
      provenanceFor: p('SELECT * FROM provenance WHERE subject = ? AND (? IS NULL OR repository = ?) ORDER BY recorded_at, repository, referrer'),
      consumers: p(`SELECT m.repository, p.subject, m.referrer, m.role, m.name FROM provenance_materials m
                    JOIN provenance p ON p.repository = m.repository AND p.referrer = m.referrer
                    WHERE m.material = ? ORDER BY m.repository, p.subject, m.referrer`),
      repositoriesOf: p('SELECT repository FROM manifests WHERE digest = ? ORDER BY repository'),
      containing: p('SELECT repository, manifest FROM manifest_refs WHERE ref = ? ORDER BY repository, manifest LIMIT 1000'),
      movesOf: p('SELECT * FROM tag_history WHERE repository = ? AND (to_digest = ? OR from_digest = ?) ORDER BY id DESC'),
    };
  }

  // --- audit ---
  appendAuditTx(input: AuditInput, now: number): AuditEntry {
    const head = this.stmt.auditHead.get() as { seq: number; hash: string } | undefined;
    const e = chainEntry(head, input, now);
    this.stmt.auditInsert.run({
      seq: e.seq,
      at: e.at,
      actor: e.actor,
      action: e.action,
      repository: e.repository ?? null,
      target: e.target ?? null,
      reason: e.reason ?? null,
      detail: e.detail ? JSON.stringify(e.detail) : null,
      prevHash: e.prevHash,
      hash: e.hash,
    });
    return e;
  }

  listAudit(q: AuditQuery): AuditEntry[] {
    return (this.stmt.auditList.all(q.afterSeq ?? 0, q.since ?? 0, q.limit ?? -1) as AuditRow[]).map(toAudit);
  }

  /** Every tag move writes its audit entry with it. */
  auditMoveTx(action: string, move: TagMove, now: number, extra: Record<string, unknown> = {}): void {
    this.appendAuditTx(
      {
        actor: move.actor,
        action,
        repository: move.repository,
        target: `${move.repository}:${move.tag}`,
        reason: move.reason,
        detail: { tag: move.tag, from: move.from, to: move.to, ...extra },
      },
      now,
    );
  }

  // --- pins ---
  pinOf(repository: string, tag: string): PinRecord | undefined {
    const row = this.stmt.getPin.get(repository, tag) as PinRow | undefined;
    return row ? toPin(row) : undefined;
  }

  /** Throws DENIED when the tag is pinned (checked inside the moving transaction). */
  assertUnpinned(repository: string, tag: string, what: string): void {
    const pin = this.pinOf(repository, tag);
    if (pin) {
      throw err('DENIED', `tag ${repository}:${tag} is pinned to ${pin.digest} by ${pin.actor}${pin.reason ? ` (${pin.reason})` : ''}: ${what} refused; unpin it first`, {
        pinned: { repository, tag, digest: pin.digest, actor: pin.actor, reason: pin.reason },
      });
    }
  }

  /** Throws DENIED when deleting `digest` would move a pinned tag. */
  assertNoPinnedTags(repository: string, digest: Digest): void {
    const row = this.stmt.pinsOfDigest.get(repository, repository, digest) as { tag: string } | undefined;
    if (row) this.assertUnpinned(repository, row.tag, `deleting ${digest}`);
  }

  setPinTx(repository: string, tag: string, digest: Digest, by: Actor, now: number): PinRecord {
    this.stmt.setPin.run(repository, tag, digest, by.actor, by.reason ?? null, now);
    return { repository, tag, digest, actor: by.actor, reason: by.reason, at: now };
  }

  /** An operator move of a pinned tag carries the pin along. */
  followPinTx(repository: string, tag: string, digest: Digest): void {
    this.stmt.followPin.run(digest, repository, tag);
  }

  deletePinTx(repository: string, tag: string): boolean {
    return this.stmt.delPin.run(repository, tag).changes > 0;
  }

  listPins(repository?: string): PinRecord[] {
    const rows = (repository === undefined ? this.stmt.listPins.all() : this.stmt.listPinsOf.all(repository)) as PinRow[];
    return rows.map(toPin);
  }

  // --- quarantine ---
  quarantineTx(digest: Digest, by: Actor, now: number): boolean {
    this.quarantined = undefined;
    return this.stmt.addQuarantine.run(digest, by.actor, by.reason ?? null, now).changes > 0;
  }
  releaseTx(digest: Digest): boolean {
    this.quarantined = undefined;
    return this.stmt.delQuarantine.run(digest).changes > 0;
  }
  quarantinedAmong(digests: readonly Digest[]): Digest[] {
    if (digests.length === 0) return [];
    // Inside a transaction the table may hold writes that could still roll back: ask it, and cache nothing.
    if (!this.db.inTransaction) {
      if (this.othersWrote()) this.quarantined = undefined;
      const q = (this.quarantined ??= new Set((this.stmt.allQuarantined.all() as { digest: Digest }[]).map((r) => r.digest)));
      // Nothing quarantined among them is the common answer: no array or set made for it.
      let hits: Digest[] | undefined;
      for (const d of digests) if (q.has(d) && !hits?.includes(d)) (hits ??= []).push(d);
      return hits ?? [];
    }
    if (digests.length === 1) return this.stmt.isQuarantined.get(digests[0]) ? [digests[0]!] : [];
    const hit = new Set((this.stmt.quarantinedAmong.all(JSON.stringify(digests)) as { digest: Digest }[]).map((r) => r.digest));
    return [...new Set(digests)].filter((d) => hit.has(d));
  }
  listQuarantine(): QuarantineRecord[] {
    return (this.stmt.listQuarantine.all() as { digest: string; actor: string; reason: string | null; at: number }[]).map((r) => ({
      digest: r.digest as Digest,
      actor: r.actor,
      reason: r.reason ?? undefined,
      at: r.at,
    }));
  }

  // --- lineage ---
  recordProvenanceTx(p: NewProvenance, now: number): void {
    this.forgetProvenanceTx(p.repository, p.referrer);
    this.stmt.addProvenance.run({
      repository: p.repository,
      referrer: p.referrer,
      subject: p.subject,
      predicate_type: p.predicateType,
      builder_id: p.builderId ?? null,
      build_type: p.buildType ?? null,
      started_on: p.startedOn ?? null,
      finished_on: p.finishedOn ?? null,
      signers: JSON.stringify(p.signers),
      materials: JSON.stringify(p.materials),
      recorded_at: now,
    });
    for (const m of p.materials) for (const key of materialKeys(m.digest)) this.stmt.addMaterial.run(p.repository, p.referrer, key, m.role ?? null, m.name ?? null);
  }
  forgetProvenanceTx(repository: string, referrer: Digest): void {
    this.stmt.delProvenance.run(repository, referrer);
    this.stmt.delMaterials.run(repository, referrer);
  }
  provenanceFor(repository: string | undefined, subject: Digest): ProvenanceRecord[] {
    return (this.stmt.provenanceFor.all(subject, repository ?? null, repository ?? null) as ProvenanceRow[]).map(toProvenance);
  }
  consumersOf(material: string): MaterialConsumer[] {
    const i = material.indexOf(':');
    const key = i > 0 ? `${material.slice(0, i)}:${material.slice(i + 1).toLowerCase()}` : material;
    return (this.stmt.consumers.all(key) as { repository: string; subject: string; referrer: string; role: string | null; name: string | null }[]).map((r) => ({
      repository: r.repository,
      subject: r.subject as Digest,
      referrer: r.referrer as Digest,
      role: r.role ?? undefined,
      name: r.name ?? undefined,
    }));
  }

  // --- locating content ---
  repositoriesOf(digest: Digest): string[] {
    return (this.stmt.repositoriesOf.all(digest) as { repository: string }[]).map((r) => r.repository);
  }
  manifestsContaining(digest: Digest): { repository: string; digest: Digest }[] {
    return (this.stmt.containing.all(digest) as { repository: string; manifest: Digest }[]).map((r) => ({ repository: r.repository, digest: r.manifest }));
  }
  tagMovesOf(repository: string, digest: Digest): TagMove[] {
    return (this.stmt.movesOf.all(repository, digest, digest) as HistoryRow[]).map(toMove);
  }
}

