import { randomBytes } from 'node:crypto';
import type { Context } from 'hono';
import { describe, expect, it } from 'vitest';
import { cookieOptions, type UiEnv } from './ui-guard.js';
import { ConsoleSessions } from './ui-session.js';

describe('ConsoleSessions', () => {
  const key = randomBytes(32);

  it('reads back what it issued, until it expires or is revoked', () => {
    let now = 1_000_000_000_000;
    const s = new ConsoleSessions(key, 3600, () => now);
    const { value, session } = s.issue('user:alice');
    expect(s.read(value)).toEqual(session);
    now += 3599_000;
    expect(s.read(value)?.actor).toBe('user:alice');
    now += 1000;
    expect(s.read(value)).toBeUndefined();
    now -= 10_000;
    s.revoke(session);
    expect(s.read(value)).toBeUndefined();
  });

  it('refuses a changed payload, a changed MAC, another key, and garbage', () => {
    const s = new ConsoleSessions(key, 3600);
    const { value } = s.issue('token:puller');
    const [v, payload, mac] = value.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), actor: 'admin' })).toString('base64url');
    expect(s.read(`${v}.${forged}.${mac}`)).toBeUndefined();
    expect(s.read(`${v}.${payload}.${mac.slice(0, -2)}AA`)).toBeUndefined();
    expect(new ConsoleSessions(randomBytes(32), 3600).read(value)).toBeUndefined();
    for (const junk of [undefined, '', 'v1', 'v1..', 'v2.a.b', 'x'.repeat(5000)]) expect(s.read(junk)).toBeUndefined();
  });

  it('binds CSRF tokens to one session, and sign-in tokens to one nonce', () => {
    const s = new ConsoleSessions(key, 3600);
    const a = s.issue('user:a').session;
    const b = s.issue('user:a').session;
    expect(s.checkCsrf(a, s.csrf(a))).toBe(true);
    expect(s.checkCsrf(a, s.csrf(b))).toBe(false);
    expect(s.checkCsrf(a, undefined)).toBe(false);
    expect(s.checkCsrf(a, '')).toBe(false);
    const pre = s.preSession();
    expect(s.checkPreSession(pre.nonce, pre.csrf)).toBe(true);
    expect(s.checkPreSession(s.preSession().nonce, pre.csrf)).toBe(false);
    expect(s.checkPreSession(undefined, pre.csrf)).toBe(false);
    // A session's CSRF token is not a sign-in token for a nonce equal to its id, nor the reverse.
    expect(s.checkPreSession(a.sid, s.csrf(a))).toBe(false);
  });
});

describe('console cookies', () => {
  const over = (encrypted: boolean) => ({ env: { incoming: { socket: { encrypted } } } }) as unknown as Context<UiEnv>;
  it('are Secure when the request came over TLS, or always when configured; HttpOnly, SameSite=Strict, /ui', () => {
    expect(cookieOptions(over(true), 'auto', 60)).toEqual({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/ui', maxAge: 60 });
    expect(cookieOptions(over(false), 'auto', 60).secure).toBe(false);
    expect(cookieOptions(over(false), 'always', 60).secure).toBe(true);
  });
});
