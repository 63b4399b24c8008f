import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { z } from 'zod';
import { err, isValidName, parseReference, referenceString, type Digest, type Reference } from '../oci/index.js';
import type { Access } from './access.js';
import { contextOf } from './request-context.js';
import { accessRequest } from './v2.js';

/** What a reference names, without its content: the manifest's descriptor. */
export interface Resolved {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly size: number;
  readonly artifactType?: string | undefined;
}
export type ResolveFn = (repository: string, reference: Reference) => Promise<Resolved | undefined>;

const query = z.object({ repository: z.string().refine(isValidName, 'invalid repository name'), reference: z.string() });

/**
 * GET /admin/resolve?repository=R&reference=T: the digest, media type and size a tag names, for a
 * caller who may pull or push R. Not gated: naming a digest is not serving its content, and the
 * producer must be able to reference what the gate would not serve (`customs push model --dataset
 * datasets/x:v1` records an unsigned dataset's digest in the provenance). Bytes stay gated on /v2/.
 */
export function adminResolveApp(resolve: ResolveFn, access: Access): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.get('/resolve', async (c) => {
    const ctx = contextOf(c.env.incoming);
    ctx.route = 'admin-resolve';
    const parsed = query.safeParse(c.req.query());
    const repo = parsed.success ? parsed.data.repository : undefined;
    const request = accessRequest(c.env.incoming);
    // pull, else push: a pusher may reference what it could not read.
    const who = await access.authorize(request, repo, 'pull').catch((e: unknown) => access.authorize(request, repo, 'push').catch(() => Promise.reject(e)));
    ctx.actor = who.actor;
    if (!parsed.success) throw err('NAME_INVALID', `invalid request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const { repository } = parsed.data;
    const reference = parseReference(parsed.data.reference);
    const found = await resolve(repository, reference);
    if (!found) throw err('MANIFEST_UNKNOWN', `manifest unknown: ${repository}:${referenceString(reference)}`);
    return c.json({ repository, reference: referenceString(reference), ...found });
  });
  return app;
}
