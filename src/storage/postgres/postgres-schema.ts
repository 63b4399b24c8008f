/**
 * Versioned schema migrations for the PostgreSQL metadata store (scale-out).
 * Append only: a shipped migration is never edited, a change is a new entry.
 * Text that is listed or paged in lexical order is COLLATE "C" (byte order, as
 * SQLite and the distribution spec's `last` parameter expect).
 */
export const PG_MIGRATIONS: readonly string[] = [
  /* 1: registry core */ `
  CREATE TABLE repositories (name TEXT COLLATE "C" PRIMARY KEY, created_at BIGINT NOT NULL);
  CREATE TABLE blob_links (
    repository TEXT NOT NULL, digest TEXT NOT NULL, size BIGINT NOT NULL, created_at BIGINT NOT NULL,
    PRIMARY KEY (repository, digest));
  CREATE INDEX blob_links_digest ON blob_links (digest);
  CREATE TABLE manifests (
    repository TEXT COLLATE "C" NOT NULL, digest TEXT COLLATE "C" NOT NULL, media_type TEXT NOT NULL, artifact_type TEXT,
    size BIGINT NOT NULL, subject TEXT, annotations TEXT, bytes BYTEA NOT NULL, created_at BIGINT NOT NULL,
    PRIMARY KEY (repository, digest));
  CREATE INDEX manifests_subject ON manifests (repository, subject) WHERE subject IS NOT NULL;
  CREATE INDEX manifests_digest ON manifests (digest);
  CREATE TABLE manifest_refs (
    repository TEXT NOT NULL, manifest TEXT COLLATE "C" NOT NULL, ref TEXT NOT NULL,
    PRIMARY KEY (repository, manifest, ref));
  CREATE INDEX manifest_refs_ref ON manifest_refs (repository, ref);
  CREATE TABLE tags (
    repository TEXT NOT NULL, tag TEXT COLLATE "C" NOT NULL, digest TEXT NOT NULL, updated_at BIGINT NOT NULL,
    PRIMARY KEY (repository, tag));
  CREATE INDEX tags_digest ON tags (repository, digest);
  CREATE TABLE tag_history (
    id BIGSERIAL PRIMARY KEY, repository TEXT NOT NULL, tag TEXT NOT NULL,
    from_digest TEXT, to_digest TEXT, actor TEXT NOT NULL, reason TEXT, at BIGINT NOT NULL);
  CREATE INDEX tag_history_tag ON tag_history (repository, tag, id);
  CREATE INDEX tag_history_to ON tag_history (repository, to_digest);
  `,
  /* 2: operator controls: pins, quarantine, hash-chained audit log, lineage index */ `
  CREATE TABLE pins (
    repository TEXT COLLATE "C" NOT NULL, tag TEXT COLLATE "C" NOT NULL, digest TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT, at BIGINT NOT NULL,
    PRIMARY KEY (repository, tag));
  CREATE TABLE quarantine (digest TEXT COLLATE "C" PRIMARY KEY, actor TEXT NOT NULL, reason TEXT, at BIGINT NOT NULL);
  CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    repository TEXT, target TEXT, reason TEXT, detail TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
  CREATE INDEX audit_log_at ON audit_log (at);
  -- Append-only by construction; the hash chain catches whoever drops this trigger.
  CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$;
  CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
  CREATE TABLE provenance (
    repository TEXT COLLATE "C" NOT NULL, referrer TEXT COLLATE "C" NOT NULL, subject TEXT NOT NULL, predicate_type TEXT NOT NULL,
    builder_id TEXT, build_type TEXT, started_on TEXT, finished_on TEXT, signers TEXT NOT NULL, materials TEXT NOT NULL,
    recorded_at BIGINT NOT NULL, PRIMARY KEY (repository, referrer));
  CREATE INDEX provenance_subject ON provenance (subject);
  CREATE TABLE provenance_materials (
    repository TEXT COLLATE "C" NOT NULL, referrer TEXT COLLATE "C" NOT NULL, material TEXT NOT NULL, role TEXT, name TEXT,
    PRIMARY KEY (repository, referrer, material));
  CREATE INDEX provenance_materials_material ON provenance_materials (material);
  `,
  /* 3: scale-out: upload sessions shared by replicas, leases of upstream fills */ `
  CREATE TABLE upload_sessions (
    id UUID PRIMARY KEY, repository TEXT NOT NULL,
    s3_key TEXT NOT NULL, s3_upload_id TEXT NOT NULL,
    size BIGINT NOT NULL DEFAULT 0,
    -- [{"n": part number, "e": ETag, "s": bytes}], in byte order
    parts TEXT NOT NULL DEFAULT '[]',
    next_part INTEGER NOT NULL DEFAULT 1,
    -- bytes received after the last full part (S3 parts are >= 5 MiB but the last)
    tail BYTEA NOT NULL DEFAULT ''::bytea,
    state TEXT NOT NULL DEFAULT 'open',
    -- the replica writing a chunk now, and until when its claim holds (renewed per part)
    appender TEXT, append_until TIMESTAMPTZ,
    started_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
  CREATE INDEX upload_sessions_updated ON upload_sessions (updated_at);
  CREATE TABLE fill_leases (
    key TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL);
  `,
  /* 4: garbage collection: when a tag last left a digest (retention), when a cached manifest was last pulled (eviction) */ `
  CREATE INDEX tag_history_from ON tag_history (repository, from_digest);
  CREATE TABLE manifest_pulls (
    repository TEXT COLLATE "C" NOT NULL, digest TEXT COLLATE "C" NOT NULL, at BIGINT NOT NULL,
    PRIMARY KEY (repository, digest));
  `,
  /* 5: lineage by file: which manifests, in any repository, hold a blob (a dataset's CSV) */ `
  CREATE INDEX manifest_refs_by_ref ON manifest_refs (ref);
  `,
];
