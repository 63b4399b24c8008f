import { z } from 'zod';

/** The `auth:` slice: who may do what, secrets stored hashed (scrypt). */
/**
 * `discover`: may learn that a denied manifest exists (HEAD answers 200 with the denial in a header, no
 * content), so `oras discover` finds the signatures of something the gate refuses; `admin` implies it.
 */
export const actionSchema = z.enum(['pull', 'push', 'delete', 'discover', 'admin']);

export const permissionSchema = z
  .object({
    /** Repository globs: `*` within a path segment, `**` across segments. */
    repositories: z.array(z.string().min(1)).min(1),
    actions: z.array(actionSchema).min(1),
  })
  .strict();

/** `scrypt$N$r$p$<salt b64>$<hash b64>`, as `customs token create` prints. */
export const secretHashSchema = z.string().regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/, 'expected scrypt$N$r$p$salt$hash (customs token create prints one)');

export const authSchema = z
  .object({
    anonymous: z
      .object({
        /** Anonymous pull: only from loopback addresses (default), from anywhere, or never. */
        pull: z.enum(['loopback', 'always', 'never']).default('loopback'),
        repositories: z.array(z.string().min(1)).default(['**']),
      })
      .strict()
      .default({ pull: 'loopback', repositories: ['**'] }),
    /** API tokens `ctk_<id>_<secret>`: sent as a bearer token, or as the Basic password with any username. */
    tokens: z.array(z.object({ id: z.string().regex(/^[a-z0-9-]{1,40}$/), hash: secretHashSchema, permissions: z.array(permissionSchema) }).strict()).default([]),
    /** Users with a password (HTTP Basic, or the token endpoint). */
    users: z.array(z.object({ name: z.string().min(1).max(100), passwordHash: secretHashSchema, permissions: z.array(permissionSchema) }).strict()).default([]),
    /** Lifetime of bearer tokens issued by /auth/token. */
    sessionTtlSeconds: z.number().int().positive().default(900),
    /** File with the HMAC key for issued bearer tokens (shared by replicas); default <data>/session-key. */
    sessionKeyFile: z.string().optional(),
  })
  .strict();

export type AuthConfig = z.infer<typeof authSchema>;
export type Permission = z.infer<typeof permissionSchema>;
