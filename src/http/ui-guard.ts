import type { TLSSocket } from 'node:tls';
import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { HttpBindings } from '@hono/node-server';
import { err } from '../oci/index.js';
import type { PageContext, Viewer } from '../ui/index.js';
import type { AccessRequest } from './access.js';
import { permits, type AuthPrincipal } from './auth.js';
import { contextOf, readSmallBody } from './request-context.js';
import type { ConsoleSession, ConsoleSessions } from './ui-session.js';

/**
 * The console's edge: security headers on every response, the session (who), CSRF on
 * every state-changing request, small bounded form bodies. Authorisation is not here: the
 * console asks the viewer built from the principal (src/ui/viewer.ts) with `permits`, the
 * function /v2/ and /admin/ use.
 */
export type UiEnv = {
  Bindings: HttpBindings;
  Variables: { session: ConsoleSession; principal: AuthPrincipal; page: PageContext; form: URLSearchParams };
};

/** What the console needs of the API's access control (TokenAccess has both). */
export interface ConsoleAuth {
  authenticate(req: AccessRequest): Promise<AuthPrincipal | undefined>;
  principalOf(actor: string): AuthPrincipal | undefined;
}

export const SESSION_COOKIE = 'customs_session';
export const PRE_COOKIE = 'customs_signin';
/** The outcome of the last action, shown once on the page it redirects to. */
export const NOTICE_COOKIE = 'customs_notice';
const MAX_FORM = 64 * 1024;

/** No inline script or style anywhere; forms post only to the console; nobody frames it. */
export const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export const securityHeaders: MiddlewareHandler<UiEnv> = async (c, next) => {
  const ctx = contextOf(c.env.incoming);
  ctx.route = 'ui';
  await next();
  const h = c.res.headers;
  h.set('content-security-policy', CSP);
  h.set('x-content-type-options', 'nosniff');
  h.set('x-frame-options', 'DENY');
  // same-origin, not no-referrer: under no-referrer a browser sends `Origin: null` with form posts, which the CSRF check refuses.
  h.set('referrer-policy', 'same-origin');
  h.set('cross-origin-opener-policy', 'same-origin');
  h.set('cross-origin-resource-policy', 'same-origin');
  if (!h.has('cache-control')) h.set('cache-control', 'no-store');
};

export const isTls = (c: Context<UiEnv>): boolean => (c.env.incoming.socket as TLSSocket).encrypted === true;

export function cookieOptions(c: Context<UiEnv>, secure: 'auto' | 'always', maxAge: number) {
  return { httpOnly: true, secure: secure === 'always' || isTls(c), sameSite: 'Strict' as const, path: '/ui', maxAge };
}

export function setSessionCookie(c: Context<UiEnv>, value: string, secure: 'auto' | 'always', maxAge: number): void {
  setCookie(c, SESSION_COOKIE, value, cookieOptions(c, secure, maxAge));
}

export function clearSessionCookie(c: Context<UiEnv>, secure: 'auto' | 'always'): void {
  deleteCookie(c, SESSION_COOKIE, cookieOptions(c, secure, 0));
}

export function viewerOf(p: AuthPrincipal): Viewer {
  return {
    actor: p.actor,
    may: (repository, action) => permits(p.permissions, repository, action),
    pullGlobs: p.permissions.filter((x) => x.actions.includes('pull') || x.actions.includes('admin')).flatMap((x) => x.repositories),
  };
}

/**
 * Requires a live session whose principal still exists; sets `session`, `principal`, `page`.
 * Without one: a GET goes to the sign-in page (and comes back after), anything else is
 * refused with 401 and does nothing.
 */
export function requireSession(sessions: ConsoleSessions, auth: ConsoleAuth, refuse: (c: Context<UiEnv>, status: 401 | 403, message: string) => Response): MiddlewareHandler<UiEnv> {
  return async (c, next) => {
    const session = sessions.read(getCookie(c, SESSION_COOKIE));
    const principal = session && auth.principalOf(session.actor);
    if (!session || !principal) {
      if (c.req.method === 'GET' || c.req.method === 'HEAD') {
        const url = new URL(c.req.url);
        return c.redirect(`/ui/login?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
      }
      return refuse(c, 401, 'Sign in first: this request has no valid session, and nothing was changed.');
    }
    contextOf(c.env.incoming).actor = principal.actor;
    c.set('session', session);
    c.set('principal', principal);
    const notice = getCookie(c, NOTICE_COOKIE);
    if (notice !== undefined) deleteCookie(c, NOTICE_COOKIE, { path: '/ui' });
    c.set('page', { viewer: viewerOf(principal), csrf: sessions.csrf(session), notice: notice ? Buffer.from(notice, 'base64url').toString('utf8').slice(0, 500) : undefined });
    await next();
  };
}

/** Reads a form body of at most 64 KiB (never trusting Content-Length) into `form`. */
export const readForm: MiddlewareHandler<UiEnv> = async (c, next) => {
  if (c.req.method !== 'POST') return next();
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw err('UNSUPPORTED', 'the console accepts only HTML form posts (application/x-www-form-urlencoded)');
  c.set('form', new URLSearchParams((await readSmallBody(c.env.incoming, MAX_FORM)).toString('utf8')));
  await next();
};

/**
 * A state-changing request must carry the session's CSRF token, and when the browser says
 * where it comes from (Origin, Sec-Fetch-Site), that must be this site.
 */
export function requireCsrf(sessions: ConsoleSessions, refuse: (c: Context<UiEnv>, status: 401 | 403, message: string) => Response): MiddlewareHandler<UiEnv> {
  return async (c, next) => {
    if (c.req.method !== 'POST') return next();
    if (!sameSite(c) || !sessions.checkCsrf(c.get('session'), c.get('form').get('csrf') ?? undefined)) {
      contextOf(c.env.incoming).log.warn({ event: 'security', kind: 'csrf', actor: c.get('session').actor, path: c.req.path }, 'console request refused: missing or invalid CSRF token');
      return refuse(c, 403, 'Refused: the form did not carry this session’s CSRF token (or came from another site). Nothing was changed; reload the page and try again.');
    }
    await next();
  };
}

export function sameSite(c: Context<UiEnv>): boolean {
  const site = c.req.header('sec-fetch-site');
  if (site && site !== 'same-origin' && site !== 'none') return false;
  const origin = c.req.header('origin');
  if (origin === undefined) return true;
  const host = c.req.header('host');
  return !!host && (origin === `http://${host}` || origin === `https://${host}`);
}

export { getCookie, setCookie, deleteCookie };
