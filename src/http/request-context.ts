import { ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { err } from '../oci/index.js';

/** Per-request state the outer listener creates and the handlers fill in (route label, byte counts). */
export interface RequestContext {
  readonly id: string;
  readonly log: Logger;
  route: string;
  actor: string | undefined;
}

/** The request context as a class: its lazy logger is a prototype getter, not a closure made per request. */
export class Context implements RequestContext {
  route = 'other';
  actor: string | undefined = undefined;
  private child: Logger | undefined;
  constructor(
    readonly id: string,
    private readonly root: Logger,
    /** performance.now() at arrival, and the socket's byte counts then (keep-alive sockets carry many requests). */
    readonly started: number,
    readonly readAt: number,
    readonly writtenAt: number,
  ) {}
  // Most requests never log anything but the access line: the child logger is made only when asked.
  get log(): Logger {
    return (this.child ??= this.root.child({ reqId: this.id }));
  }
}

type Headers = OutgoingHttpHeaders | OutgoingHttpHeader[];

/**
 * A response that adds `x-request-id` to the headers given to its `writeHead`. Setting it with
 * `setHeader` when the request arrives made node merge every later `writeHead` through its slow
 * path (measured: about 8% of a cached manifest GET's CPU).
 */
export class CustomsResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  requestId: string | undefined;

  override writeHead(statusCode: number, reasonOrHeaders?: string | Headers, headers?: Headers): this {
    const id = this.requestId;
    if (id === undefined || this.headersSent) return super.writeHead(statusCode, reasonOrHeaders as string, headers);
    if (typeof reasonOrHeaders === 'string') return super.writeHead(statusCode, reasonOrHeaders, withId(headers, id));
    return super.writeHead(statusCode, withId(reasonOrHeaders, id));
  }
}

/** Adds the id to the object given (callers pass one made for the response; a frozen one is copied). */
function withId(headers: Headers | undefined, id: string): Headers {
  if (headers === undefined) return { 'x-request-id': id };
  // node takes a flat [name, value, name, value...] list too.
  if (Array.isArray(headers)) return [...headers, 'x-request-id', id];
  if (Object.isFrozen(headers)) return { ...headers, 'x-request-id': id };
  headers['x-request-id'] = id;
  return headers;
}

const CTX = Symbol('customs.request');
type WithCtx = IncomingMessage & { [CTX]?: RequestContext };

export const setContext = (req: IncomingMessage, ctx: RequestContext): void => {
  (req as WithCtx)[CTX] = ctx;
};
export const contextOf = (req: IncomingMessage): RequestContext => {
  const ctx = (req as WithCtx)[CTX];
  if (!ctx) throw new Error('request context missing');
  return ctx;
};

/**
 * Reads a small body (manifests) with a hard cap; never trusts Content-Length. A declared length over
 * the cap is refused before a byte is read (`open` lets the body in: 100-continue, idle timeout).
 */
export async function readSmallBody(req: IncomingMessage, max: number, open: () => IncomingMessage = () => req): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) throw err('TOO_LARGE', `body of ${declared} bytes exceeds ${max} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of open() as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > max) throw err('TOO_LARGE', `body exceeds ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

export function contentLength(req: IncomingMessage): number | undefined {
  const v = req.headers['content-length'];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw err('SIZE_INVALID', 'invalid Content-Length');
  return n;
}
