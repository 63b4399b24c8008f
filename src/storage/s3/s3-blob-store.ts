import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Digester, err, isDigest, parseDigest, type Digest } from '../../oci/index.js';
import type { BlobInfo, BlobLister, BlobPutOptions, BlobStore, ByteRange, StoredBlob } from '../blob-store.js';
import type { BlobRedirect } from '../blob-redirect.js';
import { createS3Client, describeS3Error, isS3NotFound, s3StorageError, S3Layout, type S3Options } from './s3-client.js';
import { drainOrDestroy, translateStreamErrors } from '../storage-errors.js';
import type { BlobCheck, BlobIntegrity, SetAsideBlob } from '../integrity.js';
import { checkObject, listLeftovers, listSetAsideObjects, objectWasSetAside, setAsideObject } from './s3-integrity.js';
import type { Leftover, LeftoverLister } from '../leftovers.js';
import { abortMultipart, BufferPool, completeMultipart, copyObject, createMultipart, DEFAULT_PART, MIN_PART, PartFiller, PartUploader, partSizeFor } from './s3-multipart.js';

/**
 * Content-addressed blobs in an S3 bucket under a prefix.
 *
 * `put` streams the body into part-sized buffers taken from a pool (reused, never
 * the whole blob), hashing as bytes arrive, with at most `partConcurrency` parts
 * uploading. Nothing unverified is ever visible under a digest's key:
 * - a blob smaller than one part is hashed in its buffer and written with one PutObject
 *   only after its digest verified;
 * - with the expected digest known (every registry push and pull-through fill), the
 *   multipart upload targets the final key and is completed only after the digest
 *   verified (an incomplete multipart upload is invisible), else aborted;
 * - otherwise it goes to a private `ingest/` key and is copied into place server-side.
 */
export class S3BlobStore implements BlobStore, BlobRedirect, BlobLister, BlobIntegrity, LeftoverLister {
  readonly s3: S3Client;
  readonly layout: S3Layout;
  readonly bucket: string;
  readonly pool: BufferPool;
  readonly partSize: number;
  readonly concurrency: number;

  constructor(
    readonly options: S3Options,
    client?: S3Client,
  ) {
    this.s3 = client ?? createS3Client(options);
    this.bucket = options.bucket;
    this.layout = new S3Layout(options.prefix);
    this.partSize = Math.max(MIN_PART, options.partSize ?? DEFAULT_PART);
    this.concurrency = Math.max(1, options.partConcurrency ?? 4);
    this.pool = new BufferPool(this.partSize, 4 * (this.concurrency + 1));
  }

  /** Checks the bucket is reachable with these credentials; throws an Error that says why not. */
  async ready(): Promise<void> {
    try {
      await this.s3.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (e) {
      throw new Error(`S3: ${describeS3Error(e, this.options)}`, { cause: e });
    }
  }

  async stat(digest: Digest): Promise<BlobInfo | undefined> {
    const size = await this.objectSize(this.layout.blob(digest));
    return size === undefined ? undefined : { digest, size };
  }

  async objectSize(key: string): Promise<number | undefined> {
    try {
      const r = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return r.ContentLength ?? 0;
    } catch (e) {
      if (isS3NotFound(e)) return undefined;
      throw e;
    }
  }

  async get(digest: Digest, range?: ByteRange): Promise<Readable | undefined> {
    return this.getObject(this.layout.blob(digest), range);
  }

  async getObject(key: string, range?: ByteRange): Promise<Readable | undefined> {
    try {
      const r = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range ? `bytes=${range.start}-${range.end}` : undefined }));
      // In Node the SDK's body is the IncomingMessage itself; when S3 goes away mid-body, say so (503), not "aborted".
      return translateStreamErrors(r.Body as Readable, s3StorageError);
    } catch (e) {
      if (isS3NotFound(e)) return undefined;
      throw e;
    }
  }

  async put(source: Readable, options: BlobPutOptions = {}): Promise<BlobInfo> {
    const algorithm = options.expected ? parseDigest(options.expected).algorithm : 'sha256';
    const digester = new Digester(algorithm);
    const maxSize = options.maxSize ?? Number.MAX_SAFE_INTEGER;
    const limit = Math.min(maxSize, options.expectedSize ?? Number.MAX_SAFE_INTEGER);
    const key = options.expected ? this.layout.blob(options.expected) : this.layout.ingest(randomBytes(12).toString('hex'));
    let uploader: PartUploader | undefined;
    let partNumber = 0;
    const emit = async (buf: Buffer): Promise<void> => {
      uploader ??= new PartUploader(this.s3, this.bucket, key, await createMultipart(this.s3, this.bucket, key), this.concurrency);
      await uploader.upload(++partNumber, buf, () => this.pool.give(buf));
    };
    const filler = new PartFiller(() => this.pool.take(partSizeFor(this.partSize, partNumber + 1)), emit);
    let size = 0;
    try {
      // Not destroyed when the loop is left on an error: a store that is away answers 503, and the client must read it.
      for await (const chunk of source.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        size += chunk.byteLength;
        if (size > limit) {
          throw size > maxSize
            ? err('TOO_LARGE', `body exceeds the limit of ${maxSize} bytes`)
            : err('SIZE_INVALID', `blob is longer than the ${options.expectedSize} bytes declared`);
        }
        digester.update(chunk);
        await filler.write(chunk);
      }
      if (options.expectedSize !== undefined && size !== options.expectedSize) {
        throw err('SIZE_INVALID', `blob is ${size} bytes, expected ${options.expectedSize}`);
      }
      const digest = digester.digest();
      if (options.expected && digest !== options.expected) {
        throw err('DIGEST_INVALID', `content digest ${digest} does not match ${options.expected}`);
      }
      const finalKey = this.layout.blob(digest);
      const last = filler.leftover();
      if (!uploader) {
        // The whole blob fit in one buffer and is verified: one PutObject, straight into place.
        await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: finalKey, Body: last, ContentLength: last.byteLength }));
        return { digest, size };
      }
      const mp: PartUploader = uploader;
      if (last.byteLength > 0) {
        const owner = filler.detach()!;
        await mp.upload(++partNumber, last, () => this.pool.give(owner));
      }
      const parts = await mp.drain();
      if ((await this.objectSize(finalKey)) === size) {
        await abortMultipart(this.s3, this.bucket, key, mp.uploadId); // already stored by someone else
        return { digest, size };
      }
      await completeMultipart(this.s3, this.bucket, key, mp.uploadId, parts);
      if (key !== finalKey) await this.commitObject(key, finalKey, size);
      return { digest, size };
    } catch (e) {
      drainOrDestroy(source, e);
      const mp = uploader as PartUploader | undefined;
      if (mp) {
        await mp.drain().catch(() => undefined);
        await abortMultipart(this.s3, this.bucket, key, mp.uploadId).catch(() => undefined);
      }
      throw e;
    } finally {
      const b = filler.detach();
      if (b) this.pool.give(b);
    }
  }

  /**
   * A presigned GET of the blob's key (SigV4 in the query, payload unsigned), built
   * by the SDK's own endpoint resolution and signer: the command runs through the
   * client's middleware up to signing, and is presigned there instead of sent.
   */
  async redirectUrl(digest: Digest, expiresInSeconds: number): Promise<string> {
    const cmd = new GetObjectCommand({ Bucket: this.bucket, Key: this.layout.blob(digest) });
    const signer = (await (this.s3.config as unknown as { signer: () => Promise<Presigner> }).signer()) as Presigner;
    cmd.middlewareStack.addRelativeTo(
      () => async (args: { request: unknown }) => {
        const req = args.request as SignableRequest;
        for (const h of Object.keys(req.headers)) if (h.startsWith('amz-sdk-') || h === 'x-amz-user-agent') delete req.headers[h];
        req.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        const presigned = await signer.presign(req, {
          expiresIn: expiresInSeconds,
          signingRegion: this.options.region,
          signingService: 's3',
          unsignableHeaders: new Set(['x-amz-content-sha256', 'user-agent']),
        });
        return { response: {}, output: { $metadata: {}, presigned } };
      },
      { name: 'customsPresign', relation: 'before', toMiddleware: 'httpSigningMiddleware', override: true },
    );
    const out = (await this.s3.send(cmd)) as unknown as { presigned: SignableRequest };
    const p = out.presigned;
    const query = Object.entries(p.query ?? {})
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join('&');
    return `${p.protocol}//${p.hostname}${p.port ? `:${p.port}` : ''}${p.path}${query ? `?${query}` : ''}`;
  }

  /** Moves a complete, verified object from a private key into place and removes the private copy. */
  async commitObject(from: string, to: string, size: number): Promise<void> {
    if ((await this.objectSize(to)) !== size) await copyObject(this.s3, this.bucket, from, to, size);
    await this.deleteKey(from);
  }

  async deleteKey(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /** Every object under blobs/, a page (1,000 keys) at a time; keys that are not `<algorithm>/<2 hex>/<hex>` are skipped. */
  async *list(): AsyncIterable<StoredBlob> {
    const prefix = this.layout.blobsPrefix();
    let token: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        const [algorithm, shard, hex, ...rest] = (o.Key ?? '').slice(prefix.length).split('/');
        const digest = `${algorithm}:${hex}`;
        if (rest.length > 0 || !shard || !hex?.startsWith(shard) || !isDigest(digest)) continue;
        yield { digest: digest as Digest, size: o.Size ?? 0, modifiedAt: o.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  check(digest: Digest, pace?: (bytes: number) => Promise<void>): Promise<BlobCheck> {
    return checkObject(this, digest, pace);
  }

  setAside(digest: Digest, identity?: string): Promise<boolean> {
    return setAsideObject(this, digest, identity);
  }

  wasSetAside(digest: Digest): Promise<boolean> {
    return objectWasSetAside(this, digest);
  }

  listSetAside(): AsyncIterable<SetAsideBlob> {
    return listSetAsideObjects(this);
  }

  /** Multipart uploads of `put` (on blob and ingest keys) and ingest objects: in progress, or left by a failure (upload expiry sweeps them). */
  leftovers(): AsyncIterable<Leftover> {
    return listLeftovers(this);
  }

  async delete(digest: Digest): Promise<boolean> {
    const key = this.layout.blob(digest);
    // S3's DELETE answers 204 whether or not the key existed.
    if ((await this.objectSize(key)) === undefined) return false;
    await this.deleteKey(key);
    return true;
  }
}

/** The parts of the SDK's HttpRequest and SigV4 signer that presigning uses. */
interface SignableRequest {
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
}
interface Presigner {
  presign(req: SignableRequest, o: { expiresIn: number; signingRegion: string; signingService: string; unsignableHeaders: Set<string> }): Promise<SignableRequest>;
}
