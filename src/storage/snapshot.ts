/**
 * Optional capability of an embedded metadata store: a consistent copy of the whole database in
 * one file, taken while the store is in use (`customs backup`). SQLite has it (its online backup
 * API); PostgreSQL is backed up with its own tools (pg_dump, see docs/backup.md).
 */
export interface MetadataSnapshot {
  /** Writes the snapshot to `file` (replaced if it exists). */
  snapshotTo(file: string): Promise<void>;
}

export const hasSnapshot = (s: object): s is MetadataSnapshot => typeof (s as Partial<MetadataSnapshot>).snapshotTo === 'function';
