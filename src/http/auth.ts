import { createHmac, hash, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { err } from '../oci/index.js';
import type { AuthConfig, Permission } from '../config/auth.js';
import { globMatch } from '../verify/glob.js';
import type { Access, AccessRequest, Action, Principal } from './access.js';
import { parseApiToken, safeEqual, verifySecret } from './secrets.js';

export interface AuthPrincipal extends Principal {
  readonly permissions: readonly Permission[];
}

export interface TokenAccessOptions {
  readonly config: AuthConfig;
  /** Hash of the generated admin token (<data>/admin-token), if there is one. */
  readonly adminTokenHash: string | undefined;
  /** HMAC key for bearer tokens issued by the token endpoint. */
  readonly sessionKey: Buffer;
  /** Called on every failed authentication (audit log); never receives the secret. */
  readonly onAuthFailure?: (who: string, reason: string, req: AccessRequest) => void;
  /** What a verified client certificate (`tls.clientCA`) may do; without it certificates authenticate nobody. */
  readonly clientCertPermissions?: readonly Permission[];
}

const ADMIN: readonly Permission[] = [{ repositories: ['**'], actions: ['admin'] }];
const SESSION_PREFIX = 'cst_';
const SESSION_TOKEN = /^cst_([A-Za-z0-9_-]{1,2048})\.[A-Za-z0-9_-]{43}$/;

/**
 * Access control: API tokens and users from config (scrypt hashes), the generated
 * admin token, bearer tokens issued by /auth/token (HMAC, short-lived), anonymous
 * pull from loopback by default. Successful scrypt checks are cached for a minute
 * under the SHA-256 of the secret, so a busy client costs one scrypt, not one per request.
 */
export class TokenAccess implements Access {
  private readonly verified = new LRUCache<string, AuthPrincipal>({ max: 10_000, ttl: 60_000 });
  /**
   * Issued tokens already checked, by the SHA-256 of the whole token (so a lookup compares no secret),
   * with their subject and expiry: a client sends the same token on every request, and checking its
   * MAC anew cost about a tenth of a cached manifest GET.
   */
  private readonly sessions = new LRUCache<string, { sub: string; exp: number }>({ max: 10_000 });
  private readonly checking = new Map<string, Promise<AuthPrincipal | undefined>>();
  constructor(private readonly o: TokenAccessOptions) {}

  async authorize(req: AccessRequest, repository: string | undefined, action: Action): Promise<Principal> {
    const principal = await this.authenticate(req);
    if (!principal) {
      if (this.anonymousMay(req, repository, action)) return { actor: 'anonymous' };
      throw err('UNAUTHORIZED', 'authentication required', { challenge: this.challenge(req, repository, action) });
    }
    if (!permits(principal.permissions, repository, action)) {
      throw err('DENIED', `${principal.actor} may not ${action} ${repository ?? 'this resource'}`);
    }
    return principal;
  }

  async mayPull(principal: Principal, req: AccessRequest, repository: string): Promise<boolean> {
    const p = principal as Partial<AuthPrincipal>;
    if (p.permissions) return permits(p.permissions, repository, 'pull');
    return this.anonymousMay(req, repository, 'pull');
  }

  /** Resolves credentials to a principal; undefined for anonymous; throws UNAUTHORIZED for bad credentials. */
  async authenticate(req: AccessRequest): Promise<AuthPrincipal | undefined> {
    const header = req.authorization;
    // Explicit credentials win; a verified client certificate (mTLS) stands in when there are none.
    if (!header) return req.clientCert && this.o.clientCertPermissions ? { actor: req.clientCert, permissions: this.o.clientCertPermissions } : undefined;
    const space = header.indexOf(' ');
    const scheme = header.slice(0, space).toLowerCase();
    const value = header.slice(space + 1).trim();
    if (scheme === 'bearer') {
      if (value.startsWith(SESSION_PREFIX)) {
        const sub = this.sessionSubject(value);
        if (sub === 'anonymous') return undefined; // issued to an anonymous caller by /auth/token
        return this.fail(sub === undefined ? undefined : this.principalNamed(sub), 'bearer token', req);
      }
      return this.fail(await this.checkToken(value), 'bearer token', req);
    }
    if (scheme === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return this.fail(undefined, 'basic', req);
      const user = decoded.slice(0, colon);
      const password = decoded.slice(colon + 1);
      // Clients such as skopeo and oras send a token as the password with any username.
      const asToken = await this.checkToken(password);
      if (asToken) return asToken;
      return this.fail(await this.checkUser(user, password), `user ${user.slice(0, 100)}`, req);
    }
    return this.fail(undefined, `scheme ${scheme.slice(0, 20)}`, req);
  }

  private fail(p: AuthPrincipal | undefined, who: string, req: AccessRequest): AuthPrincipal {
    if (p) return p;
    this.o.onAuthFailure?.(who, 'invalid credentials', req);
    throw err('UNAUTHORIZED', 'invalid credentials', { challenge: this.challenge(req, undefined, 'pull') });
  }

  private async checkToken(token: string): Promise<AuthPrincipal | undefined> {
    if (token.startsWith(SESSION_PREFIX)) return this.checkSession(token);
    const parsed = parseApiToken(token);
    if (!parsed) return undefined;
    return this.cached(`t:${token}`, async () => {
      if (parsed.id === 'admin') {
        return this.o.adminTokenHash && (await verifySecret(parsed.secret, this.o.adminTokenHash)) ? { actor: 'admin', permissions: ADMIN } : undefined;
      }
      const entry = this.o.config.tokens.find((t) => t.id === parsed.id);
      return entry && (await verifySecret(parsed.secret, entry.hash)) ? { actor: `token:${entry.id}`, permissions: entry.permissions } : undefined;
    });
  }

  private async checkUser(name: string, password: string): Promise<AuthPrincipal | undefined> {
    const entry = this.o.config.users.find((u) => safeEqual(u.name, name));
    if (!entry) {
      await verifySecret(password, DUMMY_HASH); // same cost as a real user: no user enumeration by timing
      return undefined;
    }
    return this.cached(`u:${name}:${password}`, async () =>
      (await verifySecret(password, entry.passwordHash)) ? { actor: `user:${entry.name}`, permissions: entry.permissions } : undefined,
    );
  }

  private async cached(key: string, check: () => Promise<AuthPrincipal | undefined>): Promise<AuthPrincipal | undefined> {
    const id = hash('sha256', key, 'base64');
    const hit = this.verified.get(id);
    if (hit) return hit;
    // One scrypt per secret however many requests bring it at once: each scrypt takes 16 MiB on a
    // libuv thread, and glibc keeps that arena (a client opening 4 downloads cost 64 MB of RSS).
    let pending = this.checking.get(id);
    if (!pending) {
      pending = check().finally(() => this.checking.delete(id));
      this.checking.set(id, pending);
    }
    const p = await pending;
    if (p) this.verified.set(id, p);
    return p;
  }

  /** Issues a short-lived bearer token for an authenticated principal (the token endpoint). */
  issueSession(principal: AuthPrincipal): { token: string; expiresIn: number } {
    const ttl = this.o.config.sessionTtlSeconds;
    const payload = Buffer.from(JSON.stringify({ sub: principal.actor, exp: Math.floor(Date.now() / 1000) + ttl, n: randomBytes(6).toString('base64url') })).toString('base64url');
    return { token: `${SESSION_PREFIX}${payload}.${this.mac(payload)}`, expiresIn: ttl };
  }

  private checkSession(token: string): AuthPrincipal | undefined {
    const sub = this.sessionSubject(token);
    return sub === undefined ? undefined : this.principalNamed(sub);
  }

  /** The subject of a valid, unexpired issued token. */
  private sessionSubject(token: string): string | undefined {
    const id = hash('sha256', token, 'base64');
    const known = this.sessions.get(id);
    if (known) return known.exp * 1000 < Date.now() ? undefined : known.sub;
    const claims = this.verifySession(token);
    if (claims) this.sessions.set(id, claims);
    return claims && claims.exp * 1000 >= Date.now() ? claims.sub : undefined;
  }

  /** The claims of a token this key issued, expired or not. */
  private verifySession(token: string): { sub: string; exp: number } | undefined {
    // Exactly `cst_<payload>.<mac>`: nothing appended, prepended or re-encoded is accepted, and the whole
    // value is compared with the one this key issues for that payload, in constant time.
    const m = SESSION_TOKEN.exec(token);
    const payload = m?.[1] ?? '';
    const matches = safeEqual(token, `${SESSION_PREFIX}${payload}.${this.mac(payload)}`); // always compared, whatever the shape
    if (!m || !matches) return undefined;
    let claims: { sub?: unknown; exp?: unknown };
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof claims;
    } catch {
      return undefined;
    }
    if (typeof claims.sub !== 'string' || typeof claims.exp !== 'number') return undefined;
    return { sub: claims.sub, exp: claims.exp };
  }

  /**
   * The principal named `actor` with its current permissions (the console's sessions carry
   * only the actor); undefined once the token or user is gone from the configuration.
   */
  principalOf(actor: string): AuthPrincipal | undefined {
    return this.principalNamed(actor);
  }

  /** Permissions are looked up again on every use, so a token outlives no permission change. */
  private principalNamed(actor: string): AuthPrincipal | undefined {
    if (actor === 'admin' && this.o.adminTokenHash) return { actor, permissions: ADMIN };
    if (actor.startsWith('cert:') && this.o.clientCertPermissions) return { actor, permissions: this.o.clientCertPermissions };
    const t = actor.startsWith('token:') ? this.o.config.tokens.find((e) => `token:${e.id}` === actor) : undefined;
    if (t) return { actor, permissions: t.permissions };
    const u = actor.startsWith('user:') ? this.o.config.users.find((e) => `user:${e.name}` === actor) : undefined;
    return u ? { actor, permissions: u.permissions } : undefined;
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.o.sessionKey).update(payload).digest('base64url');
  }

  private anonymousMay(req: AccessRequest, repository: string | undefined, action: Action): boolean {
    const a = this.o.config.anonymous;
    if (action !== 'pull' || a.pull === 'never') return false;
    if (a.pull === 'loopback' && !isLoopback(req.remoteAddress)) return false;
    if (repository === undefined) return true; // GET /v2/ itself
    return a.repositories.some((g) => globMatch(g, repository));
  }

  /** The distribution token-auth challenge; the realm is our own token endpoint. */
  challenge(req: AccessRequest, repository?: string, action: Action = 'pull'): string {
    // The Host header is echoed only when it looks like a host: a quote or comma would forge challenge parameters.
    const host = req.host && /^[A-Za-z0-9.:[\]-]{1,255}$/.test(req.host) ? req.host : '127.0.0.1';
    const realm = `${req.scheme ?? 'http'}://${host}/auth/token`;
    const actions = action === 'pull' || action === 'discover' ? 'pull' : action === 'delete' ? 'delete' : 'pull,push';
    const scope = repository ? `,scope="repository:${repository}:${actions}"` : '';
    return `Bearer realm="${realm}",service="customs"${scope}`;
  }
}

export function permits(perms: readonly Permission[], repository: string | undefined, action: Action): boolean {
  return perms.some(
    (p) =>
      (p.actions.includes(action) || p.actions.includes('admin')) &&
      (repository === undefined ? p.repositories.includes('**') || action !== 'admin' : p.repositories.some((g) => globMatch(g, repository))),
  );
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

// A fixed hash of a random secret: verifying against it costs what a real check costs.
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
