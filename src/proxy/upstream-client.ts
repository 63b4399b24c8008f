import { z } from 'zod';
import {
  MANIFEST_MEDIA_TYPES,
  MAX_MANIFEST_BYTES,
  bareMediaType,
  digestOf,
  err,
  parseDigest,
  referrersIndexSchema,
  type Digest,
  type ImageIndex,
} from '../oci/index.js';
import { TokenCache, basicHeader, loadSecret, pickChallenge, tokenResponseSchema, type Challenge } from './auth.js';
import type { UpstreamConfig } from './config.js';
import type { UpstreamHealth } from './upstream-health.js';
import { discard, isTransient, normalise, readBody, type Transport, type TransportRequest, type TransportResponse } from './http-transport.js';
import type { ProxyLogger } from './logger.js';
import { parseRetryAfter } from './retry.js';
import { sendFollowing, sendWithRetries, type UpstreamFetcher } from './upstream-fetch.js';

/**
 * A client of one upstream registry: the Distribution API calls pull-through needs,
 * with bearer/basic auth, manual redirects and timeouts. Every call takes an
 * AbortSignal that bounds it end to end (token fetches included), so the caller
 * decides how long a client may wait.
 */
export const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');
const MAX_TOKEN_BYTES = 1024 * 1024;

export interface FetchedManifest {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly bytes: Buffer;
}

export interface ManifestHead {
  /** Undefined when the upstream sends no Docker-Content-Digest. */
  readonly digest: Digest | undefined;
  readonly mediaType: string;
  readonly size: number | undefined;
}

/** Pages of an upstream tag list followed at most (a page is whatever size the upstream chose). */
const MAX_TAG_PAGES = 100;
const tagListBodySchema = z.object({ tags: z.array(z.string()).nullish() });

export interface RequestOptions {
  readonly signal: AbortSignal;
  readonly idleMs?: number;
  readonly accept?: string;
  /** The body is a blob bound for a file (see TransportRequest.bulk). */
  readonly bulk?: boolean;
}

export class UpstreamClient {
  readonly config: UpstreamConfig;
  private readonly origin: string;
  private readonly tokens: TokenCache;
  /** The last bearer challenge's realm and service: lets later requests fetch a token before the 401. */
  private bearer: { realm: string; service: string | undefined } | undefined;
  /** Set once the upstream asked for Basic: later requests send it up front. */
  private basicWanted = false;
  private readonly fetcher: UpstreamFetcher;

  constructor(
    config: UpstreamConfig,
    private readonly transport: Transport,
    private readonly logger: ProxyLogger,
    private readonly clock: () => number,
    private readonly health?: UpstreamHealth,
  ) {
    this.config = config;
    this.origin = new URL(config.url).origin;
    this.tokens = new TokenCache(clock);
    this.fetcher = { name: config.name, origin: this.origin, retries: config.retries, transport, logger };
  }

  /** GET or HEAD `/v2/<remote>/<path>`, authenticated, redirects followed. */
  async request(method: 'GET' | 'HEAD', remote: string, path: string, opts: RequestOptions): Promise<TransportResponse> {
    try {
      const res = await this.exchange(method, remote, path, opts);
      // Health for operators: an answer is health unless it is a server error, a rate limit or refused credentials.
      if (res.status >= 500 || res.status === 429 || res.status === 401) this.health?.failed(this.config.name, `${method} ${remote}/${path} answered ${res.status}`);
      else this.health?.ok(this.config.name);
      return res;
    } catch (e) {
      if (!opts.signal.aborted) this.health?.failed(this.config.name, e instanceof Error ? e.message : String(e));
      throw e;
    }
  }

  private async exchange(method: 'GET' | 'HEAD', remote: string, path: string, opts: RequestOptions): Promise<TransportResponse> {
    const url = new URL(`${this.config.url}/v2/${remote}/${path}`);
    const scope = `repository:${remote}:pull`;
    let auth = await this.authorization(scope, undefined, opts.signal);
    for (let attempt = 0; ; attempt++) {
      const res = await this.follow(method, url, auth, opts);
      if (res.status !== 401 || attempt > 0) return res;
      const challenge = pickChallenge(res.headersDistinct['www-authenticate']);
      discard(res);
      if (!challenge) return res;
      const next = await this.authorization(scope, challenge, opts.signal);
      if (next === undefined || next === auth) return res;
      auth = next;
    }
  }

  /** Sends, following redirects by hand: Authorization goes only to the upstream's own origin (upstream-fetch.ts). */
  private follow(method: 'GET' | 'HEAD', url: URL, auth: string | undefined, opts: RequestOptions): Promise<TransportResponse> {
    return sendFollowing(this.fetcher, method, url, auth, { signal: opts.signal, idleMs: opts.idleMs, bulk: opts.bulk, ...(opts.accept ? { headers: { accept: opts.accept } } : {}) });
  }

  /** One exchange with retries (upstream-fetch.ts): never a body that has started to stream. */
  private send(url: URL, req: TransportRequest): Promise<TransportResponse> {
    return sendWithRetries(this.fetcher, url, req);
  }

  /** The Authorization header for `scope`: a cached or fresh bearer token, Basic, or nothing. */
  private async authorization(scope: string, challenge: Challenge | undefined, signal: AbortSignal): Promise<string | undefined> {
    const secret = await loadSecret(this.config.credentials, this.config.name);
    if (secret?.kind === 'bearer') return `Bearer ${secret.value}`;
    if (challenge?.scheme === 'basic') {
      this.basicWanted = true;
      return secret ? basicHeader(secret.value) : undefined;
    }
    if (challenge?.scheme === 'bearer' && challenge.params.realm) {
      this.bearer = { realm: challenge.params.realm, service: challenge.params.service };
      const key = TokenCache.key(challenge.params.realm, challenge.params.service, challenge.params.scope ?? scope);
      this.tokens.delete(key); // a 401 means the cached token (if any) no longer works
      return this.token(key, challenge.params.realm, challenge.params.service, challenge.params.scope ?? scope, secret?.value, signal);
    }
    if (this.basicWanted && secret) return basicHeader(secret.value);
    if (this.bearer) {
      const key = TokenCache.key(this.bearer.realm, this.bearer.service, scope);
      const cached = this.tokens.get(key);
      if (cached) return `Bearer ${cached}`;
      return this.token(key, this.bearer.realm, this.bearer.service, scope, secret?.value, signal).catch(() => undefined);
    }
    return undefined;
  }

  private async token(key: string, realm: string, service: string | undefined, scope: string, basic: string | undefined, signal: AbortSignal): Promise<string> {
    const cached = this.tokens.get(key);
    if (cached) return `Bearer ${cached}`;
    const url = new URL(realm);
    if (service) url.searchParams.set('service', service);
    for (const s of scope.split(' ').filter(Boolean)) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { 'user-agent': 'customs-proxy' };
    // The realm may be another host (auth.docker.io): credentials go there only over https or to the upstream itself.
    if (basic && (url.protocol === 'https:' || url.origin === this.origin)) headers.authorization = basicHeader(basic);
    this.logger.info({ upstream: this.config.name, scope, realm: url.origin }, 'fetching upstream token');
    let res: TransportResponse;
    try {
      res = await this.send(url, { method: 'GET', headers, signal });
    } catch (e) {
      throw normalise(e, signal);
    }
    const body = await readBody(res, MAX_TOKEN_BYTES, signal);
    if (res.status === 429) throw this.tooManyRequests(res);
    if (res.status === 401 || res.status === 403) {
      throw err('UPSTREAM_UNAVAILABLE', `upstream ${this.config.name}: authentication failed (token endpoint answered ${res.status}); check the configured credentials`);
    }
    if (res.status !== 200) throw err('UPSTREAM_UNAVAILABLE', `upstream ${this.config.name}: token endpoint answered ${res.status}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw err('UPSTREAM_UNAVAILABLE', `upstream ${this.config.name}: token endpoint sent invalid JSON`);
    }
    const t = tokenResponseSchema.safeParse(parsed);
    if (!t.success) throw err('UPSTREAM_UNAVAILABLE', `upstream ${this.config.name}: token endpoint sent no token`);
    const token = (t.data.token ?? t.data.access_token)!;
    this.tokens.set(key, token, t.data.expires_in);
    return `Bearer ${token}`;
  }

  /** HEAD a manifest: its digest and media type, or undefined when the upstream has none. */
  async headManifest(remote: string, reference: string, signal: AbortSignal): Promise<ManifestHead | undefined> {
    const res = await this.call('HEAD', remote, `manifests/${reference}`, { signal, accept: MANIFEST_ACCEPT });
    if (!res) return undefined;
    discard(res);
    const d = res.headers['docker-content-digest'];
    const size = Number(res.headers['content-length']);
    return {
      digest: typeof d === 'string' && d ? parseDigest(d).digest : undefined,
      mediaType: bareMediaType(res.headers['content-type']),
      size: Number.isFinite(size) ? size : undefined,
    };
  }

  /**
   * GET a manifest byte-exact. Its digest is computed from the bytes and must equal
   * the requested digest (digest references) and Docker-Content-Digest (when sent).
   */
  async getManifest(remote: string, reference: string, signal: AbortSignal): Promise<FetchedManifest | undefined> {
    const res = await this.call('GET', remote, `manifests/${reference}`, { signal, accept: MANIFEST_ACCEPT });
    if (!res) return undefined;
    const bytes = await readBody(res, MAX_MANIFEST_BYTES, signal);
    const requested = reference.includes(':') ? parseDigest(reference) : undefined;
    const digest = digestOf(bytes, requested?.algorithm ?? 'sha256');
    const header = res.headers['docker-content-digest'];
    if (requested && digest !== requested.digest) throw mismatch(this.config.name, remote, reference, digest);
    if (typeof header === 'string' && header.startsWith('sha256:') && digest.startsWith('sha256:') && header !== digest) {
      throw mismatch(this.config.name, remote, reference, digest);
    }
    return { digest, mediaType: bareMediaType(res.headers['content-type']), bytes };
  }

  /** GET a blob; the caller consumes (or destroys) the body. Undefined on 404. */
  async getBlob(remote: string, digest: Digest, opts: { signal: AbortSignal; idleMs: number }): Promise<TransportResponse | undefined> {
    return this.call('GET', remote, `blobs/${digest}`, { ...opts, bulk: true }, 'BLOB_UNKNOWN');
  }

  async headBlob(remote: string, digest: Digest, signal: AbortSignal): Promise<{ size: number | undefined } | undefined> {
    const res = await this.call('HEAD', remote, `blobs/${digest}`, { signal }, 'BLOB_UNKNOWN');
    if (!res) return undefined;
    discard(res);
    const size = Number(res.headers['content-length']);
    return { size: Number.isFinite(size) ? size : undefined };
  }

  /**
   * The referrers API (`GET /v2/<name>/referrers/<digest>`): the index, or
   * 'unsupported' when the upstream does not implement it (404, or not an index).
   */
  async getReferrers(remote: string, digest: Digest, signal: AbortSignal): Promise<ImageIndex | 'unsupported'> {
    const res = await this.call('GET', remote, `referrers/${digest}`, { signal, accept: 'application/vnd.oci.image.index.v1+json' });
    if (!res) return 'unsupported';
    const bytes = await readBody(res, MAX_MANIFEST_BYTES, signal);
    if (bareMediaType(res.headers['content-type']) !== 'application/vnd.oci.image.index.v1+json') return 'unsupported';
    try {
      const parsed = referrersIndexSchema.safeParse(JSON.parse(bytes.toString('utf8')));
      return parsed.success ? parsed.data : 'unsupported';
    } catch {
      return 'unsupported';
    }
  }

  /**
   * Every tag of `remote` (`GET /v2/<remote>/tags/list`), following `Link: <...>; rel="next"` pages
   * (at most MAX_TAG_PAGES); undefined when the upstream has no such repository.
   */
  async getTags(remote: string, signal: AbortSignal): Promise<string[] | undefined> {
    const tags: string[] = [];
    let path = 'tags/list';
    for (let page = 0; page < MAX_TAG_PAGES; page++) {
      const res = await this.call('GET', remote, path, { signal, accept: 'application/json' });
      if (!res) return page === 0 ? undefined : tags;
      const body = await readBody(res, MAX_MANIFEST_BYTES, signal);
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        json = undefined;
      }
      const parsed = tagListBodySchema.safeParse(json);
      if (!parsed.success) throw err('UPSTREAM_UNAVAILABLE', `upstream ${this.config.name} sent a tag list that is not one for ${remote}`);
      tags.push(...(parsed.data.tags ?? []));
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(String(res.headers.link ?? ''))?.[1];
      const query = next ? new URL(next, this.config.url).search : '';
      if (!query) return tags;
      path = `tags/list${query}`;
    }
    return tags;
  }

  /**
   * 2xx -> the response; 404 -> undefined; 429 -> TOOMANYREQUESTS (with the upstream's
   * Retry-After); a 401 for lack of scope -> `unknown` (see `refused`); anything else
   * -> UPSTREAM_UNAVAILABLE.
   */
  private async call(method: 'GET' | 'HEAD', remote: string, path: string, opts: RequestOptions, unknown: 'NAME_UNKNOWN' | 'BLOB_UNKNOWN' = 'NAME_UNKNOWN'): Promise<TransportResponse | undefined> {
    let res: TransportResponse;
    try {
      res = await this.request(method, remote, path, opts);
    } catch (e) {
      throw normalise(e, opts.signal);
    }
    if (res.status >= 200 && res.status < 300) return res;
    discard(res);
    if (res.status === 404) return undefined;
    if (res.status === 429) throw this.tooManyRequests(res);
    if (res.status === 401) {
      // `request` has already tried once more with a fresh token.
      if (pickChallenge(res.headersDistinct['www-authenticate'])?.params.error === 'insufficient_scope') throw refused(this.config.name, remote, unknown);
      throw err('UPSTREAM_UNAVAILABLE', `upstream ${this.config.name}: authentication failed (401 for ${method} ${remote}/${path}); check the configured credentials`);
    }
    throw err('UPSTREAM_UNAVAILABLE', `upstream ${this.config.name} answered ${res.status} for ${method} ${remote}/${path}`);
  }

  /** A 429, carrying the upstream's Retry-After (seconds) for the client: the HTTP layer sends it on. */
  private tooManyRequests(res: TransportResponse) {
    const retryAfter = parseRetryAfter(res.headers['retry-after'], this.clock());
    const wait = retryAfter === undefined ? '' : `; retry after ${retryAfter} s`;
    return err('TOOMANYREQUESTS', `upstream ${this.config.name} is rate limiting (429)${wait}`, retryAfter === undefined ? undefined : { retryAfter });
  }
}

/**
 * Docker Hub hands out a token for any repository name, then answers 401 with
 * `error="insufficient_scope"` for one that does not exist (or is private, which
 * it will not tell apart). After a fresh token that is the upstream's "no such
 * repository", so the client gets a 404-type answer rather than a 502.
 */
function refused(upstream: string, remote: string, code: 'NAME_UNKNOWN' | 'BLOB_UNKNOWN') {
  return err(code, `upstream ${upstream} refused access to ${remote} (insufficient_scope): it has no such repository, or the repository is private`);
}

function mismatch(upstream: string, remote: string, reference: string, actual: Digest) {
  return err('DIGEST_INVALID', `upstream ${upstream} sent a manifest for ${remote}@${reference} whose digest is ${actual}`);
}
