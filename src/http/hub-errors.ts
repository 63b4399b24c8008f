import { isRegistryError } from '../oci/index.js';
import { toHttpError } from './errors.js';

/**
 * Errors as a Hugging Face Hub answers them, because that is what huggingface_hub turns
 * into the exception its user sees (utils/_http.py `hf_raise_for_status`): the status
 * (errors.ts's, the one mapping of codes to statuses, with one exception below), an
 * `X-Error-Code` for the cases the client tells apart, the message in `X-Error-Message`
 * and in a JSON body `{"error": ...}`.
 *
 * - NAME_UNKNOWN -> 404 RepoNotFound, MANIFEST_UNKNOWN -> 404 RevisionNotFound,
 *   BLOB_UNKNOWN -> 404 EntryNotFound (with `X-Repo-Commit`: the client caches the absence).
 * - DENIED by the policy or a quarantine -> 403 GatedRepo: the client raises GatedRepoError
 *   with customs' message (the failed rules) at once, where a plain 403 would be reported
 *   as "check your connection" after a look in its local cache.
 * - DIGEST_INVALID here only ever means an upstream sent wrong bytes: 502, not 400.
 */
export interface HubHttpError {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly internal: boolean;
  readonly message: string;
}

export function toHubError(e: unknown): HubHttpError {
  const http = toHttpError(e);
  if (!isRegistryError(e)) return { status: http.status, headers: {}, body: JSON.stringify({ error: 'internal error' }), internal: true, message: 'internal error' };
  let status = http.status;
  let message = e.message;
  const headers: Record<string, string> = {};
  const detail = (e.detail ?? {}) as { failed?: unknown[]; quarantined?: unknown[]; commit?: string; retryAfter?: number; challenge?: string };
  switch (e.code) {
    case 'NAME_UNKNOWN':
      headers['x-error-code'] = 'RepoNotFound';
      break;
    case 'MANIFEST_UNKNOWN':
      headers['x-error-code'] = 'RevisionNotFound';
      break;
    case 'BLOB_UNKNOWN':
      headers['x-error-code'] = 'EntryNotFound';
      if (typeof detail.commit === 'string') headers['x-repo-commit'] = detail.commit;
      break;
    case 'DENIED':
      if (detail.failed || detail.quarantined) headers['x-error-code'] = 'GatedRepo';
      break;
    case 'DIGEST_INVALID':
      status = 502;
      break;
    case 'TOOMANYREQUESTS':
      if (typeof detail.retryAfter === 'number') headers['retry-after'] = String(detail.retryAfter);
      break;
    case 'UNAUTHORIZED':
      // The client reports exactly this text as a bad token rather than as a missing repository.
      if (/invalid credentials/i.test(message)) message = 'Invalid credentials in Authorization header';
      else message = `${message}: set HF_TOKEN to a customs token`;
      break;
    default:
      break;
  }
  headers['x-error-message'] = headerText(message);
  return { status, headers, body: JSON.stringify({ error: message }), internal: http.internal, message };
}

/** One line of visible ASCII, short enough for any proxy in between. */
const headerText = (s: string): string => s.replace(/[^\x20-\x7e]+/g, ' ').slice(0, 2000);
