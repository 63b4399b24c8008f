import { isRegistryError, type ErrorCode } from '../oci/index.js';

/** The one place that maps error codes to HTTP statuses (distribution spec, "Error Codes"). */
const STATUS: Record<ErrorCode, number> = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  // The spec's endpoint table allows only 400/404 where UNSUPPORTED arises (digest algorithms).
  UNSUPPORTED: 400,
  TOOMANYREQUESTS: 429,
  RANGE_INVALID: 416,
  TOO_LARGE: 413,
  METHOD_NOT_ALLOWED: 405,
  UPSTREAM_UNAVAILABLE: 502,
  // RFC 4918's status for a server that cannot store the representation (distribution answers 500).
  STORAGE_FULL: 507,
  STORAGE_UNAVAILABLE: 503,
  CONTENT_CORRUPT: 500,
  INTERNAL: 500,
};

/** Codes the spec does not define are reported under the closest spec code. */
const WIRE_CODE: Partial<Record<ErrorCode, string>> = {
  RANGE_INVALID: 'BLOB_UPLOAD_INVALID',
  TOO_LARGE: 'SIZE_INVALID',
  METHOD_NOT_ALLOWED: 'UNSUPPORTED',
  UPSTREAM_UNAVAILABLE: 'UNKNOWN',
  // distribution's errcode.ErrorCodeUnavailable.
  STORAGE_UNAVAILABLE: 'UNAVAILABLE',
  STORAGE_FULL: 'UNKNOWN',
  CONTENT_CORRUPT: 'UNKNOWN',
  INTERNAL: 'UNKNOWN',
};

export interface HttpError {
  readonly status: number;
  readonly body: string;
  readonly internal: boolean;
  /**
   * How the refusal is logged: a bug gets its stack (`internal`); what an operator must act on
   * (a full disk, corrupt content) is an error line, a store that is briefly away a warning,
   * and whatever the client got wrong stays at debug.
   */
  readonly level: 'error' | 'warn' | 'debug';
}

const LEVEL: Partial<Record<ErrorCode, 'error' | 'warn'>> = {
  INTERNAL: 'error',
  STORAGE_FULL: 'error',
  CONTENT_CORRUPT: 'error',
  STORAGE_UNAVAILABLE: 'warn',
};

/** Spec error body for any thrown value; unknown errors become a 500 without details. */
export function toHttpError(e: unknown): HttpError {
  if (isRegistryError(e)) {
    const code = WIRE_CODE[e.code] ?? e.code;
    const error: Record<string, unknown> = { code, message: e.message };
    if (e.detail !== undefined) error.detail = e.detail;
    return { status: STATUS[e.code], body: JSON.stringify({ errors: [error] }), internal: e.code === 'INTERNAL', level: LEVEL[e.code] ?? 'debug' };
  }
  return {
    status: 500,
    body: JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'internal error' }] }),
    internal: true,
    level: 'error',
  };
}
