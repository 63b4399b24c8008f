import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { inject } from 'vitest';
import { startCephRgw, type CephRgw, type ScaleoutInfo } from './ceph.js';
import { startPostgres } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    scaleout: ScaleoutInfo | null;
  }
}

/** A fresh database and bucket on the run's PostgreSQL and RGW, for one test file. */
export interface ScaleoutEnv {
  readonly pgUrl: string;
  readonly s3: Omit<CephRgw, 'stop'>;
  readonly bucket: string;
  /** Another empty database on the same server. */
  newDatabase(name: string): Promise<string>;
  /** Stops servers this file started itself (none when the global setup provided them). */
  stop(): Promise<void>;
}

/**
 * PostgreSQL and Ceph RGW for a scale-out test file: those started once by the
 * global setup when it ran (vitest.config.ts), else started here for this file.
 */
export async function scaleoutEnv(name: string): Promise<ScaleoutEnv> {
  const shared = inject('scaleout');
  let stop = async (): Promise<void> => undefined;
  let info: ScaleoutInfo;
  if (shared) info = shared;
  else {
    const [pgR, cephR] = await Promise.allSettled([startPostgres(), startCephRgw()]);
    if (pgR.status === 'rejected' || cephR.status === 'rejected') {
      if (pgR.status === 'fulfilled') await pgR.value.stop();
      if (cephR.status === 'fulfilled') await cephR.value.stop();
      throw pgR.status === 'rejected' ? pgR.reason : (cephR as PromiseRejectedResult).reason;
    }
    const [pgServer, ceph] = [pgR.value, cephR.value];
    info = { pgPort: pgServer.port, s3: ceph };
    stop = async () => {
      await Promise.all([pgServer.stop(), ceph.stop()]);
    };
  }
  const unique = (n: string) => `${n}-${randomBytes(4).toString('hex')}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  const newDatabase = async (n: string): Promise<string> => {
    const db = unique(n);
    const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${info.pgPort}/postgres` });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${db}"`);
    await admin.end();
    return `postgres://postgres@127.0.0.1:${info.pgPort}/${db}`;
  };
  const pgUrl = await newDatabase(name);
  const suffix = pgUrl.slice(pgUrl.lastIndexOf('/') + 1);
  const s3 = new S3Client({
    endpoint: info.s3.endpoint,
    region: info.s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: info.s3.accessKeyId, secretAccessKey: info.s3.secretAccessKey },
  });
  await s3.send(new CreateBucketCommand({ Bucket: suffix }));
  s3.destroy();
  return { pgUrl, s3: info.s3, bucket: suffix, newDatabase, stop };
}
