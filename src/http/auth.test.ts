import { describe, expect, it, vi } from 'vitest';

// Counts scrypt runs (the real function runs: this is a spy, not a stub).
const runs = vi.hoisted(() => ({ n: 0 }));
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  const scrypt = ((...args: Parameters<typeof actual.scrypt>) => {
    runs.n++;
    return (actual.scrypt as (...a: unknown[]) => void)(...args);
  }) as typeof actual.scrypt;
  return { ...actual, default: { ...actual, scrypt }, scrypt };
});

const { TokenAccess } = await import('./auth.js');
const { hashSecret } = await import('./secrets.js');
const { authSchema } = await import('../config/auth.js');

describe('TokenAccess', () => {
  it('runs one scrypt for a secret that many requests bring at once, and none while it is cached', async () => {
    const secret = 'a'.repeat(32);
    const access = new TokenAccess({ config: authSchema.parse({}), adminTokenHash: await hashSecret(secret), sessionKey: Buffer.alloc(32, 1) });
    const req = { authorization: `Bearer ctk_admin_${secret}`, remoteAddress: '10.0.0.1', host: 'registry' };
    const before = runs.n;
    const who = await Promise.all(Array.from({ length: 8 }, () => access.authorize(req, 'team/model', 'push')));
    expect(who.map((w) => w.actor)).toEqual(Array(8).fill('admin'));
    expect(runs.n - before).toBe(1);
    await access.authorize(req, 'team/model', 'pull');
    expect(runs.n - before).toBe(1);
    // A wrong secret is checked (and refused) on its own.
    await expect(access.authorize({ ...req, authorization: `Bearer ctk_admin_${'b'.repeat(32)}` }, 'team/model', 'push')).rejects.toThrow();
    expect(runs.n - before).toBe(2);
  });
});
