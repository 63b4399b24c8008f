import type pg from 'pg';
import { err, type Descriptor, type Digest } from '../../oci/index.js';
import { prefixEnd, pushAuditEntry, toRecord, type ManifestRow } from '../rows.js';
import type { BlobInfo } from '../blob-store.js';
import type { Actor, BlobLink, BlobLinkKey, ManifestKey, ManifestPull, ManifestRecord, MetadataStore, MoveTagOptions, NewManifest, Page, TagMove } from '../metadata-store.js';
import type { AuditEntry, AuditInput, AuditQuery, MaterialConsumer, NewProvenance, PinRecord, ProvenanceRecord, QuarantineRecord } from '../ops-store.js';
import * as ops from './postgres-ops.js';
import { withTransaction, type Queryable } from './pg-pool.js';
import { PostgresScan } from './postgres-scan.js';
import type { ContentScan, TagEntry, TagKey } from '../content-scan.js';
import { SqlInventory } from '../inventory-sql.js';
import type { Inventory, InventorySource } from '../inventory.js';

const insertLink = (q: Queryable, repository: string, blob: BlobInfo): Promise<unknown> =>
  q.query(
    `WITH r AS (INSERT INTO repositories (name, created_at) VALUES ($1, $4) ON CONFLICT DO NOTHING)
     INSERT INTO blob_links (repository, digest, size, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
    [repository, blob.digest, blob.size, Date.now()],
  );
const linkCount = async (q: Queryable, digest: Digest): Promise<number> =>
  (await q.query<{ n: number }>('SELECT COUNT(*)::bigint AS n FROM blob_links WHERE digest = $1', [digest])).rows[0]!.n;

/** Advisory locks per digest (two-int form: a namespace of their own, and 32 bits of the digest). */
const LOCK_DIGESTS = 0x626c62; // 'blb'
const lockDigest = (q: Queryable, digest: Digest): Promise<unknown> => q.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_DIGESTS, Number.parseInt(digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 9), 16) | 0]);

/** Which manifests (`m`) retention may delete: see `ManifestIndex.expiredUntaggedManifests`. Parameter $1: before. */
const EXPIRED_UNTAGGED = `
  NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository = m.repository AND t.digest = m.digest)
  AND GREATEST(m.created_at, (SELECT max(h.at) FROM tag_history h WHERE h.repository = m.repository AND h.from_digest = m.digest)) < $1
  AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.repository = m.repository AND r.ref = m.digest)
  AND (m.subject IS NULL OR NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository = m.repository AND s.digest = m.subject))
  AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.digest = m.digest)
  AND NOT EXISTS (SELECT 1 FROM pins p WHERE p.repository = m.repository AND p.digest = m.digest)`;

/** Which cached manifests (`m`) eviction may delete: see `PullLog.unpulledManifests`. Parameter $1: before. */
const UNPULLED = `
  GREATEST(m.created_at, (SELECT p.at FROM manifest_pulls p WHERE p.repository = m.repository AND p.digest = m.digest)) < $1
  AND m.subject IS NULL
  AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.repository = m.repository AND r.ref = m.digest)
  AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.digest = m.digest)
  AND NOT EXISTS (SELECT 1 FROM pins p WHERE p.repository = m.repository AND p.digest = m.digest)`;

/**
 * The scale-out metadata store: the same contract as the SQLite store, on a
 * PostgreSQL pool shared by every replica. Each tag move, its history row and its
 * audit entry commit in one transaction; transactions that write the audit chain
 * first take its advisory lock, which also serialises tag moves cluster-wide
 * (read-modify-write of a tag needs that anyway). The pool is the caller's: see
 * `openStorage`, which migrates the schema before constructing this.
 */
export class PostgresMetadataStore implements MetadataStore, ContentScan, InventorySource {
  private readonly scan: PostgresScan;
  /** The operator console's paged, filtered queries. */
  readonly inventory: Inventory;
  constructor(readonly pool: pg.Pool) {
    this.scan = new PostgresScan(pool);
    this.inventory = new SqlInventory({ name: 'postgres' }, async ({ text, params }) => (await this.pool.query(text, params)).rows as Record<string, unknown>[]);
  }

  async ready(): Promise<void> {
    await this.pool.query('SELECT 1');
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
    // The pool belongs to openStorage, which ends it after every user is closed.
  }

  private tx<T>(fn: (q: pg.PoolClient) => Promise<T>): Promise<T> {
    return withTransaction(this.pool, fn);
  }

  /** A transaction that will append to the audit log: the audit lock comes first. */
  private auditedTx<T>(fn: (q: pg.PoolClient) => Promise<T>): Promise<T> {
    return withTransaction(this.pool, async (q) => {
      await ops.lockAudit(q);
      return fn(q);
    });
  }

  // --- blob links ---
  async linkBlob(repository: string, blob: BlobInfo): Promise<void> {
    await insertLink(this.pool, repository, blob);
  }
  async linkedBlob(repository: string, digest: Digest): Promise<BlobInfo | undefined> {
    const row = (await this.pool.query<{ size: number }>('SELECT size FROM blob_links WHERE repository = $1 AND digest = $2', [repository, digest])).rows[0];
    return row ? { digest, size: row.size } : undefined;
  }
  async unlinkBlob(repository: string, digest: Digest): Promise<boolean> {
    return ((await this.pool.query('DELETE FROM blob_links WHERE repository = $1 AND digest = $2', [repository, digest])).rowCount ?? 0) > 0;
  }
  async blobLinkCount(digest: Digest): Promise<number> {
    return linkCount(this.pool, digest);
  }
  // Replicas share the bucket: a transaction-scoped advisory lock per digest orders a link after a
  // deletion of the same bytes (it then sees them gone) or a deletion after a link (it then keeps them).
  // One connection each; `present`/`remove` talk to S3 only, never to the pool.
  async linkBlobIf(repository: string, blob: BlobInfo, present: () => Promise<boolean>): Promise<boolean> {
    return this.tx(async (q) => {
      await lockDigest(q, blob.digest);
      if (!(await present())) return false;
      await insertLink(q, repository, blob);
      return true;
    });
  }
  async deleteIfUnlinked(digest: Digest, remove: () => Promise<boolean>): Promise<boolean> {
    return this.tx(async (q) => {
      await lockDigest(q, digest);
      return (await linkCount(q, digest)) === 0 && remove();
    });
  }
  async unreferencedBlobLinks(before: number, limit: number, after?: BlobLinkKey): Promise<BlobLink[]> {
    const res = await this.pool.query<BlobLink>(
      `SELECT repository, digest, size FROM blob_links l
       WHERE created_at < $1 AND (repository, digest) > ($2, $3)
         AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.repository = l.repository AND r.ref = l.digest)
       ORDER BY repository, digest LIMIT $4`,
      [before, after?.repository ?? '', after?.digest ?? '', limit],
    );
    return res.rows.map((r) => ({ repository: r.repository, digest: r.digest, size: Number(r.size) }));
  }
  async unlinkUnreferenced(repository: string, digest: Digest, before: number): Promise<boolean> {
    // Under the audit lock, which putManifest also takes before re-checking its links: the two
    // serialise cluster-wide, and this statement's snapshot (taken after the lock) sees every
    // manifest committed before it.
    return this.auditedTx(async (q) => {
      const res = await q.query(
        `DELETE FROM blob_links b WHERE repository = $1 AND digest = $2 AND created_at < $3
           AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.repository = b.repository AND r.ref = b.digest)`,
        [repository, digest, before],
      );
      return (res.rowCount ?? 0) > 0;
    });
  }

  // --- manifests ---
  async putManifest(m: NewManifest, tag: string | undefined, by: Actor): Promise<TagMove | undefined> {
    const now = Date.now();
    return this.auditedTx(async (q) => {
      const required = [...new Set(m.requireLinked ?? [])];
      if (required.length > 0) {
        const linked = new Set((await q.query<{ digest: string }>('SELECT digest FROM blob_links WHERE repository = $1 AND digest = ANY($2::text[])', [m.repository, required])).rows.map((r) => r.digest));
        const missing = required.find((d) => !linked.has(d));
        if (missing) throw err('MANIFEST_BLOB_UNKNOWN', `blob unknown to registry: ${missing}`, { digest: missing });
      }
      const children = [...new Set(m.requireManifests ?? [])];
      if (children.length > 0) {
        const stored = new Set((await q.query<{ digest: string }>('SELECT digest FROM manifests WHERE repository = $1 AND digest = ANY($2::text[])', [m.repository, children])).rows.map((r) => r.digest));
        const missing = children.find((d) => !stored.has(d));
        if (missing) throw err('MANIFEST_BLOB_UNKNOWN', `manifest unknown to registry: ${missing}`, { digest: missing });
      }
      await q.query('INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING', [m.repository, now]);
      const inserted =
        (
          await q.query(
            `INSERT INTO manifests (repository, digest, media_type, artifact_type, size, subject, annotations, bytes, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
            [m.repository, m.digest, m.mediaType, m.artifactType ?? null, m.size, m.subject ?? null, m.annotations ? JSON.stringify(m.annotations) : null, m.bytes, now],
          )
        ).rowCount ?? 0;
      if (inserted) {
        const refs = [...new Set(m.references)];
        if (refs.length > 0) {
          await q.query('INSERT INTO manifest_refs (repository, manifest, ref) SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING', [m.repository, m.digest, refs]);
        }
      }
      let move: TagMove | undefined;
      if (tag !== undefined) {
        const from = await this.currentTag(q, m.repository, tag);
        // The invariant lives here, inside the transaction: no push or upstream refresh moves a pinned tag.
        if (from !== m.digest) await ops.assertUnpinned(q, m.repository, tag, `moving it to ${m.digest}`);
        move = await this.moveTagTx(q, m.repository, tag, m.digest, by, now);
      }
      if (inserted || move) {
        await ops.appendAuditTx(q, pushAuditEntry(m, tag, move, by), now);
      }
      return move;
    });
  }

  private async currentTag(q: Queryable, repository: string, tag: string): Promise<Digest | undefined> {
    return (await q.query<{ digest: Digest }>('SELECT digest FROM tags WHERE repository = $1 AND tag = $2', [repository, tag])).rows[0]?.digest;
  }

  private async moveTagTx(q: Queryable, repository: string, tag: string, to: Digest, by: Actor, now: number): Promise<TagMove | undefined> {
    const from = await this.currentTag(q, repository, tag);
    if (from === to) return undefined;
    await q.query(
      `INSERT INTO tags (repository, tag, digest, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
      [repository, tag, to, now],
    );
    await this.historyTx(q, repository, tag, from, to, by, now);
    return { repository, tag, from, to, actor: by.actor, reason: by.reason, at: now };
  }

  private async historyTx(q: Queryable, repository: string, tag: string, from: Digest | undefined, to: Digest | undefined, by: Actor, now: number): Promise<void> {
    await q.query('INSERT INTO tag_history (repository, tag, from_digest, to_digest, actor, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
      repository,
      tag,
      from ?? null,
      to ?? null,
      by.actor,
      by.reason ?? null,
      now,
    ]);
  }

  private async manifestExists(q: Queryable, repository: string, digest: Digest): Promise<boolean> {
    return (await q.query('SELECT 1 FROM manifests WHERE repository = $1 AND digest = $2', [repository, digest])).rows.length > 0;
  }

  async getManifest(repository: string, digest: Digest): Promise<ManifestRecord | undefined> {
    // One round trip: the manifest with its references aggregated.
    const row = (
      await this.pool.query<ManifestRow & { refs: string[] | null }>(
        `SELECT m.*, (SELECT array_agg(ref ORDER BY ref) FROM manifest_refs r WHERE r.repository = m.repository AND r.manifest = m.digest) AS refs
         FROM manifests m WHERE m.repository = $1 AND m.digest = $2`,
        [repository, digest],
      )
    ).rows[0];
    return row ? toRecord(row, (row.refs ?? []) as Digest[]) : undefined;
  }

  async deleteManifest(repository: string, digest: Digest, by: Actor): Promise<{ deleted: boolean; untagged: TagMove[] }> {
    const now = Date.now();
    return this.auditedTx(async (q) => {
      if (!(await this.manifestExists(q, repository, digest))) return { deleted: false, untagged: [] };
      await ops.assertNoPinnedTags(q, repository, digest);
      return this.deleteTaggedTx(q, repository, digest, by, now);
    });
  }

  private async deleteTaggedTx(q: pg.PoolClient, repository: string, digest: Digest, by: Actor, now: number): Promise<{ deleted: boolean; untagged: TagMove[] }> {
    const untagged: TagMove[] = [];
    const tags = (await q.query<{ tag: string }>('DELETE FROM tags WHERE repository = $1 AND digest = $2 RETURNING tag', [repository, digest])).rows.map((r) => r.tag).sort();
    for (const tag of tags) {
      await this.historyTx(q, repository, tag, digest, undefined, by, now);
      untagged.push({ repository, tag, from: digest, to: undefined, actor: by.actor, reason: by.reason, at: now });
    }
    return { deleted: await this.deleteManifestTx(q, repository, digest, untagged, by, now), untagged };
  }

  // --- pulls (cache eviction) ---
  async recordPulls(pulls: readonly ManifestPull[]): Promise<void> {
    if (pulls.length === 0) return;
    await this.pool.query(
      `INSERT INTO manifest_pulls (repository, digest, at) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
       ON CONFLICT (repository, digest) DO UPDATE SET at = GREATEST(manifest_pulls.at, excluded.at)`,
      [pulls.map((p) => p.repository), pulls.map((p) => p.digest), pulls.map((p) => p.at)],
    );
  }

  async unpulledManifests(prefix: string, before: number, limit: number, after?: ManifestKey): Promise<ManifestKey[]> {
    const { rows } = await this.pool.query<ManifestKey>(
      `SELECT repository, digest FROM manifests m
       WHERE repository >= $2 AND repository < $3 AND (repository, digest) > ($4, $5) AND ${UNPULLED}
       ORDER BY repository, digest LIMIT $6`,
      [before, prefix, prefixEnd(prefix), after?.repository ?? '', after?.digest ?? '', limit],
    );
    return rows.map((r) => ({ repository: r.repository, digest: r.digest }));
  }

  async deleteUnpulled(repository: string, digest: Digest, before: number, by: Actor): Promise<{ deleted: boolean; untagged: TagMove[] }> {
    const now = Date.now();
    // Under the audit lock, like every tag move, pin and quarantine: the check sees them all.
    return this.auditedTx(async (q) => {
      const still = (await q.query(`SELECT 1 FROM manifests m WHERE repository = $2 AND digest = $3 AND ${UNPULLED}`, [before, repository, digest])).rowCount ?? 0;
      return still > 0 ? this.deleteTaggedTx(q, repository, digest, by, now) : { deleted: false, untagged: [] };
    });
  }

  async expiredUntaggedManifests(before: number, limit: number, after?: ManifestKey): Promise<ManifestKey[]> {
    const { rows } = await this.pool.query<ManifestKey>(
      `SELECT repository, digest FROM manifests m WHERE (repository, digest) > ($2, $3) AND ${EXPIRED_UNTAGGED} ORDER BY repository, digest LIMIT $4`,
      [before, after?.repository ?? '', after?.digest ?? '', limit],
    );
    return rows.map((r) => ({ repository: r.repository, digest: r.digest }));
  }

  async deleteExpiredUntagged(repository: string, digest: Digest, before: number, by: Actor): Promise<boolean> {
    const now = Date.now();
    // Under the audit lock, which every tag move, pin and quarantine also takes: the check below sees them all.
    return this.auditedTx(async (q) => {
      const still = (await q.query(`SELECT 1 FROM manifests m WHERE repository = $2 AND digest = $3 AND ${EXPIRED_UNTAGGED}`, [before, repository, digest])).rowCount ?? 0;
      return still > 0 && this.deleteManifestTx(q, repository, digest, [], by, now);
    });
  }

  /** The manifest's row, its references and provenance, and the audit entry; tags are the caller's. */
  private async deleteManifestTx(q: pg.PoolClient, repository: string, digest: Digest, untagged: readonly TagMove[], by: Actor, now: number): Promise<boolean> {
    const deleted = ((await q.query('DELETE FROM manifests WHERE repository = $1 AND digest = $2', [repository, digest])).rowCount ?? 0) > 0;
    await q.query('DELETE FROM manifest_refs WHERE repository = $1 AND manifest = $2', [repository, digest]);
    await q.query('DELETE FROM manifest_pulls WHERE repository = $1 AND digest = $2', [repository, digest]);
    await ops.forgetProvenanceTx(q, repository, digest);
    await ops.appendAuditTx(
      q,
      { actor: by.actor, action: 'delete', repository, target: `${repository}@${digest}`, reason: by.reason, detail: { digest, untagged: untagged.map((u) => u.tag) } },
      now,
    );
    return deleted;
  }

  async manifestsReferencing(repository: string, digest: Digest): Promise<Digest[]> {
    const { rows } = await this.pool.query<{ manifest: Digest }>('SELECT manifest FROM manifest_refs WHERE repository = $1 AND ref = $2 ORDER BY manifest', [repository, digest]);
    return rows.map((r) => r.manifest);
  }

  // --- tags ---
  async resolveTag(repository: string, tag: string): Promise<Digest | undefined> {
    return this.currentTag(this.pool, repository, tag);
  }
  async listTags(repository: string, page: Page = {}): Promise<string[]> {
    const { rows } = await this.pool.query<{ tag: string }>('SELECT tag FROM tags WHERE repository = $1 AND tag > $2 ORDER BY tag LIMIT $3', [
      repository,
      page.last ?? '',
      page.n ?? null,
    ]);
    return rows.map((r) => r.tag);
  }
  async moveTag(repository: string, tag: string, to: Digest, by: Actor, options: MoveTagOptions = {}): Promise<TagMove | undefined> {
    const now = Date.now();
    return this.auditedTx(async (q) => {
      if (!(await this.manifestExists(q, repository, to))) throw err('MANIFEST_UNKNOWN', `manifest ${to} unknown in ${repository}`);
      if (!options.override) await ops.assertUnpinned(q, repository, tag, `moving it to ${to}`);
      const move = await this.moveTagTx(q, repository, tag, to, by, now);
      if (move) {
        await ops.followPinTx(q, repository, tag, to);
        await ops.auditMoveTx(q, options.action ?? 'tag.move', move, now, options.pin ? { pinned: true } : {});
      }
      if (options.pin) {
        await ops.setPinTx(q, repository, tag, to, by, now);
        if (!move) await ops.appendAuditTx(q, { actor: by.actor, action: 'pin', repository, target: `${repository}:${tag}`, reason: by.reason, detail: { tag, digest: to } }, now);
      }
      return move;
    });
  }
  async deleteTag(repository: string, tag: string, by: Actor): Promise<TagMove | undefined> {
    const now = Date.now();
    return this.auditedTx(async (q) => {
      const from = await this.currentTag(q, repository, tag);
      if (!from) return undefined;
      await ops.assertUnpinned(q, repository, tag, 'deleting it');
      await q.query('DELETE FROM tags WHERE repository = $1 AND tag = $2', [repository, tag]);
      await this.historyTx(q, repository, tag, from, undefined, by, now);
      const move = { repository, tag, from, to: undefined, actor: by.actor, reason: by.reason, at: now };
      await ops.auditMoveTx(q, 'tag.delete', move, now);
      return move;
    });
  }
  async tagHistory(repository: string, tag: string): Promise<TagMove[]> {
    const { rows } = await this.pool.query<ops.HistoryRow>('SELECT * FROM tag_history WHERE repository = $1 AND tag = $2 ORDER BY id DESC', [repository, tag]);
    return rows.map(ops.toMove);
  }
  async tagsOf(repository: string, digest: Digest): Promise<string[]> {
    return (await this.pool.query<{ tag: string }>('SELECT tag FROM tags WHERE repository = $1 AND digest = $2 ORDER BY tag', [repository, digest])).rows.map((r) => r.tag);
  }

  // --- referrers, catalog ---
  async listReferrers(repository: string, subject: Digest): Promise<Descriptor[]> {
    const { rows } = await this.pool.query<Pick<ManifestRow, 'digest' | 'media_type' | 'artifact_type' | 'size' | 'annotations'>>(
      `SELECT digest, media_type, artifact_type, size, annotations FROM manifests WHERE repository = $1 AND subject = $2 ORDER BY created_at, digest`,
      [repository, subject],
    );
    return rows.map((r) => ({
      mediaType: r.media_type,
      digest: r.digest as Digest,
      size: r.size,
      ...(r.artifact_type ? { artifactType: r.artifact_type } : {}),
      ...(r.annotations ? { annotations: JSON.parse(r.annotations) as Record<string, string> } : {}),
    }));
  }
  async listRepositories(page: Page = {}): Promise<string[]> {
    const { rows } = await this.pool.query<{ name: string }>('SELECT name FROM repositories r WHERE name > $1 AND EXISTS (SELECT 1 FROM manifests m WHERE m.repository = r.name) ORDER BY name LIMIT $2', [page.last ?? '', page.n ?? null]);
    return rows.map((r) => r.name);
  }
  async repositoryExists(repository: string): Promise<boolean> {
    return (await this.pool.query('SELECT 1 FROM repositories WHERE name = $1', [repository])).rows.length > 0;
  }

  // --- pins ---
  async pinTag(repository: string, tag: string, digest: Digest | undefined, by: Actor): Promise<{ pin: PinRecord; move: TagMove | undefined }> {
    const now = Date.now();
    return this.auditedTx(async (q) => {
      const target = digest ?? (await this.currentTag(q, repository, tag));
      if (!target) throw err('MANIFEST_UNKNOWN', `tag ${repository}:${tag} does not exist; give the digest to pin it to`);
      if (!(await this.manifestExists(q, repository, target))) throw err('MANIFEST_UNKNOWN', `manifest ${target} unknown in ${repository}`);
      // Pinning to another digest is an operator move: it may re-pin an already pinned tag.
      const move = await this.moveTagTx(q, repository, tag, target, by, now);
      const pin = await ops.setPinTx(q, repository, tag, target, by, now);
      await ops.appendAuditTx(q, { actor: by.actor, action: 'pin', repository, target: `${repository}:${tag}`, reason: by.reason, detail: { tag, digest: target, from: move?.from } }, now);
      return { pin, move };
    });
  }
  async unpinTag(repository: string, tag: string, by: Actor): Promise<boolean> {
    const now = Date.now();
    return this.auditedTx(async (q) => {
      const pin = await ops.pinOf(q, repository, tag);
      if (!pin) return false;
      await ops.deletePinTx(q, repository, tag);
      await ops.appendAuditTx(q, { actor: by.actor, action: 'unpin', repository, target: `${repository}:${tag}`, reason: by.reason, detail: { tag, digest: pin.digest } }, now);
      return true;
    });
  }
  async getPin(repository: string, tag: string): Promise<PinRecord | undefined> {
    return ops.pinOf(this.pool, repository, tag);
  }
  async listPins(repository?: string): Promise<PinRecord[]> {
    return ops.listPins(this.pool, repository);
  }

  // --- quarantine ---
  async quarantine(digest: Digest, by: Actor): Promise<boolean> {
    const now = Date.now();
    return this.auditedTx(async (q) => {
      if (!(await ops.quarantineTx(q, digest, by, now))) return false;
      await ops.appendAuditTx(q, { actor: by.actor, action: 'quarantine', target: digest, reason: by.reason, detail: { digest } }, now);
      return true;
    });
  }
  async release(digest: Digest, by: Actor): Promise<boolean> {
    const now = Date.now();
    return this.auditedTx(async (q) => {
      if (!(await ops.releaseTx(q, digest))) return false;
      await ops.appendAuditTx(q, { actor: by.actor, action: 'release', target: digest, reason: by.reason, detail: { digest } }, now);
      return true;
    });
  }
  async quarantinedAmong(digests: readonly Digest[]): Promise<Digest[]> {
    return ops.quarantinedAmong(this.pool, digests);
  }
  async listQuarantine(): Promise<QuarantineRecord[]> {
    return ops.listQuarantine(this.pool);
  }

  // --- audit ---
  async appendAudit(entry: AuditInput): Promise<AuditEntry> {
    const now = Date.now();
    return this.auditedTx((q) => ops.appendAuditTx(q, entry, now));
  }
  async listAudit(query: AuditQuery = {}): Promise<AuditEntry[]> {
    return ops.listAudit(this.pool, query);
  }

  // --- lineage, locating content ---
  async recordProvenance(p: NewProvenance): Promise<void> {
    const now = Date.now();
    await this.tx((q) => ops.recordProvenanceTx(q, p, now));
  }
  async provenanceFor(repository: string | undefined, subject: Digest): Promise<ProvenanceRecord[]> {
    return ops.provenanceFor(this.pool, repository, subject);
  }
  async consumersOf(material: string): Promise<MaterialConsumer[]> {
    return ops.consumersOf(this.pool, material);
  }
  async repositoriesOf(digest: Digest): Promise<string[]> {
    return ops.repositoriesOf(this.pool, digest);
  }
  async manifestsContaining(digest: Digest): Promise<{ repository: string; digest: Digest }[]> {
    return ops.manifestsContaining(this.pool, digest);
  }
  async tagMovesOf(repository: string, digest: Digest): Promise<TagMove[]> {
    return ops.tagMovesOf(this.pool, repository, digest);
  }
}

