/**
 * Globs for repository names, licenses and package URLs.
 * `*` matches within one path segment (no `/`), `**` matches across segments, `?` one character.
 * Always anchored; everything else is literal.
 */
const cache = new Map<string, RegExp>();

export function globToRegExp(glob: string, flat = false): RegExp {
  const ck = flat ? `\0${glob}` : glob;
  const hit = cache.get(ck);
  if (hit) return hit;
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (flat && c === '*') re += '.*';
    else if (flat && c === '?') re += '.';
    else if (c === '/' && glob.slice(i) === '/**') {
      re += '(?:/.*)?';
      break;
    } else if (c === '*') {
      if (glob[i + 1] === '*') {
        // `a/**` also matches `a` itself, `**/b` matches `b`.
        if (glob[i + 2] === '/') {
          re += '(?:.*/)?';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  const out = new RegExp(`^${re}$`, 's');
  if (cache.size > 1000) cache.clear();
  cache.set(ck, out);
  return out;
}

export const globMatch = (glob: string, value: string): boolean => globToRegExp(glob).test(value);

/**
 * Flat, case-insensitive globs for licenses, package URLs and formats: `*` crosses `/`
 * (`pkg:golang/*` denies every Go module, `gpl-*` denies `GPL-3.0-only`).
 */
export const globMatchCi = (glob: string, value: string): boolean => globToRegExp(glob.toLowerCase(), true).test(value.toLowerCase());

/**
 * Specificity of a glob, to pick the most specific matching rule: more literal characters win,
 * then fewer wildcards. `models/llama` > `models/*` > `models/**` > `**`.
 */
export function globSpecificity(glob: string): number {
  const literal = glob.replace(/\*\*|\*|\?/g, '').length;
  const doubles = (glob.match(/\*\*/g) ?? []).length;
  const singles = (glob.replace(/\*\*/g, '').match(/[*?]/g) ?? []).length;
  return literal * 100 - doubles * 10 - singles;
}
