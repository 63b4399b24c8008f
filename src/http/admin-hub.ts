import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { z } from 'zod';
import { err, isRegistryError, parseRepoReference } from '../oci/index.js';
import type { HubImporter, ImportEvent } from '../hub/import.js';
import type { HubPullThrough } from '../hub/pull-through.js';
import type { Access } from './access.js';
import { contextOf } from './request-context.js';
import { accessRequest } from './v2.js';

/**
 * POST /admin/hub/import: `customs hub import`. The answer is a stream of JSON lines (the
 * importer's events: revision, progress, file, tagged, verdict), ending with `done` or
 * `error`, so the CLI shows progress while gigabytes arrive. The caller needs `pull` on the
 * upstream's repository (what a Hub client needs to trigger the same pull-through) and
 * `push` on the `to` repository.
 */
const bodySchema = z.strictObject({
  upstream: z.string().optional(),
  type: z.enum(['model', 'dataset']).default('model'),
  repo: z.string().min(1),
  revision: z.string().min(1).default('main'),
  to: z.string().optional(),
  reason: z.string().max(2000).optional(),
});

export interface AdminHubDeps {
  readonly importer: HubImporter;
  readonly pull: HubPullThrough;
  readonly defaultUpstream: string | undefined;
  readonly access: Access;
}

export function adminHubApp(deps: AdminHubDeps): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.post('/hub/import', async (c) => {
    const ctx = contextOf(c.env.incoming);
    ctx.route = 'admin-hub-import';
    const parsed = bodySchema.safeParse(await c.req.json().catch(() => undefined));
    if (!parsed.success) {
      await deps.access.authorize(accessRequest(c.env.incoming), undefined, 'push');
      throw err('NAME_INVALID', `invalid request: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
    }
    const b = parsed.data;
    const names = deps.pull.upstreamNames;
    const upstream = b.upstream ?? deps.defaultUpstream ?? (names.length === 1 ? names[0] : undefined);
    if (!upstream) throw err('NAME_INVALID', `name the upstream (one of ${names.join(', ')})`);
    const target = deps.pull.targetFor(upstream, b.type, b.repo);
    if (!target) throw err('NAME_INVALID', `no hub upstream ${upstream}, or ${JSON.stringify(b.repo.slice(0, 100))} is not a repo id (<org>/<name>)`);
    const to = b.to === undefined ? undefined : parseRepoReference(b.to);
    if (to && to.reference.kind !== 'tag') throw err('NAME_INVALID', '--to expects <repo>:<tag>');
    const who = await deps.access.authorize(accessRequest(c.env.incoming), target.repository, 'pull');
    if (to) await deps.access.authorize(accessRequest(c.env.incoming), to.repository, 'push');
    ctx.actor = who.actor;
    const enc = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      start: async (controller) => {
        const send = (o: ImportEvent | Record<string, unknown>) => controller.enqueue(enc.encode(`${JSON.stringify(o)}\n`));
        try {
          const result = await deps.importer.run(
            { upstream, type: b.type, repoId: b.repo, revision: b.revision, to: to && to.reference.kind === 'tag' ? { repository: to.repository, tag: to.reference.tag } : undefined },
            { actor: who.actor, ...(b.reason ? { reason: b.reason } : {}) },
            send,
          );
          send({ event: 'done', ...result });
        } catch (e) {
          if (!isRegistryError(e)) ctx.log.error({ err: e }, 'hub import failed');
          send({ event: 'error', code: isRegistryError(e) ? e.code : 'INTERNAL', message: isRegistryError(e) ? e.message : 'internal error', detail: isRegistryError(e) ? e.detail : undefined });
        }
        controller.close();
      },
    });
    return new Response(stream, { headers: { 'content-type': 'application/x-ndjson' } });
  });
  return app;
}
