import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Target } from './target.js';

/** A response read whole (the bodies in these tests are small, except where a test streams). */
export interface Res {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The connection closed before the announced body was complete. */
  readonly truncated: boolean;
  header(name: string): string | undefined;
  text(): string;
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface ReqOpts {
  headers?: Record<string, string>;
  /** Buffer/string: sent with Content-Length. Readable: streamed with chunked transfer encoding. */
  body?: Buffer | string | Readable;
  query?: Record<string, string>;
  /** Send no credentials (the target's auth() headers are left out). */
  anonymous?: boolean;
}

/**
 * One HTTP request with node:http, so that the test controls every header
 * (fetch forbids some, normalises paths and follows redirects). `path` may be
 * relative (`/v2/...`) or a `Location` value, absolute or relative.
 */
export function req(t: Target, method: string, path: string, opts: ReqOpts = {}): Promise<Res> {
  const url = new URL(path, t.url + '/');
  for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
  return rawReq(t, method, url.pathname + url.search, opts, url.host);
}

/** Like `req`, but the path is sent byte for byte (for names with `..` and other tricks). */
export function rawReq(t: Target, method: string, rawPath: string, opts: ReqOpts = {}, hostPort?: string): Promise<Res> {
  const target = new URL(t.url);
  const [hostname, port] = (hostPort ?? target.host).split(':');
  const headers: Record<string, string> = { ...(opts.anonymous ? {} : t.auth()), ...(opts.headers ?? {}) };
  const body = opts.body;
  const isStream = body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body);
  if (!isStream && !hasHeader(headers, 'content-length')) {
    headers['content-length'] = String(body === undefined ? 0 : Buffer.byteLength(body as Buffer | string));
  }
  return new Promise((resolve, reject) => {
    const r = httpRequest({ method, hostname, port: Number(port), path: rawPath, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      // A response cut short (distribution 2.8 announces a body on its 416 and sends none)
      // is still a response: resolve with what arrived, flagged as truncated.
      let done = false;
      const finish = (truncated: boolean) => {
        if (done) return;
        done = true;
        const buf = Buffer.concat(chunks);
        resolve({
          truncated,
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: buf,
          header: (n) => {
            const v = res.headers[n.toLowerCase()];
            return Array.isArray(v) ? v.join(', ') : v;
          },
          text: () => buf.toString('utf8'),
          json: () => JSON.parse(buf.toString('utf8')),
        });
      };
      res.on('error', () => finish(true));
      res.on('aborted', () => finish(true));
      res.on('end', () => finish(false));
    });
    r.on('error', reject);
    if (isStream) (body as Readable).pipe(r);
    else r.end(body);
  });
}

const hasHeader = (h: Record<string, string>, name: string) => Object.keys(h).some((k) => k.toLowerCase() === name);
