import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { isRegistryError, parseDigest, type Digest } from '../../oci/index.js';
import { isNetworkError, originalError, unavailable } from '../storage-errors.js';

/** The storage slice for S3-compatible object storage (see src/config/schema.ts). */
export interface S3Options {
  readonly bucket: string;
  /** Key prefix under which customs keeps everything ('' or ending in '/'). */
  readonly prefix: string;
  /** e.g. http://127.0.0.1:7480 for Ceph RGW or MinIO; undefined = AWS. */
  readonly endpoint?: string | undefined;
  readonly region: string;
  /** Path-style URLs (bucket in the path): needed by RGW and MinIO on plain hosts. */
  readonly forcePathStyle: boolean;
  /** Multipart part size in bytes (>= 5 MiB); grows for very large blobs (S3 allows 10,000 parts). */
  readonly partSize?: number;
  /** Parts uploaded concurrently per blob. */
  readonly partConcurrency?: number;
  /** Explicit credentials (tests); otherwise the SDK's chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles, instance roles. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string } | undefined;
}

export function createS3Client(o: S3Options): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: 256 };
  const client = new S3Client({
    region: o.region,
    endpoint: o.endpoint,
    forcePathStyle: o.forcePathStyle,
    ...(o.credentials ? { credentials: o.credentials } : {}),
    // Checksums only where S3 requires them: the digest is our integrity check, and
    // default CRC32 trailers cost CPU per byte and are not understood by every S3.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { httpAgent: new HttpAgent(agentOptions), httpsAgent: new HttpsAgent(agentOptions), connectionTimeout: 5000 },
    maxAttempts: 3,
  });
  // Around the SDK's retries: what still fails because the store is away is STORAGE_UNAVAILABLE (503).
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (e) {
        throw s3StorageError(e);
      }
    },
    { step: 'initialize', name: 'customsStorageErrors', priority: 'high' },
  );
  return client;
}

/** S3 being unreachable or failing (network errors, 5xx after retries) as STORAGE_UNAVAILABLE; answers such as 404 stay as they are. */
export function s3StorageError(e: unknown): unknown {
  if (isRegistryError(e)) return e;
  const status = (e as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  if (isNetworkError(e) || (status !== undefined && status >= 500) || (e as Error | undefined)?.message === 'aborted') return unavailable('S3', e);
  return e;
}

/** The one place that knows where things sit in the bucket. */
export class S3Layout {
  constructor(readonly prefix: string) {}
  blob(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest);
    return `${this.prefix}blobs/${algorithm}/${hex.slice(0, 2)}/${hex}`;
  }
  /** Private temporary key of one `put` whose digest is not known in advance. */
  ingest(id: string): string {
    return `${this.ingestPrefix()}${id}`;
  }
  ingestPrefix(): string {
    return `${this.prefix}ingest/`;
  }
  /** The multipart upload (and, once completed, the object) of one upload session. */
  upload(id: string): string {
    return `${this.uploadsPrefix()}${id}`;
  }
  uploadsPrefix(): string {
    return `${this.prefix}uploads/`;
  }
  blobsPrefix(): string {
    return `${this.prefix}blobs/`;
  }
  /** Bytes set aside because they no longer hashed to their digest (scrub). */
  corrupt(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest);
    return `${this.corruptPrefix()}${algorithm}/${hex}`;
  }
  corruptPrefix(): string {
    return `${this.prefix}corrupt/`;
  }
}

export const isS3NotFound = (e: unknown): boolean => {
  const x = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return x?.name === 'NotFound' || x?.name === 'NoSuchKey' || x?.$metadata?.httpStatusCode === 404;
};

export const isNoSuchUpload = (e: unknown): boolean => (e as { name?: string })?.name === 'NoSuchUpload';

/** Says in words why an S3 call failed, for startup errors and logs. */
export function describeS3Error(e: unknown, o: Pick<S3Options, 'bucket' | 'endpoint'>): string {
  e = originalError(e);
  const where = `bucket ${o.bucket} at ${o.endpoint ?? 'AWS'}`;
  if (e instanceof S3ServiceException) {
    const status = e.$metadata?.httpStatusCode;
    if (status === 404 || e.name === 'NoSuchBucket' || e.name === 'NotFound') return `${where} does not exist (create it first)`;
    if (status === 403 || e.name === 'InvalidAccessKeyId' || e.name === 'SignatureDoesNotMatch' || e.name === 'AccessDenied') {
      return `${where}: access denied (${e.name}); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the bucket policy`;
    }
    if (status === 301 || e.name === 'PermanentRedirect') return `${where}: wrong region or endpoint (${e.name})`;
    return `${where}: ${e.name} (HTTP ${status ?? '?'}): ${e.message}`;
  }
  const x = e as NodeJS.ErrnoException & { errors?: NodeJS.ErrnoException[] };
  const code = x?.code ?? x?.errors?.[0]?.code;
  if (code === 'ECONNREFUSED') return `${where} is unreachable: connection refused`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `${where} is unreachable: host not found`;
  if (code === 'ETIMEDOUT' || x?.name === 'TimeoutError') return `${where} is unreachable: timed out`;
  if (x?.name === 'CredentialsProviderError') return `${where}: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)`;
  return `${where}: ${x?.message ?? String(e)}${code ? ` (${code})` : ''}`;
}
