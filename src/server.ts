import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { loadConfigFile } from './config/load.js';
import type { Config } from './config/schema.js';
import { createApp, requestListener } from './http/app.js';
import { loadAdminToken, loadSessionKey } from './http/admin-token.js';
import { TokenAccess } from './http/auth.js';
import { tokenApp } from './http/token-endpoint.js';
import { HttpMetrics } from './http/metrics.js';
import { ALLOW_ALL, BlobService, ListingService, ManifestService, UploadService } from './registry/index.js';
import { FsBlobStore } from './storage/fs-blob-store.js';
import { FsUploadStore } from './storage/fs-upload-store.js';
import { SqliteMetadataStore } from './storage/sqlite-metadata-store.js';

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
  close(): Promise<void>;
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const config: Config = await loadConfigFile(opts.configFile);
  const log = pino({ level: opts.logLevel ?? config.log.level, base: { svc: 'customs' } }, (opts.logDestination as pino.DestinationStream | undefined) ?? pino.destination({ sync: false }));
  const dataDir = resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });

  const blobs = new FsBlobStore(dataDir);
  await blobs.init();
  const uploads = new FsUploadStore(blobs);
  await uploads.init();
  const metadata = new SqliteMetadataStore(join(dataDir, 'metadata.sqlite'));

  const access = new TokenAccess({
    config: config.auth,
    adminTokenHash: await loadAdminToken(dataDir, config.auth, log),
    sessionKey: await loadSessionKey(dataDir, config.auth),
    onAuthFailure: (who, reason, req) => log.warn({ event: 'auth-failure', who, reason, remote: req.remoteAddress }, 'authentication failed'),
  });

  const gate = ALLOW_ALL;
  const pullThrough = undefined;
  const blobService = new BlobService(blobs, metadata, gate, pullThrough);
  const v2 = {
    blobs: blobService,
    uploads: new UploadService(blobs, uploads, blobService, { maxBlobBytes: config.limits.maxBlobBytes }),
    manifests: new ManifestService(metadata, gate, pullThrough),
    listing: new ListingService(metadata, pullThrough),
    access,
    isProxied: () => false,
  };
  const metrics = new HttpMetrics();
  const app = createApp({
    v2,
    log,
    metrics,
    mounts: [['/auth', tokenApp(access)]],
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

  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 60_000 }, requestListener(app, { log, metrics }));
  const [host, port] = splitListen(opts.listen ?? config.listen);
  await listen(server, host, port);
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  log.info({ url, data: dataDir, pid: process.pid }, 'listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    log,
    close: () =>
      (closing ??= (async () => {
        clearInterval(expiry);
        // Stop accepting; in-flight requests finish; idle keep-alive sockets close now.
        const done = new Promise<void>((res) => server.close(() => res()));
        server.closeIdleConnections();
        const force = setTimeout(() => server.closeAllConnections(), 30_000);
        await done;
        clearTimeout(force);
        await metadata.close();
        log.info('stopped');
        log.flush();
      })()),
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
