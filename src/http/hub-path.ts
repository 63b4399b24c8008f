import type { RepoType } from '../hub/names.js';

/**
 * The Hugging Face Hub's URL paths below the prefix, as huggingface_hub 2.x builds them:
 *   /api/models/<id>[/revision/<rev>]             model_info, repo_info (snapshot_download)
 *   /api/models/<id>/tree/<rev>[/<path>]          list_repo_tree, list_repo_files
 *   /<id>/resolve/<rev>/<path>                    hf_hub_download (HEAD for metadata, then GET)
 * and the same for datasets (`/api/datasets/...`, `/datasets/<id>/resolve/...`).
 * `<id>` is `name` or `namespace/name`; revisions arrive percent-encoded as one segment
 * (`refs%2Fpr%2F1`). Everything may sit below `/<upstream>` (an endpoint per upstream Hub).
 */
interface RepoRoute {
  readonly upstream: string | undefined;
  readonly type: RepoType;
  readonly repoId: string;
}

export type HubRoute =
  | (RepoRoute & { readonly kind: 'info'; readonly revision: string | undefined })
  | (RepoRoute & { readonly kind: 'tree'; readonly revision: string; readonly path: string })
  | (RepoRoute & { readonly kind: 'resolve'; readonly revision: string; readonly path: string })
  | { readonly kind: 'unknown' };

const UNKNOWN: HubRoute = { kind: 'unknown' };

export function parseHubPath(rawPath: string, upstreams: ReadonlySet<string>): HubRoute {
  let segs: string[];
  try {
    segs = rawPath.split('/').slice(1).map(decodeURIComponent);
  } catch {
    return UNKNOWN;
  }
  if (segs.at(-1) === '' && segs.length > 1) segs.pop();
  let upstream: string | undefined;
  if (segs.length > 0 && upstreams.has(segs[0]!)) upstream = segs.shift();
  if (segs[0] === 'api') {
    const type = segs[1] === 'models' ? 'model' : segs[1] === 'datasets' ? 'dataset' : undefined;
    if (!type) return UNKNOWN;
    return apiRoute(upstream, type, segs.slice(2));
  }
  if (segs[0] === 'datasets') return resolveRoute(upstream, 'dataset', segs.slice(1));
  if (segs[0] === 'spaces') return UNKNOWN;
  return resolveRoute(upstream, 'model', segs);
}

/** Splits `<id>/<keyword>/...` trying `namespace/name` first, then `name`. */
function splitAt(segs: string[], keyword: string): { repoId: string; rest: string[] } | undefined {
  for (const n of [2, 1]) {
    if (segs[n] === keyword && segs.slice(0, n).every(isIdSegment)) return { repoId: segs.slice(0, n).join('/'), rest: segs.slice(n + 1) };
  }
  return undefined;
}

const isIdSegment = (s: string): boolean => s !== '' && !s.includes('/');

function apiRoute(upstream: string | undefined, type: RepoType, segs: string[]): HubRoute {
  const tree = splitAt(segs, 'tree');
  if (tree && tree.rest.length >= 1) return { kind: 'tree', upstream, type, repoId: tree.repoId, revision: tree.rest[0]!, path: tree.rest.slice(1).join('/') };
  const rev = splitAt(segs, 'revision');
  if (rev && rev.rest.length === 1) return { kind: 'info', upstream, type, repoId: rev.repoId, revision: rev.rest[0]! };
  if ((segs.length === 1 || segs.length === 2) && segs.every(isIdSegment)) return { kind: 'info', upstream, type, repoId: segs.join('/'), revision: undefined };
  return UNKNOWN;
}

function resolveRoute(upstream: string | undefined, type: RepoType, segs: string[]): HubRoute {
  const r = splitAt(segs, 'resolve');
  if (!r || r.rest.length < 2 || r.rest.slice(1).some((s) => s === '')) return UNKNOWN;
  return { kind: 'resolve', upstream, type, repoId: r.repoId, revision: r.rest[0]!, path: r.rest.slice(1).join('/') };
}
