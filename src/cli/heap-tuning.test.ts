import { describe, expect, it } from 'vitest';
import { DEFAULT_HEAP_GROWING_PERCENT, tuneHeapForServing } from './heap-tuning.js';

describe('tuneHeapForServing', () => {
  const run = (env: NodeJS.ProcessEnv) => {
    const set: string[] = [];
    const percent = tuneHeapForServing(env, (f) => set.push(f));
    return { percent, set };
  };

  it("leaves V8's heuristics alone when nothing is configured", () => {
    expect(DEFAULT_HEAP_GROWING_PERCENT).toBe(0);
    expect(run({})).toEqual({ percent: 0, set: [] });
  });

  it('takes CUSTOMS_HEAP_GROWING_PERCENT, and 0 leaves V8 alone', () => {
    expect(run({ CUSTOMS_HEAP_GROWING_PERCENT: '50' })).toEqual({ percent: 50, set: ['--heap-growing-percent=50'] });
    expect(run({ CUSTOMS_HEAP_GROWING_PERCENT: '0' })).toEqual({ percent: 0, set: [] });
  });

  it('refuses a value that is not a percentage, naming the variable', () => {
    for (const v of ['-1', '2.5', 'lots', '100000']) {
      expect(() => run({ CUSTOMS_HEAP_GROWING_PERCENT: v })).toThrow(/CUSTOMS_HEAP_GROWING_PERCENT must be an integer/);
    }
  });
});
