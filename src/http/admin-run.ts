import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { z } from 'zod';
import { err } from '../oci/index.js';
import type { Actor } from '../storage/index.js';
import type { Access } from './access.js';
import { contextOf } from './request-context.js';
import { accessRequest } from './v2.js';

const reason = z.string().trim().min(1).max(2000).optional();

/**
 * An operator's run over the whole store (gc, scrub): POST /admin/<name> with a JSON body of
 * options (zod) and an optional `reason` for the audit log; needs admin on every repository.
 */
export function adminRunApp<S extends z.ZodRawShape>(
  name: string,
  options: S,
  run: (o: z.output<z.ZodObject<S>>, by: Actor) => Promise<unknown>,
  access: Access,
): Hono<{ Bindings: HttpBindings }> {
  const body = z.object({ ...options, reason });
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.post(`/${name}`, async (c) => {
    const ctx = contextOf(c.env.incoming);
    ctx.route = `admin-${name}`;
    const raw = await c.req.json().catch(() => undefined);
    const who = await access.authorize(accessRequest(c.env.incoming), undefined, 'admin');
    ctx.actor = who.actor;
    const parsed = body.safeParse(raw ?? {});
    if (!parsed.success) throw err('NAME_INVALID', `invalid request: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
    const { reason: why, ...o } = parsed.data as { reason?: string } & Record<string, unknown>;
    return c.json(await run(o as z.output<z.ZodObject<S>>, { actor: who.actor, ...(why ? { reason: why } : {}) }));
  });
  return app;
}
