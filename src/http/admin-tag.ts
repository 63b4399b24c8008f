import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { z } from 'zod';
import { err, isValidName, isValidTag, parseReference, referenceString, type Digest, type Reference } from '../oci/index.js';
import type { TagMove } from '../storage/index.js';
import type { Access } from './access.js';
import { contextOf } from './request-context.js';
import { accessRequest } from './v2.js';

export interface TagDeps {
  /** The digest `reference` names in `repository` (not gated: tagging serves nothing). */
  resolve(repository: string, reference: Reference): Promise<Digest | undefined>;
  tag(repository: string, tag: string, digest: Digest, by: { actor: string; reason?: string }): Promise<TagMove | undefined>;
  /** Namespaces served by an upstream: their tags are the upstream's. */
  isProxied(repository: string): boolean;
}

const body = z.object({
  repository: z.string().refine(isValidName, 'invalid repository name'),
  tag: z.string().refine(isValidTag, 'invalid tag'),
  /** What the tag should name: a tag or a digest in the same repository. */
  source: z.string().min(1),
  reason: z.string().trim().max(2000).optional(),
});

/**
 * POST /admin/tag {repository, tag, source, reason?}: `customs tag SRC DST`. Moving a tag is a
 * push, so it needs `push` on the repository (not `admin`); it is audited (action `tag`, with
 * the reason) in the transaction that moves the tag, and refused for pinned tags, evidence tags
 * and tags of a namespace an upstream serves.
 */
export function adminTagApp(deps: TagDeps, access: Access): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.post('/tag', async (c) => {
    const ctx = contextOf(c.env.incoming);
    ctx.route = 'admin-tag';
    const parsed = body.safeParse(await c.req.json().catch(() => undefined));
    const who = await access.authorize(accessRequest(c.env.incoming), parsed.success ? parsed.data.repository : undefined, 'push');
    ctx.actor = who.actor;
    if (!parsed.success) throw err('NAME_INVALID', `invalid request: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
    const { repository, tag, reason } = parsed.data;
    if (deps.isProxied(repository)) throw err('DENIED', `${repository} is served from an upstream: its tags are the upstream's`);
    const source = parseReference(parsed.data.source);
    const digest = await deps.resolve(repository, source);
    if (!digest) throw err('MANIFEST_UNKNOWN', `manifest unknown: ${repository}:${referenceString(source)}`);
    const move = await deps.tag(repository, tag, digest, { actor: who.actor, ...(reason ? { reason } : {}) });
    return c.json({ repository, tag, digest, moved: move !== undefined, from: move?.from ?? null });
  });
  return app;
}
