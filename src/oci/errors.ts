/**
 * The one error vocabulary of customs. Code below `src/http` throws or returns
 * `RegistryError` with one of these codes; `src/http/errors.ts` maps each code to
 * its HTTP status once. Codes are those of the OCI Distribution Spec
 * ("Error Codes"), plus a few of our own for conditions the spec has no code for.
 */
export const ERROR_CODES = [
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
  // Not in the spec's table; mapped to the status the spec prescribes for the situation.
  'RANGE_INVALID', // 416 on out-of-order chunk or unsatisfiable Range
  'TOO_LARGE', // 413 for bodies over a limit (manifests over 4 MiB)
  'METHOD_NOT_ALLOWED', // 405: the route exists, the method does not
  'UPSTREAM_UNAVAILABLE', // 502/504 when an upstream fails and nothing local can answer
  'STORAGE_FULL', // 507: the registry's own disk (or quota) is full; nothing partial was kept
  'STORAGE_UNAVAILABLE', // 503: the metadata database or the object store is unreachable right now
  'CONTENT_CORRUPT', // 500: stored bytes no longer match their digest; they are never served
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly detail: unknown;
  constructor(code: ErrorCode, message: string, detail?: unknown) {
    super(message);
    this.name = 'RegistryError';
    this.code = code;
    this.detail = detail;
  }
}

export const isRegistryError = (e: unknown): e is RegistryError => e instanceof RegistryError;

/** Shorthand used across services: `throw err('BLOB_UNKNOWN', 'blob unknown to registry')`. */
export const err = (code: ErrorCode, message: string, detail?: unknown): RegistryError =>
  new RegistryError(code, message, detail);
