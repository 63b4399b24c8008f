import { LRUCache } from 'lru-cache';
import { err, isRegistryError, parseManifest, type Descriptor, type Digest, type ParsedManifest, type Reference } from '../oci/index.js';
import type { BlobStore, ByteRange, ManifestRecord, MetadataStore } from '../storage/index.js';
import type { FillLease } from '../storage/fill-lease.js';
import { BlobFiller, type FillSource } from './blob-fill.js';
import type { UpstreamConfig } from './config.js';
import { createTransport, type Transport } from './http-transport.js';
import { readUpstreamCa } from './upstream-tls.js';
import type { ProxyLogger } from './logger.js';
import { NotFoundCache } from './not-found-cache.js';
import type { ProxyRequestOptions, ProxyTarget, PullThrough, UpstreamBlob, UpstreamManifest, UpstreamReferrers } from './pull-through.js';
import { localReferrers, refreshReferrers } from './referrers.js';
import { UpstreamTargets } from './targets.js';
import { UpstreamClient, type FetchedManifest } from './upstream-client.js';
import { SingleFlight } from './single-flight.js';
import { pulledManifest } from './stored-manifest.js';
import { UpstreamHealth, type UpstreamStatus } from './upstream-health.js';

/** Optional: pinned tags are never refreshed from the upstream (DESIGN "Invariants"). */
export interface PinLookup {
  isPinned(repository: string, tag: string): Promise<boolean>;
}

export interface PullThroughOptions {
  readonly blobs: BlobStore;
  readonly metadata: MetadataStore;
  readonly upstreams: readonly UpstreamConfig[];
  readonly logger: ProxyLogger;
  /** Milliseconds since the epoch; injected so tests can move time. */
  readonly clock?: () => number;
  /** Private directory for blob fills in progress (emptied by `init`). */
  readonly tempDir: string;
  readonly pins?: PinLookup;
  /** Cross-replica single flight of blob fills (storage's `fillLease`); omitted in one process. */
  readonly fillLease?: FillLease;
  readonly transport?: Transport;
  /** Where relative paths in upstream settings (`tls.caFile`) are resolved: the config file's directory. */
  readonly configDir?: string;
  /** Referrer blobs up to this size are fetched with their manifest (the gate reads them). Default 16 MiB. */
  readonly prefetchMaxBytes?: number;
}

/** Refs to a blob that a referrer manifest needs: signatures, SBOMs, attestations are small. */
const DEFAULT_PREFETCH = 16 * 1024 * 1024;

export class PullThroughService implements PullThrough {
  readonly filler: BlobFiller;
  private readonly targets: UpstreamTargets;
  private readonly clients = new Map<string, UpstreamClient>();
  private readonly transport: Transport;
  private readonly ownTransports: Transport[] = [];
  private readonly clock: () => number;
  /** When a tag (or a subject's referrers) was last confirmed with the upstream. Lost on restart: then revalidated once. */
  private readonly validatedAt = new LRUCache<string, number>({ max: 100_000 });
  /** Single-flight of upstream refreshes, keyed by what they refresh. */
  private readonly flights = new SingleFlight();
  /** Recent upstream misses (404, insufficient_scope) of things not stored here; see not-found-cache.ts. */
  private readonly notFound: NotFoundCache;
  private readonly upstreamHealth: UpstreamHealth;

  constructor(private readonly opts: PullThroughOptions) {
    this.clock = opts.clock ?? Date.now;
    this.upstreamHealth = new UpstreamHealth(opts.upstreams, this.clock);
    this.transport = opts.transport ?? createTransport();
    this.notFound = new NotFoundCache(this.clock);
    this.targets = new UpstreamTargets(opts.upstreams);
    for (const u of opts.upstreams) {
      // An upstream with its own CAs gets its own transport: its connections are never pooled with the others'.
      let transport = this.transport;
      if (u.tls && !opts.transport) {
        transport = createTransport({ ca: readUpstreamCa(u.name, u.tls.caFile, opts.configDir) });
        this.ownTransports.push(transport);
      }
      this.clients.set(u.name, new UpstreamClient(u, transport, opts.logger, this.clock, this.upstreamHealth));
    }
    this.filler = new BlobFiller({ blobs: opts.blobs, links: opts.metadata, tempDir: opts.tempDir, logger: opts.logger, lease: opts.fillLease });
  }

  async init(): Promise<void> {
    await this.filler.init();
  }

  /** Waits (at most `ms`) for blob fills in progress to commit and link what they fetched. */
  async settle(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.filler.settled(), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  close(): void {
    this.transport.close();
    for (const t of this.ownTransports) t.close();
    void this.filler.close();
  }

  /** Each configured upstream and what its last exchanges said (operators' overview). */
  health(): UpstreamStatus[] {
    return this.upstreamHealth.snapshot();
  }

  handles(repository: string, ns?: string): boolean {
    return this.resolve(repository, ns) !== undefined;
  }

  resolve(repository: string, ns?: string): ProxyTarget | undefined {
    return this.targets.resolve(repository, ns);
  }

  // --- manifests ---

  async manifest(repository: string, reference: Reference, opts: ProxyRequestOptions = {}): Promise<UpstreamManifest | undefined> {
    const t = this.resolve(repository, opts.ns);
    if (!t) return undefined;
    const { client, config } = this.upstream(t);
    if (reference.kind === 'digest') {
      // Content-addressed: a local copy is the answer, no upstream round trip.
      const local = await this.opts.metadata.getManifest(t.repository, reference.digest);
      if (local) return fromRecord(local, t, false);
      const missing = this.missKey(t, 'manifest', reference.digest);
      if (this.knownMissing(missing)) return undefined;
      return this.once(`m\0${t.repository}\0${reference.digest}`, async () => {
        const fetched = await client.getManifest(t.remote, reference.digest, AbortSignal.timeout(config.timeouts.header * 1000));
        if (!fetched) return this.missed(missing, config);
        await this.store(t, fetched, undefined);
        return fromFetched(fetched, t);
      }).catch((e: unknown) => this.rethrow(this.refusal(e, missing, config), t, reference.digest));
    }
    const tag = reference.tag;
    const key = `t\0${t.repository}\0${tag}`;
    const localDigest = await this.opts.metadata.resolveTag(t.repository, tag);
    if (localDigest) {
      const fresh = this.clock() - (this.validatedAt.get(key) ?? -Infinity) < config.tagFreshness * 1000;
      if (fresh || (await this.opts.pins?.isPinned(t.repository, tag))) return this.local(t, localDigest, false);
    } else if (this.knownMissing(this.missKey(t, 'manifest', tag))) return undefined;
    return this.once(key, () => this.refreshTag(t, tag, localDigest, key));
  }

  /**
   * Revalidates a tag: HEAD, then GET only if the digest moved. The whole exchange
   * (token included) shares one deadline, the upstream's header timeout, so a client
   * never waits longer than that; on any failure the local copy is served, stale.
   */
  private async refreshTag(t: ProxyTarget, tag: string, localDigest: Digest | undefined, key: string): Promise<UpstreamManifest | undefined> {
    const { client, config } = this.upstream(t);
    const signal = AbortSignal.timeout(config.timeouts.header * 1000);
    // Misses are remembered only for tags with nothing local (see not-found-cache.ts).
    const missing = localDigest ? undefined : this.missKey(t, 'manifest', tag);
    try {
      const head = await client.headManifest(t.remote, tag, signal);
      // The upstream no longer has the tag; a local row stays for the audit trail.
      if (!head) return this.missed(missing, config);
      if (localDigest && head.digest === localDigest) {
        this.validatedAt.set(key, this.clock());
        return await this.local(t, localDigest, false);
      }
      const fetched = await client.getManifest(t.remote, head.digest ?? tag, signal);
      if (!fetched) return this.missed(missing, config);
      await this.store(t, fetched, tag);
      this.validatedAt.set(key, this.clock());
      return fromFetched(fetched, t);
    } catch (e) {
      // A 429 or any other failure: the local copy if there is one (stale-if-error).
      if (!localDigest) return this.rethrow(this.refusal(e, missing, config), t, tag);
      this.logFailure(e, t, tag, 'upstream failed; serving the local copy (stale-if-error)');
      return this.local(t, localDigest, true);
    }
  }

  private async local(t: ProxyTarget, digest: Digest, stale: boolean): Promise<UpstreamManifest | undefined> {
    const record = await this.opts.metadata.getManifest(t.repository, digest);
    return record ? fromRecord(record, t, stale) : undefined;
  }

  /** Stores an upstream manifest byte-exact; its blobs are fetched lazily, when asked for. */
  private async store(t: ProxyTarget, m: FetchedManifest, tag: string | undefined): Promise<ParsedManifest> {
    const parsed = parseManifest(m.bytes, m.mediaType);
    await this.opts.metadata.putManifest(
      pulledManifest(t.repository, m.digest, m.bytes, parsed),
      tag,
      { actor: `upstream:${t.upstream}`, reason: 'pull-through' },
    );
    return parsed;
  }

  // --- blobs ---

  async blob(repository: string, digest: Digest, opts: ProxyRequestOptions = {}): Promise<UpstreamBlob | undefined> {
    const t = this.resolve(repository, opts.ns);
    if (!t) return undefined;
    const { blobs, metadata } = this.opts;
    const linked = await metadata.linkedBlob(t.repository, digest);
    const stored = !linked && (await blobs.stat(digest)) !== undefined;
    const missing = this.missKey(t, 'blob', digest);
    // A remembered miss is consulted only where the upstream would be asked: it never hides bytes this repository may serve.
    if (!linked && !stored && this.knownMissing(missing)) return undefined;
    if (stored && (await metadata.manifestsReferencing(t.repository, digest)).length === 0) {
      // Stored for another repository: serve it here only if this upstream repository has it too.
      if (this.knownMissing(missing)) return undefined;
      const { client, config } = this.upstream(t);
      const signal = AbortSignal.timeout(config.timeouts.header * 1000);
      const head = await client.headBlob(t.remote, digest, signal).catch((e: unknown) => this.rethrow(this.refusal(e, missing, config), t, digest));
      if (!head) return this.missed(missing, config);
    }
    return this.filler.open(t.repository, digest, this.fillSource(t, digest));
  }

  /**
   * Fetches `digest` from the upstream of `repository` again and waits until it is verified and
   * stored (the scrub, after it set corrupt stored bytes aside). False when the upstream has none.
   */
  async refetchBlob(repository: string, digest: Digest): Promise<boolean> {
    const t = this.resolve(repository);
    if (!t) return false;
    return (await this.filler.ensure(t.repository, digest, this.fillSource(t, digest))) !== undefined;
  }

  private fillSource(t: ProxyTarget, digest: Digest): FillSource {
    const { client, config } = this.upstream(t);
    return {
      upstream: t.upstream,
      overallMs: config.timeouts.overall * 1000,
      fetch: async (signal) => {
        // Headers must arrive within the header timeout; the body is bounded by idle and overall timeouts.
        const headers = new AbortController();
        const timer = setTimeout(() => headers.abort(err('UPSTREAM_UNAVAILABLE', 'upstream sent no headers in time')), config.timeouts.header * 1000);
        const missing = this.missKey(t, 'blob', digest);
        try {
          const res = await client.getBlob(t.remote, digest, { signal: AbortSignal.any([signal, headers.signal]), idleMs: config.timeouts.idle * 1000 });
          if (!res) return this.missed(missing, config);
          const size = Number(res.headers['content-length']);
          return { size: Number.isFinite(size) && res.headers['content-length'] !== '' ? size : undefined, body: res.body };
        } catch (e) {
          throw this.refusal(e, missing, config);
        } finally {
          clearTimeout(timer);
        }
      },
    };
  }

  // --- referrers ---

  /**
   * The upstream's tags of a proxied repository (single flight per repository). An upstream that
   * fails is logged and answered with undefined: the registry then lists the local tags alone.
   */
  async tags(repository: string): Promise<string[] | undefined> {
    const t = this.resolve(repository);
    if (!t) return undefined;
    const { client, config } = this.upstream(t);
    return this.once(`l\0${t.repository}`, () => client.getTags(t.remote, AbortSignal.timeout(config.timeouts.header * 1000))).catch((e: unknown) => {
      this.opts.logger.warn({ upstream: t.upstream, repository: t.remote, err: (e as Error).message }, 'upstream tag list failed; listing the local tags');
      return undefined;
    });
  }

  async referrers(repository: string, digest: Digest, opts: ProxyRequestOptions = {}): Promise<Descriptor[]> {
    return (await this.referrersDetail(repository, digest, opts)).descriptors;
  }

  async referrersDetail(repository: string, digest: Digest, opts: ProxyRequestOptions = {}): Promise<UpstreamReferrers> {
    const t = this.resolve(repository, opts.ns);
    if (!t) return { descriptors: [], stale: false };
    const { client, config } = this.upstream(t);
    const key = `r\0${t.repository}\0${digest}`;
    let stale = false;
    if (this.clock() - (this.validatedAt.get(key) ?? -Infinity) >= config.tagFreshness * 1000) {
      const signal = AbortSignal.timeout(config.timeouts.header * 1000);
      const ctx = {
        client,
        metadata: this.opts.metadata,
        logger: this.opts.logger,
        target: t,
        store: (m: FetchedManifest, tag: string | undefined) => this.store(t, m, tag),
        prefetch: (blobs: readonly Descriptor[], s: AbortSignal) => this.prefetch(t, blobs, s),
      };
      try {
        await this.once(key, () => refreshReferrers(ctx, digest, signal));
        this.validatedAt.set(key, this.clock());
      } catch (e) {
        // Refused (insufficient_scope): the upstream has no such repository, hence nothing to add; not a failure.
        if (isRegistryError(e) && e.code === 'NAME_UNKNOWN') return { descriptors: await localReferrers(this.opts.metadata, t.repository, digest), stale: false, namespace: t.namespace };
        this.logFailure(e, t, digest, 'upstream referrers failed; serving the local copies (stale-if-error)');
        stale = true;
      }
    }
    return { descriptors: await localReferrers(this.opts.metadata, t.repository, digest), stale, namespace: t.namespace };
  }

  /** Fills small referrer blobs, waiting at most until `signal` fires (the fill itself goes on). */
  private async prefetch(t: ProxyTarget, blobs: readonly Descriptor[], signal: AbortSignal): Promise<void> {
    const max = this.opts.prefetchMaxBytes ?? DEFAULT_PREFETCH;
    const wanted = blobs.filter((b) => b.size <= max);
    const all = Promise.all(wanted.map((b) => this.filler.ensure(t.repository, b.digest, this.fillSource(t, b.digest))));
    await Promise.race([
      all,
      new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      }),
    ]);
  }

  // --- helpers ---

  private upstream(t: ProxyTarget): { client: UpstreamClient; config: UpstreamConfig } {
    const client = this.clients.get(t.upstream)!;
    return { client, config: client.config };
  }

  private missKey(t: ProxyTarget, kind: 'manifest' | 'blob', reference: string): string {
    return NotFoundCache.key(t.upstream, t.remote, kind, reference);
  }

  /** True when the upstream recently said it has no such thing; throws its refusal again if it refused. */
  private knownMissing(key: string): boolean {
    const hit = this.notFound.get(key);
    if (hit?.error) throw hit.error;
    return hit !== undefined;
  }

  /** Remembers a 404 (when `key` is given) and answers "not here". */
  private missed(key: string | undefined, config: UpstreamConfig): undefined {
    if (key) this.notFound.set(key, config.notFoundTtl);
    return undefined;
  }

  /** Remembers an insufficient_scope refusal (NAME_UNKNOWN/BLOB_UNKNOWN from the client); returns `e` to rethrow. */
  private refusal(e: unknown, key: string | undefined, config: UpstreamConfig): unknown {
    if (key && isRegistryError(e) && (e.code === 'NAME_UNKNOWN' || e.code === 'BLOB_UNKNOWN')) this.notFound.set(key, config.notFoundTtl, e);
    return e;
  }

  private once<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.flights.run(key, fn);
  }

  private logFailure(e: unknown, t: ProxyTarget, reference: string, msg: string): void {
    const code = isRegistryError(e) ? e.code : undefined;
    const fields = { upstream: t.upstream, repository: t.repository, reference, code, err: e instanceof Error ? e.message : String(e) };
    if (code === 'DIGEST_INVALID') this.opts.logger.error({ event: 'security', kind: 'upstream-digest-mismatch', ...fields }, msg);
    else this.opts.logger.warn(fields, msg);
  }

  /** Upstream failures with nothing local to fall back on: coded errors pass, the rest become UPSTREAM_UNAVAILABLE. */
  private rethrow(e: unknown, t: ProxyTarget, reference: string): never {
    this.logFailure(e, t, reference, 'upstream request failed');
    if (isRegistryError(e)) throw e;
    throw err('UPSTREAM_UNAVAILABLE', `upstream ${t.upstream} failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

const fromRecord = (r: ManifestRecord, t: ProxyTarget, stale: boolean): UpstreamManifest => ({
  digest: r.digest,
  mediaType: r.mediaType,
  bytes: r.bytes,
  stale,
  repository: t.repository,
  namespace: t.namespace,
});

const fromFetched = (m: FetchedManifest, t: ProxyTarget): UpstreamManifest => {
  const mediaType = parseManifest(m.bytes, m.mediaType).mediaType;
  return { digest: m.digest, mediaType, bytes: m.bytes, stale: false, repository: t.repository, namespace: t.namespace };
};
