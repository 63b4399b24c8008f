import type { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { z } from 'zod';
import type { ScrubReport } from '../registry/index.js';
import type { Actor } from '../storage/index.js';
import type { Access } from './access.js';
import { adminRunApp } from './admin-run.js';

/** Runs a scrub; `maxMiBPerSecond` left out takes the server's `scrub.maxMiBPerSecond`. */
export type ScrubFn = (o: { maxMiBPerSecond?: number | undefined }, by: Actor) => Promise<ScrubReport>;

/** POST /admin/scrub: re-hash every stored blob and manifest, for `customs scrub`; needs admin on every repository. */
export function adminScrubApp(scrub: ScrubFn, access: Access): Hono<{ Bindings: HttpBindings }> {
  return adminRunApp('scrub', { maxMiBPerSecond: z.number().min(0).max(1_000_000).optional() }, scrub, access);
}
