import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { loadConfig, parseSliceAt } from './config/load.js';
import type { Config } from './config/schema.js';
import { createApp, requestListener } from './http/app.js';
import { adminApp } from './http/admin.js';
import { adminGcApp } from './http/admin-gc.js';
import { adminVerifyApp } from './http/admin-verify.js';
import { loadAdminToken, loadSessionKey } from './http/admin-token.js';
import { TokenAccess } from './http/auth.js';
import { HttpMetrics } from './http/metrics.js';
import { tokenApp } from './http/token-endpoint.js';
import { consoleApp } from './console-app.js';
import { err, referenceString, type Reference } from './oci/index.js';
import { createOps, type Ops } from './ops/index.js';
import { parseUpstreamFlag, upstreamsConfigSchema, type UpstreamConfig } from './proxy/config.js';
import { PullThroughService } from './proxy/pull-through-service.js';
import { BlobService, GarbageCollector, ListingService, ManifestService, PolicyReadGate, PullRecorder, RegistryContentSource, UpstreamFreshVerdicts, UploadService, type GcOptions } from './registry/index.js';
import { openStorage } from './storage/open.js';
import { hasVerdictStore } from './storage/verdict-store.js';
import { buildGate, describeFailures, policySchema, warmUpSbomValidators, type Gate } from './verify/index.js';
import { applyCacheEvents, publishingGate, publishingHooks } from './coherence.js';
import { SwappableVerdicts } from './swappable-verdicts.js';
import { refusalRecorder } from './refusal-audit.js';
import type { AuditInput } from './storage/ops-store.js';

// Composition root: the one place that picks concrete implementations.
export type GateMode = 'enforce' | 'audit' | 'off';
export interface ServeOptions {
  /** HOST:PORT; port 0 picks a free port. Default from config, else 127.0.0.1:5000. */
  listen?: string;
  dataDir: string;
  configFile?: string;
  /** Overrides the mode of every policy rule. */
  gate?: GateMode;
  /** NAME=URL anonymous upstreams added to the configured ones. */
  upstreams?: Record<string, string>;
  logLevel?: 'silent' | 'error' | 'warn' | 'info' | 'debug';
  /** Where log lines go (default stdout). */
  logDestination?: NodeJS.WritableStream;
}
export interface RunningServer {
  /** http://HOST:PORT actually bound. */
  readonly url: string;
  readonly log: Logger;
  readonly ops: Ops;
  /** Re-reads the policy and trust material (SIGHUP); a bad policy keeps the old one and throws. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const loaded = await loadConfig(opts.configFile);
  const { config } = loaded;
  const log = pino({ level: opts.logLevel ?? config.log.level, base: { svc: 'customs' } }, (opts.logDestination as pino.DestinationStream | undefined) ?? pino.destination({ sync: false }));
  const dataDir = resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const configDir = opts.configFile ? dirname(resolve(opts.configFile)) : undefined;
  const policyInput = parseSliceAt(loaded, policySchema.optional(), 'policy', config.policy);
  const upstreams: UpstreamConfig[] = [
    ...parseSliceAt(loaded, upstreamsConfigSchema, 'upstreams', config.upstreams),
    ...Object.entries(opts.upstreams ?? {}).map(([name, url]) => parseUpstreamFlag(`${name}=${url}`)),
  ];

  // filesystem + SQLite, or S3 + PostgreSQL shared by replicas; throws StorageStartupError naming what is unreachable.
  const storage = await openStorage(config, dataDir, log);
  const { blobs, uploads, metadata, notifier } = storage;

  let recordRefusal: ((e: AuditInput) => void) | undefined;
  const sessionKey = await loadSessionKey(dataDir, config.auth);
  const access = new TokenAccess({
    config: config.auth,
    adminTokenHash: await loadAdminToken(dataDir, config.auth, log),
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
        tempDir: join(dataDir, 'proxy-fill'),
        fillLease: storage.fillLease,
        pins: { isPinned: (r, t) => ops!.pins.isPinned(r, t) },
        ...(configDir ? { configDir } : {}),
      })
    : undefined;
  await pullThrough?.init();

  // The gate: verdicts (verify) applied to manifests, evidence and blobs (registry), quarantine on top (ops).
  const source = new RegistryContentSource(blobs, metadata, pullThrough);
  const makeGate = (policy: unknown): Gate => buildGate({ source, policy, dataDir, ...(configDir ? { configDir } : {}), ...(opts.gate ? { mode: opts.gate } : {}) });
  const verdicts = new SwappableVerdicts(makeGate(policyInput), hasVerdictStore(metadata) ? metadata : undefined, log);
  if (opts.gate && opts.gate !== 'enforce') log.warn({ gate: opts.gate }, `GATE OVERRIDDEN: every policy rule runs in ${opts.gate} mode (--gate ${opts.gate}); content is served unverified`);
  // Upstream evidence changes without a push here: verdicts about proxied content expire with the upstream's tagFreshness.
  const freshnessMs = new Map(upstreams.map((u) => [u.name, u.tagFreshness * 1000]));
  const judged = pullThrough ? new UpstreamFreshVerdicts(verdicts, (r) => freshnessMs.get(pullThrough.resolve(r)?.upstream ?? '')) : verdicts;
  const policyGate = publishingGate(new PolicyReadGate(judged, metadata), notifier, log);
  ops = createOps({
    metadata,
    blobs,
    gate: policyGate,
    judge: async (repository, digest) => {
      const v = await judged.check(repository, digest);
      return { allowed: v.allowed, findings: describeFailures(v) };
    },
    log,
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
  const blobService = new BlobService(blobs, metadata, gate, pullThrough, { redirect: storage.redirect });
  const v2 = {
    blobs: blobService,
    uploads: new UploadService(blobs, uploads, blobService, { maxBlobBytes: config.limits.maxBlobBytes }),
    manifests: new ManifestService(metadata, gate, pullThrough, publishingHooks(ops.hooks, notifier, log), pullRecorder),
    listing: new ListingService(metadata, pullThrough),
    access,
    isProxied: (repository: string) => pullThrough?.handles(repository) ?? false,
  };
  const verifyRef = async (repository: string, reference: Reference, policy: unknown) => {
    const found = await v2.manifests.resolve(repository, reference);
    if (!found) throw err('MANIFEST_UNKNOWN', `manifest unknown: ${repository}@${referenceString(reference)}`);
    // A what-if policy gets a gate of its own, so its verdicts never reach the cache.
    if (policy !== undefined) return makeGate(parseSliceAt(loaded, policySchema, 'policy', policy)).check(repository, found.record.digest);
    return judged.check(repository, found.record.digest);
  };
  const unsubscribe = applyCacheEvents(notifier, { gate: verdicts, manifests: v2.manifests });
  const collector = new GarbageCollector(v2.manifests, blobService, metadata, v2.isProxied, pullRecorder);
  const gcAbort = new AbortController();
  const metrics = new HttpMetrics();
  const onDenied = (actor: string, target: string, reason: string) => recordRefusal?.({ actor, action: 'deny', target, reason });
  const app = createApp({
    log,
    metrics,
    onDenied,
    mounts: [
      ['/auth', tokenApp(access)],
      ['/admin', adminApp(ops, access)],
      ['/admin', adminVerifyApp(verifyRef, access)],
      ['/admin', adminGcApp((o, by) => collector.run({ ...gcDefaults(config.gc, upstreams), ...defined(o), signal: gcAbort.signal }, by), access)],
      ...(config.ui.enabled ? [['/ui', consoleApp({ config: config.ui, sessionKey, access, ops, metadata, blobs, verdicts, judged, gate, manifests: v2.manifests, pullThrough, onDenied })] as const] : []),
    ],
    ready: async () => {
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

  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 60_000 }, requestListener(app, { log, metrics, v2, onDenied }));
  const [host, port] = splitListen(opts.listen ?? config.listen);
  await listen(server, host, port);
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  log.info({ url, data: dataDir, pid: process.pid, upstreams: upstreams.map((u) => u.name), gate: opts.gate ?? 'policy' }, 'listening');
  // Compiling the CycloneDX schemas takes ~0.5 s of CPU each: when the policy reads SBOMs, pay it now rather than
  // on the first pull that needs them; otherwise never (it would stall every start for nothing).
  if (JSON.stringify(policyInput ?? {}).includes('"sbom"')) setImmediate(() => void warmUpSbomValidators());

  let closing: Promise<void> | undefined;
  return {
    url,
    log,
    ops,
    reload: async () => {
      const next = await loadConfig(opts.configFile);
      const gateNext = makeGate(parseSliceAt(next, policySchema.optional(), 'policy', next.config.policy));
      verdicts.swap(gateNext);
      await notifier.publish({ kind: 'policy' }).catch(() => undefined);
      log.info({ policyHash: gateNext.policyHash, trustHash: gateNext.trustHash }, 'policy and trust material reloaded');
    },
    close: () =>
      (closing ??= (async () => {
        clearInterval(expiry);
        gcAbort.abort(); // a run in progress (scheduled or an operator's) stops between two blobs
        await gc.stop();
        clearInterval(pullFlusher);
        // Stop accepting; in-flight requests finish; idle keep-alive sockets close now.
        const done = new Promise<void>((res) => server.close(() => res()));
        server.closeIdleConnections();
        const force = setTimeout(() => server.closeAllConnections(), 30_000);
        await done;
        clearTimeout(force);
        unsubscribe();
        pullThrough?.close();
        await flushPulls();
        await storage.close();
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
