import { z } from 'zod';

/**
 * Configuration of the scale-out drivers (issue 7): blobs in S3-compatible object
 * storage, metadata (and upload sessions, fill leases, cache notifications) in
 * PostgreSQL. S3 credentials come from the environment (AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY, or the SDK's other sources: profiles, instance roles),
 * never from this file; a PostgreSQL password may be left out of `url` and given
 * as PGPASSWORD.
 */

/** `storage.redirect` of the S3 driver (see the field's comment in s3StorageSchema). */
export const s3RedirectSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** Lifetime of a presigned URL; also how long a quarantined blob stays downloadable through a URL already handed out. */
    expiresSeconds: z.number().int().min(1).max(3600).default(60),
    /** Smaller blobs are streamed: for them the extra round trip costs more than streaming through customs. */
    minBytes: z.number().int().min(0).default(1024 * 1024),
  })
  .strict();

export const s3StorageSchema = z
  .object({
    driver: z.literal('s3'),
    bucket: z.string().min(3).max(63),
    /** Key prefix for everything customs stores ('' = the bucket's root). */
    prefix: z
      .string()
      .default('customs/')
      .refine((p) => p === '' || (p.endsWith('/') && !p.startsWith('/')), 'expected "" or a prefix ending in "/" (not starting with "/")'),
    /** e.g. http://rgw.internal:7480 (Ceph RGW, MinIO); leave out for AWS. */
    endpoint: z.url().optional(),
    region: z.string().min(1).default('us-east-1'),
    /** Bucket in the path instead of the host name: needed by RGW and MinIO without wildcard DNS. */
    forcePathStyle: z.boolean().default(false),
    /** Multipart part size; grows automatically past 1,000 parts. */
    partSizeMiB: z.number().int().min(5).max(5120).default(8),
    /** Parts uploaded concurrently per blob (memory per upload: (n + 1) x part size). */
    partConcurrency: z.number().int().min(1).max(64).default(4),
    /**
     * Blob GETs answered with `307 Temporary Redirect` to a presigned S3 URL (as CNCF
     * distribution's `storage.redirect`): the client downloads straight from the
     * object store after customs has checked access and the gate. HEAD is never
     * redirected. Off by default: clients must be able to reach `endpoint` (the
     * URL names it), and a presigned URL stays valid after a quarantine until it
     * expires (up to `expiresSeconds`), so keep that short. Left out = off.
     */
    redirect: s3RedirectSchema.optional(),
  })
  .strict();

export const postgresMetadataSchema = z
  .object({
    driver: z.literal('postgres'),
    /** postgres://user@host:5432/db (libpq's PG* environment variables fill what is left out). */
    url: z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgres:// URL'),
    /** Connections per replica. */
    poolSize: z.number().int().min(2).max(500).default(20),
  })
  .strict();

export type S3StorageConfig = z.infer<typeof s3StorageSchema>;
export type S3RedirectConfig = z.infer<typeof s3RedirectSchema>;
export type PostgresMetadataConfig = z.infer<typeof postgresMetadataSchema>;
