import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { z } from 'zod';
import { err } from '../oci/index.js';
import type { GcReport } from '../registry/index.js';
import type { Actor } from '../storage/index.js';
import type { Access } from './access.js';
import { contextOf } from './request-context.js';
import { accessRequest } from './v2.js';

/** Runs garbage collection; what the request leaves out comes from the server's `gc:` settings. */
export type GcFn = (o: { dryRun: boolean; graceSeconds?: number | undefined; untaggedAfterSeconds?: number | undefined }, by: Actor) => Promise<GcReport>;

const body = z.object({
  dryRun: z.boolean().default(false),
  graceSeconds: z.number().int().min(0).max(10 * 365 * 86_400).optional(),
  untaggedAfterSeconds: z.number().int().min(0).max(100 * 365 * 86_400).optional(),
  reason: z.string().trim().min(1).max(2000).optional(),
});

/** POST /admin/gc: garbage collection of unreferenced blobs, for `customs gc`; needs admin on every repository. */
export function adminGcApp(gc: GcFn, access: Access): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.post('/gc', async (c) => {
    const ctx = contextOf(c.env.incoming);
    ctx.route = 'admin-gc';
    const raw = await c.req.json().catch(() => undefined);
    const who = await access.authorize(accessRequest(c.env.incoming), undefined, 'admin');
    ctx.actor = who.actor;
    const parsed = body.safeParse(raw ?? {});
    if (!parsed.success) throw err('NAME_INVALID', `invalid request: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
    const { reason, ...o } = parsed.data;
    return c.json(await gc(o, { actor: who.actor, ...(reason ? { reason } : {}) }));
  });
  return app;
}
