import { z } from 'zod';
import { err } from '../oci/index.js';
import { loadSecret } from '../proxy/auth.js';
import { discard, normalise, readBody, type Transport, type TransportResponse } from '../proxy/http-transport.js';
import type { ProxyLogger } from '../proxy/logger.js';
import { parseRetryAfter } from '../proxy/retry.js';
import { sendFollowing, type UpstreamFetcher } from '../proxy/upstream-fetch.js';
import type { HubUpstreamConfig } from './config.js';
import type { HubFile } from './manifest.js';
import { isCommit, isSafeRepoPath, type RepoType } from './names.js';

/**
 * A client of one Hugging Face Hub (huggingface.co or a compatible server): the two
 * calls pull-through needs. `revision` is `GET /api/<type>s/<id>/revision/<rev>?blobs=true`,
 * which names the commit and lists every file with its size, git object id and, for
 * LFS files, sha256 (what `HfApi.model_info(files_metadata=True)` asks). `openFile` is
 * `GET /<id>/resolve/<commit>/<path>`, which the Hub answers for LFS files with a
 * redirect to a CDN host: the token goes to the Hub's own origin only (upstream-fetch.ts).
 */
const MAX_INFO_BYTES = 16 * 1024 * 1024;

const lfsSchema = z.looseObject({ sha256: z.string().regex(/^[0-9a-f]{64}$/), size: z.number().int().nonnegative(), pointerSize: z.number().int().nonnegative().optional() });
const siblingSchema = z.looseObject({
  rfilename: z.string(),
  size: z.number().int().nonnegative().optional(),
  blobId: z.string().regex(/^[0-9a-f]{40}$/).optional(),
  lfs: lfsSchema.nullish(),
});
const revisionSchema = z.looseObject({
  sha: z.string().regex(/^[0-9a-f]{40}$/, 'sha is not a 40-hex commit'),
  lastModified: z.string().optional(),
  cardData: z.looseObject({ license: z.union([z.string(), z.array(z.string())]).optional() }).nullish(),
  siblings: z.array(siblingSchema).default([]),
});

export interface UpstreamRevision {
  readonly commit: string;
  readonly lastModified: string | undefined;
  /** The model card's `license` (the Hub parses the README's YAML front matter into `cardData`). */
  readonly licenses: readonly string[];
  readonly files: readonly HubFile[];
}

export class HubUpstreamClient {
  readonly config: HubUpstreamConfig;
  private readonly fetcher: UpstreamFetcher;

  constructor(config: HubUpstreamConfig, transport: Transport, logger: ProxyLogger, private readonly clock: () => number = Date.now) {
    this.config = config;
    this.fetcher = { name: config.name, origin: new URL(config.url).origin, retries: config.retries, transport, logger };
  }

  /** The URL a Hub client would use for the repo (the model card's source). */
  sourceUrl(type: RepoType, repoId: string): string {
    return `${this.config.url}/${type === 'dataset' ? 'datasets/' : ''}${repoId}`;
  }

  /** Resolves `revision` (a branch, tag or commit) to its commit and file list. */
  async revision(type: RepoType, repoId: string, revision: string, signal: AbortSignal): Promise<UpstreamRevision> {
    const url = new URL(`${this.config.url}/api/${type}s/${repoId}/revision/${encodeURIComponent(revision)}`);
    url.searchParams.set('blobs', 'true');
    const res = await this.call(url, { signal }, `${repoId}@${revision}`);
    const body = await readBody(res, MAX_INFO_BYTES, signal);
    let parsed: z.infer<typeof revisionSchema>;
    try {
      const r = revisionSchema.safeParse(JSON.parse(body.toString('utf8')));
      if (!r.success) throw new Error(r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      parsed = r.data;
    } catch (e) {
      throw err('UPSTREAM_UNAVAILABLE', `upstream ${this.config.name} sent an unreadable revision of ${repoId}: ${(e as Error).message}`);
    }
    if (isCommit(revision) && parsed.sha !== revision) throw err('UPSTREAM_UNAVAILABLE', `upstream ${this.config.name} answered commit ${parsed.sha} for ${repoId}@${revision}`);
    const files = parsed.siblings.map((s): HubFile => {
      if (!isSafeRepoPath(s.rfilename)) throw err('UPSTREAM_UNAVAILABLE', `upstream ${this.config.name} lists an unsafe path in ${repoId}: ${JSON.stringify(s.rfilename.slice(0, 200))}`);
      // Without them nothing could be verified: a file is accepted only against the Hub's own hashes.
      if (s.blobId === undefined || (s.size === undefined && !s.lfs)) throw err('UPSTREAM_UNAVAILABLE', `upstream ${this.config.name} lists ${s.rfilename} of ${repoId} without its size and object id`);
      if (s.lfs) return { path: s.rfilename, size: s.lfs.size, oid: s.blobId, lfs: { sha256: s.lfs.sha256, pointerSize: s.lfs.pointerSize ?? 0 } };
      return { path: s.rfilename, size: s.size!, oid: s.blobId };
    });
    const license = parsed.cardData?.license;
    return { commit: parsed.sha, lastModified: parsed.lastModified, licenses: license === undefined ? [] : Array.isArray(license) ? license : [license], files };
  }

  /** GET a file of a commit; the caller consumes (or destroys) the body. */
  async openFile(type: RepoType, repoId: string, commit: string, path: string, opts: { signal: AbortSignal; idleMs: number; bulk: boolean }): Promise<TransportResponse> {
    const prefix = type === 'dataset' ? 'datasets/' : '';
    const url = new URL(`${this.config.url}/${prefix}${repoId}/resolve/${commit}/${path.split('/').map(encodeURIComponent).join('/')}`);
    return this.call(url, opts, `${repoId}@${commit}/${path}`);
  }

  /**
   * 2xx -> the response. The Hub's refusals become customs' codes, which the Hub API
   * answers with the same `X-Error-Code` again: RepoNotFound -> NAME_UNKNOWN,
   * RevisionNotFound -> MANIFEST_UNKNOWN, EntryNotFound -> BLOB_UNKNOWN; 429 ->
   * TOOMANYREQUESTS with its Retry-After; anything else -> UPSTREAM_UNAVAILABLE.
   */
  private async call(url: URL, opts: { signal: AbortSignal; idleMs?: number; bulk?: boolean }, what: string): Promise<TransportResponse> {
    const secret = this.config.token ? await loadSecret({ bearer: 'env' in this.config.token ? { tokenEnv: this.config.token.env } : { tokenFile: this.config.token.file } }, this.config.name) : undefined;
    let res: TransportResponse;
    try {
      res = await sendFollowing(this.fetcher, 'GET', url, secret ? `Bearer ${secret.value}` : undefined, { signal: opts.signal, idleMs: opts.idleMs, bulk: opts.bulk });
    } catch (e) {
      throw normalise(e, opts.signal);
    }
    if (res.status >= 200 && res.status < 300) return res;
    discard(res);
    const code = String(res.headers['x-error-code'] ?? '');
    const message = String(res.headers['x-error-message'] ?? '').slice(0, 300);
    const up = `upstream ${this.config.name}`;
    if (res.status === 429) {
      const retryAfter = parseRetryAfter(res.headers['retry-after'], this.clock());
      throw err('TOOMANYREQUESTS', `${up} is rate limiting (429)${retryAfter === undefined ? '' : `; retry after ${retryAfter} s`}`, retryAfter === undefined ? undefined : { retryAfter });
    }
    if (code === 'RevisionNotFound') throw err('MANIFEST_UNKNOWN', `${up} has no revision ${what}`);
    if (code === 'EntryNotFound') throw err('BLOB_UNKNOWN', `${up} has no file ${what}`);
    if (res.status === 404 || code === 'RepoNotFound') throw err('NAME_UNKNOWN', `${up} has no repository ${what.split('@')[0]}`);
    if (res.status === 401) {
      // The Hub answers 401 for a repository that does not exist or is private, unless the token itself is bad.
      if (secret && /invalid credentials/i.test(message)) throw err('UPSTREAM_UNAVAILABLE', `${up}: authentication failed (401); check the configured token`);
      throw err('NAME_UNKNOWN', `${up} has no repository ${what.split('@')[0]} (or it is private${secret ? ' to the configured token' : '; configure a token'})`);
    }
    if (res.status === 403) throw err('DENIED', `${up} refused access to ${what.split('@')[0]}${code === 'GatedRepo' ? ' (a gated repository: accept its terms with the account of the configured token)' : ''}${message ? `: ${message}` : ''}`);
    throw err('UPSTREAM_UNAVAILABLE', `${up} answered ${res.status} for ${what}`);
  }
}
