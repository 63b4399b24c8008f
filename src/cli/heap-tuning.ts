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
 * those pages count as RSS. Measured with wrk -c32 on the 2-core VM (RSS after the
 * burst, and user CPU of a 1 GiB PUT, whose body chunks push the heap too):
 *   V8's default  157-194 MB   1.1-1.8 s (2.7-3.1 s in a slow phase of the VM)
 *   2.0x (100)    153 MB       1.5-2.1 s
 *   1.3x (30)     141-147 MB   2.6-3.4 s
 * 2.0x takes most of the memory back for little of the PUT's CPU; manifest GET
 * requests/s did not move beyond the run-to-run noise at any setting.
 *
 * CUSTOMS_HEAP_GROWING_PERCENT overrides it; 0 keeps V8's own heuristics.
 */
export const DEFAULT_HEAP_GROWING_PERCENT = 100;

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
