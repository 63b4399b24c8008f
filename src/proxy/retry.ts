import { err } from '../oci/index.js';
import type { RetryPolicy } from './config.js';

/**
 * Retries of idempotent upstream requests (GET/HEAD of manifests, blob HEADs,
 * referrers, tokens, and a blob GET until its headers arrive: never a body that
 * has started to stream). Retried: transient connection failures and 502/503/504,
 * the statuses of a gateway or a service saying "not now". Not retried: 500 (a
 * registry's 500 is nearly always a deterministic bug or a storage fault for that
 * object, so a retry only triples the load and the wait), other 4xx (the answer
 * will not change), and 429 (the upstream asked us to slow down: the client gets
 * it, with its Retry-After, instead of us asking again at once).
 *
 * Backoff is exponential with jitter: about baseMs, 3*baseMs, 9*baseMs..., each
 * scaled by a random factor in [0.5, 1.5) so that many proxies do not retry in
 * step. Every wait ends when the caller's signal fires: the caller's deadline
 * (the header timeout) bounds the whole exchange, retries included.
 */
export const RETRY_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);
const MAX_DELAY_MS = 10_000;

/** The wait before retry number `retry` (1 = the first retry). */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  return Math.min(MAX_DELAY_MS, Math.round(policy.baseMs * 3 ** (retry - 1) * (0.5 + random())));
}

export interface RetryEvent {
  /** The try that failed (1 = the first). */
  readonly attempt: number;
  readonly attempts: number;
  /** `status 503` or the connection error's message. */
  readonly reason: string;
  readonly delayMs: number;
}

export interface RetryOptions<T> {
  readonly policy: RetryPolicy;
  readonly signal: AbortSignal;
  /** A failed outcome worth another try: why, or undefined. */
  retryable(outcome: { value: T } | { error: unknown }): string | undefined;
  /** Frees a result that is dropped for a retry (a response body to discard). */
  release?(value: T): void;
  onRetry?(event: RetryEvent): void;
  random?: () => number;
}

/** Runs `attempt` until it succeeds, fails for good, runs out of tries or out of time. */
export async function withRetries<T>(attempt: () => Promise<T>, opts: RetryOptions<T>): Promise<T> {
  const { policy, signal } = opts;
  for (let n = 1; ; n++) {
    let reason: string | undefined;
    try {
      const value = await attempt();
      reason = n < policy.attempts ? opts.retryable({ value }) : undefined;
      if (reason === undefined) return value;
      opts.release?.(value);
    } catch (e) {
      reason = n < policy.attempts && !signal.aborted ? opts.retryable({ error: e }) : undefined;
      if (reason === undefined) throw e;
    }
    const delayMs = backoffMs(policy, n, opts.random);
    opts.onRetry?.({ attempt: n, attempts: policy.attempts, reason, delayMs });
    await sleep(delayMs, signal, reason);
  }
}

/** Waits `ms`, or rejects when `signal` fires first: no retry outlives the caller's deadline. */
function sleep(ms: number, signal: AbortSignal, reason: string): Promise<void> {
  const outOfTime = () => err('UPSTREAM_UNAVAILABLE', `${reason}; no time left for another try`);
  if (signal.aborted) return Promise.reject(outOfTime());
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(outOfTime());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * An upstream's `Retry-After` (RFC 9110 §10.2.3: delay-seconds or an HTTP-date) in
 * whole seconds, clamped to 1..3600 so a confused upstream can neither make clients
 * hammer nor park them for days. Undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  let seconds: number;
  if (/^\d+$/.test(v)) seconds = Number(v);
  else {
    const at = Date.parse(v);
    if (!Number.isFinite(at)) return undefined;
    seconds = Math.ceil((at - now) / 1000);
  }
  return Math.min(3600, Math.max(1, seconds));
}
