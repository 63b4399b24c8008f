import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchAblations } from '../src/bench-ablation.js';
import { spawnServer } from './helpers/process.js';

/**
 * CUSTOMS_BENCH_ABLATE switches duties of a request off (the gate, the quarantine check) so that
 * bench/run.mjs can measure their cost. It must never become a way to serve unverified or
 * quarantined content to other machines: an ablated server refuses any address but loopback.
 */
describe('benchmark ablations', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'customs-ablate-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('refuses to serve beyond loopback with an ablation set, and names the variable', async () => {
    await expect(spawnServer(['--data', join(dir, 'a'), '--listen', '0.0.0.0:0'], { CUSTOMS_BENCH_ABLATE: 'quarantine' })).rejects.toThrow(/CUSTOMS_BENCH_ABLATE is for benchmarks on loopback only/);
  });

  it('on loopback it starts, and says loudly what is switched off', async () => {
    const p = await spawnServer(['--data', join(dir, 'b')], { CUSTOMS_BENCH_ABLATE: 'metrics' });
    try {
      for (let i = 0; i < 40 && !p.lines.some((l) => l.includes('BENCHMARK ABLATION')); i++) await new Promise((r) => setTimeout(r, 50));
      expect(p.lines.find((l) => l.includes('BENCHMARK ABLATION'))).toContain('metrics');
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
    }
  });

  it('an unknown duty is an error, not ignored', () => {
    expect(() => benchAblations({ CUSTOMS_BENCH_ABLATE: 'gate,auth' })).toThrow(/unknown auth/);
    expect(benchAblations({})).toEqual([]);
  });
});
