import { Readable } from 'node:stream';
import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { z } from 'zod';
import { assertName, err, parseDigest, parseReference, referenceString, type Digest, type Reference } from '../oci/index.js';
import type { AuditInput } from '../storage/index.js';
import type { Access } from './access.js';
import { contextOf } from './request-context.js';
import { accessRequest } from './v2.js';

/** What the inspect routes read, without the gate (the composition root wires the registry's services). */
export interface Inspectable {
  manifest(repository: string, reference: Reference): Promise<{ digest: Digest; mediaType: string; bytes: Buffer } | undefined>;
  blob(repository: string, digest: Digest): Promise<{ size: number; open(): Promise<Readable | undefined> } | undefined>;
  /** The gate's answer for the manifest, for the operator's eye (the bytes are returned either way). */
  denial(repository: string, digest: Digest): Promise<string | undefined>;
}

const query = z.object({
  repository: z.string().transform((s) => assertName(s)),
  reason: z.string().trim().min(1, 'a reason is required').max(2000),
});

/**
 * GET /admin/inspect/manifest and /admin/inspect/blob: the one way to read content the gate refuses
 * (a quarantined model during an incident, an unsigned upload), for an operator with `admin` on the
 * repository, with a reason, each read recorded in the audit log. Ordinary reads (/v2/, the Hub API)
 * never bypass the gate; these routes are not a client API and send `Cache-Control: no-store`.
 */
export function adminInspectApp(content: Inspectable, access: Access, audit: (e: AuditInput) => Promise<unknown>): Hono<{ Bindings: HttpBindings }> {
  const app = new Hono<{ Bindings: HttpBindings }>();
  const authorize = async (incoming: HttpBindings['incoming'], raw: Record<string, string>, route: string) => {
    const ctx = contextOf(incoming);
    ctx.route = route;
    const parsed = query.safeParse(raw);
    const repo = parsed.success ? parsed.data.repository : undefined;
    const who = await access.authorize(accessRequest(incoming), repo, 'admin');
    ctx.actor = who.actor;
    if (!parsed.success) throw err('NAME_INVALID', `invalid request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    return { who, ...parsed.data };
  };

  app.get('/inspect/manifest', async (c) => {
    const q = await authorize(c.env.incoming, c.req.query(), 'admin-inspect');
    const reference = parseReference(c.req.query('reference') ?? '');
    const m = await content.manifest(q.repository, reference);
    if (!m) throw err('MANIFEST_UNKNOWN', `${q.repository}@${referenceString(reference)} is not stored here`);
    const denial = await content.denial(q.repository, m.digest);
    await audit({ actor: q.who.actor, action: 'inspect', repository: q.repository, target: `${q.repository}@${m.digest}`, reason: q.reason, detail: { kind: 'manifest', denied: denial ?? null } });
    return c.body(new Uint8Array(m.bytes), 200, {
      'content-type': m.mediaType,
      'docker-content-digest': m.digest,
      'cache-control': 'no-store',
      'customs-inspect': denial ? `ungated; the gate refuses it: ${denial.replace(/[^\x20-\x7e]/g, ' ').slice(0, 1000)}` : 'ungated; the gate serves it too',
    });
  });

  app.get('/inspect/blob', async (c) => {
    const q = await authorize(c.env.incoming, c.req.query(), 'admin-inspect');
    const digest = parseDigest(c.req.query('digest') ?? '').digest;
    const b = await content.blob(q.repository, digest);
    if (!b) throw err('BLOB_UNKNOWN', `blob ${digest} is not in ${q.repository}`);
    const stream = await b.open();
    if (!stream) throw err('BLOB_UNKNOWN', `blob ${digest} is not in ${q.repository}`);
    await audit({ actor: q.who.actor, action: 'inspect', repository: q.repository, target: `${q.repository}@${digest}`, reason: q.reason, detail: { kind: 'blob', size: b.size } });
    return c.body(Readable.toWeb(stream) as ReadableStream, 200, {
      'content-type': 'application/octet-stream',
      'content-length': String(b.size),
      'docker-content-digest': digest,
      'cache-control': 'no-store',
      'customs-inspect': 'ungated',
    });
  });
  return app;
}
