import type { IncomingMessage, ServerResponse } from 'node:http';
import { err } from '../oci/index.js';

/**
 * How a request body is let in. Nothing is read before the handler decided it wants the body:
 * - `Expect: 100-continue` is answered only then (the server does not send `100 Continue` on its own),
 *   so a client that asks first never sends the bytes of a refused upload;
 * - a body that stops delivering bytes for `idleMs` is aborted: the connection is closed, and an
 *   upload session keeps what it received (the client can ask for its Range and resume).
 */
export function letBodyIn(req: IncomingMessage, res: ServerResponse, idleMs: number): IncomingMessage {
  if (/^100-continue$/i.test(String(req.headers.expect ?? '')) && !res.headersSent) res.writeContinue();
  if (idleMs > 0 && !req.complete) {
    // Progress is read off the socket's byte count: a 'data' listener (on the request or the socket) would
    // start the flow before the handler's reader is attached, or take the bytes from Node's HTTP parser.
    const socket = req.socket;
    let seen = socket.bytesRead;
    let movedAt = Date.now();
    const timer = setInterval(() => {
      if (socket.bytesRead !== seen) {
        seen = socket.bytesRead;
        movedAt = Date.now();
      } else if (Date.now() - movedAt >= idleMs) {
        clearInterval(timer);
        req.destroy(err('BLOB_UPLOAD_INVALID', `no request body bytes for ${Math.round(idleMs / 1000)} s: aborted (an upload session keeps what it received)`));
      }
    }, Math.min(1000, Math.max(50, idleMs / 4)));
    timer.unref();
    const stop = (): void => clearInterval(timer);
    req.once('end', stop);
    req.once('close', stop);
  }
  return req;
}

/** A refusal sent before the body was read: the connection cannot be reused (the body would follow). */
export function closeAfterRefusal(req: IncomingMessage, headers: Record<string, string>): void {
  if (!req.complete && hasBody(req)) headers.connection = 'close';
}

const hasBody = (req: IncomingMessage): boolean =>
  req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

/**
 * Concurrent upload requests per principal: a token holder who opens hundreds of slow uploads
 * (each holding a connection, a file and a session) is refused with 429 and `Retry-After`
 * above `max`, before any byte of the body is read.
 */
export class UploadSlots {
  private readonly inFlight = new Map<string, number>();
  constructor(private readonly max: number) {}

  /** Takes a slot for `actor` until `res` closes; throws TOOMANYREQUESTS when none is free. */
  acquire(actor: string, res: ServerResponse): void {
    const n = this.inFlight.get(actor) ?? 0;
    if (n >= this.max) {
      throw err('TOOMANYREQUESTS', `${actor} has ${n} uploads in progress, the most allowed at once (limits.maxConcurrentUploadsPerPrincipal); retry when one finishes`, { retryAfter: 1 });
    }
    this.inFlight.set(actor, n + 1);
    res.once('close', () => {
      const left = (this.inFlight.get(actor) ?? 1) - 1;
      if (left <= 0) this.inFlight.delete(actor);
      else this.inFlight.set(actor, left);
    });
  }

  /** Uploads in progress for `actor` (tests, metrics). */
  count(actor: string): number {
    return this.inFlight.get(actor) ?? 0;
  }
}
