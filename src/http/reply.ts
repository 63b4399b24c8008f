import type { ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';

/** Raw replies: the registry's responses are small and fixed, so skip building Web Responses. */
export type Headers = Record<string, string | number>;

export function sendEmpty(res: ServerResponse, status: number, headers: Headers = {}): Response {
  res.writeHead(status, { 'content-length': 0, ...headers });
  res.end();
  return RESPONSE_ALREADY_SENT;
}

export function sendBytes(res: ServerResponse, status: number, body: Buffer | string, headers: Headers = {}, head = false): Response {
  const length = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
  res.writeHead(status, { 'content-length': length, ...headers });
  if (head) res.end();
  else res.end(body);
  return RESPONSE_ALREADY_SENT;
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Headers = {}, head = false): Response {
  return sendBytes(res, status, JSON.stringify(value), { 'content-type': 'application/json', ...headers }, head);
}

/** A header value from free text (a denial's reason): printable ASCII, bounded. */
export const headerText = (s: string): string => s.replace(/[^\x20-\x7e]/g, ' ').slice(0, 2000);
