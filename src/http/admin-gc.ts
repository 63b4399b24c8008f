import type { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { z } from 'zod';
import type { GcReport } from '../registry/index.js';
import type { Actor } from '../storage/index.js';
import type { Access } from './access.js';
import { adminRunApp } from './admin-run.js';

/** Runs garbage collection; what the request leaves out comes from the server's `gc:` settings. */
export type GcFn = (o: { dryRun: boolean; graceSeconds?: number | undefined; untaggedAfterSeconds?: number | undefined }, by: Actor) => Promise<GcReport>;

/** POST /admin/gc: garbage collection of unreferenced blobs, for `customs gc`; needs admin on every repository. */
export function adminGcApp(gc: GcFn, access: Access): Hono<{ Bindings: HttpBindings }> {
  const options = {
    dryRun: z.boolean().default(false),
    graceSeconds: z.number().int().min(0).max(10 * 365 * 86_400).optional(),
    untaggedAfterSeconds: z.number().int().min(0).max(100 * 365 * 86_400).optional(),
  };
  return adminRunApp('gc', options, gc, access);
}
