import { err } from '../oci/index.js';
import type { RetryPolicy } from './config.js';
import { discard, isTransient, type Transport, type TransportRequest, type TransportResponse } from './http-transport.js';
import type { ProxyLogger } from './logger.js';
import { RETRY_STATUSES, withRetries } from './retry.js';

/**
 * The two habits every upstream request of customs shares, whatever the API behind
 * it (a registry's /v2/, a Hugging Face Hub's /api/ and /resolve/): idempotent
 * requests are retried (retry.ts), and redirects are followed by hand so that the
 * upstream's credentials go to its own origin only, never to the CDN or storage
 * host it redirects blob downloads to.
 */
export interface UpstreamFetcher {
  /** The upstream's configured name, for logs and messages. */
  readonly name: string;
  /** Where credentials may go: the upstream's own origin. */
  readonly origin: string;
  readonly retries: RetryPolicy;
  readonly transport: Transport;
  readonly logger: ProxyLogger;
}

export interface FollowOptions {
  readonly signal: AbortSignal;
  readonly idleMs?: number | undefined;
  /** Extra request headers (accept, user-agent); never the credentials. */
  readonly headers?: Record<string, string>;
  /** The body is a blob bound for a file (see TransportRequest.bulk). */
  readonly bulk?: boolean | undefined;
}

const MAX_REDIRECTS = 5;

/** Sends, following redirects by hand: `authorization` goes only to the upstream's own origin. */
export async function sendFollowing(f: UpstreamFetcher, method: 'GET' | 'HEAD', url: URL, authorization: string | undefined, opts: FollowOptions): Promise<TransportResponse> {
  let target = url;
  for (let hops = 0; ; hops++) {
    const headers: Record<string, string> = { 'user-agent': 'customs-proxy', ...opts.headers };
    if (authorization && target.origin === f.origin) headers.authorization = authorization;
    const res = await sendWithRetries(f, target, { method, headers, signal: opts.signal, idleMs: opts.idleMs, bulk: opts.bulk });
    const location = res.headers.location;
    if (res.status < 300 || res.status >= 400 || res.status === 304 || !location) return res;
    discard(res);
    if (hops >= MAX_REDIRECTS) throw err('UPSTREAM_UNAVAILABLE', `upstream ${f.name}: too many redirects`);
    target = new URL(location, target);
    if (target.protocol !== 'https:' && target.protocol !== 'http:') throw err('UPSTREAM_UNAVAILABLE', 'upstream redirected to a non-HTTP URL');
  }
}

/**
 * One exchange with retries (retry.ts): it resolves once response headers arrive,
 * so a body that fails mid-stream is never fetched again from here. Every request
 * customs makes upstream is a GET or HEAD, so every one is safe to repeat.
 */
export function sendWithRetries(f: UpstreamFetcher, url: URL, req: TransportRequest): Promise<TransportResponse> {
  return withRetries(() => f.transport.send(url, req), {
    policy: f.retries,
    signal: req.signal,
    retryable: (o) => {
      if ('value' in o) return RETRY_STATUSES.has(o.value.status) ? `upstream ${f.name} answered ${o.value.status}` : undefined;
      return isTransient(o.error) ? `upstream ${f.name}: ${(o.error as Error).message}` : undefined;
    },
    release: discard,
    // The URL without its query: a redirect target (a presigned CDN URL) may carry a signature there.
    onRetry: (r) => f.logger.warn({ upstream: f.name, method: req.method, url: `${url.origin}${url.pathname}`, ...r }, 'upstream request failed; retrying'),
  });
}
