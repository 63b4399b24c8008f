/**
 * Versioned schema migrations for the SQLite metadata store. Append only: a
 * shipped migration is never edited, a change is a new entry.
 */
export const SQLITE_MIGRATIONS: readonly string[] = [
  /* 1: registry core */ `
  CREATE TABLE repositories (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL) WITHOUT ROWID;
  CREATE TABLE blob_links (
    repository TEXT NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (repository, digest)) WITHOUT ROWID;
  CREATE INDEX blob_links_digest ON blob_links (digest);
  CREATE TABLE manifests (
    repository TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL, artifact_type TEXT,
    size INTEGER NOT NULL, subject TEXT, annotations TEXT, bytes BLOB NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (repository, digest)) WITHOUT ROWID;
  CREATE INDEX manifests_subject ON manifests (repository, subject) WHERE subject IS NOT NULL;
  CREATE TABLE manifest_refs (
    repository TEXT NOT NULL, manifest TEXT NOT NULL, ref TEXT NOT NULL,
    PRIMARY KEY (repository, manifest, ref)) WITHOUT ROWID;
  CREATE INDEX manifest_refs_ref ON manifest_refs (repository, ref);
  CREATE TABLE tags (
    repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, updated_at INTEGER NOT NULL,
    PRIMARY KEY (repository, tag)) WITHOUT ROWID;
  CREATE INDEX tags_digest ON tags (repository, digest);
  CREATE TABLE tag_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, repository TEXT NOT NULL, tag TEXT NOT NULL,
    from_digest TEXT, to_digest TEXT, actor TEXT NOT NULL, reason TEXT, at INTEGER NOT NULL);
  CREATE INDEX tag_history_tag ON tag_history (repository, tag, id);
  `,
];
