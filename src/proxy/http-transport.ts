import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { createSecureContext, rootCertificates } from 'node:tls';
import { err } from '../oci/index.js';
import { BulkPool, BulkUnsupported, bulkGet } from './bulk-get.js';
import { processExtraCas } from './upstream-tls.js';

/**
 * The one place pull-through touches the network: a request with node:http(s),
 * because a blob body must stream into storage without web-stream overhead and
 * because redirects and timeouts are ours to decide (see upstream-client.ts).
 * A GET marked `bulk` (a blob on its way to a file) goes through bulk-get.ts instead.
 */
export interface TransportResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Each header's values, unjoined (WWW-Authenticate may repeat). */
  readonly headersDistinct: NodeJS.Dict<string[]>;
  /** An IncomingMessage, or for a bulk GET a BulkBody (which can also copy itself into a file). */
  readonly body: Readable;
  readonly url: URL;
}

export interface TransportRequest {
  readonly method: 'GET' | 'HEAD';
  readonly headers: Record<string, string>;
  /** Aborts the exchange, including a body still streaming. */
  readonly signal: AbortSignal;
  /** Destroys the request when the socket is silent this long (ms). */
  readonly idleMs?: number;
  /** A large body bound for a file (a blob): read into reused slabs, on a connection of its own. */
  readonly bulk?: boolean;
}

export interface Transport {
  send(url: URL, req: TransportRequest): Promise<TransportResponse>;
  close(): void;
}

export interface TransportOptions {
  /** PEM CAs trusted in addition to Node's roots (an upstream's `tls.caFile`). */
  readonly ca?: string;
}

export function createTransport(opts: TransportOptions = {}): Transport {
  // One context for every connection: building it from ~150 roots per handshake would cost milliseconds each.
  // (`ca` replaces Node's default store, so its roots and NODE_EXTRA_CA_CERTS's are passed along.)
  const secureContext = opts.ca ? createSecureContext({ ca: [...rootCertificates, ...processExtraCas(), opts.ca] }) : undefined;
  // Keep-alive agents: token, HEAD and GET to one upstream reuse connections.
  const http = new HttpAgent({ keepAlive: true, maxSockets: 64 });
  const https = new HttpsAgent({ keepAlive: true, maxSockets: 64, ...(secureContext ? { secureContext } : {}) });
  const bulkPool = new BulkPool(secureContext);
  const viaNodeHttp = (url: URL, req: TransportRequest) =>
      new Promise<TransportResponse>((resolve, reject) => {
        if (req.signal.aborted) return reject(abortError(req.signal));
        const isHttps = url.protocol === 'https:';
        const r = (isHttps ? httpsRequest : httpRequest)(url, {
          method: req.method,
          headers: req.headers,
          agent: isHttps ? https : http,
          signal: req.signal,
        });
        if (req.idleMs) r.setTimeout(req.idleMs, () => r.destroy(err('UPSTREAM_UNAVAILABLE', `upstream silent for ${req.idleMs} ms`)));
        r.once('response', (body) => resolve({ status: body.statusCode ?? 0, headers: body.headers, headersDistinct: body.headersDistinct, body, url }));
        r.once('error', (e) => reject(normalise(e, req.signal)));
        r.end();
      });
  const viaBulk = async (url: URL, req: TransportRequest): Promise<TransportResponse> => {
    try {
      return { ...(await bulkGet(url, req, bulkPool)), url };
    } catch (e) {
      // A chunked blob body (rare: registries and CDNs send a length): node:http decodes it.
      if (e instanceof BulkUnsupported) return viaNodeHttp(url, req);
      throw normalise(e, req.signal);
    }
  };
  return {
    send: (url, req) => (req.bulk && req.method === 'GET' ? viaBulk(url, req) : viaNodeHttp(url, req)),
    close() {
      http.destroy();
      https.destroy();
      bulkPool.close();
    },
  };
}

/** Reads a small body (manifest, token, referrers index) into memory, refusing more than `max` bytes. */
export async function readBody(res: TransportResponse, max: number, signal: AbortSignal): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    res.body.destroy();
    throw err('TOO_LARGE', `upstream response of ${declared} bytes exceeds ${max}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > max) {
        res.body.destroy();
        throw err('TOO_LARGE', `upstream response exceeds ${max} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (e) {
    throw normalise(e, signal);
  }
  if (signal.aborted) throw abortError(signal);
  return Buffer.concat(chunks, size);
}

/** Discards a body we do not need so the connection can be reused. */
export function discard(res: TransportResponse): void {
  res.body.resume();
  res.body.on('error', () => undefined);
}

const abortError = (signal: AbortSignal) => {
  const reason = signal.reason as unknown;
  if (reason instanceof Error && reason.name === 'TimeoutError') return err('UPSTREAM_UNAVAILABLE', 'upstream timed out');
  if (reason instanceof Error && 'code' in reason) return reason;
  return err('UPSTREAM_UNAVAILABLE', 'upstream request aborted');
};

/**
 * Connection failures worth another try (retry.ts): the peer reset or refused us, or
 * the network was briefly unreachable. A reused keep-alive socket that the upstream
 * had closed fails with ECONNRESET on its first request, too.
 */
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const transient = new WeakSet<Error>();

/** True for an error `normalise` made from a transient connection failure. */
export const isTransient = (e: unknown): boolean => e instanceof Error && transient.has(e);

/** Network failures become UPSTREAM_UNAVAILABLE; our own coded errors pass through. */
export function normalise(e: unknown, signal: AbortSignal): Error {
  // Coded errors first: one raised as the deadline passed (a retry cut short) says more than "timed out".
  if (e instanceof Error && e.name === 'RegistryError') return e;
  if (signal.aborted) return abortError(signal);
  const code = e instanceof Error ? (e as NodeJS.ErrnoException).code : undefined;
  const msg = e instanceof Error ? (code ?? e.message) : String(e);
  const out = err('UPSTREAM_UNAVAILABLE', `upstream connection failed: ${msg}`);
  if (code && TRANSIENT_CODES.has(code)) transient.add(out);
  return out;
}
