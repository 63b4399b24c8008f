import type { Digest } from './oci/index.js';
import type { ReadGate } from './registry/index.js';

/**
 * Benchmark ablations (bench/run.mjs): a duty of the manifest GET removed, to measure what it
 * costs. NEVER for serving: `gate` serves every manifest unverified and `quarantine` ignores
 * quarantines. Set only through CUSTOMS_BENCH_ABLATE (comma list), and the server says so loudly.
 */
export type Ablation = 'gate' | 'quarantine' | 'metrics';
const ALL: readonly Ablation[] = ['gate', 'quarantine', 'metrics'];

export function benchAblations(env: NodeJS.ProcessEnv = process.env): Ablation[] {
  const raw = env.CUSTOMS_BENCH_ABLATE;
  if (!raw) return [];
  const asked = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = asked.filter((a) => !ALL.includes(a as Ablation));
  if (bad.length > 0) throw new Error(`CUSTOMS_BENCH_ABLATE: unknown ${bad.join(', ')} (known: ${ALL.join(', ')})`);
  return asked as Ablation[];
}

/** The store as the serving rule would see it if nothing were ever quarantined. */
export function withoutQuarantine<S extends object>(store: S): S {
  const none = (): Digest[] => [];
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'quarantinedAmong') return async () => none();
      if (prop === 'quarantinedAmongNow') return none;
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** Manifests served without asking the gate (blobs still ask it). */
export function manifestsUngated(gate: ReadGate): ReadGate {
  return { manifest: async () => ({}), manifestCached: () => ({}), blob: (r, d) => gate.blob(r, d), invalidate: (d) => gate.invalidate(d) };
}
