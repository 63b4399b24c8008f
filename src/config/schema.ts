import { z } from 'zod';
import { authSchema } from './auth.js';
import { postgresMetadataSchema, s3StorageSchema } from './scaleout.js';

/**
 * The configuration file's schema. Each service receives its own slice with
 * defaults resolved here. Slices owned by other layers (upstreams, policy, auth)
 * are typed by their own schemas where those layers define them.
 */
const listenSchema = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected HOST:PORT');

export const storageSchema = z.discriminatedUnion('driver', [
  z.object({ driver: z.literal('filesystem') }).strict(),
  s3StorageSchema,
]);

export const metadataSchema = z.discriminatedUnion('driver', [
  z.object({ driver: z.literal('sqlite') }).strict(),
  postgresMetadataSchema,
]);

export const configSchema = z
  .object({
    listen: listenSchema.default('127.0.0.1:5000'),
    data: z.string().default('./data'),
    log: z
      .object({
        level: z.enum(['silent', 'error', 'warn', 'info', 'debug']).default('info'),
        /** Access lines: `all` (every request) or `errors` (status 400 and up, and clients that left). See docs/performance.md for what each costs. */
        access: z.enum(['all', 'errors']).default('all'),
        /** With `access: errors`, also log one successful request in this many (0: none). */
        accessSampleEvery: z.number().int().min(0).default(0),
      })
      .strict()
      .default({ level: 'info', access: 'all', accessSampleEvery: 0 }),
    limits: z
      .object({
        /** Largest blob accepted by a push, in bytes (default 1 TiB: models are big). A larger Content-Length gets 413 before the body is read. */
        maxBlobBytes: z.number().int().positive().default(1024 ** 4),
        /** A request body that delivers no byte for this long is aborted; an upload session keeps what it got (0: never). */
        bodyIdleSeconds: z.number().int().min(0).default(30),
        /** Time to receive a request's headers. */
        headersTimeoutSeconds: z.number().int().positive().default(30),
        /** Time to receive a whole request, body included (a single-request upload of a big layer must fit; chunked PATCHes each get it anew). 0: no limit. */
        requestTimeoutSeconds: z.number().int().min(0).default(6 * 3600),
        /** Upload requests one principal may have in progress at once; more get 429 with Retry-After. */
        maxConcurrentUploadsPerPrincipal: z.number().int().positive().default(64),
      })
      .strict()
      .prefault({}),
    uploads: z
      .object({
        /** Upload sessions untouched this long are removed. */
        expireAfterSeconds: z.number().int().positive().default(24 * 3600),
      })
      .strict()
      .default({ expireAfterSeconds: 24 * 3600 }),
    gc: z
      .object({
        /** Run garbage collection this often; 0 = only when an operator runs `customs gc`. At most 24 days (a timer's limit). */
        intervalSeconds: z.number().int().min(0).max(2_147_483).default(0),
        /** Blob links younger than this are kept: a large model's layers may wait hours for their manifest. */
        graceSeconds: z.number().int().min(0).default(24 * 3600),
        /**
         * Retention: also delete untagged manifests whose last tag left them this long ago (not referenced
         * by an index, not a referrer of a stored manifest, not quarantined). Absent: they are kept.
         */
        untaggedAfterSeconds: z.number().int().min(0).optional(),
      })
      .strict()
      .default({ intervalSeconds: 0, graceSeconds: 24 * 3600 }),
    scrub: z
      .object({
        /** Re-hash every stored blob and manifest this often; 0 = only when an operator runs `customs scrub`. At most 24 days (a timer's limit). */
        intervalSeconds: z.number().int().min(0).max(2_147_483).default(0),
        /** Read at most this many MiB per second (0 = unlimited), so a scrub never starves serving. */
        maxMiBPerSecond: z.number().min(0).default(50),
      })
      .strict()
      .default({ intervalSeconds: 0, maxMiBPerSecond: 50 }),
    /** SIGTERM: how long in-flight requests (uploads, downloads) may take to finish before their connections are closed. */
    shutdownTimeoutSeconds: z.number().int().min(0).max(86_400).default(30),
    /** SIGTERM: how long /readyz answers 503 while everything else is still served, so a load balancer stops routing here first. */
    shutdownDelaySeconds: z.number().int().min(0).max(3600).default(0),
    storage: storageSchema.default({ driver: 'filesystem' }),
    metadata: metadataSchema.default({ driver: 'sqlite' }),
    upstreams: z.array(z.unknown()).default([]),
    policy: z.unknown().optional(),
    /** The Hugging Face Hub API and its upstreams (src/hub/config.ts). */
    hub: z.unknown().optional(),
    auth: authSchema.default(authSchema.parse({})),
    /** Typed by their own layers' schemas: src/http/tls.ts, src/admission/config.ts. */
    tls: z.unknown().optional(),
    admission: z.unknown().optional(),
    vsa: z.unknown().optional(),
    /** The operator console at /ui/ (docs/console.md). */
    ui: z
      .object({
        enabled: z.boolean().default(true),
        /** How long a console sign-in lasts. */
        sessionTtlSeconds: z.number().int().min(60).max(7 * 86400).default(8 * 3600),
        /** `auto`: cookies are Secure when the request came over TLS; `always`: behind a TLS-terminating proxy. */
        secureCookie: z.enum(['auto', 'always']).default('auto'),
      })
      .strict()
      .default({ enabled: true, sessionTtlSeconds: 8 * 3600, secureCookie: 'auto' }),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
