import { ERROR_CODES, RegistryError, type ErrorCode } from './errors.js';
import { errorBodySchema } from './schemas.js';

/**
 * The response header customs puts the reason of a refusal in, for answers without a body
 * (a HEAD), so that a client can say why it was refused.
 */
export const DENIED_REASON_HEADER = 'customs-denied-reason';

/** The closest code for a status when the body names none. */
function statusCode(status: number): ErrorCode {
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'DENIED';
  if (status === 404) return 'NAME_UNKNOWN';
  if (status === 413) return 'TOO_LARGE';
  if (status === 416) return 'RANGE_INVALID';
  if (status === 429) return 'TOOMANYREQUESTS';
  if (status >= 500) return 'UPSTREAM_UNAVAILABLE';
  return 'INTERNAL';
}

/**
 * A failed response as a RegistryError carrying the server's reason: the spec's error body
 * (`{"errors":[{code, message, detail}]}`, every error's message), else the refusal header a
 * HEAD answer carries, else the raw text, else the status line. `what` names the request.
 */
export function wireError(what: string, status: number, statusText: string, body: string, deniedReason?: string | null): RegistryError {
  let code = statusCode(status);
  let reason = body.trim().slice(0, 500);
  let detail: unknown;
  try {
    const parsed = errorBodySchema.parse(JSON.parse(body));
    const first = parsed.errors[0];
    if (first) {
      if ((ERROR_CODES as readonly string[]).includes(first.code)) code = first.code as ErrorCode;
      reason = parsed.errors.map((e) => `${e.code}: ${e.message ?? ''}`.trim()).join('; ');
      detail = parsed.errors.length === 1 ? first.detail : parsed.errors.map((e) => e.detail);
    }
  } catch {
    // not a spec error body: the raw text, if any, is the reason
  }
  if (!reason && deniedReason) reason = `${code}: ${deniedReason}`;
  return new RegistryError(code, `${what} failed (HTTP ${status}): ${reason || statusText || 'no reason given'}`, detail);
}
