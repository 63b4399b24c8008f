import type { Digest } from '../oci/index.js';

/**
 * Optional capability (DESIGN: "a redirect is an optional capability that returns
 * a URL"): a short-lived URL from which a client can fetch the blob's bytes
 * itself, so they need not pass through a replica. S3 implements it with a
 * presigned GET (Range requests work on it). The registry decides, after the
 * gate allowed the read, whether to answer 307 with it or stream.
 */
export interface BlobRedirect {
  /** A URL valid for `expiresInSeconds`; no existence check (the caller has stat'ed the blob). */
  redirectUrl(digest: Digest, expiresInSeconds: number): Promise<string>;
}

export const hasRedirect = (s: object): s is BlobRedirect => typeof (s as Partial<BlobRedirect>).redirectUrl === 'function';
