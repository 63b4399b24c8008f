import { createHmac, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { safeEqual } from './secrets.js';

/**
 * The console's sessions: a cookie holding `{sid, actor, exp}` and an HMAC over it, with a
 * key derived from the server's session key (shared by replicas, so any replica reads any
 * session) under a label of its own, so a cookie is never a valid API bearer token and
 * the reverse. Permissions are not in the cookie: they are looked up on every request, so
 * a session outlives no permission change. Sign-out revokes the session id in this process
 * until it would have expired (the cookie is also deleted).
 *
 * CSRF: each form carries HMAC(key, "csrf" + sid), checked in constant time on every
 * state-changing request; the sign-in form, before any session, carries HMAC(key, "pre" +
 * nonce) where the nonce sits in a short-lived cookie of its own (double submit).
 */
export interface ConsoleSession {
  readonly sid: string;
  readonly actor: string;
  /** Expiry, epoch seconds. */
  readonly exp: number;
}

export class ConsoleSessions {
  private readonly key: Buffer;
  private readonly revoked: LRUCache<string, true>;

  constructor(
    sessionKey: Buffer,
    readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    this.key = createHmac('sha256', sessionKey).update('customs console session v1').digest();
    this.revoked = new LRUCache<string, true>({ max: 100_000, ttl: ttlSeconds * 1000 });
  }

  issue(actor: string): { value: string; session: ConsoleSession } {
    const session = { sid: randomBytes(18).toString('base64url'), actor, exp: Math.floor(this.now() / 1000) + this.ttlSeconds };
    const payload = Buffer.from(JSON.stringify(session)).toString('base64url');
    return { value: `v1.${payload}.${this.mac('session', payload)}`, session };
  }

  /** The session a cookie value names, if its MAC verifies, it has not expired and was not revoked. */
  read(value: string | undefined): ConsoleSession | undefined {
    if (!value || value.length > 1024) return undefined;
    const [v, payload, mac] = value.split('.');
    if (v !== 'v1' || !payload || !mac || !safeEqual(mac, this.mac('session', payload))) return undefined;
    let s: Partial<ConsoleSession>;
    try {
      s = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Partial<ConsoleSession>;
    } catch {
      return undefined;
    }
    if (typeof s.sid !== 'string' || typeof s.actor !== 'string' || typeof s.exp !== 'number') return undefined;
    if (s.exp * 1000 <= this.now() || this.revoked.has(s.sid)) return undefined;
    return { sid: s.sid, actor: s.actor, exp: s.exp };
  }

  revoke(s: ConsoleSession): void {
    this.revoked.set(s.sid, true);
  }

  csrf(s: ConsoleSession): string {
    return this.mac('csrf', s.sid);
  }

  checkCsrf(s: ConsoleSession, token: string | undefined): boolean {
    return typeof token === 'string' && token.length > 0 && safeEqual(token, this.csrf(s));
  }

  /** A nonce for the sign-in form's cookie and the token its form carries. */
  preSession(): { nonce: string; csrf: string } {
    const nonce = randomBytes(18).toString('base64url');
    return { nonce, csrf: this.mac('pre', nonce) };
  }

  checkPreSession(nonce: string | undefined, token: string | undefined): boolean {
    return typeof nonce === 'string' && nonce.length > 0 && typeof token === 'string' && safeEqual(token, this.mac('pre', nonce));
  }

  private mac(label: string, value: string): string {
    return createHmac('sha256', this.key).update(`${label}\0${value}`).digest('base64url');
  }
}
