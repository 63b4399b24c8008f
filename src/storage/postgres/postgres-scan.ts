import type pg from 'pg';
import type { Digest } from '../../oci/index.js';
import type { ContentScan, TagEntry, TagKey } from '../content-scan.js';
import type { BlobLink, BlobLinkKey, ManifestKey, ManifestRecord } from '../metadata-store.js';
import { toRecord, type ManifestRow } from '../rows.js';

/** ContentScan over the PostgreSQL tables (PostgresMetadataStore delegates to it). */
export class PostgresScan implements ContentScan {
  constructor(private readonly pool: pg.Pool) {}

  async manifestPage(limit: number, after?: ManifestKey): Promise<ManifestRecord[]> {
    const { rows } = await this.pool.query<ManifestRow>('SELECT * FROM manifests WHERE (repository, digest) > ($1, $2) ORDER BY repository, digest LIMIT $3', [
      after?.repository ?? '',
      after?.digest ?? '',
      limit,
    ]);
    if (rows.length === 0) return [];
    // The references of the whole page in one query.
    const refs = await this.pool.query<{ repository: string; manifest: string; ref: Digest }>(
      'SELECT r.repository, r.manifest, r.ref FROM manifest_refs r JOIN unnest($1::text[], $2::text[]) AS k(repository, manifest) ON r.repository = k.repository AND r.manifest = k.manifest',
      [rows.map((r) => r.repository), rows.map((r) => r.digest)],
    );
    const byManifest = new Map<string, Digest[]>();
    for (const r of refs.rows) {
      const k = `${r.repository}@${r.manifest}`;
      byManifest.set(k, [...(byManifest.get(k) ?? []), r.ref]);
    }
    return rows.map((r) => toRecord({ ...r, size: Number(r.size), created_at: Number(r.created_at) }, byManifest.get(`${r.repository}@${r.digest}`) ?? []));
  }

  async blobLinkPage(limit: number, after?: BlobLinkKey): Promise<BlobLink[]> {
    const { rows } = await this.pool.query<BlobLink>('SELECT repository, digest, size FROM blob_links WHERE (repository, digest) > ($1, $2) ORDER BY repository, digest LIMIT $3', [
      after?.repository ?? '',
      after?.digest ?? '',
      limit,
    ]);
    return rows.map((r) => ({ repository: r.repository, digest: r.digest, size: Number(r.size) }));
  }

  async tagPage(limit: number, after?: TagKey): Promise<TagEntry[]> {
    const { rows } = await this.pool.query<TagEntry>('SELECT repository, tag, digest FROM tags WHERE (repository, tag) > ($1, $2) ORDER BY repository, tag LIMIT $3', [
      after?.repository ?? '',
      after?.tag ?? '',
      limit,
    ]);
    return rows;
  }

  async linkingRepositories(digest: Digest): Promise<string[]> {
    const { rows } = await this.pool.query<{ repository: string }>('SELECT repository FROM blob_links WHERE digest = $1 ORDER BY repository', [digest]);
    return rows.map((r) => r.repository);
  }
}
