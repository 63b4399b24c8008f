import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { z } from 'zod';
import { assertName, err, parseReference, type Reference } from '../oci/index.js';
import type { Verdict } from '../verify/types.js';
import type { Access } from './access.js';
import { contextOf } from './request-context.js';
import { accessRequest } from './v2.js';

/** Evaluates the gate for a reference: with the server's policy, or a policy the caller sends (what-if). */
export type VerifyFn = (repository: string, reference: Reference, policy: unknown) => Promise<Verdict>;

const body = z.object({
  repository: z.string().transform((s) => assertName(s)),
  reference: z.string().transform((s) => parseReference(s)),
  /** The `policy:` slice of a config file; when absent the server's own policy decides. */
  policy: z.unknown().optional(),
});

/** POST /admin/verify: the verdict and every finding, for `customs verify`. */
export function adminVerifyApp(verify: VerifyFn, access: Access): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
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
