import { describe, expect, it } from 'vitest';
import { canonicalJson, chainEntry, verifyAuditChain, type AuditEntry } from '../storage/index.js';

function chain(n: number): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (let i = 0; i < n; i++) out.push(chainEntry(out.at(-1), { actor: `u${i}`, action: 'push', target: `r:t${i}`, detail: { i, nested: { b: 1, a: [1, 'x'] } } }, 1_000 + i));
  return out;
}

describe('audit hash chain', () => {
  it('canonical JSON sorts keys at every level and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: undefined, c: [2, { z: 1, y: 2 }] } })).toBe('{"a":{"c":[2,{"y":2,"z":1}]},"b":1}');
  });

  it('accepts an intact chain and reports its head', () => {
    const c = chain(5);
    expect(verifyAuditChain(c)).toEqual({ ok: true, checked: 5, head: { seq: 5, hash: c[4]!.hash }, problems: [] });
    expect(verifyAuditChain([])).toMatchObject({ ok: true, head: undefined });
  });

  it('names an edited entry', () => {
    const c = chain(5);
    c[2] = { ...c[2]!, reason: 'routine' };
    expect(verifyAuditChain(c).problems).toEqual([{ seq: 3, problem: 'content does not match its hash: the entry was edited' }]);
  });

  it('names the entry after one edited and re-hashed by someone who knows the scheme', () => {
    const c = chain(5);
    const forged = chainEntry({ seq: 2, hash: c[1]!.hash }, { actor: 'mallory', action: 'push' }, c[2]!.at);
    c[2] = forged;
    expect(verifyAuditChain(c).problems.map((p) => p.seq)).toEqual([4]);
  });

  it('names a removal and a reordering', () => {
    const removed = chain(5);
    removed.splice(1, 1);
    const r = verifyAuditChain(removed);
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatchObject({ seq: 3, problem: expect.stringContaining('entries 2..2 were removed') });
    const swapped = chain(5);
    [swapped[1], swapped[2]] = [swapped[2]!, swapped[1]!];
    expect(verifyAuditChain(swapped).problems.map((p) => p.seq)).toEqual([3, 3, 2, 2, 4, 4]);
    expect(verifyAuditChain(swapped).problems[2]!.problem).toMatch(/reordered/);
  });

  it('detects truncation only against a recorded head', () => {
    const c = chain(5);
    const head = { seq: 5, hash: c[4]!.hash };
    expect(verifyAuditChain(c.slice(0, 3)).ok).toBe(true);
    expect(verifyAuditChain(c.slice(0, 3), { expectHead: head }).problems).toEqual([{ seq: 5, problem: 'the recorded head entry is missing: the log was truncated' }]);
    expect(verifyAuditChain(c, { expectHead: head }).ok).toBe(true);
  });
});
