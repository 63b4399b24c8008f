import { LRUCache } from 'lru-cache';
import { err, isRegistryError, isValidTag, type Descriptor, type Digest, type Reference } from '../oci/index.js';
import { BlobFiller, type FillSource } from '../proxy/blob-fill.js';
import { createTransport, type Transport } from '../proxy/http-transport.js';
import type { ProxyLogger } from '../proxy/logger.js';
import { NotFoundCache } from '../proxy/not-found-cache.js';
import type { ProxyTarget, PullThrough, UpstreamBlob, UpstreamManifest, UpstreamReferrers } from '../proxy/pull-through.js';
import type { PinLookup } from '../proxy/pull-through-service.js';
import { readUpstreamCa } from '../proxy/upstream-tls.js';
import { SingleFlight } from '../proxy/single-flight.js';
import type { BlobStore, ManifestRecord, MetadataStore } from '../storage/index.js';
import type { FillLease } from '../storage/fill-lease.js';
import type { HubUpstreamConfig } from './config.js';
import { revisionView } from './manifest.js';
import { isCommit, isValidRepoId, upstreamRepository, type RepoType } from './names.js';
import { RevisionStore } from './revision-store.js';
import { checkHubRequest, type HubRules } from './policy.js';
import { HubUpstreamClient, type UpstreamRevision } from './upstream-client.js';

/**
 * Pull-through from Hugging Face Hubs, as the registry's `PullThrough` for the
 * repositories `<upstream>/<org>/<model>` (datasets: `<upstream>/datasets/<org>/<name>`),
 * so the Hub API and OCI clients read the same artifacts through the same services,
 * gate and quarantine included.
 *
 * A revision is resolved to its commit upstream (branch names revalidated after
 * `revisionFreshness`, the local resolution served stale when the upstream fails),
 * then imported once per commit (single-flight): its small (git) files are fetched
 * and checked against their git blob ids, a ModelPack manifest is built with every
 * file as a layer (LFS files named by the sha256 the Hub lists) and stored, tagged
 * `<commit>` and `<branch>` (a pinned tag is never moved). LFS files are filled on
 * first read by the proxy's BlobFiller: one upstream GET per file however many
 * clients ask, streamed as it arrives, verified against the Hub's sha256, committed
 * only if it matches (a mismatch aborts every reader and stores nothing).
 */
export interface HubPullThroughOptions {
  readonly blobs: BlobStore;
  readonly metadata: MetadataStore;
  readonly upstreams: readonly HubUpstreamConfig[];
  readonly logger: ProxyLogger;
  /** Private directory for fills in progress (emptied by `init`). */
  readonly tempDir: string;
  /** The policy's `hub` rule for a repository (request checks: revision pins, allow-list). */
  readonly rules: HubRules;
  readonly pins?: PinLookup;
  readonly fillLease?: FillLease;
  readonly transport?: Transport;
  readonly configDir?: string;
  readonly clock?: () => number;
}

/** A repository's upstream, repo type and repo id (as the upstream is asked for it). */
export interface HubTarget {
  readonly upstream: string;
  readonly type: RepoType;
  readonly repoId: string;
  readonly repository: string;
}

export interface ResolvedRevision {
  readonly digest: Digest;
  /** Served from the local resolution because the upstream failed (stale-if-error). */
  readonly stale: boolean;
}

export class HubPullThrough implements PullThrough {
  readonly filler: BlobFiller;
  private readonly clients = new Map<string, HubUpstreamClient>();
  private readonly transports: Transport[] = [];
  private readonly clock: () => number;
  /** When a branch -> commit resolution was last confirmed upstream (lost on restart: revalidated once). */
  private readonly validatedAt = new LRUCache<string, number>({ max: 100_000 });
  private readonly untaggable = new LRUCache<string, Digest>({ max: 10_000 });
  private readonly flights = new SingleFlight();
  private readonly notFound: NotFoundCache;
  /** Files whose upstream bytes failed verification lately: retries are answered at once, not fetched again. */
  private readonly failedFiles: NotFoundCache;

  private readonly store: RevisionStore;

  constructor(private readonly opts: HubPullThroughOptions) {
    this.store = new RevisionStore(opts.blobs, opts.metadata, opts.logger, opts.pins);
    this.clock = opts.clock ?? Date.now;
    this.notFound = new NotFoundCache(this.clock);
    this.failedFiles = new NotFoundCache(this.clock, 1000);
    const shared = opts.transport ?? createTransport();
    if (!opts.transport) this.transports.push(shared);
    for (const u of opts.upstreams) {
      let transport = shared;
      if (u.tls && !opts.transport) {
        transport = createTransport({ ca: readUpstreamCa(u.name, u.tls.caFile, opts.configDir) });
        this.transports.push(transport);
      }
      this.clients.set(u.name, new HubUpstreamClient(u, transport, opts.logger, this.clock));
    }
    this.filler = new BlobFiller({
      blobs: opts.blobs,
      links: opts.metadata,
      tempDir: opts.tempDir,
      logger: opts.logger,
      lease: opts.fillLease,
      onVerifyFailure: (digest, e) => {
        const ttl = Math.max(...opts.upstreams.map((u) => u.notFoundTtl));
        if (isRegistryError(e)) this.failedFiles.set(digest, ttl, e);
      },
    });
  }

  async init(): Promise<void> {
    await this.filler.init();
  }

  close(): void {
    for (const t of this.transports) t.close();
  }

  get upstreamNames(): string[] {
    return [...this.clients.keys()];
  }

  // --- targets ---

  /** The target of a Hub API request (the repo id as the client spelled it). */
  targetFor(upstream: string, type: RepoType, repoId: string): HubTarget | undefined {
    if (!this.clients.has(upstream) || !isValidRepoId(repoId)) return undefined;
    const repository = upstreamRepository(upstream, type, repoId);
    return repository ? { upstream, type, repoId, repository } : undefined;
  }

  /** The target of a stored repository name (OCI clients, the gate): `<upstream>/[datasets/]<id>`. */
  target(repository: string): HubTarget | undefined {
    const slash = repository.indexOf('/');
    if (slash < 0) return undefined;
    const upstream = repository.slice(0, slash);
    let rest = repository.slice(slash + 1);
    let type: RepoType = 'model';
    if (rest.startsWith('datasets/')) {
      type = 'dataset';
      rest = rest.slice('datasets/'.length);
    }
    return this.targetFor(upstream, type, rest);
  }

  handles(repository: string): boolean {
    return this.target(repository) !== undefined;
  }

  resolve(repository: string): ProxyTarget | undefined {
    const t = this.target(repository);
    return t && { upstream: t.upstream, remote: `${t.type === 'dataset' ? 'datasets/' : ''}${t.repoId}`, repository: t.repository, namespace: undefined };
  }

  // --- PullThrough: manifests ---

  async manifest(repository: string, reference: Reference): Promise<UpstreamManifest | undefined> {
    const t = this.target(repository);
    if (!t) return undefined;
    // A manifest digest is customs' own name for a revision: never the upstream's.
    if (reference.kind === 'digest') {
      const local = await this.opts.metadata.getManifest(t.repository, reference.digest);
      return local ? fromRecord(local, false) : undefined;
    }
    const r = await this.revision(t, reference.tag);
    const record = await this.opts.metadata.getManifest(t.repository, r.digest);
    return record ? fromRecord(record, r.stale) : undefined;
  }

  /**
   * The manifest of `revision` (a branch, tag or commit), imported if needed. Branch
   * names are revalidated once past `revisionFreshness`; when the upstream fails, a
   * branch already resolved is served from its local tag (stale).
   */
  async revision(t: HubTarget, revision: string): Promise<ResolvedRevision> {
    const { config } = this.upstream(t);
    checkHubRequest(this.opts.rules(t.repository), { repository: t.repository, revision, upstreamRepoId: t.repoId }, (m) => this.opts.logger.warn({ upstream: t.upstream }, m));
    const { metadata } = this.opts;
    const missKey = NotFoundCache.key(t.upstream, t.repository, 'manifest', revision);
    if (isCommit(revision)) {
      const local = await metadata.resolveTag(t.repository, revision);
      if (local) return { digest: local, stale: false };
      if (this.knownMissing(missKey)) throw err('MANIFEST_UNKNOWN', `${t.upstream} has no revision ${t.repoId}@${revision}`);
      return this.once(`c\0${t.repository}\0${revision}`, async () => {
        const info = await this.ask(t, revision, missKey);
        return { digest: await this.importRevision(t, info, undefined), stale: false };
      });
    }
    const taggable = isValidTag(revision);
    const key = `r\0${t.repository}\0${revision}`;
    // A revision that cannot be a tag (`refs/pr/1`) is remembered in memory instead, for freshness and stale-if-error.
    const local = taggable ? await metadata.resolveTag(t.repository, revision) : this.untaggable.get(key);
    if (local) {
      const fresh = this.clock() - (this.validatedAt.get(key) ?? -Infinity) < config.revisionFreshness * 1000;
      if (fresh || (await this.opts.pins?.isPinned(t.repository, revision))) return { digest: local, stale: false };
    } else if (this.knownMissing(missKey)) throw err('MANIFEST_UNKNOWN', `${t.upstream} has no revision ${t.repoId}@${revision}`);
    return this.once(key, async () => {
      let info: UpstreamRevision;
      try {
        info = await this.ask(t, revision, local ? undefined : missKey);
      } catch (e) {
        if (!local) throw e;
        this.opts.logger.warn({ upstream: t.upstream, repository: t.repository, revision, err: (e as Error).message }, 'upstream failed; serving the local resolution (stale-if-error)');
        return { digest: local, stale: true };
      }
      const digest = await this.importRevision(t, info, local);
      if (taggable && digest !== local) await this.store.tag(t, digest, revision);
      if (!taggable) this.untaggable.set(key, digest);
      this.validatedAt.set(key, this.clock());
      return { digest, stale: false };
    });
  }

  /** Stores a revision once per commit, however many ask (revision-store.ts); LFS files come when read. */
  private importRevision(t: HubTarget, info: UpstreamRevision, previous: Digest | undefined): Promise<Digest> {
    const { client, config } = this.upstream(t);
    return this.once(`i\0${t.repository}\0${info.commit}`, () => this.store.import(t, info, { client, config, previous }));
  }

  /** Asks the upstream for a revision within the header timeout; remembers a "no such thing" for `notFoundTtl`. */
  private async ask(t: HubTarget, revision: string, missKey: string | undefined): Promise<UpstreamRevision> {
    const { client, config } = this.upstream(t);
    try {
      return await client.revision(t.type, t.repoId, revision, AbortSignal.timeout(config.timeouts.header * 1000));
    } catch (e) {
      if (missKey && isRegistryError(e) && (e.code === 'NAME_UNKNOWN' || e.code === 'MANIFEST_UNKNOWN')) this.notFound.set(missKey, config.notFoundTtl, e);
      throw e;
    }
  }

  // --- PullThrough: blobs ---

  async blob(repository: string, digest: Digest): Promise<UpstreamBlob | undefined> {
    const t = this.target(repository);
    if (!t) return undefined;
    const failed = this.failedFiles.get(digest);
    if (failed?.error) throw failed.error;
    // Config and git files were stored with the revision; only LFS files are filled here.
    const source = await this.fileSource(t, digest);
    return source ? this.filler.open(t.repository, digest, source) : undefined;
  }

  /**
   * Fetches an LFS file of a stored revision into the store (`customs hub import`), reading it as a
   * client would so that `onBytes` tells the progress; resolves once it is committed.
   */
  async fetchFile(repository: string, digest: Digest, onBytes: (n: number) => void): Promise<void> {
    const t = this.target(repository);
    const source = t && (await this.fileSource(t, digest));
    if (!t || !source) throw err('BLOB_UNKNOWN', `${digest} is not an LFS file of a revision stored in ${repository}`);
    const blob = await this.filler.open(t.repository, digest, source);
    if (!blob) throw err('BLOB_UNKNOWN', `upstream ${t.upstream} has no ${digest}`);
    const body = await blob.open(undefined);
    if (body.kind === 'stream') for await (const chunk of body.stream as AsyncIterable<Buffer>) onBytes(chunk.byteLength);
    else {
      const buf = Buffer.allocUnsafe(1024 * 1024);
      try {
        for (let pos = 0; pos < blob.size; ) {
          const n = await body.blob.read(buf, 0, Math.min(buf.length, blob.size - pos), pos);
          if (n <= 0) throw err('UPSTREAM_UNAVAILABLE', `${digest} ended after ${pos} of ${blob.size} bytes`);
          pos += n;
          onBytes(n);
        }
      } finally {
        await body.blob.close();
      }
    }
    await this.filler.ensure(t.repository, digest, source);
  }

  /** Where an LFS file comes from: the first stored revision of this repository that has it as a layer. */
  private async fileSource(t: HubTarget, digest: Digest): Promise<FillSource | undefined> {
    const { metadata } = this.opts;
    for (const owner of await metadata.manifestsReferencing(t.repository, digest)) {
      const record = await metadata.getManifest(t.repository, owner);
      const view = record && revisionView(record.digest, record.bytes);
      const file = view?.origin && view.files.find((f) => f.digest === digest && f.lfs);
      if (!view || !file) continue;
      const { client, config } = this.upstream(t);
      const commit = view.commit;
      return {
        upstream: t.upstream,
        overallMs: config.timeouts.overall * 1000,
        fetch: async (signal) => {
          // Headers (after the CDN redirect) within the header timeout; the body is bounded by the idle and overall ones.
          const headers = new AbortController();
          const timer = setTimeout(() => headers.abort(err('UPSTREAM_UNAVAILABLE', `upstream ${t.upstream} sent no headers for ${file.path} in time`)), config.timeouts.header * 1000);
          try {
            const res = await client.openFile(t.type, t.repoId, commit, file.path, { signal: AbortSignal.any([signal, headers.signal]), idleMs: config.timeouts.idle * 1000, bulk: true });
            const size = Number(res.headers['content-length']);
            return { size: Number.isFinite(size) && res.headers['content-length'] !== '' ? size : undefined, body: res.body };
          } catch (e) {
            if (isRegistryError(e) && e.code === 'BLOB_UNKNOWN') return undefined;
            throw e;
          } finally {
            clearTimeout(timer);
          }
        },
      };
    }
    return undefined;
  }

  // --- PullThrough: referrers (a Hub has none; local ones are merged by the callers) ---

  async referrers(): Promise<Descriptor[]> {
    return [];
  }

  async referrersDetail(): Promise<UpstreamReferrers> {
    return { descriptors: [], stale: false };
  }

  // --- helpers ---

  private upstream(t: HubTarget): { client: HubUpstreamClient; config: HubUpstreamConfig } {
    const client = this.clients.get(t.upstream)!;
    return { client, config: client.config };
  }

  private knownMissing(key: string): boolean {
    const hit = this.notFound.get(key);
    if (hit?.error) throw hit.error;
    return hit !== undefined;
  }

  private once<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.flights.run(key, fn);
  }
}

const fromRecord = (r: ManifestRecord, stale: boolean): UpstreamManifest => ({ digest: r.digest, mediaType: r.mediaType, bytes: r.bytes, stale, repository: r.repository });
