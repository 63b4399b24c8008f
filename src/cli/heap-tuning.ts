import { setFlagsFromString } from 'node:v8';
import { ConfigError } from '../config/load.js';

/**
 * V8's old-generation growth for `customs serve`, for operators who trade upload CPU
 * for memory: the next full GC comes when the heap reaches (1 + percent/100) times
 * what the last one left live. Off by default (V8's own heuristics).
 *
 * A registry's live heap is small (about 25 MB here) while its allocation rate is
 * high: a manifest GET allocates about 19 KB, and about 4 KB of it survives two
 * scavenges; an upload's body chunks are promoted the same way, and their memory
 * goes back only at a full GC. V8's default factor, up to 4x on a server, lets
 * that garbage pile up as RSS. Measured on the 2-core VM: RSS after 6 s of manifest
 * GETs at wrk -c32; RSS in `bench/run.mjs` during 4 downloads after its PUT, GET and
 * manifest phases; user CPU of a 1 GiB PUT:
 *   V8's default  157-194 MB   216-221 MB          1.1-1.8 s
 *   2.0x (100)    153 MB       229.6 MB            1.5-2.1 s
 *   1.3x (30)     141-147 MB   179.6 / 218.4 MB    2.6-3.4 s
 * A lower factor caps the garbage of request bursts; the bench's figure also holds
 * glibc's arena and V8's young generation, which it does not touch. It costs
 * uploads about 30% more time, so it is a setting, not a default.
 */
export const DEFAULT_HEAP_GROWING_PERCENT = 0;

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
