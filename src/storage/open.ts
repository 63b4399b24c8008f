import { join } from 'node:path';
import type pg from 'pg';
import type { Config } from '../config/schema.js';
import type { BlobStore } from './blob-store.js';
import { LocalFillLease, type FillLease } from './fill-lease.js';
import { FsBlobStore } from './fs/fs-blob-store.js';
import { FsUploadStore } from './fs/fs-upload-store.js';
import type { MetadataStore } from './metadata-store.js';
import { LocalNotifier, type Notifier } from './notifier.js';
import { SqliteMetadataStore } from './sqlite/sqlite-metadata-store.js';
import type { UploadStore } from './upload-store.js';

export interface StorageLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface OpenedStorage {
  readonly blobs: BlobStore;
  readonly uploads: UploadStore;
  readonly metadata: MetadataStore;
  /** Cache invalidation between replicas (in-process only for the embedded drivers). */
  readonly notifier: Notifier;
  /** One upstream fetch per blob across replicas (in-process only for the embedded drivers). */
  readonly fillLease: FillLease;
  /** True when other replicas may share this storage (caches must listen to `notifier`). */
  readonly shared: boolean;
  /**
   * Set when blob GETs may be answered with a redirect to `blobs`' presigned URLs
   * (`storage.redirect.enabled` on S3); the registry decides per request.
   */
  readonly redirect: { readonly expiresSeconds: number; readonly minBytes: number } | undefined;
  /**
   * Worker processes sharing an embedded store: applies the cache events other workers published.
   * Cheap when there were none; call it before serving each request. Undefined otherwise.
   */
  readonly sync?: () => void;
  /** Closes everything opened here, in reverse order. */
  close(): Promise<void>;
}

/** This process as one of several `customs serve --workers N` processes sharing the data directory. */
export interface WorkerIdentity {
  /** 1..N, stable across restarts of that worker. */
  readonly id: number;
  /** The first worker of a start (alone until it listens): it may clean every worker's leftovers. */
  readonly first: boolean;
}

/** A storage component that cannot be used; the message says which and why. */
export class StorageStartupError extends Error {
  constructor(
    readonly component: 'S3' | 'PostgreSQL' | 'configuration',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'StorageStartupError';
  }
}

/**
 * Opens the configured blob, upload and metadata stores (the composition root's
 * storage half). filesystem + SQLite is the embedded default; S3 + PostgreSQL is
 * the scale-out setup, where any number of replicas share one bucket/prefix and
 * one database. PostgreSQL is checked and migrated first, then S3; a failure
 * closes what was opened and throws a StorageStartupError naming the component.
 */
export interface OpenStorageOptions {
  /**
   * Open stores a running server may be using, to read them (`customs fsck`, `customs backup`): no
   * startup cleanup (it would delete the server's writes in progress), no notification connection.
   */
  readonly inspect?: boolean;
  /** One of several worker processes sharing the data directory (`customs serve --workers N`). */
  readonly worker?: WorkerIdentity | undefined;
}

export async function openStorage(config: Pick<Config, 'storage' | 'metadata'>, dataDir: string, log: StorageLog, options: OpenStorageOptions = {}): Promise<OpenedStorage> {
  const { worker } = options;
  const closers: Array<() => Promise<void>> = [];
  const close = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  };
  try {
    if (config.storage.driver === 's3' && config.metadata.driver !== 'postgres') {
      throw new StorageStartupError('configuration', 'storage.driver "s3" needs metadata.driver "postgres": upload sessions and fill leases are shared through PostgreSQL');
    }

    let metadata: MetadataStore;
    let pool: pg.Pool | undefined;
    let notifier: Notifier = new LocalNotifier();
    let fillLease: FillLease = new LocalFillLease();
    let sync: (() => void) | undefined;
    if (config.metadata.driver === 'postgres') {
      // The scale-out drivers load only when configured: pg and the AWS SDK are about a third of
      // the heap a process starts with, and every full GC walks it (a blob download triggers many).
      const [{ PgFillLease }, { PgNotifier }, { createPgPool, describePgError, migrate, redact }, { PostgresMetadataStore }, { PG_MIGRATIONS }] = await Promise.all([
        import('./postgres/pg-fill-lease.js'),
        import('./postgres/pg-notifier.js'),
        import('./postgres/pg-pool.js'),
        import('./postgres/postgres-metadata-store.js'),
        import('./postgres/postgres-schema.js'),
      ]);
      const { url, poolSize } = config.metadata;
      const p = createPgPool({ url, poolSize });
      pool = p;
      closers.push(() => p.end());
      try {
        await p.query('SELECT 1');
        const { from, to } = await migrate(p, PG_MIGRATIONS);
        if (from !== to) log.info({ from, to }, 'PostgreSQL schema migrated');
        if (!options.inspect) notifier = await PgNotifier.start({ url, pool: p, log });
      } catch (e) {
        throw new StorageStartupError('PostgreSQL', (e as Error).message.startsWith('PostgreSQL:') ? (e as Error).message : describePgError(e, url), { cause: e });
      }
      const n = notifier;
      closers.push(() => n.close());
      fillLease = new PgFillLease(p);
      metadata = new PostgresMetadataStore(p);
      log.info({ url: redact(url) }, 'metadata in PostgreSQL');
    } else {
      const m = new SqliteMetadataStore(join(dataDir, 'metadata.sqlite'), { shared: worker !== undefined });
      closers.push(() => m.close());
      metadata = m;
      if (worker) {
        // Workers coordinate through the database, as replicas do through PostgreSQL.
        const c = m.coordination();
        notifier = c.notifier;
        fillLease = c.fillLease;
        sync = () => c.notifier.sync();
        closers.push(() => c.notifier.close());
      }
    }

    let blobs: BlobStore;
    let uploads: UploadStore;
    let redirect: OpenedStorage['redirect'];
    if (config.storage.driver === 's3') {
      const [{ S3BlobStore }, { S3UploadStore }] = await Promise.all([import('./s3/s3-blob-store.js'), import('./s3/s3-upload-store.js')]);
      const s = config.storage;
      const store = new S3BlobStore({
        bucket: s.bucket,
        prefix: s.prefix,
        endpoint: s.endpoint,
        region: s.region,
        forcePathStyle: s.forcePathStyle,
        partSize: s.partSizeMiB * 1024 * 1024,
        partConcurrency: s.partConcurrency,
      });
      closers.push(async () => store.s3.destroy());
      try {
        await store.ready();
      } catch (e) {
        throw new StorageStartupError('S3', (e as Error).message, { cause: e });
      }
      blobs = store;
      uploads = new S3UploadStore(pool!, store);
      if (s.redirect?.enabled) redirect = { expiresSeconds: s.redirect.expiresSeconds, minBytes: s.redirect.minBytes };
      log.info({ bucket: s.bucket, prefix: s.prefix, endpoint: s.endpoint, redirect: s.redirect?.enabled ?? false }, 'blobs in S3');
    } else {
      const fsBlobs = new FsBlobStore(dataDir, worker ? `w${worker.id}` : undefined);
      const fsUploads = new FsUploadStore(fsBlobs);
      if (!options.inspect) {
        await fsBlobs.init({ allInstances: !worker || worker.first });
        await fsUploads.init();
      }
      if (config.metadata.driver === 'postgres') {
        log.warn({}, 'blobs on the local filesystem with metadata in PostgreSQL: replicas must share the data directory');
      }
      blobs = fsBlobs;
      uploads = fsUploads;
    }

    return { blobs, uploads, metadata, notifier, fillLease, shared: config.metadata.driver === 'postgres' || worker !== undefined, redirect, sync, close };
  } catch (e) {
    await close();
    throw e;
  }
}
