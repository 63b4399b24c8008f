import { err } from '../oci/index.js';

/** The API's actions (src/config/auth.ts): the console asks the same questions. */
export type ConsoleAction = 'pull' | 'push' | 'delete' | 'admin';

/**
 * The signed-in principal as the console sees it. `may` is the API's own permission check
 * (the HTTP layer builds it from `permits`, the function every /v2/ and /admin/ request
 * goes through), so the console can do nothing its user's token cannot.
 */
export interface Viewer {
  readonly actor: string;
  /** `repository` undefined: every repository (what /admin/ asks for global operations). */
  may(repository: string | undefined, action: ConsoleAction): boolean;
  /** The repository globs the principal may pull (or administer): lists are narrowed by them. */
  readonly pullGlobs: readonly string[];
}

/** Throws DENIED (403 page) unless the viewer may. The message names the action, as the API's does. */
export function requirePermission(v: Viewer, repository: string | undefined, action: ConsoleAction): void {
  if (!v.may(repository, action)) throw err('DENIED', `${v.actor} may not ${action} ${repository ?? 'every repository'}`);
}

/** May the viewer see `repository` at all (pull, or any action that implies reading it)? */
export const maySee = (v: Viewer, repository: string): boolean => v.may(repository, 'pull');

/** May the viewer see every repository (a `**` pull or admin permission)? */
export const seesEverything = (v: Viewer): boolean => v.pullGlobs.includes('**');

/**
 * Name prefixes that cover the viewer's globs: each glob's literal text before its first
 * wildcard (a trailing `/` dropped, since `a/**` matches `a`). The database narrows by
 * prefix; `maySee` then decides exactly.
 */
export function globPrefixes(globs: readonly string[]): string[] {
  const out = new Set<string>();
  for (const g of globs) {
    const i = g.search(/[*?]/);
    const literal = i < 0 ? g : g.slice(0, i);
    out.add(literal.endsWith('/') ? literal.slice(0, -1) : literal);
  }
  // A prefix covered by a shorter one adds nothing.
  return [...out].filter((p) => ![...out].some((q) => q !== p && p.startsWith(q)));
}
