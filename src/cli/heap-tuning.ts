import { setFlagsFromString } from 'node:v8';
import { ConfigError } from '../config/load.js';

/**
 * V8's old-generation growth for `customs serve`: the next full GC comes when the
 * heap reaches (1 + percent/100) times what the last one left live.
 *
 * A registry's live heap is small (about 25 MB here) while its allocation rate is
 * high (a manifest GET allocates about 19 KB, and about 4 KB of it survives two
 * scavenges). V8's default factor, up to 4x on a server, let a 6 s burst of
 * manifest GETs leave about 80 MB of garbage in old space before one full GC, and
 * those pages count as RSS. At 1.3x the old space tops out near 40 MB; each full
 * GC then walks only the small live heap (3-6 ms) and comes about 3x as often.
 * Measured with wrk -c32 on the 2-core VM: RSS after the burst 141-145 MB against
 * 157-176 MB, requests/s within the run-to-run noise.
 *
 * CUSTOMS_HEAP_GROWING_PERCENT overrides it; 0 keeps V8's own heuristics.
 */
export const DEFAULT_HEAP_GROWING_PERCENT = 30;

export function tuneHeapForServing(env: NodeJS.ProcessEnv = process.env, setFlags: (flags: string) => void = setFlagsFromString): number {
  const raw = env.CUSTOMS_HEAP_GROWING_PERCENT;
  const percent = raw === undefined || raw === '' ? DEFAULT_HEAP_GROWING_PERCENT : Number(raw);
  if (!Number.isInteger(percent) || percent < 0 || percent > 1000) {
    throw new ConfigError(`CUSTOMS_HEAP_GROWING_PERCENT must be an integer from 0 (V8's default) to 1000, got ${JSON.stringify(raw)}`);
  }
  // V8 reads the flag each time it sets the next GC's limit, so setting it before the server starts is enough.
  if (percent > 0) setFlags(`--heap-growing-percent=${percent}`);
  return percent;
}
