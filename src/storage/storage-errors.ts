import { PassThrough, type Readable, type Writable } from 'node:stream';
import { err, isRegistryError, type RegistryError } from '../oci/index.js';

/**
 * Storage failures in the error vocabulary, translated where they are seen (the store that
 * saw them), so the HTTP layer answers with a code and logs at the right level: a full disk is
 * STORAGE_FULL (507, an operator must act), a database or object store that is away is
 * STORAGE_UNAVAILABLE (503, retry shortly). Anything else is left as it is.
 */
const FULL = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);

const codeOf = (e: unknown): string | undefined => {
  const x = e as { code?: unknown; errors?: Array<{ code?: unknown }> } | undefined;
  const code = x?.code ?? x?.errors?.[0]?.code; // AggregateError (both address families refused)
  return typeof code === 'string' ? code : undefined;
};

/** The first non-translated error behind `e` (for messages that name the original cause). */
export const originalError = (e: unknown): unknown => (isRegistryError(e) && e.cause !== undefined ? e.cause : e);

export const isStorageFull = (e: unknown): boolean => (isRegistryError(e) ? e.code === 'STORAGE_FULL' : FULL.has(codeOf(e) ?? ''));

/** `e` as STORAGE_FULL when it says the disk or quota is full; otherwise unchanged. `what` names the write. */
export function fullDiskError(e: unknown, what: string): unknown {
  if (isRegistryError(e) || !FULL.has(codeOf(e) ?? '')) return e;
  return withCause(err('STORAGE_FULL', `${what}: the registry's storage is full (${codeOf(e)}); nothing partial was kept`), e);
}

/** A connection-level failure (refused, reset, timed out) of a network store: unavailable, not a bug. */
export const isNetworkError = (e: unknown): boolean => NETWORK.has(codeOf(e) ?? '') || (e as { name?: string } | undefined)?.name === 'TimeoutError';

/** STORAGE_UNAVAILABLE naming the store (`PostgreSQL`, `S3`) and the original error as its cause. */
export function unavailable(store: string, e: unknown): RegistryError {
  const code = codeOf(e);
  const msg = e instanceof Error ? e.message : String(e);
  return withCause(err('STORAGE_UNAVAILABLE', `${store} is unavailable: ${msg}${code && !msg.includes(code) ? ` (${code})` : ''}`), e);
}

function withCause(e: RegistryError, cause: unknown): RegistryError {
  Object.defineProperty(e, 'cause', { value: cause, enumerable: false, configurable: true });
  return e;
}

/**
 * A stream of `source`'s bytes whose errors are translated by `translate` (a store's body stream
 * that breaks mid-download says which store failed, not just "aborted"). Destroying the result
 * destroys the source.
 */
export function translateStreamErrors(source: Readable, translate: (e: unknown) => unknown): Readable {
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  source.once('error', (e) => out.destroy(translate(e) as Error));
  out.once('close', () => {
    if (!source.destroyed) source.destroy();
  });
  source.pipe(out);
  return out;
}

/**
 * Pipes `source` into `sink` like `pipeline`, except when the sink fails because the disk is full:
 * the source is then unpiped and drained instead of destroyed, so that when it is an HTTP request
 * the client still gets the error response rather than a reset connection. Any other failure of
 * the sink (a body over the size limit) destroys the source as `pipeline` does, and a failing
 * source destroys the sink. Resolves when the sink has finished.
 */
export function pump(source: Readable, sink: Writable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (e?: unknown): void => {
      if (done) return;
      done = true;
      source.off('error', onSourceError);
      sink.off('error', onSinkError);
      sink.off('finish', onFinish);
      if (e === undefined) resolve();
      else reject(e);
    };
    const onSourceError = (e: Error): void => {
      sink.destroy();
      finish(e);
    };
    const onSinkError = (e: Error): void => {
      source.unpipe(sink);
      source.on('error', () => undefined); // the client leaving while it drains is nobody's error
      if (isStorageFull(e)) source.resume();
      else source.destroy();
      finish(e);
    };
    const onFinish = (): void => finish();
    source.once('error', onSourceError);
    sink.once('error', onSinkError);
    sink.once('finish', onFinish);
    // A source closed without 'end' (a client reset before any 'error' listener ran).
    source.once('close', () => {
      if (!source.readableEnded && !done) onSourceError(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    });
    source.pipe(sink);
  });
}

/**
 * After a write failed: a request body whose bytes can no longer be stored is drained when the
 * failure is the store's (full, or away), so the client reads the error response instead of a
 * reset connection; otherwise (a body over the limit, a wrong digest) it is destroyed, as
 * `pipeline` would. Iterate the source with `iterator({ destroyOnReturn: false })` so that
 * leaving the loop on an error does not destroy it first.
 */
export function drainOrDestroy(source: Readable, e: unknown): void {
  const code = isRegistryError(e) ? e.code : undefined;
  if (source.destroyed) return;
  if (code === 'STORAGE_FULL' || code === 'STORAGE_UNAVAILABLE') {
    source.on('error', () => undefined);
    source.resume();
  } else source.destroy();
}
