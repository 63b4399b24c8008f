import { DENIED_REASON_HEADER, wireError, type RegistryError } from '../../oci/index.js';

export const DEFAULT_URL = 'http://127.0.0.1:5000';

/** Where a client command sends its request; the token comes only from the environment (never argv, which `ps` shows). */
export interface AdminTarget {
  readonly url: string;
  readonly token: string | undefined;
}

export function targetFrom(opts: { url?: string | undefined }, env: NodeJS.ProcessEnv = process.env): AdminTarget {
  return { url: (opts.url ?? env.CUSTOMS_URL ?? DEFAULT_URL).replace(/\/+$/, ''), token: env.CUSTOMS_TOKEN || undefined };
}

/** Writes what a command prints; tests pass their own. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
}
export const stdio: Io = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
};

function headers(t: AdminTarget, json: boolean): Record<string, string> {
  const h: Record<string, string> = { accept: 'application/json' };
  if (json) h['content-type'] = 'application/json';
  if (t.token) h.authorization = `Bearer ${t.token}`;
  return h;
}

/** A failed answer as a RegistryError with the server's code and reason (src/oci/wire-error.ts). */
export async function failure(res: Response, what: string): Promise<RegistryError> {
  const text = await res.text().catch(() => '');
  return wireError(what, res.status, res.statusText, text, res.headers.get(DENIED_REASON_HEADER));
}

export async function adminGet<T>(t: AdminTarget, path: string, query: Record<string, string | number | undefined> = {}): Promise<T> {
  const res = await fetch(url(t, path, query), { headers: headers(t, false) });
  if (!res.ok) throw await failure(res, `GET /admin${path}`);
  return (await res.json()) as T;
}

export async function adminPost<T>(t: AdminTarget, path: string, body: unknown): Promise<T> {
  const res = await fetch(url(t, path), { method: 'POST', headers: headers(t, true), body: JSON.stringify(body) });
  if (!res.ok) throw await failure(res, `POST /admin${path}`);
  return (await res.json()) as T;
}

/** Streams a response body line by line (JSON lines export). */
export async function adminLines(t: AdminTarget, path: string, query: Record<string, string | number | undefined>, onLine: (line: string) => void): Promise<void> {
  const res = await fetch(url(t, path, query), { headers: headers(t, false) });
  if (!res.ok || !res.body) throw await failure(res, `GET /admin${path}`);
  const dec = new TextDecoder();
  let rest = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    rest += dec.decode(chunk, { stream: true });
    let i: number;
    while ((i = rest.indexOf('\n')) >= 0) {
      onLine(rest.slice(0, i));
      rest = rest.slice(i + 1);
    }
  }
  if (rest) onLine(rest);
}

function url(t: AdminTarget, path: string, query: Record<string, string | number | undefined> = {}): string {
  const u = new URL(`${t.url}/admin${path}`);
  for (const [k, v] of Object.entries(query)) if (v !== undefined) u.searchParams.set(k, String(v));
  return u.toString();
}

/** A plain text table: columns padded to their widest cell. */
export function table(head: string[], rows: (string | number | undefined)[][]): string[] {
  const cells = [head, ...rows.map((r) => r.map((c) => (c === undefined ? '' : String(c))))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]!))).join('  ').trimEnd());
}

export const short = (d: string | undefined): string => (d ? (d.startsWith('sha256:') ? `sha256:${d.slice(7, 19)}` : d) : '-');
export const when = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
