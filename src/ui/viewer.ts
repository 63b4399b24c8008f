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
 * What the database can narrow a list to for the viewer's globs: each glob's literal text
 * before its first wildcard as a prefix (`models/**` -> `models/`, plus the name `models`,
 * which `a/**` also matches); a glob without wildcards is an exact name. `maySee` then
 * decides exactly.
 */
export function globPrefixes(globs: readonly string[]): { prefixes: string[]; names: string[] } {
  const prefixes = new Set<string>();
  const names = new Set<string>();
  for (const g of globs) {
    const i = g.search(/[*?]/);
    if (i < 0) names.add(g);
    else {
      prefixes.add(g.slice(0, i));
      if (g.slice(i - 1) === '/**') names.add(g.slice(0, i - 1));
    }
  }
  // A prefix covered by a shorter one adds nothing; neither does a name it covers.
  const p = [...prefixes].filter((x) => ![...prefixes].some((y) => y !== x && x.startsWith(y)));
  return { prefixes: p, names: [...names].filter((n) => !p.some((x) => n.startsWith(x))) };
}
