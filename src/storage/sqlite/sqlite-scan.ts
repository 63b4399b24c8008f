import type Database from 'better-sqlite3';
import type { Digest } from '../../oci/index.js';
import type { ContentScan, TagEntry, TagKey } from '../content-scan.js';
import type { BlobLink, BlobLinkKey, ManifestKey, ManifestRecord } from '../metadata-store.js';
import { toRecord, type ManifestRow } from '../rows.js';

/** ContentScan over the SQLite tables (SqliteMetadataStore delegates to it). */
export class SqliteScan implements ContentScan {
  private readonly stmt;
  constructor(db: Database.Database) {
    const p = (sql: string) => db.prepare(sql);
    this.stmt = {
      manifests: p('SELECT * FROM manifests WHERE repository > @repo OR (repository = @repo AND digest > @digest) ORDER BY repository, digest LIMIT @limit'),
      refs: p('SELECT ref FROM manifest_refs WHERE repository = ? AND manifest = ?'),
      links: p('SELECT repository, digest, size FROM blob_links WHERE repository > @repo OR (repository = @repo AND digest > @digest) ORDER BY repository, digest LIMIT @limit'),
      tags: p('SELECT repository, tag, digest FROM tags WHERE repository > @repo OR (repository = @repo AND tag > @tag) ORDER BY repository, tag LIMIT @limit'),
      linking: p('SELECT repository FROM blob_links WHERE digest = ? ORDER BY repository'),
    };
  }

  async manifestPage(limit: number, after?: ManifestKey): Promise<ManifestRecord[]> {
    const rows = this.stmt.manifests.all({ repo: after?.repository ?? '', digest: after?.digest ?? '', limit }) as ManifestRow[];
    return rows.map((r) => toRecord(r, (this.stmt.refs.all(r.repository, r.digest) as { ref: Digest }[]).map((x) => x.ref)));
  }

  async blobLinkPage(limit: number, after?: BlobLinkKey): Promise<BlobLink[]> {
    return this.stmt.links.all({ repo: after?.repository ?? '', digest: after?.digest ?? '', limit }) as BlobLink[];
  }

  async tagPage(limit: number, after?: TagKey): Promise<TagEntry[]> {
    return this.stmt.tags.all({ repo: after?.repository ?? '', tag: after?.tag ?? '', limit }) as TagEntry[];
  }

  async linkingRepositories(digest: Digest): Promise<string[]> {
    return (this.stmt.linking.all(digest) as { repository: string }[]).map((r) => r.repository);
  }
}
