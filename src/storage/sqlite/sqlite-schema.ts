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
  /* 2: operator controls: pins, quarantine, hash-chained audit log, lineage index */ `
  CREATE TABLE pins (
    repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT, at INTEGER NOT NULL,
    PRIMARY KEY (repository, tag)) WITHOUT ROWID;
  CREATE TABLE quarantine (digest TEXT PRIMARY KEY, actor TEXT NOT NULL, reason TEXT, at INTEGER NOT NULL) WITHOUT ROWID;
  CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    repository TEXT, target TEXT, reason TEXT, detail TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
  CREATE INDEX audit_log_at ON audit_log (at);
  -- Append-only by construction; the hash chain catches whoever drops these triggers.
  CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
  CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
  CREATE TABLE provenance (
    repository TEXT NOT NULL, referrer TEXT NOT NULL, subject TEXT NOT NULL, predicate_type TEXT NOT NULL,
    builder_id TEXT, build_type TEXT, started_on TEXT, finished_on TEXT, signers TEXT NOT NULL, materials TEXT NOT NULL,
    recorded_at INTEGER NOT NULL, PRIMARY KEY (repository, referrer)) WITHOUT ROWID;
  CREATE INDEX provenance_subject ON provenance (subject);
  CREATE TABLE provenance_materials (
    repository TEXT NOT NULL, referrer TEXT NOT NULL, material TEXT NOT NULL, role TEXT, name TEXT,
    PRIMARY KEY (repository, referrer, material)) WITHOUT ROWID;
  CREATE INDEX provenance_materials_material ON provenance_materials (material);
  CREATE INDEX tag_history_to ON tag_history (repository, to_digest);
  CREATE INDEX manifests_digest ON manifests (digest);
  `,
  /* 3: persisted verdicts */ `
  CREATE TABLE verdicts (key TEXT PRIMARY KEY, digest TEXT NOT NULL, json TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;
  CREATE INDEX verdicts_digest ON verdicts (digest);
  `,
  /* 4: garbage collection: when a tag last left a digest (retention), when a cached manifest was last pulled (eviction) */ `
  CREATE INDEX tag_history_from ON tag_history (repository, from_digest);
  CREATE TABLE manifest_pulls (repository TEXT NOT NULL, digest TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (repository, digest)) WITHOUT ROWID;
  `,
  /* 5: lineage by file: which manifests, in any repository, hold a blob (a dataset's CSV) */ `
  CREATE INDEX manifest_refs_by_ref ON manifest_refs (ref);
  `,
];
