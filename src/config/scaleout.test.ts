import { describe, expect, it } from 'vitest';
import { configSchema } from './schema.js';
import { s3StorageSchema } from './scaleout.js';

const s3 = { driver: 's3', bucket: 'models' } as const;

describe('storage.redirect (S3)', () => {
  it('is off when left out, and an empty object keeps it off with the documented defaults', () => {
    expect(s3StorageSchema.parse(s3).redirect).toBeUndefined();
    expect(s3StorageSchema.parse({ ...s3, redirect: {} }).redirect).toEqual({ enabled: false, expiresSeconds: 60, minBytes: 1024 * 1024 });
    expect(s3StorageSchema.parse({ ...s3, redirect: { enabled: true } }).redirect).toEqual({ enabled: true, expiresSeconds: 60, minBytes: 1024 * 1024 });
  });

  it('bounds expiresSeconds to 1..3600 and minBytes to >= 0, both integers', () => {
    const redirect = (r: object) => s3StorageSchema.safeParse({ ...s3, redirect: { enabled: true, ...r } }).success;
    expect(redirect({ expiresSeconds: 1, minBytes: 0 })).toBe(true);
    expect(redirect({ expiresSeconds: 3600 })).toBe(true);
    expect(redirect({ expiresSeconds: 0 })).toBe(false);
    expect(redirect({ expiresSeconds: 3601 })).toBe(false);
    expect(redirect({ expiresSeconds: 1.5 })).toBe(false);
    expect(redirect({ minBytes: -1 })).toBe(false);
    expect(redirect({ minBytes: 0.5 })).toBe(false);
  });

  it('rejects unknown keys (strict) and a non-boolean enabled', () => {
    expect(s3StorageSchema.safeParse({ ...s3, redirect: { enabled: true, expires: 60 } }).success).toBe(false);
    expect(s3StorageSchema.safeParse({ ...s3, redirect: { enabled: 'yes' } }).success).toBe(false);
    expect(s3StorageSchema.safeParse({ ...s3, redirects: { enabled: true } }).success).toBe(false);
  });

  it('parses inside the whole configuration', () => {
    const c = configSchema.parse({ storage: { ...s3, redirect: { enabled: true, minBytes: 0 } }, metadata: { driver: 'postgres', url: 'postgres://h/db' } });
    expect(c.storage).toMatchObject({ driver: 's3', redirect: { enabled: true, expiresSeconds: 60, minBytes: 0 } });
    expect(configSchema.safeParse({ storage: { driver: 'filesystem', redirect: { enabled: true } } }).success).toBe(false);
  });
});
