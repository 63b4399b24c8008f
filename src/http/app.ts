import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Hono } from 'hono';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { getRequestListener, type HttpBindings } from '@hono/node-server';
import type { Logger } from 'pino';
import { AccessLog, type AccessLogSettings } from './access-log.js';
import { DENIED_REASON_HEADER, isRegistryError, type RegistryError } from '../oci/index.js';
import { toHttpError } from './errors.js';
import type { HttpMetrics } from './metrics.js';
import { closeAfterRefusal } from './request-body.js';
import { Context, CustomsResponse, contextOf, setContext } from './request-context.js';
import { headerText, sendBytes } from './reply.js';
import { v2Handler, type V2Services } from './v2.js';

export interface AppDeps {
  readonly v2: V2Services;
  readonly log: Logger;
  readonly metrics: HttpMetrics;
  /** Throws when storage or the database is unusable. */
  readonly ready: () => Promise<void>;
  /** Called for every DENIED answer (audit log); `target` is the request path. */
  readonly onDenied?: (actor: string, target: string, reason: string) => void;
  /** Extra sub-apps mounted at their prefix (e.g. /admin). */
  readonly mounts?: ReadonlyArray<readonly [string, Hono<{ Bindings: HttpBindings }>]>;
}

/**
 * Health, metrics and the mounted sub-apps (admin, token realm) as one Hono app.
 * /v2/ is not in it: `requestListener` hands it straight to the Distribution API
 * handler, the hot path of a registry.
 */
export function createApp(deps: Omit<AppDeps, 'v2'>): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    try {
      await deps.ready();
      return c.json({ status: 'ready' });
    } catch (e) {
      deps.log.warn({ err: (e as Error).message }, 'not ready');
      return c.json({ status: 'unavailable', reason: (e as Error).message }, 503);
    }
  });
  app.get('/metrics', async (c) => c.text(await deps.metrics.registry.metrics(), 200, { 'content-type': deps.metrics.registry.contentType }));
  for (const [prefix, sub] of deps.mounts ?? []) app.route(prefix, sub);
  app.notFound((c) => c.json({ errors: [{ code: 'NAME_UNKNOWN', message: 'no such route' }] }, 404));
  app.onError((e, c) => sendError(c.env.incoming, c.env.outgoing, e, deps));
  return app;
}

/** The one place a thrown error becomes a response (spec error body), an audit entry (403) or an aborted body. */
function sendError(req: IncomingMessage, res: ServerResponse, e: unknown, deps: Pick<AppDeps, 'onDenied'>): Response {
  const ctx = contextOf(req);
  if (clientLeft(req, e)) {
    // Not an error: the client closed its connection before sending all of its request.
    ctx.log.debug({ err: (e as Error).message }, 'client went away');
    if (!res.destroyed) res.destroy();
    return RESPONSE_ALREADY_SENT;
  }
  const http = toHttpError(e);
  if (http.internal) ctx.log.error({ err: e }, 'internal error');
  else if (http.level !== 'debug') ctx.log[http.level]({ code: (e as RegistryError).code, err: (e as Error).message }, 'request failed');
  if (http.status === 403) deps.onDenied?.(ctx.actor ?? 'anonymous', deniedTarget(req.url ?? ''), (e as Error).message.slice(0, 1000));
  else ctx.log.debug({ code: http.status, err: (e as Error).message }, 'request refused');
  if (res.headersSent) {
    // A body was already streaming: the only honest signal left is an aborted connection.
    res.destroy();
    return RESPONSE_ALREADY_SENT;
  }
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  closeAfterRefusal(req, headers);
  // A HEAD answer has no body: the reason travels in a header (the CLI prints it).
  if (http.status === 403) headers[DENIED_REASON_HEADER] = headerText((e as Error).message);
  const detail = (e as { detail?: { challenge?: string; size?: number; retryAfter?: number } }).detail;
  if (http.status === 401 && detail?.challenge) headers['www-authenticate'] = detail.challenge;
  // An upstream's rate limit, passed on (pull-through): when to ask again, in seconds.
  if (http.status === 429 && typeof detail?.retryAfter === 'number') headers['retry-after'] = String(detail.retryAfter);
  // The database or object store is briefly away (a restart, a failover): ask again shortly.
  if (http.status === 503) headers['retry-after'] = '1';
  if (http.status === 416 && typeof detail?.size === 'number') {
    // Blob reads say how big the blob is (RFC 9110); uploads say how far they got (distribution spec).
    if (ctx.route === 'blob') headers['content-range'] = `bytes */${detail.size}`;
    else if (ctx.route === 'upload') headers.range = `0-${Math.max(0, detail.size - 1)}`;
  }
  return sendBytes(res, http.status, http.body, headers, req.method === 'HEAD');
}

/** The request path, with the spec's `ns` (a mirror client such as containerd names the upstream there); no other query value. */
function deniedTarget(url: string): string {
  const [path, query] = url.split('?', 2) as [string, string | undefined];
  const ns = query ? new URLSearchParams(query).get('ns') : null;
  return `${path}${ns && /^[A-Za-z0-9.:-]{1,255}$/.test(ns) ? `?ns=${ns}` : ''}`.slice(0, 300);
}

/** Errors a request's body stream raises when its client disconnects mid-body; ours are RegistryErrors. */
const CLIENT_GONE = new Set(['ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE']);

/**
 * The client went away before its request was complete (an upload cut short). Our own failures are
 * RegistryErrors (storage translates its errors), so a raw reset on a dead connection is the client's.
 */
function clientLeft(req: IncomingMessage, e: unknown): boolean {
  if (isRegistryError(e)) return false;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return (req.aborted || req.socket.destroyed) && code !== undefined && CLIENT_GONE.has(code);
}

/**
 * The Node request listener: request id, one JSON log line per request, metrics.
 * Done here rather than in Hono middleware because most /v2/ responses are written
 * straight to the socket. The server should create its responses as
 * `CustomsResponse` (request-context.ts), which carries the request id into
 * `writeHead`; any other response gets it with `setHeader`.
 */
export interface ListenerDeps extends Pick<AppDeps, 'log' | 'metrics' | 'v2' | 'onDenied'> {
  readonly access?: AccessLogSettings;
  /** Runs before each request is handled (worker processes: apply the other workers' cache events). */
  readonly beforeRequest?: () => void;
}

export function requestListener(app: Hono<{ Bindings: HttpBindings }>, deps: ListenerDeps) {
  const honoListener = getRequestListener(app.fetch, { autoCleanupIncoming: false, overrideGlobalObjects: false });
  const v2 = v2Handler(deps.v2);
  const { log, metrics } = deps;
  const accessLog = new AccessLog(log, deps.access);
  // One function for every response's 'close' (no closure per request): `this` is the response.
  function onClose(this: ServerResponse): void {
    const res = this;
    const req = res.req;
    const ctx = contextOf(req) as Context;
    const seconds = (performance.now() - ctx.started) / 1000;
    const status = res.writableFinished ? res.statusCode : 499;
    const socket = req.socket;
    const bytesIn = socket.bytesRead - ctx.readAt;
    const bytesOut = socket.bytesWritten - ctx.writtenAt;
    const method = req.method ?? 'GET';
    metrics.observe(ctx.route, method, status, seconds, bytesIn, bytesOut);
    // The query string is logged without values that could be secrets (none of the spec's are, but a client may add some).
    const url = req.url ?? '';
    const q = url.indexOf('?');
    accessLog.write({ reqId: ctx.id, method, path: q < 0 ? url : url.slice(0, q), route: ctx.route, status, ms: Math.round(seconds * 1e4) / 10, actor: ctx.actor, bytesIn, bytesOut });
  }
  const { beforeRequest } = deps;
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    beforeRequest?.();
    const incomingId = req.headers['x-request-id'];
    const id = typeof incomingId === 'string' && REQUEST_ID.test(incomingId) ? incomingId : randomUUID();
    const socket = req.socket;
    setContext(req, new Context(id, log, started, socket.bytesRead, socket.bytesWritten));
    if (res instanceof CustomsResponse) res.requestId = id;
    else res.setHeader('x-request-id', id);
    res.on('close', onClose);
    const url = req.url ?? '/';
    if (url.startsWith('/v2/') || url === '/v2' || url.startsWith('/v2?')) {
      v2(req, res).catch((e: unknown) => sendError(req, res, e, deps));
    } else void honoListener(req, res);
  };
  /** Writes access lines still waiting for their batch (call at shutdown). */
  return Object.assign(listener, { flush: () => accessLog.flush() });
}

const REQUEST_ID = /^[\w.-]{1,64}$/;
