import { z } from 'zod';
import { retriesSchema, timeoutsSchema } from '../proxy/config.js';

/**
 * The `hub:` slice of the configuration: where the Hugging Face API is served and
 * which Hub-compatible upstreams models are pulled through from.
 *
 *   hub:
 *     prefix: /hf                          # HF_ENDPOINT=http://customs:5000/hf
 *     defaultUpstream: hf.co               # plain <org>/<model> under /hf goes here when no local repository has that name
 *     upstreams:
 *       - name: hf.co                      # HF_ENDPOINT=http://customs:5000/hf/hf.co; stored as hf.co/<org>/<model>
 *         url: https://huggingface.co
 *         token: { env: HF_TOKEN }         # or { file: /run/secrets/hf-token }; sent to this origin only
 *         revisionFreshness: 300           # seconds a branch -> commit resolution is served without asking
 *         timeouts: { header: 10, idle: 30, overall: 3600 }
 *         retries: { attempts: 3, baseMs: 100 }
 *         notFoundTtl: 30                  # seconds an upstream "no such repository/revision" is remembered
 *         tls: { caFile: company-ca.pem }
 *
 * What an upstream model may be is the policy's decision (`policy.rules[].hub` and the
 * model checks), not this slice's.
 */

/** One path segment (the endpoint is `<prefix>/<name>`, the repositories `<name>/<org>/<model>`). */
const UPSTREAM_NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

export const hubTokenSchema = z.union([z.strictObject({ env: z.string().min(1) }), z.strictObject({ file: z.string().min(1) })]);

export const hubUpstreamSchema = z.strictObject({
  name: z
    .string()
    .regex(UPSTREAM_NAME, 'a hub upstream name is one path segment such as hf.co')
    .refine((n) => n !== 'api' && n !== 'datasets' && n !== 'spaces', 'api, datasets and spaces are paths of the Hub API, not upstream names'),
  url: z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, '')),
  token: hubTokenSchema.optional(),
  revisionFreshness: z.number().nonnegative().max(365 * 24 * 3600).default(300),
  timeouts: timeoutsSchema.default({ header: 10, idle: 30, overall: 3600 }),
  retries: retriesSchema.default({ attempts: 3, baseMs: 100 }),
  notFoundTtl: z.number().nonnegative().max(3600).default(30),
  tls: z.strictObject({ caFile: z.string().min(1) }).optional(),
});

export const hubConfigSchema = z
  .strictObject({
    /** URL path the Hub API is served under. */
    prefix: z
      .string()
      .regex(/^\/[A-Za-z0-9._~-]+(?:\/[A-Za-z0-9._~-]+)*$/, 'prefix is a path such as /hf (no trailing slash)')
      .refine((p) => !/^\/(v2|admin|auth|healthz|readyz|metrics)(\/|$)/.test(p), 'prefix collides with a route of the registry')
      .default('/hf'),
    defaultUpstream: z.string().optional(),
    upstreams: z.array(hubUpstreamSchema).default([]),
  })
  .superRefine((h, ctx) => {
    const names = new Set<string>();
    for (const u of h.upstreams) {
      if (names.has(u.name)) ctx.addIssue({ code: 'custom', path: ['upstreams'], message: `duplicate hub upstream name ${u.name}` });
      names.add(u.name);
    }
    if (h.defaultUpstream !== undefined && !names.has(h.defaultUpstream)) {
      ctx.addIssue({ code: 'custom', path: ['defaultUpstream'], message: `defaultUpstream ${h.defaultUpstream} is not one of hub.upstreams` });
    }
  })
  .default({ prefix: '/hf', upstreams: [] });

export type HubConfig = Readonly<z.output<typeof hubConfigSchema>>;
export type HubUpstreamConfig = Readonly<z.output<typeof hubUpstreamSchema>>;
