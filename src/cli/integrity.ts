import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig, parseSliceAt } from '../config/load.js';
import { err } from '../oci/index.js';
import { backup, fsck, restore, type BackupReport, type FsckReport, type RestoreReport } from '../ops/index.js';
import { upstreamsConfigSchema } from '../proxy/config.js';
import type { ScrubReport } from '../registry/index.js';
import { FsBlobStore } from '../storage/fs/fs-blob-store.js';
import { hasContentScan, hasSnapshot } from '../storage/index.js';
import { openStorage } from '../storage/open.js';
import { SqliteMetadataStore } from '../storage/sqlite/sqlite-metadata-store.js';
import { adminPost, stdio, targetFrom, type AdminTarget, type Io } from './ops/client.js';

/** What a data directory holds besides blobs and metadata, copied by backup and restore (secrets: the backup directory is 0700). */
const EXTRA_FILES = ['admin-token', 'session-key', 'trust'];

const quiet = { info: () => undefined, warn: () => undefined };

const mib = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected MiB per second (0 = unlimited)');
  return n;
};

const emit = (io: Io, json: boolean | undefined, value: unknown, human: () => string[]): void => {
  for (const l of json ? [JSON.stringify(value, null, 2)] : human()) io.out(l);
};

/** `customs scrub`: asks the running server to re-hash everything; fails (exit 1) while corrupt content is left unrepaired. */
export async function scrub(t: AdminTarget, io: Io, o: { json?: boolean; rate?: number; reason?: string }): Promise<ScrubReport> {
  const r = await adminPost<ScrubReport>(t, '/scrub', { maxMiBPerSecond: o.rate, reason: o.reason || undefined });
  emit(io, o.json, r, () => [
    `scrubbed ${r.blobs} blob(s) and ${r.manifests} manifest(s), ${r.bytes} bytes, in ${r.seconds} s${r.aborted ? ' (stopped early: the server is shutting down)' : ''}`,
    ...r.corrupt.map((f) => `CORRUPT ${f.kind} ${f.repository ? `${f.repository}@` : ''}${f.digest}: ${f.detail}${f.kind === 'blob' ? '; set aside, never served' : '; not served'}`),
    ...r.repaired.map((f) => `repaired ${f.digest}: ${f.detail}`),
    ...r.unrepaired.map((f) => `UNREPAIRED ${f.digest}: ${f.detail}`),
  ]);
  const bad = r.unrepaired.length + r.corrupt.filter((f) => f.kind === 'manifest').length;
  if (bad > 0) throw err('CONTENT_CORRUPT', `${bad} corrupt item(s) need an operator: see above, and the audit log (integrity.corrupt)`);
  return r;
}

interface Offline {
  data: string;
  config?: string;
  upstream: string[];
  json?: boolean;
}

/** `customs fsck`: opens the store read-only (a running server may keep using it) and checks it. */
export async function fsckCommand(io: Io, o: Offline & { hash: boolean; leftoverGrace?: number }): Promise<FsckReport> {
  const loaded = await loadConfig(o.config);
  const names = [...parseSliceAt(loaded, upstreamsConfigSchema, 'upstreams', loaded.config.upstreams).map((u) => u.name), ...o.upstream.map((u) => u.split('=')[0]!)];
  const storage = await openStorage(loaded.config, resolve(o.data), quiet, { inspect: true });
  try {
    const { metadata } = storage;
    if (!hasContentScan(metadata)) throw err('UNSUPPORTED', 'this metadata store cannot be scanned');
    const r = await fsck(
      { blobs: storage.blobs, metadata, uploads: storage.uploads },
      { hash: o.hash, isProxied: (repo) => names.some((n) => repo.startsWith(`${n}/`)), ...(o.leftoverGrace !== undefined ? { leftoverGraceMs: o.leftoverGrace * 1000 } : {}) },
    );
    emit(io, o.json, r, () => [
      `checked ${r.tags} tag(s), ${r.manifests} manifest(s), ${r.links} blob link(s), ${r.blobs} blob(s) (${r.bytes} bytes${o.hash ? ', re-hashed' : ''})`,
      ...r.notes.map((n) => `note: ${n}`),
      ...r.problems.map((p) => `PROBLEM ${p.check} ${[p.repository, p.reference].filter(Boolean).join(' ')}: ${p.detail}`),
      r.ok ? 'consistent' : `${r.problems.length} problem(s)`,
    ]);
    if (!r.ok) throw err('CONTENT_CORRUPT', `the store is not consistent: ${r.problems.length} problem(s)`);
    return r;
  } finally {
    await storage.close();
  }
}

/** `customs backup --to DIR`: the embedded stores only (PostgreSQL and S3 have their own tools: docs/backup.md). */
export async function backupCommand(io: Io, o: Offline & { to: string }): Promise<BackupReport> {
  const loaded = await loadConfig(o.config);
  if (loaded.config.metadata.driver !== 'sqlite' || loaded.config.storage.driver !== 'filesystem') {
    throw err('UNSUPPORTED', 'customs backup copies the embedded stores (filesystem + SQLite); with PostgreSQL and S3, use pg_dump and the bucket\'s own copy (docs/backup.md)');
  }
  const dataDir = resolve(o.data);
  const storage = await openStorage(loaded.config, dataDir, quiet, { inspect: true });
  try {
    if (!hasSnapshot(storage.metadata)) throw err('UNSUPPORTED', 'this metadata store cannot take a snapshot');
    const target = new FsBlobStore(resolve(o.to));
    await target.init();
    const r = await backup(resolve(o.to), {
      metadata: storage.metadata,
      blobs: storage.blobs,
      target,
      openSnapshot: (file) => new SqliteMetadataStore(file),
      extraFiles: EXTRA_FILES,
      dataDir,
    });
    emit(io, o.json, r, () => [
      `backup of ${dataDir} in ${r.to}: metadata snapshot, ${r.blobs} blob(s) (${r.bytes} bytes): ${r.copied} copied, ${r.skipped} already there`,
      `audit log head ${r.auditHead ? `${r.auditHead.seq}:${r.auditHead.hash}` : '(empty)'}`,
      ...r.problems.map((p) => `PROBLEM ${p}`),
    ]);
    if (r.problems.length > 0) throw err('BLOB_UNKNOWN', `the backup is incomplete: ${r.problems.length} blob(s) could not be copied; take it again`);
    return r;
  } finally {
    await storage.close();
  }
}

/** `customs restore --from DIR --data NEWDIR`. */
export async function restoreCommand(io: Io, o: { from: string; data: string; json?: boolean }): Promise<RestoreReport> {
  const from = resolve(o.from);
  const data = resolve(o.data);
  const target = new FsBlobStore(data);
  const r = await restore(from, data, {
    source: new FsBlobStore(from),
    target,
    initTarget: () => target.init(),
    openMetadata: (file) => new SqliteMetadataStore(file),
    extraFiles: EXTRA_FILES,
    actor: 'system:restore',
  });
  emit(io, o.json, r, () => [
    `restored ${r.blobs} blob(s) (${r.bytes} bytes, each verified) and the metadata of ${r.backup.createdAt} into ${r.data}`,
    r.audit.ok ? `audit log intact: ${r.audit.checked} entries, head ${r.audit.head ? `${r.audit.head.seq}:${r.audit.head.hash}` : '-'}` : `audit log BROKEN: ${r.audit.problems.map((p) => `entry ${p.seq}: ${p.problem}`).join('; ')}`,
    ...r.fsck.problems.map((p) => `PROBLEM ${p.check} ${[p.repository, p.reference].filter(Boolean).join(' ')}: ${p.detail}`),
    r.fsck.ok ? `consistent: ${r.fsck.tags} tag(s), ${r.fsck.manifests} manifest(s)` : `${r.fsck.problems.length} problem(s)`,
  ]);
  if (!r.audit.ok || !r.fsck.ok) throw err('CONTENT_CORRUPT', 'the restored store does not check out: see above');
  return r;
}

export function register(program: Command, io: Io = stdio, env: NodeJS.ProcessEnv = process.env): void {
  program
    .command('scrub')
    .description('re-hash every stored blob and manifest on the running server; corrupt blobs are set aside (never served), fetched again when they came through a proxy, and reported')
    .option('--url <url>', 'customs server URL (default $CUSTOMS_URL or http://127.0.0.1:5000)')
    .option('--json', 'print JSON')
    .option('--rate <MiB/s>', "read at most this many MiB per second (default: the server's scrub.maxMiBPerSecond; 0 = unlimited)", mib)
    .option('--reason <text>', 'recorded in the audit log')
    .action(async (o: { url?: string; json?: boolean; rate?: number; reason?: string }) => void (await scrub(targetFrom(o, env), io, o)));
  const offline = (c: Command) =>
    c
      .option('--data <dir>', 'data directory', './data')
      .option('--config <file>', 'configuration file (YAML): the storage and metadata drivers, the upstreams')
      .option('--upstream <name=url>', 'a pull-through upstream given to serve with --upstream (repeatable)', (v: string, p: string[]) => [...p, v], [] as string[])
      .option('--json', 'print JSON');
  offline(program.command('fsck').description('check that every tag resolves, every referenced blob exists with the right digest, and no partial upload is left over (read-only; the server may run)'))
    .option('--no-hash', 'check existence and sizes only, without re-hashing the blobs')
    .option('--leftover-grace <seconds>', 'temporary upload files older than this are orphaned (default 3600)', (v) => Number(v))
    .action(async (o: Offline & { hash: boolean; leftoverGrace?: number }) => void (await fsckCommand(io, o)));
  offline(program.command('backup').description('copy a consistent snapshot of the metadata and every blob it needs into DIR (only blobs DIR lacks), while the server runs'))
    .requiredOption('--to <dir>', 'backup directory (created; reuse it for incremental backups)')
    .action(async (o: Offline & { to: string }) => void (await backupCommand(io, o)));
  program
    .command('restore')
    .description('rebuild a data directory from a backup: verifies every blob, appends a restore entry to the audit log and checks the result')
    .requiredOption('--from <dir>', 'backup directory')
    .requiredOption('--data <dir>', 'new (or empty) data directory')
    .option('--json', 'print JSON')
    .action(async (o: { from: string; data: string; json?: boolean }) => void (await restoreCommand(io, o)));
}
