import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { z } from 'zod';
import { err } from '../oci/index.js';
import type { ScrubReport } from '../registry/index.js';
import type { Actor } from '../storage/index.js';
import type { Access } from './access.js';
import { contextOf } from './request-context.js';
import { accessRequest } from './v2.js';

/** Runs a scrub; `maxMiBPerSecond` left out takes the server's `scrub.maxMiBPerSecond`. */
export type ScrubFn = (o: { maxMiBPerSecond?: number | undefined }, by: Actor) => Promise<ScrubReport>;

const body = z.object({
  maxMiBPerSecond: z.number().min(0).max(1_000_000).optional(),
  reason: z.string().trim().min(1).max(2000).optional(),
});

/** POST /admin/scrub: re-hash every stored blob and manifest, for `customs scrub`; needs admin on every repository. */
export function adminScrubApp(scrub: ScrubFn, access: Access): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.post('/scrub', async (c) => {
    const ctx = contextOf(c.env.incoming);
    ctx.route = 'admin-scrub';
    const raw = await c.req.json().catch(() => undefined);
    const who = await access.authorize(accessRequest(c.env.incoming), undefined, 'admin');
    ctx.actor = who.actor;
    const parsed = body.safeParse(raw ?? {});
    if (!parsed.success) throw err('NAME_INVALID', `invalid request: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
    const { reason, ...o } = parsed.data;
    return c.json(await scrub(o, { actor: who.actor, ...(reason ? { reason } : {}) }));
  });
  return app;
}
