import { z } from 'zod';
import { err } from '../oci/index.js';

/**
 * The `upstreams:` slice of the configuration file. The lead's src/config embeds
 * `upstreamsConfigSchema` under `upstreams:`; pull-through receives the parsed,
 * frozen list (`UpstreamConfig[]`) with every default resolved here.
 *
 *   upstreams:
 *     - name: docker.io                      # path prefix: customs:5000/docker.io/library/alpine
 *       url: https://registry-1.docker.io
 *       credentials: { basic: { username: me, passwordEnv: HUB_TOKEN } }
 *       tagFreshness: 300                    # seconds a fetched tag is served without asking
 *       timeouts: { header: 10, idle: 30, overall: 3600 }
 *       retries: { attempts: 3, baseMs: 100 } # tries per idempotent request on resets and 502/503/504
 *       notFoundTtl: 30                      # seconds an upstream 404 is remembered (0: never)
 *       tls: { caFile: company-ca.pem }      # extra CAs for this upstream (PEM; relative to the config file)
 *       evictAfterSeconds: 2592000           # gc deletes cached manifests nobody pulled for 30 days
 */

/** Upstream names are path prefixes: repository-name components, so they may contain dots and slashes. */
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;

/** Secrets are named (an environment variable or a file), never written into the config itself. */
const basicSchema = z.union([
  z.strictObject({ username: z.string().min(1), passwordEnv: z.string().min(1) }),
  z.strictObject({ username: z.string().min(1), passwordFile: z.string().min(1) }),
]);
const bearerSchema = z.union([z.strictObject({ tokenEnv: z.string().min(1) }), z.strictObject({ tokenFile: z.string().min(1) })]);

export const credentialsSchema = z.union([z.literal('none'), z.strictObject({ basic: basicSchema }), z.strictObject({ bearer: bearerSchema })]);

const seconds = z.number().positive().max(7 * 24 * 3600);

export const timeoutsSchema = z.strictObject({
  /** Connect until response headers; also the whole exchange for manifests, tokens and referrers. */
  header: seconds.default(10),
  /** Longest silence while a blob body streams. */
  idle: seconds.default(30),
  /** Upper bound of one blob fill, whether or not any client is still reading. */
  overall: seconds.default(3600),
});

/**
 * Retries of idempotent upstream requests (see retry.ts): `attempts` counts every
 * try, the first included (1 turns retries off); the n-th retry waits about
 * `baseMs * 3^(n-1)` (jittered), and never past the caller's header timeout.
 */
export const retriesSchema = z.strictObject({
  attempts: z.number().int().min(1).max(10).default(3),
  baseMs: z.number().nonnegative().max(10_000).default(100),
});

export const upstreamConfigSchema = z
  .strictObject({
    name: z.string().regex(NAME, 'upstream name must be a repository-name prefix such as docker.io or ghcr.io'),
    url: z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, '')),
    credentials: credentialsSchema.default('none'),
    tagFreshness: z.number().nonnegative().max(365 * 24 * 3600).default(300),
    timeouts: timeoutsSchema.default({ header: 10, idle: 30, overall: 3600 }),
    retries: retriesSchema.default({ attempts: 3, baseMs: 100 }),
    /** Seconds an upstream "no such manifest/blob" is remembered for what is not local; 0 disables. */
    notFoundTtl: z.number().nonnegative().max(3600).default(30),
    /** CAs trusted for this upstream in addition to Node's roots (PEM bundle); see upstream-tls.ts. */
    tls: z.strictObject({ caFile: z.string().min(1) }).optional(),
    /**
     * Cache eviction: a manifest of this upstream nobody pulled for this many seconds is deleted, with its
     * local tags, by the next garbage collection run (its blobs follow); the next pull fetches it again.
     * Absent: cached content stays. Pinned, quarantined and referenced manifests and referrers always stay.
     */
    evictAfterSeconds: z.number().int().positive().optional(),
    /** Docker Hub's implicit `library/` for single-component names; defaults to true for docker.io. */
    dockerHubLibrary: z.boolean().optional(),
  })
  .transform((u) => ({ ...u, dockerHubLibrary: u.dockerHubLibrary ?? isDockerHub(u.name, u.url) }));

export const upstreamsConfigSchema = z
  .array(upstreamConfigSchema)
  .default([])
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    for (const u of list) {
      if (seen.has(u.name)) ctx.addIssue({ code: 'custom', message: `duplicate upstream name ${u.name}` });
      seen.add(u.name);
    }
  });

export type UpstreamConfig = Readonly<z.output<typeof upstreamConfigSchema>>;
export type RetryPolicy = Readonly<z.output<typeof retriesSchema>>;
export type UpstreamCredentials = z.output<typeof credentialsSchema>;
export type UpstreamInput = z.input<typeof upstreamConfigSchema>;

function isDockerHub(name: string, url: string): boolean {
  if (name === 'docker.io') return true;
  try {
    const host = new URL(url).hostname;
    return host === 'registry-1.docker.io' || host === 'index.docker.io';
  } catch {
    return false;
  }
}

/** Parses one `--upstream NAME=URL` flag into an anonymous upstream with defaults. */
export function parseUpstreamFlag(flag: string): UpstreamConfig {
  const eq = flag.indexOf('=');
  if (eq <= 0) throw err('UNSUPPORTED', `--upstream expects NAME=URL, got ${JSON.stringify(flag)}`);
  return parseUpstreams([{ name: flag.slice(0, eq), url: flag.slice(eq + 1) }])[0]!;
}

/** Parses and deep-freezes a list of upstreams (config file entries, `{NAME: URL}` maps). */
export function parseUpstreams(input: unknown): UpstreamConfig[] {
  const list = Array.isArray(input)
    ? input
    : input && typeof input === 'object'
      ? Object.entries(input as Record<string, unknown>).map(([name, url]) => (typeof url === 'string' ? { name, url } : { name, ...(url as object) }))
      : input;
  const result = upstreamsConfigSchema.safeParse(list);
  if (!result.success) throw err('UNSUPPORTED', `invalid upstream configuration: ${z.prettifyError(result.error)}`);
  return result.data.map((u) => deepFreeze(u));
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
