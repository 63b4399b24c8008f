import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

// Wrap node:crypto's timingSafeEqual so the test can see that every credential check goes through it.
const calls = vi.hoisted(() => ({ n: 0 }));
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return {
    ...actual,
    default: actual,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      calls.n++;
      return actual.timingSafeEqual(a, b);
    },
  };
});

const { startTestServer } = await import('./helpers/server.js');

describe('credential comparison', () => {
  let s: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(() => s.close());

  it('uses crypto.timingSafeEqual for tokens, session tokens and passwords', async () => {
    for (const auth of [
      'Bearer ctk_admin_wrongwrongwrongwrongwrongwrong',
      'Bearer cst_eyJzdWIiOiJhZG1pbiJ9.forgedmac',
      `Basic ${Buffer.from('x:ctk_admin_alsowrongalsowrongalsowrong').toString('base64')}`,
      `Basic ${Buffer.from('nobody:password').toString('base64')}`,
    ]) {
      const before = calls.n;
      const r = await fetch(`${s.url}/v2/a/b/blobs/uploads/`, { method: 'POST', headers: { authorization: auth } });
      expect(r.status).toBe(401);
      expect(calls.n, auth.slice(0, 20)).toBeGreaterThan(before);
    }
    const before = calls.n;
    const ok = await fetch(`${s.url}/v2/a/b/blobs/uploads/`, { method: 'POST', headers: s.auth() });
    expect(ok.status).toBe(202);
    expect(calls.n).toBeGreaterThan(before);
  });
});
