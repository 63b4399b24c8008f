import { describe, expect, it } from 'vitest';
import { NotFoundCache } from './not-found-cache.js';
import { backoffMs, parseRetryAfter, withRetries, type RetryEvent } from './retry.js';

describe('backoff', () => {
  it('grows by three from baseMs, jittered by a factor in [0.5, 1.5), capped', () => {
    const policy = { attempts: 3, baseMs: 100 };
    expect([1, 2, 3].map((n) => backoffMs(policy, n, () => 0.5))).toEqual([100, 300, 900]);
    expect(backoffMs(policy, 1, () => 0)).toBe(50);
    expect(backoffMs(policy, 2, () => 0.999)).toBe(450);
    expect(backoffMs({ attempts: 10, baseMs: 10_000 }, 9, () => 0.5)).toBe(10_000);
  });
});

describe('withRetries', () => {
  const policy = { attempts: 3, baseMs: 0 };
  const retryable = (o: { value: number } | { error: unknown }) => ('value' in o ? (o.value >= 500 ? `status ${o.value}` : undefined) : 'boom');

  it('tries until success, releasing each dropped result and reporting each retry', async () => {
    const answers = [503, 502, 200];
    const released: number[] = [];
    const events: RetryEvent[] = [];
    const got = await withRetries(async () => answers.shift()!, { policy, signal: new AbortController().signal, retryable, release: (v) => released.push(v), onRetry: (e) => events.push(e) });
    expect(got).toBe(200);
    expect(released).toEqual([503, 502]);
    expect(events.map((e) => [e.attempt, e.attempts, e.reason])).toEqual([
      [1, 3, 'status 503'],
      [2, 3, 'status 502'],
    ]);
  });

  it('returns the last answer or throws the last error once out of tries; stops at once on what is not retryable', async () => {
    let calls = 0;
    expect(await withRetries(async () => (calls++, 503), { policy, signal: new AbortController().signal, retryable })).toBe(503);
    expect(calls).toBe(3);
    calls = 0;
    await expect(withRetries(async () => (calls++, Promise.reject(new Error('x'))), { policy, signal: new AbortController().signal, retryable })).rejects.toThrow('x');
    expect(calls).toBe(3);
    calls = 0;
    expect(await withRetries(async () => (calls++, 404), { policy, signal: new AbortController().signal, retryable })).toBe(404);
    expect(calls).toBe(1);
  });

  it('a wait ends when the signal fires', async () => {
    const ac = new AbortController();
    let calls = 0;
    const p = withRetries(async () => (calls++, 503), { policy: { attempts: 3, baseMs: 60_000 }, signal: ac.signal, retryable, onRetry: () => setImmediate(() => ac.abort()) });
    await expect(p).rejects.toThrow(/status 503; no time left/);
    expect(calls).toBe(1);
  });
});

describe('Retry-After', () => {
  const now = Date.UTC(2026, 10, 26, 1, 0, 0);
  it('reads seconds and HTTP dates, clamped to 1..3600 s', () => {
    expect(parseRetryAfter('120', now)).toBe(120);
    expect(parseRetryAfter(' 7 ', now)).toBe(7);
    expect(parseRetryAfter(new Date(now + 90_000).toUTCString(), now)).toBe(90);
    expect(parseRetryAfter(new Date(now - 90_000).toUTCString(), now)).toBe(1);
    expect(parseRetryAfter('0', now)).toBe(1);
    expect(parseRetryAfter('86400', now)).toBe(3600);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('NotFoundCache', () => {
  it('remembers for ttl seconds on the injected clock; 0 remembers nothing; bounded', () => {
    let now = 0;
    const c = new NotFoundCache(() => now, 2);
    const k = NotFoundCache.key('up', 'a', 'manifest', 'v1');
    c.set(k, 30);
    c.set(NotFoundCache.key('up', 'a', 'manifest', 'v0'), 0);
    expect(c.get(k)).toEqual({ error: undefined });
    expect(c.get(NotFoundCache.key('up', 'a', 'manifest', 'v0'))).toBeUndefined();
    now = 29_999;
    expect(c.get(k)).toBeDefined();
    now = 30_000;
    expect(c.get(k)).toBeUndefined();
    for (let i = 0; i < 5; i++) c.set(NotFoundCache.key('up', 'a', 'blob', String(i)), 30);
    expect(c.size).toBe(2);
  });
});
