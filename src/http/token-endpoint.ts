import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { accessRequest } from './v2.js';
import type { TokenAccess } from './auth.js';
import { contextOf } from './request-context.js';

/**
 * The realm of our WWW-Authenticate challenge (distribution's token auth flow):
 * a client presents its credentials (Basic with a token or password, or a bearer
 * token) and receives a short-lived bearer token. Anonymous callers get a token
 * that carries no identity, so anonymous rules still apply to them.
 */
export function tokenApp(access: TokenAccess): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.get('/token', async (c) => {
    contextOf(c.env.incoming).route = 'token';
    const principal = await access.authenticate(accessRequest(c.env.incoming));
    const { token, expiresIn } = access.issueSession(principal ?? { actor: 'anonymous', permissions: [] });
    return c.json({ token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString() }, 200, { 'cache-control': 'no-store' });
  });
  return app;
}
