import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { err } from '../oci/index.js';
import type { UpstreamCredentials } from './config.js';

/**
 * Upstream authentication pieces: parsing `WWW-Authenticate` challenges, the
 * token cache (per realm, service and scope, until expiry) and loading secrets.
 * Secrets are read when needed and never logged or kept in error messages.
 */
export interface Challenge {
  readonly scheme: string; // lower case: 'bearer', 'basic'
  readonly params: Readonly<Record<string, string>>;
}

/** Parses one challenge: `Bearer realm="https://auth/token",service="registry",scope="repository:a:pull"`. */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?/gy;
  const rest = m[2]!;
  let p: RegExpExecArray | null;
  while (re.lastIndex < rest.length && (p = re.exec(rest))) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

/** Picks the first Bearer or Basic challenge among the response's WWW-Authenticate headers. */
export function pickChallenge(values: readonly string[] | undefined): Challenge | undefined {
  const parsed = (values ?? []).map(parseChallenge).filter((c): c is Challenge => c !== undefined);
  return parsed.find((c) => c.scheme === 'bearer') ?? parsed.find((c) => c.scheme === 'basic');
}

/** The docker token spec's response (distribution docs "Token Authentication Specification"). */
export const tokenResponseSchema = z
  .looseObject({
    token: z.string().min(1).optional(),
    access_token: z.string().min(1).optional(),
    expires_in: z.number().positive().optional(),
    issued_at: z.string().optional(),
  })
  .refine((t) => t.token !== undefined || t.access_token !== undefined, 'token response carries no token');

/** Tokens without `expires_in` last 60 s, the spec's default. */
const DEFAULT_TOKEN_SECONDS = 60;

interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
}

export class TokenCache {
  private readonly tokens = new Map<string, CachedToken>();
  constructor(private readonly clock: () => number) {}

  static key(realm: string, service: string | undefined, scope: string | undefined): string {
    return `${realm}\n${service ?? ''}\n${scope ?? ''}`;
  }

  get(key: string): string | undefined {
    const t = this.tokens.get(key);
    if (!t) return undefined;
    if (t.expiresAt <= this.clock()) {
      this.tokens.delete(key);
      return undefined;
    }
    return t.token;
  }

  /** Keeps a token for 90% of its lifetime, so it is not used in its last seconds. */
  set(key: string, token: string, expiresInSeconds: number | undefined): void {
    const life = (expiresInSeconds ?? DEFAULT_TOKEN_SECONDS) * 1000 * 0.9;
    this.tokens.set(key, { token, expiresAt: this.clock() + life });
    if (this.tokens.size > 1000) this.tokens.delete(this.tokens.keys().next().value!);
  }

  delete(key: string): void {
    this.tokens.delete(key);
  }
}

export interface Secret {
  readonly kind: 'basic' | 'bearer';
  /** `user:password` for basic, the token for bearer. */
  readonly value: string;
}

/** Loads the configured secret (environment variable or file); undefined for anonymous upstreams. */
export async function loadSecret(creds: UpstreamCredentials, upstream: string): Promise<Secret | undefined> {
  if (creds === 'none') return undefined;
  if ('basic' in creds) {
    const b = creds.basic;
    const password = 'passwordEnv' in b ? readEnv(b.passwordEnv, upstream) : await readSecretFile(b.passwordFile, upstream);
    return { kind: 'basic', value: `${b.username}:${password}` };
  }
  const t = creds.bearer;
  return { kind: 'bearer', value: 'tokenEnv' in t ? readEnv(t.tokenEnv, upstream) : await readSecretFile(t.tokenFile, upstream) };
}

function readEnv(name: string, upstream: string): string {
  const v = process.env[name];
  if (v === undefined || v === '') throw err('UPSTREAM_UNAVAILABLE', `credentials for upstream ${upstream}: environment variable ${name} is not set`);
  return v;
}

async function readSecretFile(path: string, upstream: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (e) {
    throw err('UPSTREAM_UNAVAILABLE', `credentials for upstream ${upstream}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

export const basicHeader = (userPass: string): string => `Basic ${Buffer.from(userPass, 'utf8').toString('base64')}`;
