import { chmod, copyFile, cp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { err, isDigest, isRegistryError, type Digest } from '../oci/index.js';
import { scanAll, type BlobStore, type ChainReport, type ContentScan, type MetadataSnapshot, type MetadataStore } from '../storage/index.js';
import { AuditService } from './audit.js';
import { fsck, type FsckReport } from './fsck.js';

/**
 * `customs backup` and `customs restore` for the embedded stores (filesystem + SQLite). A backup
 * directory holds a consistent snapshot of the metadata (`metadata.sqlite`), the list of blob
 * digests it needs (`blobs.txt`), those blobs in the data directory's own layout (copied only
 * when the directory lacks them, verified while copied), the data directory's secrets and trust
 * material, and `backup.json` (written last: a backup without it is incomplete). A backup taken
 * again into the same directory copies only the new blobs.
 */
export const BACKUP_FORMAT = 1;
export const METADATA_FILE = 'metadata.sqlite';
const MANIFEST_FILE = 'backup.json';
const DIGESTS_FILE = 'blobs.txt';

const manifestSchema = z.object({
  format: z.literal(BACKUP_FORMAT),
  createdAt: z.string(),
  blobs: z.number().int(),
  bytes: z.number().int(),
  auditHead: z.object({ seq: z.number().int(), hash: z.string() }).nullable(),
});
export type BackupManifest = z.infer<typeof manifestSchema>;

/** A metadata store opened on a snapshot file, to read it (and, after a restore, to append to its audit log). */
export type OpenedMetadata = MetadataStore & ContentScan;

export interface BackupDeps {
  readonly metadata: MetadataSnapshot;
  readonly blobs: BlobStore;
  /** The backup directory's own blob store (content-addressed, verifying `put`). */
  readonly target: BlobStore;
  readonly openSnapshot: (file: string) => OpenedMetadata;
  /** Files and directories of the data directory copied as they are (secrets, trust material), relative to `dataDir`. */
  readonly extraFiles: readonly string[];
  readonly dataDir: string;
}

export interface BackupReport extends BackupManifest {
  readonly to: string;
  /** Blobs copied by this run, and those the directory already had. */
  readonly copied: number;
  readonly skipped: number;
  /** Needed blobs that could not be copied (deleted since the snapshot, or corrupt): the backup is incomplete. */
  readonly problems: readonly string[];
}

export async function backup(to: string, d: BackupDeps): Promise<BackupReport> {
  await mkdir(to, { recursive: true, mode: 0o700 });
  const partial = join(to, `${METADATA_FILE}.partial`);
  await d.metadata.snapshotTo(partial);
  // What the snapshot needs: every linked blob (a link is a repository's right to read it).
  const needed = new Map<Digest, number>();
  let auditHead: BackupManifest['auditHead'] = null;
  const snap = d.openSnapshot(partial);
  try {
    for await (const l of scanAll(snap.blobLinkPage.bind(snap), (l) => ({ repository: l.repository, digest: l.digest }), 1000)) needed.set(l.digest, l.size);
    const head = await new AuditService(snap).verify();
    if (!head.ok) throw err('DENIED', `the audit log does not verify (${head.problems.length} problem(s)); run customs audit verify`);
    auditHead = head.head ?? null;
  } finally {
    await snap.close();
  }
  let copied = 0;
  let skipped = 0;
  let bytes = 0;
  const problems: string[] = [];
  for (const [digest, size] of [...needed].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const r = await copyBlob(digest, size, d.blobs, d.target);
    if (r === 'copied') copied++;
    else if (r === 'present') skipped++;
    else problems.push(`${digest}: ${r}`);
    if (r === 'copied' || r === 'present') bytes += size;
  }
  await writeFile(join(to, DIGESTS_FILE), [...needed].map(([digest, size]) => `${digest} ${size}\n`).sort().join(''));
  for (const f of d.extraFiles) await copyExtra(join(d.dataDir, f), join(to, f));
  await rename(partial, join(to, METADATA_FILE));
  const manifest: BackupManifest = { format: BACKUP_FORMAT, createdAt: new Date().toISOString(), blobs: needed.size, bytes, auditHead };
  // Last: its presence says the directory holds a complete backup.
  if (problems.length === 0) await writeFile(join(to, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  else await rm(join(to, MANIFEST_FILE), { force: true });
  return { ...manifest, to, copied, skipped, problems };
}

/** Copies one blob unless the target has it; the target's `put` verifies the digest and size. */
async function copyBlob(digest: Digest, size: number, from: BlobStore, to: BlobStore): Promise<'copied' | 'present' | string> {
  if ((await to.stat(digest))?.size === size) return 'present';
  const source = await from.get(digest);
  if (!source) return 'missing from the data directory (deleted since the snapshot, or set aside as corrupt)';
  try {
    await to.put(source, { expected: digest, expectedSize: size });
    return 'copied';
  } catch (e) {
    if (isRegistryError(e) && (e.code === 'DIGEST_INVALID' || e.code === 'SIZE_INVALID')) return `stored bytes do not match (${e.message}); run customs scrub`;
    throw e;
  }
}

async function copyExtra(from: string, to: string): Promise<void> {
  const s = await stat(from).catch(() => undefined);
  if (!s) return;
  await mkdir(dirname(to), { recursive: true, mode: 0o700 });
  if (s.isDirectory()) await cp(from, to, { recursive: true, force: true, preserveTimestamps: true });
  else {
    await copyFile(from, to);
    await chmod(to, s.mode & 0o777);
  }
}

export interface RestoreDeps {
  /** The backup's blob store (read) and the new data directory's (written; verifying `put`). */
  readonly source: BlobStore;
  readonly target: BlobStore;
  /** Makes the target's directories, once `data` was found new or empty. */
  readonly initTarget: () => Promise<void>;
  readonly openMetadata: (file: string) => OpenedMetadata;
  readonly extraFiles: readonly string[];
  readonly actor: string;
}

export interface RestoreReport {
  readonly from: string;
  readonly data: string;
  readonly backup: BackupManifest;
  readonly blobs: number;
  readonly bytes: number;
  readonly audit: ChainReport;
  readonly fsck: FsckReport;
}

/**
 * Rebuilds a data directory from a backup: every blob copied and verified against its digest,
 * the metadata snapshot, secrets and trust material; then a `restore` entry is appended to the
 * audit log (the chain goes on from the backup's head), the chain is verified and the store
 * checked (`fsck`). `data` must be new or empty.
 */
export async function restore(from: string, data: string, d: RestoreDeps): Promise<RestoreReport> {
  const text = await readFile(join(from, MANIFEST_FILE), 'utf8').catch(() => {
    throw err('NAME_INVALID', `${from} holds no complete backup (no ${MANIFEST_FILE})`);
  });
  const manifest = manifestSchema.parse(JSON.parse(text));
  if ((await readdir(data).catch(() => [])).length > 0) throw err('DENIED', `${data} is not empty: restore only into a new or empty directory`);
  await mkdir(data, { recursive: true, mode: 0o700 });
  await d.initTarget();
  let blobs = 0;
  let bytes = 0;
  for (const line of (await readFile(join(from, DIGESTS_FILE), 'utf8')).split('\n')) {
    if (!line.trim()) continue;
    const [digest, sizeText] = line.split(' ');
    const size = Number(sizeText);
    if (!digest || !isDigest(digest) || !Number.isSafeInteger(size)) throw err('NAME_INVALID', `${DIGESTS_FILE}: bad line ${JSON.stringify(line.slice(0, 200))}`);
    const source = await d.source.get(digest as Digest);
    if (!source) throw err('BLOB_UNKNOWN', `the backup lacks blob ${digest}`);
    await d.target.put(source, { expected: digest as Digest, expectedSize: size });
    blobs++;
    bytes += size;
  }
  for (const f of d.extraFiles) await copyExtra(join(from, f), join(data, f));
  await copyFile(join(from, METADATA_FILE), join(data, METADATA_FILE));
  const metadata = d.openMetadata(join(data, METADATA_FILE));
  try {
    const audit = new AuditService(metadata);
    await audit.record({ actor: d.actor, action: 'restore', reason: `restored from ${from}`, detail: { backupCreatedAt: manifest.createdAt, blobs, backupHead: manifest.auditHead } });
    const chain = await audit.verify();
    // The blobs were verified as they were copied; this checks that the snapshot and the blobs agree.
    const check = await fsck({ blobs: d.target, metadata }, { hash: false, leftoverGraceMs: 0 });
    return { from, data, backup: manifest, blobs, bytes, audit: chain, fsck: check };
  } finally {
    await metadata.close();
  }
}
