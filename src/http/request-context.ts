import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { err } from '../oci/index.js';

/** Per-request state the outer listener creates and the handlers fill in (route label, byte counts). */
export interface RequestContext {
  readonly id: string;
  readonly log: Logger;
  route: string;
  actor: string | undefined;
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
