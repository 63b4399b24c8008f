import { z } from 'zod';
import data from './pickle-allow.json' with { type: 'json' };

/**
 * Which globals a pickle may import: exact (module, name) pairs, never globs. A glob over a package
 * (`sklearn.*`) admits every function in it, and some of them run code
 * (`sklearn.utils._testing.assert_run_python_script`); a name is also compared whole, so a dotted
 * name that Python resolves attribute by attribute (`sklearn` + `os.system`) matches nothing.
 * The pairs live in pickle-allow.json, generated from real model files by
 * test/security/pickle-allowlist.test.ts.
 */
export type PicklePair = readonly [module: string, name: string];

const key = (module: string, name: string): string => `${module}\n${name}`;

const fileSchema = z.object({ pairs: z.record(z.string(), z.array(z.tuple([z.string().min(1), z.string().min(1)]))) });

export const DEFAULT_PICKLE_PAIRS: readonly PicklePair[] = Object.values(fileSchema.parse(data).pairs).flat();

/** Python identifiers joined by dots: what a module path or a qualified name can be. */
const DOTTED = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/**
 * A policy's extra entry: `module:name` (the name may be dotted, as a nested class's qualname), or
 * the older `module.name`, split at its last dot. Globs are refused: they are what let allowed
 * packages smuggle in code.
 */
export function parsePickleAllowEntry(s: string): PicklePair | string {
  if (/[*?[\]]/.test(s)) return `"${s}" is a glob; pickleAllow takes exact module:name pairs`;
  const colon = s.indexOf(':');
  const [module, name] = colon >= 0 ? [s.slice(0, colon), s.slice(colon + 1)] : [s.slice(0, s.lastIndexOf('.')), s.slice(s.lastIndexOf('.') + 1)];
  if (!DOTTED.test(module) || !DOTTED.test(name)) return `"${s}" is not module:name (Python identifiers)`;
  return [module, name];
}

export class PickleAllowList {
  private readonly pairs = new Set<string>();

  constructor(extra: readonly string[] = [], base: readonly PicklePair[] = DEFAULT_PICKLE_PAIRS) {
    for (const [m, n] of base) this.pairs.add(key(m, n));
    for (const e of extra) {
      const p = parsePickleAllowEntry(e);
      if (typeof p === 'string') throw new Error(p);
      this.pairs.add(key(p[0], p[1]));
    }
  }

  has(module: string, name: string): boolean {
    return this.pairs.has(key(module, name));
  }
}

/** Named as dangerous in findings (everything outside the allow-list is denied anyway). */
export const DANGEROUS = /^(os|posix|nt|subprocess|socket|sys|shutil|runpy|pydoc|pty|commands|webbrowser|importlib|ctypes|marshal|pickle|_pickle|code|pdb|timeit|platform|multiprocessing|asyncio|requests|urllib|http|ftplib|telnetlib|smtplib)(\.|$)|^(builtins|__builtin__)\.(eval|exec|compile|open|__import__|getattr|setattr|delattr|globals|locals|vars|input|breakpoint|apply|execfile|file|reload)$|^torch\.(storage\._load_from_bytes|load|jit\.load)$|_ufunc_reconstruct$/;
