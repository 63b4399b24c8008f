import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { Leftover } from '../leftovers.js';
import { Digester, isDigest, parseDigest, type Digest } from '../../oci/index.js';
import type { BlobCheck, SetAsideBlob } from '../integrity.js';
import type { S3BlobStore } from './s3-blob-store.js';
import { isS3NotFound, s3StorageError } from './s3-client.js';
import { copyObject } from './s3-multipart.js';

/** Re-reads the object with one GET and hashes it; the ETag names the bytes read. */
export async function checkObject(store: S3BlobStore, digest: Digest, pace?: (n: number) => Promise<void>): Promise<BlobCheck> {
  const { algorithm } = parseDigest(digest);
  let body: Readable;
  let etag: string;
  try {
    const r = await store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: store.layout.blob(digest) }));
    body = r.Body as Readable;
    etag = r.ETag ?? '';
  } catch (e) {
    if (isS3NotFound(e)) return { state: 'missing' };
    throw e;
  }
  const d = new Digester(algorithm);
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      d.update(chunk);
      await pace?.(chunk.byteLength);
    }
  } catch (e) {
    throw s3StorageError(e);
  }
  const actual = d.digest();
  return actual === digest ? { state: 'ok', size: d.size } : { state: 'corrupt', size: d.size, actual, identity: etag };
}

/**
 * Copies the object to `corrupt/` (server-side) and deletes it from `blobs/`; with `identity`,
 * only if its ETag is still the one checked. S3 has no conditional delete: good bytes stored
 * between the HEAD and the DELETE would go too (the next read fills or reports them again).
 */
export async function setAsideObject(store: S3BlobStore, digest: Digest, identity?: string): Promise<boolean> {
  const key = store.layout.blob(digest);
  let head;
  try {
    head = await store.s3.send(new HeadObjectCommand({ Bucket: store.bucket, Key: key }));
  } catch (e) {
    if (isS3NotFound(e)) return false;
    throw e;
  }
  if (identity !== undefined && (head.ETag ?? '') !== identity) return false;
  await copyObject(store.s3, store.bucket, key, store.layout.corrupt(digest), head.ContentLength ?? 0);
  await store.deleteKey(key);
  return true;
}

export async function objectWasSetAside(store: S3BlobStore, digest: Digest): Promise<boolean> {
  return (await store.objectSize(store.layout.corrupt(digest))) !== undefined;
}

export async function* listSetAsideObjects(store: S3BlobStore): AsyncIterable<SetAsideBlob> {
  const prefix = store.layout.corruptPrefix();
  let token: string | undefined;
  do {
    const page = await store.s3.send(new ListObjectsV2Command({ Bucket: store.bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const [algorithm, hex, ...rest] = (o.Key ?? '').slice(prefix.length).split('/');
      const digest = `${algorithm}:${hex}`;
      if (rest.length > 0 || !isDigest(digest)) continue;
      yield { digest: digest as Digest, size: o.Size ?? 0, at: o.LastModified?.getTime() ?? 0 };
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

/** Multipart uploads on blob and ingest keys (a `put` in progress or abandoned) and ingest objects. */
export async function* listLeftovers(store: S3BlobStore): AsyncIterable<Leftover> {
  const { layout } = store;
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  do {
    const r = await store.s3.send(new ListMultipartUploadsCommand({ Bucket: store.bucket, Prefix: layout.prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
    for (const u of r.Uploads ?? []) {
      const key = u.Key ?? '';
      if (key.startsWith(layout.blobsPrefix()) || key.startsWith(layout.ingestPrefix())) yield { kind: 'multipart', name: key.slice(layout.prefix.length), since: u.Initiated?.getTime() ?? 0 };
    }
    keyMarker = r.IsTruncated ? r.NextKeyMarker : undefined;
    uploadIdMarker = r.IsTruncated ? r.NextUploadIdMarker : undefined;
  } while (keyMarker);
  let token: string | undefined;
  do {
    const page = await store.s3.send(new ListObjectsV2Command({ Bucket: store.bucket, Prefix: layout.ingestPrefix(), ContinuationToken: token }));
    for (const o of page.Contents ?? []) yield { kind: 'ingest', name: (o.Key ?? '').slice(layout.prefix.length), since: o.LastModified?.getTime() ?? 0 };
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}
