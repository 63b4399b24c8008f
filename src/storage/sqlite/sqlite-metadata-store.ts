import { rm } from 'node:fs/promises';
import Database from 'better-sqlite3';
import { err, type Descriptor, type Digest } from '../../oci/index.js';
import { prefixEnd, pushAuditEntry, toMove, toRecord, type HistoryRow, type ManifestRow } from '../rows.js';
import type { BlobInfo } from '../blob-store.js';
import type { Actor, BlobLink, BlobLinkKey, ManifestKey, ManifestPull, ManifestRecord, MetadataStore, MoveTagOptions, NewManifest, Page, TagMove } from '../metadata-store.js';
import type { AuditEntry, AuditInput, AuditQuery, MaterialConsumer, NewProvenance, PinRecord, ProvenanceRecord, QuarantineRecord, QuarantineSnapshot } from '../ops-store.js';
import { SqliteOpsTables } from './sqlite-ops.js';
import { SqliteScan } from './sqlite-scan.js';
import type { ContentScan, TagEntry, TagKey } from '../content-scan.js';
import type { MetadataSnapshot } from '../snapshot.js';
import { SqlInventory } from '../inventory-sql.js';
import type { Inventory, InventorySource } from '../inventory.js';
import type { VerdictStore } from '../verdict-store.js';
import { SQLITE_MIGRATIONS } from './sqlite-schema.js';
import { SqliteFillLease, SqliteLeases, SqliteNotifier } from './sqlite-coordination.js';
import { fullDiskError } from '../storage-errors.js';

/** Which manifests (`m`) retention may delete: see `ManifestIndex.expiredUntaggedManifests`. Named parameter: @before. */
const EXPIRED_UNTAGGED = `
  NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository = m.repository AND t.digest = m.digest)
  AND max(m.created_at, coalesce((SELECT max(h.at) FROM tag_history h WHERE h.repository = m.repository AND h.from_digest = m.digest), 0)) < @before
  AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.repository = m.repository AND r.ref = m.digest)
  AND (m.subject IS NULL OR NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository = m.repository AND s.digest = m.subject))
  AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.digest = m.digest)
  AND NOT EXISTS (SELECT 1 FROM pins p WHERE p.repository = m.repository AND p.digest = m.digest)`;

/** Which cached manifests (`m`) eviction may delete: see `PullLog.unpulledManifests`. Named parameter: @before. */
const UNPULLED = `
  max(m.created_at, coalesce((SELECT p.at FROM manifest_pulls p WHERE p.repository = m.repository AND p.digest = m.digest), 0)) < @before
  AND m.subject IS NULL
  AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.repository = m.repository AND r.ref = m.digest)
  AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.digest = m.digest)
  AND NOT EXISTS (SELECT 1 FROM pins p WHERE p.repository = m.repository AND p.digest = m.digest)`;

/**
 * The embedded metadata store: one SQLite file in WAL mode. better-sqlite3 is
 * synchronous; each method runs one statement or one transaction, so the async
 * interface costs a microtask and nothing else.
 */
export class SqliteMetadataStore implements MetadataStore, VerdictStore, QuarantineSnapshot, ContentScan, MetadataSnapshot, InventorySource {
  private readonly db: Database.Database;
  private readonly stmt;
  private readonly ops: SqliteOpsTables;
  private readonly scan: SqliteScan;
  /** The operator console's paged, filtered queries (the statement texts are few: each is prepared once). */
  readonly inventory: Inventory;

  /** Set when worker processes share the database: cross-process leases (blob link/delete exclusion). */
  private readonly leases: SqliteLeases | undefined;

  /**
   * `shared`: other processes (`customs serve --workers N`) use the same file. SQLite then
   * serialises their writes (WAL, one writer at a time, each waiting up to busy_timeout), the
   * in-memory quarantine set is re-read when another process wrote, and a blob's link and the
   * deletion of its bytes exclude each other across processes through a lease row.
   */
  constructor(file: string, o: { shared?: boolean } = {}) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL'); // WAL + NORMAL: durable across process crashes, the case we test
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db);
    let othersWrote = (): boolean => false;
    if (o.shared) {
      const version = this.db.prepare('PRAGMA data_version').pluck();
      let seen = version.get();
      othersWrote = () => {
        const v = version.get();
        if (v === seen) return false;
        seen = v;
        return true;
      };
      this.leases = new SqliteLeases(this.db);
    }
    this.ops = new SqliteOpsTables(this.db, othersWrote);
    this.scan = new SqliteScan(this.db);
    const prepared = new Map<string, Database.Statement>();
    this.inventory = new SqlInventory({ name: 'sqlite' }, async ({ text, params }) => {
      let st = prepared.get(text);
      if (!st) prepared.set(text, (st = this.db.prepare(text)));
      return st.all(...params) as Record<string, unknown>[];
    });
    const p = <T extends unknown[] = unknown[]>(sql: string) => this.db.prepare<T>(sql);
    this.stmt = {
      addRepo: p('INSERT OR IGNORE INTO repositories (name, created_at) VALUES (?, ?)'),
      link: p('INSERT OR IGNORE INTO blob_links (repository, digest, size, created_at) VALUES (?, ?, ?, ?)'),
      linked: p('SELECT size FROM blob_links WHERE repository = ? AND digest = ?'),
      unlink: p('DELETE FROM blob_links WHERE repository = ? AND digest = ?'),
      linkCount: p('SELECT COUNT(*) AS n FROM blob_links WHERE digest = ?'),
      unreferenced: p(`SELECT repository, digest, size FROM blob_links l
                       WHERE created_at < ? AND (repository > ? OR (repository = ? AND digest > ?))
                         AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.repository = l.repository AND r.ref = l.digest)
                       ORDER BY repository, digest LIMIT ?`),
      unlinkUnreferenced: p(`DELETE FROM blob_links WHERE repository = ? AND digest = ? AND created_at < ?
                               AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.repository = blob_links.repository AND r.ref = blob_links.digest)`),
      putManifest: p(`INSERT OR IGNORE INTO manifests (repository, digest, media_type, artifact_type, size, subject, annotations, bytes, created_at)
                      VALUES (@repository, @digest, @media_type, @artifact_type, @size, @subject, @annotations, @bytes, @created_at)`),
      putRef: p('INSERT OR IGNORE INTO manifest_refs (repository, manifest, ref) VALUES (?, ?, ?)'),
      getManifest: p('SELECT * FROM manifests WHERE repository = ? AND digest = ?'),
      refsOf: p('SELECT ref FROM manifest_refs WHERE repository = ? AND manifest = ?'),
      delManifest: p('DELETE FROM manifests WHERE repository = ? AND digest = ?'),
      delRefs: p('DELETE FROM manifest_refs WHERE repository = ? AND manifest = ?'),
      referencing: p('SELECT manifest FROM manifest_refs WHERE repository = ? AND ref = ? ORDER BY manifest'),
      expiredUntagged: p(`SELECT repository, digest FROM manifests m
                          WHERE (repository > @repo OR (repository = @repo AND digest > @digest)) AND ${EXPIRED_UNTAGGED}
                          ORDER BY repository, digest LIMIT @limit`),
      isExpiredUntagged: p(`SELECT 1 FROM manifests m WHERE repository = @repo AND digest = @digest AND ${EXPIRED_UNTAGGED}`),
      recordPull: p(`INSERT INTO manifest_pulls (repository, digest, at) VALUES (?, ?, ?)
                     ON CONFLICT (repository, digest) DO UPDATE SET at = max(at, excluded.at)`),
      unpulled: p(`SELECT repository, digest FROM manifests m
                   WHERE repository >= @prefix AND repository < @end AND (repository > @repo OR (repository = @repo AND digest > @digest)) AND ${UNPULLED}
                   ORDER BY repository, digest LIMIT @limit`),
      isUnpulled: p(`SELECT 1 FROM manifests m WHERE repository = @repo AND digest = @digest AND ${UNPULLED}`),
      delPull: p('DELETE FROM manifest_pulls WHERE repository = ? AND digest = ?'),
      resolveTag: p('SELECT digest FROM tags WHERE repository = ? AND tag = ?'),
      setTag: p(`INSERT INTO tags (repository, tag, digest, updated_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`),
      delTag: p('DELETE FROM tags WHERE repository = ? AND tag = ?'),
      tagsOf: p('SELECT tag FROM tags WHERE repository = ? AND digest = ? ORDER BY tag'),
      listTags: p('SELECT tag FROM tags WHERE repository = ? AND tag > ? ORDER BY tag LIMIT ?'),
      history: p('INSERT INTO tag_history (repository, tag, from_digest, to_digest, actor, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      tagHistory: p('SELECT * FROM tag_history WHERE repository = ? AND tag = ? ORDER BY id DESC'),
      referrers: p(`SELECT digest, media_type, artifact_type, size, annotations FROM manifests
                    WHERE repository = ? AND subject = ? ORDER BY created_at, digest`),
      listRepos: p('SELECT name FROM repositories r WHERE name > ? AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository = r.name) ORDER BY name LIMIT ?'),
      repoExists: p('SELECT 1 FROM repositories WHERE name = ?'),
    };
  }

  async ready(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  /**
   * SQLite's online backup API, all pages in one step: one read transaction, hence a consistent
   * snapshot, while writers go on (WAL). In steps, a write from another process would restart it.
   */
  async snapshotTo(file: string): Promise<void> {
    await rm(file, { force: true });
    await this.db.backup(file, { progress: () => 0x7fffffff });
  }

  // --- content scan (scrub, fsck, backup) ---
  manifestPage(limit: number, after?: ManifestKey): Promise<ManifestRecord[]> {
    return this.scan.manifestPage(limit, after);
  }
  blobLinkPage(limit: number, after?: BlobLinkKey): Promise<BlobLink[]> {
    return this.scan.blobLinkPage(limit, after);
  }
  tagPage(limit: number, after?: TagKey): Promise<TagEntry[]> {
    return this.scan.tagPage(limit, after);
  }
  linkingRepositories(digest: Digest): Promise<string[]> {
    return this.scan.linkingRepositories(digest);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  /** Runs `fn` in a write transaction (BEGIN IMMEDIATE: no upgrade deadlocks between writers). */
  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (e) {
      throw fullDiskError(e, 'metadata write'); // SQLITE_FULL: rolled back, reads go on
    }
  }

  // --- blob links ---
  async linkBlob(repository: string, blob: BlobInfo): Promise<void> {
    this.transaction(() => {
      this.stmt.addRepo.run(repository, Date.now());
      this.stmt.link.run(repository, blob.digest, blob.size, Date.now());
    });
  }
  async linkedBlob(repository: string, digest: Digest): Promise<BlobInfo | undefined> {
    const row = this.stmt.linked.get(repository, digest) as { size: number } | undefined;
    return row ? { digest, size: row.size } : undefined;
  }
  async unlinkBlob(repository: string, digest: Digest): Promise<boolean> {
    return this.stmt.unlink.run(repository, digest).changes > 0;
  }
  async blobLinkCount(digest: Digest): Promise<number> {
    return (this.stmt.linkCount.get(digest) as { n: number }).n;
  }
  // One process owns a SQLite file: the caller's in-process lock per digest (BlobService) is the exclusion.
  async linkBlobIf(repository: string, blob: BlobInfo, present: () => Promise<boolean>): Promise<boolean> {
    return this.blobExclusive(blob.digest, async () => {
      if (!(await present())) return false;
      await this.linkBlob(repository, blob);
      return true;
    });
  }
  async deleteIfUnlinked(digest: Digest, remove: () => Promise<boolean>): Promise<boolean> {
    return this.blobExclusive(digest, async () => (await this.blobLinkCount(digest)) === 0 && remove());
  }
  /** One process: the caller's in-process lock is the exclusion. Shared: a lease row too. */
  private blobExclusive<T>(digest: Digest, fn: () => Promise<T>): Promise<T> {
    return this.leases ? this.leases.exclusive(`blob:${digest}`, fn) : fn();
  }

  /** The coordination objects of worker processes sharing this database (opened with `shared`). */
  coordination(): { fillLease: SqliteFillLease; notifier: SqliteNotifier } {
    if (!this.leases) throw new Error('coordination needs a store opened with shared: true');
    return (this.coordinated ??= { fillLease: new SqliteFillLease(this.leases), notifier: new SqliteNotifier(this.db) });
  }
  private coordinated: { fillLease: SqliteFillLease; notifier: SqliteNotifier } | undefined;
  async unreferencedBlobLinks(before: number, limit: number, after?: BlobLinkKey): Promise<BlobLink[]> {
    const [repo, digest] = after ? [after.repository, after.digest] : ['', ''];
    return this.stmt.unreferenced.all(before, repo, repo, digest, limit) as BlobLink[];
  }
  async unlinkUnreferenced(repository: string, digest: Digest, before: number): Promise<boolean> {
    // One statement: SQLite serialises it with putManifest's transaction, which re-checks its links.
    return this.stmt.unlinkUnreferenced.run(repository, digest, before).changes > 0;
  }

  // --- manifests ---
  async putManifest(m: NewManifest, tag: string | undefined, by: Actor): Promise<TagMove | undefined> {
    const now = Date.now();
    return this.transaction(() => {
      for (const d of m.requireLinked ?? []) {
        if (!this.stmt.linked.get(m.repository, d)) throw err('MANIFEST_BLOB_UNKNOWN', `blob unknown to registry: ${d}`, { digest: d });
      }
      for (const d of m.requireManifests ?? []) {
        if (!this.stmt.getManifest.get(m.repository, d)) throw err('MANIFEST_BLOB_UNKNOWN', `manifest unknown to registry: ${d}`, { digest: d });
      }
      this.stmt.addRepo.run(m.repository, now);
      const inserted = this.stmt.putManifest.run({
        repository: m.repository,
        digest: m.digest,
        media_type: m.mediaType,
        artifact_type: m.artifactType ?? null,
        size: m.size,
        subject: m.subject ?? null,
        annotations: m.annotations ? JSON.stringify(m.annotations) : null,
        bytes: m.bytes,
        created_at: now,
      }).changes;
      if (inserted) for (const ref of new Set(m.references)) this.stmt.putRef.run(m.repository, m.digest, ref);
      let move: TagMove | undefined;
      if (tag !== undefined) {
        const from = this.currentTag(m.repository, tag);
        // The invariant lives here, inside the transaction: no push or upstream refresh moves a pinned tag.
        if (from !== m.digest) this.ops.assertUnpinned(m.repository, tag, `moving it to ${m.digest}`);
        move = this.moveTagTx(m.repository, tag, m.digest, by, now);
      }
      if (inserted || move) {
        this.ops.appendAuditTx(pushAuditEntry(m, tag, move, by), now);
      }
      return move;
    });
  }

  private currentTag(repository: string, tag: string): Digest | undefined {
    return (this.stmt.resolveTag.get(repository, tag) as { digest: Digest } | undefined)?.digest;
  }

  private moveTagTx(repository: string, tag: string, to: Digest, by: Actor, now: number): TagMove | undefined {
    const from = this.currentTag(repository, tag);
    if (from === to) return undefined;
    this.stmt.setTag.run(repository, tag, to, now);
    this.stmt.history.run(repository, tag, from ?? null, to, by.actor, by.reason ?? null, now);
    return { repository, tag, from, to, actor: by.actor, reason: by.reason, at: now };
  }

  async getManifest(repository: string, digest: Digest): Promise<ManifestRecord | undefined> {
    const row = this.stmt.getManifest.get(repository, digest) as ManifestRow | undefined;
    if (!row) return undefined;
    const refs = (this.stmt.refsOf.all(repository, digest) as { ref: Digest }[]).map((r) => r.ref);
    return toRecord(row, refs);
  }

  async deleteManifest(repository: string, digest: Digest, by: Actor): Promise<{ deleted: boolean; untagged: TagMove[] }> {
    const now = Date.now();
    return this.transaction(() => {
      if (!this.stmt.getManifest.get(repository, digest)) return { deleted: false, untagged: [] };
      this.ops.assertNoPinnedTags(repository, digest);
      return this.deleteTaggedTx(repository, digest, by, now);
    });
  }

  private deleteTaggedTx(repository: string, digest: Digest, by: Actor, now: number): { deleted: boolean; untagged: TagMove[] } {
    const untagged: TagMove[] = [];
    for (const { tag } of this.stmt.tagsOf.all(repository, digest) as { tag: string }[]) {
      this.stmt.delTag.run(repository, tag);
      this.stmt.history.run(repository, tag, digest, null, by.actor, by.reason ?? null, now);
      untagged.push({ repository, tag, from: digest, to: undefined, actor: by.actor, reason: by.reason, at: now });
    }
    return { deleted: this.deleteManifestTx(repository, digest, untagged, by, now), untagged };
  }

  // --- pulls (cache eviction) ---
  async recordPulls(pulls: readonly ManifestPull[]): Promise<void> {
    this.transaction(() => {
      for (const p of pulls) this.stmt.recordPull.run(p.repository, p.digest, p.at);
    });
  }

  async unpulledManifests(prefix: string, before: number, limit: number, after?: ManifestKey): Promise<ManifestKey[]> {
    return this.stmt.unpulled.all({ prefix, end: prefixEnd(prefix), before, limit, repo: after?.repository ?? '', digest: after?.digest ?? '' }) as ManifestKey[];
  }

  async deleteUnpulled(repository: string, digest: Digest, before: number, by: Actor): Promise<{ deleted: boolean; untagged: TagMove[] }> {
    const now = Date.now();
    return this.transaction(() => (this.stmt.isUnpulled.get({ before, repo: repository, digest }) ? this.deleteTaggedTx(repository, digest, by, now) : { deleted: false, untagged: [] }));
  }

  async expiredUntaggedManifests(before: number, limit: number, after?: ManifestKey): Promise<ManifestKey[]> {
    return this.stmt.expiredUntagged.all({ before, limit, repo: after?.repository ?? '', digest: after?.digest ?? '' }) as ManifestKey[];
  }

  async deleteExpiredUntagged(repository: string, digest: Digest, before: number, by: Actor): Promise<boolean> {
    const now = Date.now();
    return this.transaction(() => !!this.stmt.isExpiredUntagged.get({ before, repo: repository, digest }) && this.deleteManifestTx(repository, digest, [], by, now));
  }

  /** The manifest's row, its references and provenance, and the audit entry; tags are the caller's. */
  private deleteManifestTx(repository: string, digest: Digest, untagged: readonly TagMove[], by: Actor, now: number): boolean {
    const deleted = this.stmt.delManifest.run(repository, digest).changes > 0;
    this.stmt.delRefs.run(repository, digest);
    this.stmt.delPull.run(repository, digest);
    this.ops.forgetProvenanceTx(repository, digest);
    this.ops.appendAuditTx(
      { actor: by.actor, action: 'delete', repository, target: `${repository}@${digest}`, reason: by.reason, detail: { digest, untagged: untagged.map((u) => u.tag) } },
      now,
    );
    return deleted;
  }

  async manifestsReferencing(repository: string, digest: Digest): Promise<Digest[]> {
    return (this.stmt.referencing.all(repository, digest) as { manifest: Digest }[]).map((r) => r.manifest);
  }

  // --- tags ---
  async resolveTag(repository: string, tag: string): Promise<Digest | undefined> {
    return (this.stmt.resolveTag.get(repository, tag) as { digest: Digest } | undefined)?.digest;
  }
  async listTags(repository: string, page: Page = {}): Promise<string[]> {
    return (this.stmt.listTags.all(repository, page.last ?? '', page.n ?? -1) as { tag: string }[]).map((r) => r.tag);
  }
  async moveTag(repository: string, tag: string, to: Digest, by: Actor, options: MoveTagOptions = {}): Promise<TagMove | undefined> {
    const now = Date.now();
    return this.transaction(() => {
      if (!this.stmt.getManifest.get(repository, to)) throw err('MANIFEST_UNKNOWN', `manifest ${to} unknown in ${repository}`);
      if (!options.override) this.ops.assertUnpinned(repository, tag, `moving it to ${to}`);
      const move = this.moveTagTx(repository, tag, to, by, now);
      if (move) {
        this.ops.followPinTx(repository, tag, to);
        this.ops.auditMoveTx(options.action ?? 'tag.move', move, now, options.pin ? { pinned: true } : {});
      }
      if (options.pin) {
        this.ops.setPinTx(repository, tag, to, by, now);
        if (!move) this.ops.appendAuditTx({ actor: by.actor, action: 'pin', repository, target: `${repository}:${tag}`, reason: by.reason, detail: { tag, digest: to } }, now);
      }
      return move;
    });
  }
  async deleteTag(repository: string, tag: string, by: Actor): Promise<TagMove | undefined> {
    const now = Date.now();
    return this.transaction(() => {
      const from = (this.stmt.resolveTag.get(repository, tag) as { digest: Digest } | undefined)?.digest;
      if (!from) return undefined;
      this.ops.assertUnpinned(repository, tag, 'deleting it');
      this.stmt.delTag.run(repository, tag);
      this.stmt.history.run(repository, tag, from, null, by.actor, by.reason ?? null, now);
      const move = { repository, tag, from, to: undefined, actor: by.actor, reason: by.reason, at: now };
      this.ops.auditMoveTx('tag.delete', move, now);
      return move;
    });
  }
  async tagHistory(repository: string, tag: string): Promise<TagMove[]> {
    return (this.stmt.tagHistory.all(repository, tag) as HistoryRow[]).map(toMove);
  }
  async tagsOf(repository: string, digest: Digest): Promise<string[]> {
    return (this.stmt.tagsOf.all(repository, digest) as { tag: string }[]).map((r) => r.tag);
  }

  // --- referrers, catalog ---
  async listReferrers(repository: string, subject: Digest): Promise<Descriptor[]> {
    const rows = this.stmt.referrers.all(repository, subject) as Pick<ManifestRow, 'digest' | 'media_type' | 'artifact_type' | 'size' | 'annotations'>[];
    return rows.map((r) => ({
      mediaType: r.media_type,
      digest: r.digest as Digest,
      size: r.size,
      ...(r.artifact_type ? { artifactType: r.artifact_type } : {}),
      ...(r.annotations ? { annotations: JSON.parse(r.annotations) as Record<string, string> } : {}),
    }));
  }
  async listRepositories(page: Page = {}): Promise<string[]> {
    return (this.stmt.listRepos.all(page.last ?? '', page.n ?? -1) as { name: string }[]).map((r) => r.name);
  }
  async repositoryExists(repository: string): Promise<boolean> {
    return this.stmt.repoExists.get(repository) !== undefined;
  }

  // --- pins ---
  async pinTag(repository: string, tag: string, digest: Digest | undefined, by: Actor): Promise<{ pin: PinRecord; move: TagMove | undefined }> {
    const now = Date.now();
    return this.transaction(() => {
      const target = digest ?? this.currentTag(repository, tag);
      if (!target) throw err('MANIFEST_UNKNOWN', `tag ${repository}:${tag} does not exist; give the digest to pin it to`);
      if (!this.stmt.getManifest.get(repository, target)) throw err('MANIFEST_UNKNOWN', `manifest ${target} unknown in ${repository}`);
      // Pinning to another digest is an operator move: it may re-pin an already pinned tag.
      const move = this.moveTagTx(repository, tag, target, by, now);
      const pin = this.ops.setPinTx(repository, tag, target, by, now);
      this.ops.appendAuditTx({ actor: by.actor, action: 'pin', repository, target: `${repository}:${tag}`, reason: by.reason, detail: { tag, digest: target, from: move?.from } }, now);
      return { pin, move };
    });
  }
  async unpinTag(repository: string, tag: string, by: Actor): Promise<boolean> {
    const now = Date.now();
    return this.transaction(() => {
      const pin = this.ops.pinOf(repository, tag);
      if (!pin) return false;
      this.ops.deletePinTx(repository, tag);
      this.ops.appendAuditTx({ actor: by.actor, action: 'unpin', repository, target: `${repository}:${tag}`, reason: by.reason, detail: { tag, digest: pin.digest } }, now);
      return true;
    });
  }
  async getPin(repository: string, tag: string): Promise<PinRecord | undefined> {
    return this.ops.pinOf(repository, tag);
  }
  async listPins(repository?: string): Promise<PinRecord[]> {
    return this.ops.listPins(repository);
  }

  // --- quarantine ---
  async quarantine(digest: Digest, by: Actor): Promise<boolean> {
    const now = Date.now();
    return this.transaction(() => {
      if (!this.ops.quarantineTx(digest, by, now)) return false;
      this.ops.appendAuditTx({ actor: by.actor, action: 'quarantine', target: digest, reason: by.reason, detail: { digest } }, now);
      return true;
    });
  }
  async release(digest: Digest, by: Actor): Promise<boolean> {
    const now = Date.now();
    return this.transaction(() => {
      if (!this.ops.releaseTx(digest)) return false;
      this.ops.appendAuditTx({ actor: by.actor, action: 'release', target: digest, reason: by.reason, detail: { digest } }, now);
      return true;
    });
  }
  async quarantinedAmong(digests: readonly Digest[]): Promise<Digest[]> {
    return this.ops.quarantinedAmong(digests);
  }
  quarantinedAmongNow(digests: readonly Digest[]): Digest[] {
    return this.ops.quarantinedAmong(digests);
  }
  async listQuarantine(): Promise<QuarantineRecord[]> {
    return this.ops.listQuarantine();
  }

  // --- verdicts ---
  async loadVerdict(key: string): Promise<string | undefined> {
    return (this.db.prepare('SELECT json FROM verdicts WHERE key = ?').get(key) as { json: string } | undefined)?.json;
  }
  async saveVerdict(key: string, digest: string, json: string): Promise<void> {
    this.db.prepare('INSERT OR REPLACE INTO verdicts (key, digest, json, at) VALUES (?, ?, ?, ?)').run(key, digest, json, Date.now());
  }
  async deleteVerdicts(digest: string): Promise<void> {
    this.db.prepare('DELETE FROM verdicts WHERE digest = ?').run(digest);
  }
  async deleteAllVerdicts(): Promise<void> {
    this.db.prepare('DELETE FROM verdicts').run();
  }

  // --- audit ---
  async appendAudit(entry: AuditInput): Promise<AuditEntry> {
    return this.transaction(() => this.ops.appendAuditTx(entry, Date.now()));
  }
  async listAudit(query: AuditQuery = {}): Promise<AuditEntry[]> {
    return this.ops.listAudit(query);
  }

  // --- lineage, locating content ---
  async recordProvenance(p: NewProvenance): Promise<void> {
    this.transaction(() => this.ops.recordProvenanceTx(p, Date.now()));
  }
  async provenanceFor(repository: string | undefined, subject: Digest): Promise<ProvenanceRecord[]> {
    return this.ops.provenanceFor(repository, subject);
  }
  async consumersOf(material: string): Promise<MaterialConsumer[]> {
    return this.ops.consumersOf(material);
  }
  async repositoriesOf(digest: Digest): Promise<string[]> {
    return this.ops.repositoriesOf(digest);
  }
  async manifestsContaining(digest: Digest): Promise<{ repository: string; digest: Digest }[]> {
    return this.ops.manifestsContaining(digest);
  }
  async tagMovesOf(repository: string, digest: Digest): Promise<TagMove[]> {
    return this.ops.tagMovesOf(repository, digest);
  }
}

function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
  const current = (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
  if (current > SQLITE_MIGRATIONS.length) {
    throw new Error(`metadata database is at schema version ${current}, newer than this customs (${SQLITE_MIGRATIONS.length})`);
  }
  for (let v = current + 1; v <= SQLITE_MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(SQLITE_MIGRATIONS[v - 1]!);
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(v, Date.now());
    }).immediate();
  }
}
