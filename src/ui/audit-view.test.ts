import { describe, expect, it } from 'vitest';
import { chainEntry, type AuditEntry } from '../storage/index.js';
import { ChainCache, matchesAudit } from './audit-view.js';
import type { ConsoleDeps } from './deps.js';

const entries: AuditEntry[] = [];
for (const [i, input] of [
  { actor: 'token:oncall', action: 'quarantine', target: 'sha256:aa' },
  { actor: 'token:oncall', action: 'quarantine.material', target: 'sha256:bb' },
  { actor: 'user:alice', action: 'rollback', repository: 'models/fraud', target: 'models/fraud:prod' },
  { actor: 'anonymous', action: 'deny', target: '/v2/models/fraud/manifests/prod' },
].entries()) entries.push(chainEntry(entries[i - 1], input, 1000 * (i + 1)));

describe('audit filters (the export applies them as the database does)', () => {
  const pick = (f: Parameters<typeof matchesAudit>[1]) => entries.filter((e) => matchesAudit(e, f)).map((e) => e.seq);
  it('matches actions with their sub-actions, actors and targets by substring, times half-open', () => {
    expect(pick({ action: 'quarantine' })).toEqual([1, 2]);
    expect(pick({ action: 'quar' })).toEqual([]);
    expect(pick({ actor: 'oncall' })).toEqual([1, 2]);
    expect(pick({ target: 'models/fraud' })).toEqual([3, 4]);
    expect(pick({ since: 2000, until: 4000 })).toEqual([2, 3]);
    expect(pick({})).toEqual([1, 2, 3, 4]);
  });
});

describe('ChainCache', () => {
  it('walks the chain once, then checks only what was added, and reports the first broken entry', async () => {
    const log = [...entries];
    let fullWalks = 0;
    const page = (after: number) => log.filter((e) => e.seq > after);
    const d = {
      ops: {
        audit: {
          verify: async () => {
            fullWalks++;
            return { ok: true, checked: log.length, head: { seq: log.at(-1)!.seq, hash: log.at(-1)!.hash }, problems: [] };
          },
          list: async (o: { afterSeq: number }) => page(o.afterSeq),
        },
      },
    } as unknown as ConsoleDeps;
    const c = new ChainCache(() => 5);
    expect(await c.current(d)).toMatchObject({ ok: true, verifiedTo: 4, fullAt: 5 });
    log.push(chainEntry(log.at(-1), { actor: 'x', action: 'pin' }, 6000));
    expect(await c.current(d)).toMatchObject({ ok: true, verifiedTo: 5 });
    expect(fullWalks).toBe(1);
    // An appended entry whose content was changed after hashing: named, and the state stays broken.
    const bad = chainEntry(log.at(-1), { actor: 'x', action: 'unpin' }, 7000);
    log.push({ ...bad, actor: 'someone else' });
    expect(await c.current(d)).toMatchObject({ ok: false, verifiedTo: 5, firstProblem: { seq: 6 } });
    expect(await c.current(d)).toMatchObject({ ok: false });
    expect(fullWalks).toBe(1);
  });
});

describe('ChainCache with a long walk', () => {
  it('answers while the walk runs, with its progress, and the result once it ends', async () => {
    let finish!: () => void;
    const d = {
      ops: {
        audit: {
          verify: (_h: unknown, o: { onProgress(n: number): void }) =>
            new Promise((res) => {
              o.onProgress(1000);
              finish = () => res({ ok: true, checked: 4, head: { seq: entries.at(-1)!.seq, hash: entries.at(-1)!.hash }, problems: [] });
            }),
          list: async (o: { afterSeq: number }) => entries.filter((e) => e.seq > o.afterSeq),
        },
      },
    } as unknown as ConsoleDeps;
    const c = new ChainCache();
    expect(await c.current(d)).toMatchObject({ ok: undefined, walking: { checked: 1000 } });
    expect(await c.full(d)).toMatchObject({ ok: undefined, walking: { checked: 1000 } }); // the same walk, not a second one
    finish();
    await new Promise((r) => setImmediate(r));
    expect(await c.current(d)).toMatchObject({ ok: true, verifiedTo: 4, walking: undefined });
  });
});
