import { Hono, type Context } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { z } from 'zod';
import { assertName, err, isValidName, isValidTag, parseDigest, parseReference } from '../oci/index.js';
import type { Ops } from '../ops/index.js';
import type { Access, Principal } from './access.js';
import { contextOf } from './request-context.js';
import { accessRequest } from './v2.js';

/**
 * The operator API under /admin/: every route needs the `admin` permission (on the
 * repository it acts on, or globally). Thin: parse with zod, call one ops service,
 * render JSON. Mutations are recorded in the audit log by the store, in the same
 * transaction as the change.
 */
type Env = { Bindings: HttpBindings };

const repository = z.string().transform((s) => assertName(s));
const tag = z.string().refine(isValidTag, 'invalid tag');
const digest = z.string().transform((s) => parseDigest(s).digest);
const reason = z.string().trim().min(1, 'a reason is required').max(2000);
const reference = z.string().transform((s) => parseReference(s));

const schemas = {
  pin: z.object({ repository, tag, digest: digest.optional(), reason }),
  unpin: z.object({ repository, tag, reason }),
  rollback: z.object({ repository, tag, to: digest.optional(), steps: z.number().int().min(1).max(10_000).optional(), pin: z.boolean().default(true), reason }),
  quarantine: z.object({ digest, reason }),
  material: z.object({ material: z.string().regex(/^[A-Za-z0-9_+.-]+:[A-Za-z0-9=_.-]+$/, 'expected alg:value'), rollback: z.boolean().default(false), pin: z.boolean().default(true), reason }),
  deep: z.object({ repository, reference }),
  history: z.object({ repository, tag }),
  lineage: z.object({ repository, reference }),
  consumers: z.object({ digest: z.string().regex(/^[A-Za-z0-9_+.-]+:[A-Za-z0-9=_.-]+$/, 'expected alg:value') }),
  audit: z.object({
    since: z.string().optional().transform((s) => (s === undefined ? undefined : parseTime(s))),
    after: z.coerce.number().int().min(0).optional(),
    limit: z.coerce.number().int().min(1).max(10_000).optional(),
  }),
  verify: z.object({ head: z.string().regex(/^\d+:[a-f0-9]{64}$/, 'expected SEQ:HASH').optional() }),
};

/** Relative (`30m`, `24h`, `7d`) or absolute (ISO 8601, epoch ms) times for `--since`. */
export function parseTime(s: string, now = Date.now()): number {
  const rel = /^(\d+)([smhd])$/.exec(s);
  if (rel) return now - Number(rel[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[rel[2] as 's' | 'm' | 'h' | 'd'];
  if (/^\d+$/.test(s)) return Number(s);
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw err('NAME_INVALID', `invalid time ${JSON.stringify(s)}: expected ISO 8601, epoch ms, or 30m/24h/7d`);
  return t;
}

function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const r = schema.safeParse(value);
  if (!r.success) throw err('NAME_INVALID', `invalid request: ${r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
  return r.data;
}

export function adminApp(ops: Ops, access: Access): Hono<Env> {
  const app = new Hono<Env>();
  const admin = async (c: Context<Env>, route: string, repo?: string): Promise<Principal> => {
    const ctx = contextOf(c.env.incoming);
    ctx.route = `admin-${route}`;
    const who = await access.authorize(accessRequest(c.env.incoming), repo, 'admin');
    ctx.actor = who.actor;
    return who;
  };
  /**
   * Parses the query or JSON body. Bad input from a caller without `admin` still
   * gets 401/403 (not 400), so nobody learns the API's shape without the right credentials.
   */
  const input = async <T extends z.ZodType>(c: Context<Env>, schema: T, from: 'query' | 'body'): Promise<z.output<T>> => {
    let raw: unknown;
    try {
      raw = from === 'query' ? c.req.query() : await c.req.json().catch(() => {
        throw err('NAME_INVALID', 'invalid request: body must be JSON');
      });
      return parse(schema, raw);
    } catch (e) {
      const hint = (raw as { repository?: unknown } | undefined)?.repository;
      const repo = typeof hint === 'string' && isValidName(hint) ? hint : undefined;
      await access.authorize(accessRequest(c.env.incoming), repo, 'admin');
      throw e;
    }
  };

  app.get('/pins', async (c) => {
    const { repository: repo } = await input(c, z.object({ repository: repository.optional() }), 'query');
    await admin(c, 'pins', repo);
    return c.json({ pins: await ops.tags.listPins(repo) });
  });
  app.post('/pin', async (c) => {
    const b = await input(c, schemas.pin, 'body');
    const who = await admin(c, 'pin', b.repository);
    return c.json(await ops.tags.pin(b.repository, b.tag, b.digest, { actor: who.actor, reason: b.reason }));
  });
  app.post('/unpin', async (c) => {
    const b = await input(c, schemas.unpin, 'body');
    const who = await admin(c, 'unpin', b.repository);
    return c.json({ unpinned: await ops.tags.unpin(b.repository, b.tag, { actor: who.actor, reason: b.reason }) });
  });
  app.get('/history', async (c) => {
    const p = await input(c, schemas.history, 'query');
    await admin(c, 'history', p.repository);
    return c.json({ repository: p.repository, tag: p.tag, pin: (await ops.tags.listPins(p.repository)).find((x) => x.tag === p.tag), history: await ops.tags.history(p.repository, p.tag) });
  });
  app.post('/rollback', async (c) => {
    const b = await input(c, schemas.rollback, 'body');
    const who = await admin(c, 'rollback', b.repository);
    return c.json(await ops.tags.rollback(b.repository, b.tag, { to: b.to, steps: b.steps, pin: b.pin }, { actor: who.actor, reason: b.reason }));
  });
  app.get('/quarantine', async (c) => {
    await admin(c, 'quarantine');
    return c.json({ quarantined: await ops.quarantine.list() });
  });
  app.post('/quarantine', async (c) => {
    const b = await input(c, schemas.quarantine, 'body');
    const who = await admin(c, 'quarantine');
    const added = await ops.quarantine.quarantine(b.digest, { actor: who.actor, reason: b.reason });
    return c.json({ digest: b.digest, quarantined: true, added });
  });
  app.post('/quarantine/material', async (c) => {
    const b = await input(c, schemas.material, 'body');
    const who = await admin(c, 'quarantine');
    return c.json(await ops.quarantine.quarantineMaterial(b.material, { rollback: b.rollback, pin: b.pin }, { actor: who.actor, reason: b.reason }));
  });
  app.post('/release', async (c) => {
    const b = await input(c, schemas.quarantine, 'body');
    const who = await admin(c, 'release');
    await ops.quarantine.release(b.digest, { actor: who.actor, reason: b.reason });
    return c.json({ digest: b.digest, released: true });
  });
  app.get('/lineage', async (c) => {
    const p = await input(c, schemas.lineage, 'query');
    await admin(c, 'lineage', p.repository);
    return c.json(await ops.lineage.lineage(p.repository, p.reference));
  });
  app.get('/consumers', async (c) => {
    const p = await input(c, schemas.consumers, 'query');
    await admin(c, 'consumers');
    return c.json({ material: p.digest, ...(await ops.lineage.consumers(p.digest)) });
  });
  app.post('/verify/deep', async (c) => {
    const b = await input(c, schemas.deep, 'body');
    const who = await admin(c, 'verify', b.repository);
    const report = await ops.deep.verify(b.repository, b.reference);
    await ops.audit.record({
      actor: who.actor,
      action: 'verify.deep',
      repository: b.repository,
      target: `${b.repository}@${report.digest}`,
      detail: { ok: report.ok, failed: report.checks.filter((x) => !x.ok).map((x) => `${x.kind} ${x.digest}: ${x.detail}`).slice(0, 50) },
    });
    return c.json(report);
  });
  app.get('/audit', async (c) => {
    const p = await input(c, schemas.audit, 'query');
    await admin(c, 'audit');
    return c.json({ entries: await ops.audit.list({ since: p.since, afterSeq: p.after, limit: p.limit }) });
  });
  app.get('/audit/export', async (c) => {
    const p = await input(c, schemas.audit, 'query');
    await admin(c, 'audit');
    const entries = ops.audit.all(p.since);
    const enc = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        const next = await entries.next();
        if (next.done) ctl.close();
        else ctl.enqueue(enc.encode(`${JSON.stringify(next.value)}\n`));
      },
      async cancel() {
        await entries.return(undefined);
      },
    });
    return new Response(stream, { headers: { 'content-type': 'application/x-ndjson' } });
  });
  app.get('/audit/verify', async (c) => {
    const p = await input(c, schemas.verify, 'query');
    await admin(c, 'audit');
    const head = p.head ? { seq: Number(p.head.split(':')[0]), hash: p.head.split(':')[1]! } : undefined;
    return c.json(await ops.audit.verify(head));
  });
  return app;
}
