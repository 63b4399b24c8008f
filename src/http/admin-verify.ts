import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { z } from 'zod';
import { assertName, err, parseReference, type Descriptor, type Reference } from '../oci/index.js';
import type { Verdict } from '../verify/types.js';
import type { Access } from './access.js';
import { contextOf } from './request-context.js';
import { accessRequest } from './v2.js';

/** Evaluates the gate for a reference: with the server's policy, or a policy the caller sends (what-if). */
export type VerifyFn = (repository: string, reference: Reference, policy: unknown) => Promise<Verdict>;
/** A reference's descriptor without the gate (operators sign or attach evidence to content the gate denies). */
export type ResolveFn = (repository: string, reference: Reference) => Promise<Descriptor>;

const body = z.object({
  repository: z.string().transform((s) => assertName(s)),
  reference: z.string().transform((s) => parseReference(s)),
  /** The `policy:` slice of a config file; when absent the server's own policy decides. */
  policy: z.unknown().optional(),
});

/** POST /admin/verify: the verdict and every finding, for `customs verify`. */
export function adminVerifyApp(verify: VerifyFn, access: Access, resolve?: ResolveFn): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  /** GET /admin/resolve?repository=&reference=: what `customs sign` signs when the gate denies the HEAD. */
  if (resolve) {
    app.get('/resolve', async (c) => {
      const ctx = contextOf(c.env.incoming);
      ctx.route = 'admin-resolve';
      const parsed = body.pick({ repository: true, reference: true }).safeParse(c.req.query());
      const who = await access.authorize(accessRequest(c.env.incoming), parsed.success ? parsed.data.repository : undefined, 'admin');
      ctx.actor = who.actor;
      if (!parsed.success) throw err('NAME_INVALID', `invalid request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      return c.json(await resolve(parsed.data.repository, parsed.data.reference));
    });
  }
  app.post('/verify', async (c) => {
    const ctx = contextOf(c.env.incoming);
    ctx.route = 'admin-verify';
    const raw = await c.req.json().catch(() => undefined);
    const parsed = body.safeParse(raw);
    const repo = parsed.success ? parsed.data.repository : undefined;
    const who = await access.authorize(accessRequest(c.env.incoming), repo, 'admin');
    ctx.actor = who.actor;
    if (!parsed.success) throw err('NAME_INVALID', `invalid request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const verdict = await verify(parsed.data.repository, parsed.data.reference, parsed.data.policy);
    return c.json(verdict);
  });
  return app;
}
