import { mkdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { ConfigError, loadConfig, parseSliceAt } from './config/load.js';
import type { Config } from './config/schema.js';
import { createApp, requestListener } from './http/app.js';
import { adminApp } from './http/admin.js';
import { adminGcApp } from './http/admin-gc.js';
import { adminInspectApp } from './http/admin-inspect.js';
import { adminScrubApp } from './http/admin-scrub.js';
import { adminVerifyApp } from './http/admin-verify.js';
import { adminResolveApp } from './http/admin-resolve.js';
import { adminTagApp } from './http/admin-tag.js';
import { loadAdminToken, loadSessionKey } from './http/admin-token.js';
import { TokenAccess } from './http/auth.js';
import { HttpMetrics, IntegrityCounters } from './http/metrics.js';
import { UploadSlots } from './http/request-body.js';
import { CustomsResponse } from './http/request-context.js';
import { tokenApp } from './http/token-endpoint.js';
import { admissionApp } from './http/admission.js';
import { admissionConfigSchema, buildAdmission, defaultVerifierKeyFile, loadVerifierKey, publicKeyPem, publishingSummaries, vsaConfigSchema, type AdmissionParts, type HubRevisions } from './admission/index.js';
import { createTlsServer, loadTlsMaterial, tlsConfigSchema, type TlsConfig, type TlsServer } from './http/tls.js';
import { err, referenceString, type Digest, type Reference } from './oci/index.js';
import { consoleApp } from './console-app.js';
import { createOps, type Ops } from './ops/index.js';
import { parseUpstreamFlag, upstreamsConfigSchema, type UpstreamConfig } from './proxy/config.js';
import { PullThroughService } from './proxy/pull-through-service.js';
import { combinePullThrough } from './proxy/combined.js';
import { HubImporter, HubPullThrough, HubService, hubConfigSchema, hubRuleOf } from './hub/index.js';
import { hubApp } from './http/hub.js';
import { adminHubApp } from './http/admin-hub.js';
import { BlobService, GarbageCollector, ListingService, ManifestService, PullRecorder, ServingRule, RegistryContentSource, UpstreamFreshVerdicts, UploadService, type GcOptions } from './registry/index.js';
import { ContentIntegrity, Scrubber } from './registry/index.js';
import { openStorage, type WorkerIdentity } from './storage/open.js';
import { hasVerdictStore } from './storage/verdict-store.js';
import { buildGate, describeFailures, policySchema, warmUpSbomValidators, type Gate } from './verify/index.js';
import { applyCacheEvents, publishingGate, publishingHooks } from './coherence.js';
import { SwappableVerdicts } from './swappable-verdicts.js';
import { manifestsUngated, withoutQuarantine, type Ablation } from './bench-ablation.js';
import { refusalRecorder } from './refusal-audit.js';
import type { AuditInput } from './storage/ops-store.js';

// Composition root: the one place that picks concrete implementations.
export type GateMode = 'enforce' | 'audit' | 'off';
export interface ServeOptions {
  /** HOST:PORT; port 0 picks a free port. Default from config, else 127.0.0.1:5000. */
  listen?: string;
  /** Default from config (`data:`), else ./data. An explicit value wins over the config file. */
  dataDir?: string;
  configFile?: string;
  /** Overrides the mode of every policy rule. */
  gate?: GateMode;
  /** NAME=URL anonymous upstreams added to the configured ones. */
  upstreams?: Record<string, string>;
  logLevel?: 'silent' | 'error' | 'warn' | 'info' | 'debug';
  /** Where log lines go (default stdout). */
  logDestination?: NodeJS.WritableStream;
  /** `--tls-cert`/`--tls-key`: serve HTTPS with this pair (overrides `tls.cert`/`tls.key`). */
  tls?: { cert: string; key: string };
  /** One of several worker processes sharing the data directory (`customs serve --workers N`, src/cli/cluster.ts). */
  worker?: WorkerIdentity;
  /** Benchmark ablations (bench-ablation.ts); never for serving. */
  ablate?: readonly Ablation[];
}
export interface RunningServer {
  /** http://HOST:PORT (https:// with TLS) actually bound. */
  readonly url: string;
  readonly log: Logger;
  readonly ops: Ops;
  /** Verification summaries being published (tests wait for them); undefined when `vsa.enabled` is false. */
  readonly summaries: { settled(): Promise<void> } | undefined;
  /** Re-reads the policy and trust material (SIGHUP); a bad policy keeps the old one and throws. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const loaded = await loadConfig(opts.configFile);
  const { config } = loaded;
  // An ablated server (benchmarks only) may switch off the gate and quarantines: it never listens beyond this machine.
  if (opts.ablate?.length && !['127.0.0.1', '::1', 'localhost'].includes(splitListen(opts.listen ?? config.listen)[0])) {
    throw new ConfigError('CUSTOMS_BENCH_ABLATE is for benchmarks on loopback only; unset it to serve on another address');
  }
  const log = pino({ level: opts.logLevel ?? config.log.level, base: { svc: 'customs', ...(opts.worker ? { worker: opts.worker.id } : {}) } }, (opts.logDestination as pino.DestinationStream | undefined) ?? pino.destination({ sync: false }));
  const dataDir = resolve(opts.dataDir ?? config.data);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const configDir = opts.configFile ? dirname(resolve(opts.configFile)) : undefined;
  const policyInput = parseSliceAt(loaded, policySchema.optional(), 'policy', config.policy);
  // TLS first: a missing or mismatched pair stops the start before anything is opened.
  const tlsConfig = tlsSettings(parseSliceAt(loaded, tlsConfigSchema.optional(), 'tls', config.tls), opts.tls);
  if (tlsConfig) loadTlsMaterial(tlsConfig, configDir ?? process.cwd());
  // Admission webhook and verification summaries (issue 18): customs' verifier key is made on first use.
  const admissionConfig = parseSliceAt(loaded, admissionConfigSchema, 'admission', config.admission ?? {});
  const vsaConfig = parseSliceAt(loaded, vsaConfigSchema, 'vsa', config.vsa ?? {});
  const verifierKey = vsaConfig.enabled ? await loadVerifierKey(vsaConfig.keyFile ? resolve(configDir ?? '.', vsaConfig.keyFile) : defaultVerifierKeyFile(dataDir)) : undefined;
  const upstreams: UpstreamConfig[] = [
    ...parseSliceAt(loaded, upstreamsConfigSchema, 'upstreams', config.upstreams),
    ...Object.entries(opts.upstreams ?? {}).map(([name, url]) => parseUpstreamFlag(`${name}=${url}`)),
  ];
  const hubConfig = parseSliceAt(loaded, hubConfigSchema, 'hub', config.hub);
  for (const h of hubConfig.upstreams) if (upstreams.some((u) => u.name === h.name)) throw new ConfigError(`hub.upstreams: ${h.name} is also the name of an OCI upstream`);

  // filesystem + SQLite, or S3 + PostgreSQL shared by replicas; throws StorageStartupError naming what is unreachable.
  const storage = await openStorage(config, dataDir, log, { worker: opts.worker });
  const { blobs, uploads, metadata, notifier } = storage;
  const metrics = new HttpMetrics();
  const integrityCounters = new IntegrityCounters(metrics.registry);
  // Corrupt content (found by the scrub or by a read) is set aside, never served, and reported.
  const integrity = new ContentIntegrity(blobs, metadata, log, integrityCounters);

  let recordRefusal: ((e: AuditInput) => void) | undefined;
  const sessionKey = await loadSessionKey(dataDir, config.auth);
  const access = new TokenAccess({
    config: config.auth,
    adminTokenHash: await loadAdminToken(dataDir, config.auth, log),
    ...(tlsConfig?.clientCA ? { clientCertPermissions: tlsConfig.clientPermissions } : {}),
    sessionKey,
    onAuthFailure: (who, reason, req) => {
      log.warn({ event: 'auth-failure', who, reason, remote: req.remoteAddress }, 'authentication failed');
      recordRefusal?.({ actor: who, action: 'auth.failure', reason, detail: { remote: req.remoteAddress ?? 'unknown' } });
    },
  });

  let ops: Ops | undefined;
  const pullThrough = upstreams.length
    ? new PullThroughService({
        blobs,
        metadata,
        upstreams,
        logger: log,
        tempDir: opts.worker ? join(dataDir, 'proxy-fill', `w${opts.worker.id}`) : join(dataDir, 'proxy-fill'),
        fillLease: storage.fillLease,
        pins: { isPinned: (r, t) => ops!.pins.isPinned(r, t) },
        ...(configDir ? { configDir } : {}),
      })
    : undefined;
  if (opts.worker?.first) for (const d of ['proxy-fill', 'hub-fill']) await rm(join(dataDir, d), { recursive: true, force: true }); // every worker's leftovers
  await pullThrough?.init();
  // Hugging Face Hubs: their repositories (`<name>/<org>/<model>`) are pulled through like an OCI upstream's.
  let verdicts: SwappableVerdicts | undefined;
  const hubRules = (repository: string) => (verdicts ? hubRuleOf(verdicts.gate.policy, repository) : undefined);
  const hubPull = hubConfig.upstreams.length
    ? new HubPullThrough({
        blobs,
        metadata,
        upstreams: hubConfig.upstreams,
        logger: log,
        tempDir: opts.worker ? join(dataDir, 'hub-fill', `w${opts.worker.id}`) : join(dataDir, 'hub-fill'),
        fillLease: storage.fillLease,
        pins: { isPinned: (r, t) => ops!.pins.isPinned(r, t) },
        rules: hubRules,
        ...(configDir ? { configDir } : {}),
      })
    : undefined;
  await hubPull?.init();
  const served = combinePullThrough([pullThrough, hubPull]);

  // The gate: verdicts (verify) and quarantine applied to manifests, evidence and blobs by one rule (registry/serving-rule.ts).
  const source = new RegistryContentSource(blobs, metadata, served);
  const makeGate = (policy: unknown): Gate =>
    buildGate({ source, policy, dataDir, ...(configDir ? { configDir } : {}), ...(opts.gate ? { mode: opts.gate } : {}), ...(verifierKey ? { verifierKey: verifierKey.publicKey } : {}) });
  verdicts = new SwappableVerdicts(makeGate(policyInput), hasVerdictStore(metadata) ? metadata : undefined, log);
  if (opts.gate && opts.gate !== 'enforce') log.warn({ gate: opts.gate }, `GATE OVERRIDDEN: every policy rule runs in ${opts.gate} mode (--gate ${opts.gate}); content is served unverified`);
  // Upstream evidence changes without a push here: verdicts about proxied content expire with the upstream's tagFreshness.
  const freshnessMs = new Map(upstreams.map((u) => [u.name, u.tagFreshness * 1000]));
  let admission: AdmissionParts | undefined;
  // Every verdict is offered to the summary publisher: the first allow of a digest gets a signed VSA.
  const judged = publishingSummaries(pullThrough ? new UpstreamFreshVerdicts(verdicts, (r) => freshnessMs.get(pullThrough.resolve(r)?.upstream ?? '')) : verdicts, () => admission?.summaries);
  const ablate = new Set(opts.ablate ?? []);
  if (ablate.size > 0) log.warn({ ablate: [...ablate] }, 'BENCHMARK ABLATION (CUSTOMS_BENCH_ABLATE): duties of the request are switched off; never serve like this');
  if (ablate.has('metrics')) metrics.observe = () => undefined;
  const servingRule = new ServingRule(judged, ablate.has('quarantine') ? withoutQuarantine(metadata) : metadata);
  const policyGate = publishingGate(servingRule, notifier, log);
  const judge = async (repository: string, digest: string) => {
    const v = await judged.check(repository, digest);
    return { allowed: v.allowed, findings: describeFailures(v) };
  };
  ops = createOps({
    metadata,
    blobs,
    gate: policyGate,
    judge,
    log,
    // Lineage, quarantine by material and deep verify act only on provenance whose signature verifies.
    evidence: async (repository, referrer, subject) => {
      const v = await judged.checkEvidence(repository, referrer, subject);
      const status = v.allowed ? (v.evidence?.kind ?? 'verified') : 'unverified';
      return { status, detail: v.findings.map((f) => f.reason).join('; ').slice(0, 500) };
    },
    invalidateTags: (r) => void notifier.publish({ kind: 'tags', repository: r }).catch(() => undefined),
  });
  const gate = ops.gate;
  recordRefusal = refusalRecorder(ops.audit, log);

  // When cached manifests were last pulled (eviction, `evictAfterSeconds`): batched off the hot path.
  const pullRecorder = new PullRecorder(metadata);
  const flushPulls = () => pullRecorder.flush().catch((e: Error) => log.warn({ err: e.message }, 'could not record pulls'));
  const pullFlusher = setInterval(() => void flushPulls(), 10_000);
  pullFlusher.unref();
  // storage.redirect (S3 only): big blob GETs answer 307 to a presigned URL once access and the gate allowed them.
  const blobService = new BlobService(blobs, metadata, gate, served, { redirect: storage.redirect, integrity });
  const v2 = {
    blobs: blobService,
    uploads: new UploadService(blobs, uploads, blobService, { maxBlobBytes: config.limits.maxBlobBytes }),
    manifests: new ManifestService(metadata, ablate.has('gate') ? manifestsUngated(gate) : gate, served, publishingHooks(ops.hooks, notifier, log), pullRecorder, integrity),
    listing: new ListingService(metadata, served, async (repository, referrer, subject) => {
      const v = await judged.checkEvidence(repository, referrer, subject);
      return v.allowed ? (v.evidence?.kind ?? 'verified') : 'unverified';
    }),
    access,
    isProxied: (repository: string) => served?.handles(repository) ?? false,
    bodyIdleMs: config.limits.bodyIdleSeconds * 1000,
    uploadSlots: new UploadSlots(config.limits.maxConcurrentUploadsPerPrincipal),
  };
  let hubRevisions: HubRevisions | undefined;
  admission = buildAdmission({
    admission: admissionConfig,
    vsa: vsaConfig,
    verifierKey,
    metadata,
    writer: { blobs, link: (r, i) => blobService.link(r, i), putManifest: (r, ref, b, ct, by) => v2.manifests.put(r, ref, b, ct, by), isProxied: v2.isProxied },
    manifests: v2.manifests,
    gate,
    upstreams,
    audit: (e) => ops!.audit.record(e),
    log,
    hub: () => hubRevisions,
  });
  const verifyRef = async (repository: string, reference: Reference, policy: unknown) => {
    const found = await v2.manifests.resolve(repository, reference);
    if (!found) throw err('MANIFEST_UNKNOWN', `manifest unknown: ${repository}@${referenceString(reference)}`);
    // A what-if policy gets a gate of its own, so its verdicts never reach the cache.
    if (policy !== undefined) return makeGate(parseSliceAt(loaded, policySchema, 'policy', policy)).check(repository, found.record.digest);
    return judged.check(repository, found.record.digest);
  };
  // Operators read refused content only through /admin/inspect (admin, a reason, audited).
  const inspectable = {
    manifest: async (repository: string, reference: Reference) => (await v2.manifests.resolve(repository, reference))?.record,
    blob: async (repository: string, digest: Digest) => {
      const info = await blobService.linkedInfo(repository, digest);
      return info && { size: info.size, open: () => blobs.get(digest) };
    },
    denial: (repository: string, digest: Digest) => gate.manifest(repository, digest).then(() => undefined, (e: Error) => e.message),
  };
  const unsubscribe = applyCacheEvents(notifier, { gate: verdicts, rule: servingRule, manifests: v2.manifests });
  metrics.cacheEntries(() => {
    const m = v2.manifests.cached();
    const r = servingRule.cached();
    return { manifest_records: m.records, manifest_tags: m.tags, serving_facts: r.facts, serving_blob_hints: r.servedVia };
  });
  const collector = new GarbageCollector(v2.manifests, blobService, metadata, v2.isProxied, pullRecorder);
  const gcAbort = new AbortController();
  const scrubber = new Scrubber({ blobs, metadata, integrity, isProxied: v2.isProxied, refetch: pullThrough && ((r, d) => pullThrough.refetchBlob(r, d)), metrics: integrityCounters, log });
  const scrubAbort = new AbortController();
  const scrubRate = (mib: number) => ({ maxBytesPerSecond: mib * 1024 * 1024, signal: scrubAbort.signal });
  let shuttingDown = false;
  const onDenied = (actor: string, target: string, reason: string) => recordRefusal?.({ actor, action: 'deny', target, reason });
  const hub = new HubService({ manifests: v2.manifests, blobs: blobService, metadata, pull: hubPull, rules: hubRules, defaultUpstream: hubConfig.defaultUpstream, logger: log });
  // The admission webhook judges `hf://` storage URIs by what this Hub API would serve for them.
  hubRevisions = {
    open: async (repoId, revision) => {
      const repo = await hub.repo({ upstream: undefined, type: 'model', repoId });
      const opened = await hub.open(repo, revision);
      return { repository: repo.repository, digest: opened.digest, commit: opened.view.commit };
    },
  };
  // `customs hub import`: the same pull-through, driven by an operator.
  const hubAdmin = hubPull && adminHubApp({ importer: new HubImporter({ pull: hubPull, manifests: v2.manifests, blobs: blobService, metadata, judge }), pull: hubPull, defaultUpstream: hubConfig.defaultUpstream, access });
  const app = createApp({
    log,
    metrics,
    onDenied,
    mounts: [
      ['/auth', tokenApp(access)],
      ['/admin', adminApp(ops, access)],
      ['/admin', adminVerifyApp(verifyRef, access)],
      ['/admin', adminResolveApp(async (repository, reference) => {
        const r = (await v2.manifests.resolve(repository, reference))?.record;
        return r && { digest: r.digest, mediaType: r.mediaType, size: r.size, artifactType: r.artifactType };
      }, access)],
      ['/admin', adminTagApp({
        resolve: async (repository, reference) => (await v2.manifests.resolve(repository, reference))?.record.digest,
        tag: (repository, tag, digest, by) => ops.tags.tag(repository, tag, digest, by),
        isProxied: v2.isProxied,
      }, access)],
      ['/admin', adminInspectApp(inspectable, access, (e) => ops.audit.record(e))],
      ['/admission', admissionApp({ webhook: admission.webhook, verifierPublicKey: verifierKey ? publicKeyPem(verifierKey) : undefined })],
      ['/admin', adminGcApp((o, by) => collector.run({ ...gcDefaults(config.gc, upstreams), ...defined(o), signal: gcAbort.signal }, by), access)],
      [hubConfig.prefix, hubApp({ prefix: hubConfig.prefix, service: hub, access, upstreams: new Set(hubConfig.upstreams.map((u) => u.name)), onDenied })],
      ...(hubAdmin ? [['/admin', hubAdmin] as const] : []),
      ['/admin', adminScrubApp((o, by) => scrubber.run(scrubRate(o.maxMiBPerSecond ?? config.scrub.maxMiBPerSecond), by), access)],
      ...(config.ui.enabled ? [['/ui', consoleApp({ config: config.ui, sessionKey, access, ops, metadata, blobs, verdicts, judged, gate, manifests: v2.manifests, pullThrough, onDenied })] as const] : []),
    ],
    ready: async () => {
      // Shutting down: fail readiness first, so a load balancer stops routing here while requests are still served.
      if (shuttingDown) throw new Error('shutting down');
      await blobs.ready();
      await metadata.ready();
    },
  });

  const expireMs = config.uploads.expireAfterSeconds * 1000;
  const expired = await uploads.expire(expireMs);
  if (expired > 0) log.info({ expired }, 'removed abandoned upload sessions');
  const expiry = setInterval(() => void uploads.expire(expireMs).catch((e: Error) => log.warn({ err: e.message }, 'upload expiry failed')), Math.min(expireMs, 3600_000));
  expiry.unref();
  const gc = scheduleGc(collector, gcDefaults(config.gc, upstreams), config.gc.intervalSeconds, gcAbort.signal, log);
  const scrubs = scrubber.schedule(config.scrub.intervalSeconds, scrubRate(config.scrub.maxMiBPerSecond));

  const listener = requestListener(app, { log, metrics, v2, onDenied, access: { access: config.log.access, sampleEvery: config.log.accessSampleEvery }, beforeRequest: storage.sync });
  const serverOptions = { ServerResponse: CustomsResponse, keepAliveTimeout: 65_000, headersTimeout: config.limits.headersTimeoutSeconds * 1000, requestTimeout: config.limits.requestTimeoutSeconds * 1000 };
  const tls: TlsServer | undefined = tlsConfig ? createTlsServer(tlsConfig, configDir ?? process.cwd(), listener, serverOptions) : undefined;
  const server: Server = tls?.server ?? createServer(serverOptions, listener);
  // `Expect: 100-continue` on /v2/ is answered by the handler once it accepts the body (request-body.ts), so a
  // refused upload is refused before the client sends it; elsewhere Node's default (continue at once).
  server.on('checkContinue', (req, res) => {
    if (!(req.url ?? '').startsWith('/v2/')) res.writeContinue();
    listener(req, res);
  });
  const [host, port] = splitListen(opts.listen ?? config.listen);
  await listen(server, host, port);
  const addr = server.address() as AddressInfo;
  admission.bound(addr, tls?.names() ?? []);
  const tlsWatch = tls && tlsConfig!.watchSeconds > 0 ? setInterval(() => tls.reloadIfChanged() && log.info({ names: tls.names() }, 'TLS certificate and key changed on disk; reloaded'), tlsConfig!.watchSeconds * 1000) : undefined;
  tlsWatch?.unref();
  const url = `${tls ? 'https' : 'http'}://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  log.info({ url, data: dataDir, pid: process.pid, upstreams: upstreams.map((u) => u.name), gate: opts.gate ?? 'policy' }, 'listening');
  // Compiling the CycloneDX schemas takes ~0.5 s of CPU each: when the policy reads SBOMs, pay it now rather than
  // on the first pull that needs them; otherwise never (it would stall every start for nothing).
  if (JSON.stringify(policyInput ?? {}).includes('"sbom"')) setImmediate(() => void warmUpSbomValidators());

  let closing: Promise<void> | undefined;
  return {
    url,
    log,
    ops,
    summaries: admission.summaries,
    reload: async () => {
      // The certificate first and on its own: a renewed pair is taken even when the policy has an error.
      let tlsError: Error | undefined;
      try {
        tls?.reload();
        if (tls) log.info({ names: tls.names() }, 'TLS certificate and key reloaded');
      } catch (e) {
        tlsError = e as Error;
      }
      const next = await loadConfig(opts.configFile);
      const gateNext = makeGate(parseSliceAt(next, policySchema.optional(), 'policy', next.config.policy));
      verdicts.swap(gateNext);
      await notifier.publish({ kind: 'policy' }).catch(() => undefined);
      log.info({ policyHash: gateNext.policyHash, trustHash: gateNext.trustHash }, 'policy and trust material reloaded');
      if (tlsError) throw new Error(`TLS reload failed, keeping the previous certificate: ${tlsError.message}`);
    },
    close: () =>
      (closing ??= (async () => {
        shuttingDown = true;
        if (config.shutdownDelaySeconds > 0) {
          log.info({ seconds: config.shutdownDelaySeconds }, 'shutting down: readiness fails, still serving');
          await new Promise((r) => setTimeout(r, config.shutdownDelaySeconds * 1000));
        }
        clearInterval(expiry);
        clearInterval(tlsWatch);
        gcAbort.abort(); // a run in progress (scheduled or an operator's) stops between two blobs
        scrubAbort.abort();
        await gc.stop();
        await scrubs.stop();
        clearInterval(pullFlusher);
        // Stop accepting; in-flight requests (uploads, downloads) get shutdownTimeoutSeconds to finish; keep-alive
        // sockets close as soon as they are idle (now, or when their request is done).
        const done = new Promise<void>((res) => server.close(() => res()));
        server.closeIdleConnections();
        const idle = setInterval(() => server.closeIdleConnections(), 100);
        const force = setTimeout(() => {
          log.warn({ seconds: config.shutdownTimeoutSeconds }, 'shutdown: closing connections still busy after shutdownTimeoutSeconds');
          server.closeAllConnections();
        }, config.shutdownTimeoutSeconds * 1000);
        await done;
        clearInterval(idle);
        clearTimeout(force);
        unsubscribe();
        await admission?.summaries?.settled();
        // A fill whose last client is gone may still be committing what it fetched: let it link the blob.
        await pullThrough?.settle(config.shutdownTimeoutSeconds * 1000);
        pullThrough?.close();
        hubPull?.close();
        await flushPulls();
        await storage.close();
        listener.flush();
        log.info('stopped');
        log.flush();
      })()),
  };
}

/** The configured policy of every run, scheduled or an operator's (who may override each part). */
const gcDefaults = (settings: Config['gc'], upstreams: readonly UpstreamConfig[]): GcOptions => ({
  dryRun: false,
  graceSeconds: settings.graceSeconds,
  untaggedAfterSeconds: settings.untaggedAfterSeconds,
  evict: upstreams.flatMap((u) => (u.evictAfterSeconds ? [{ prefix: `${u.name}/`, afterSeconds: u.evictAfterSeconds }] : [])),
});

/** `o` without its undefined properties (so they do not override defaults when spread). */
const defined = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

/** Scheduled garbage collection (`gc.intervalSeconds`, 0 = off): one run at a time; `stop` waits for a run in progress. */
function scheduleGc(collector: GarbageCollector, options: GcOptions, intervalSeconds: number, signal: AbortSignal, log: Logger): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const run = (): void => {
    if (running) return;
    running = collector
      .run({ ...options, signal }, { actor: 'system:gc', reason: 'scheduled (gc.intervalSeconds)' })
      .then(
        (r) => log.info({ manifests: r.manifests, evicted: r.evicted, links: r.links, blobs: r.blobs, bytes: r.bytes }, 'garbage collection'),
        (e: Error) => log.warn({ err: e.message }, 'garbage collection failed'),
      )
      .finally(() => {
        running = undefined;
      });
  };
  const timer = intervalSeconds > 0 ? setInterval(run, intervalSeconds * 1000) : undefined;
  timer?.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}

/** `tls:` from the config, with `--tls-cert`/`--tls-key` (relative to the working directory) taking precedence. */
function tlsSettings(fromConfig: TlsConfig | undefined, flags: ServeOptions['tls']): TlsConfig | undefined {
  if (!flags) return fromConfig;
  const paths = { cert: resolve(flags.cert), key: resolve(flags.key) };
  return fromConfig ? { ...fromConfig, ...paths } : tlsConfigSchema.parse(paths);
}

function splitListen(listen: string): [string, number] {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid --listen ${listen}: expected HOST:PORT`);
  return [host || '127.0.0.1', port];
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(port, host, () => {
      server.off('error', rej);
      res();
    });
  });
}
