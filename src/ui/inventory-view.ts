import { err, isValidName, parseManifest } from '../oci/index.js';
import type { QuarantineRecord, RepositorySummary, TagDetail } from '../storage/index.js';
import type { Verdict } from '../verify/index.js';
import type { ConsoleDeps } from './deps.js';
import { policyView, type PolicyView } from './policy-view.js';
import { globPrefixes, maySee, requirePermission, seesEverything, type Viewer } from './viewer.js';
import type { UpstreamStatus } from '../proxy/upstream-health.js';

export const PAGE_SIZE = 50;

export interface OverviewView {
  readonly repositories: number;
  readonly tags: number;
  /** Known only to a viewer who sees every repository (the store counts globally). */
  readonly artifacts: number | undefined;
  readonly referrers: number | undefined;
  /** The rest needs what /admin/ needs: admin on every repository. */
  readonly admin:
    | {
        readonly deniedLastDay: number;
        readonly quarantined: readonly QuarantineRecord[];
        readonly quarantinedCount: number;
        readonly upstreams: readonly UpstreamStatus[];
        readonly policy: PolicyView;
      }
    | undefined;
}

export interface RepositoryListView {
  readonly query: string;
  /** Where this page starts (undefined: the first page). */
  readonly after: string | undefined;
  readonly rows: readonly RepositorySummary[];
  /** The `after` of the next page, when there is one. */
  readonly next: string | undefined;
}

export interface TagRow extends TagDetail {
  /** Manifest + config + layers (an index: its own size and its children's manifests). */
  readonly totalSize: number;
  readonly verdict: Verdict | undefined;
}

export interface RepositoryView {
  readonly name: string;
  readonly query: string;
  readonly after: string | undefined;
  readonly rows: readonly TagRow[];
  readonly next: string | undefined;
  readonly mayAdmin: boolean;
}

const DAY = 86_400_000;

export async function overview(d: ConsoleDeps, v: Viewer, now = Date.now()): Promise<OverviewView> {
  let counts: Pick<OverviewView, 'repositories' | 'tags' | 'artifacts' | 'referrers'>;
  if (seesEverything(v)) {
    const c = await d.inventory.counts();
    counts = { repositories: c.repositories, tags: c.tags, artifacts: c.artifacts, referrers: c.referrers };
  } else {
    // Only what the viewer may see: walk the repositories under their globs (the database narrows by prefix).
    let repositories = 0;
    let tags = 0;
    for await (const r of visibleRepositories(d, v, '')) {
      repositories++;
      tags += r.tags;
    }
    counts = { repositories, tags, artifacts: undefined, referrers: undefined };
  }
  if (!v.may(undefined, 'admin')) return { ...counts, admin: undefined };
  const quarantined = await d.ops.quarantine.list();
  return {
    ...counts,
    admin: {
      // Refusals the read path recorded (target: the /v2/ request path), not refused admin calls.
      deniedLastDay: await d.inventory.countAudit({ action: 'deny', target: '/v2/', since: now - DAY }),
      quarantined: quarantined.slice(-20).reverse(),
      quarantinedCount: quarantined.length,
      upstreams: d.upstreams(),
      policy: policyView(d.policy()),
    },
  };
}

/** Every repository the viewer may see whose name contains `query`, in name order, after `after`. */
async function* visibleRepositories(d: ConsoleDeps, v: Viewer, query: string, after = ''): AsyncGenerator<RepositorySummary> {
  const narrow = seesEverything(v) ? {} : globPrefixes(v.pullGlobs);
  let cursor = after;
  for (;;) {
    const batch = await d.inventory.searchRepositories({ contains: query || undefined, ...narrow, after: cursor, limit: 500 });
    for (const r of batch) if (maySee(v, r.name)) yield r;
    if (batch.length < 500) return;
    cursor = batch[batch.length - 1]!.name;
  }
}

export async function repositoryList(d: ConsoleDeps, v: Viewer, query: string, after: string | undefined): Promise<RepositoryListView> {
  const rows: RepositorySummary[] = [];
  let more = false;
  for await (const r of visibleRepositories(d, v, query, after ?? '')) {
    if (rows.length === PAGE_SIZE) {
      more = true;
      break;
    }
    rows.push(r);
  }
  return { query, after, rows, next: more ? rows[rows.length - 1]!.name : undefined };
}

export async function repository(d: ConsoleDeps, v: Viewer, name: string, query: string, after: string | undefined): Promise<RepositoryView> {
  if (!isValidName(name)) throw err('NAME_INVALID', `invalid repository name ${JSON.stringify(name.slice(0, 300))}`);
  requirePermission(v, name, 'pull');
  if (!(await d.metadata.repositoryExists(name))) throw err('NAME_UNKNOWN', `repository ${name} is not known here`);
  const details = await d.inventory.tagDetails(name, { after, contains: query || undefined, limit: PAGE_SIZE + 1 });
  const page = details.slice(0, PAGE_SIZE);
  const verdicts = await Promise.all(page.map((t) => d.verdict(name, t.digest).catch(() => undefined)));
  return {
    name,
    query,
    after,
    rows: page.map((t, i) => ({ ...t, totalSize: totalSize(t.bytes, t.mediaType, t.size), verdict: verdicts[i] })),
    next: details.length > PAGE_SIZE ? page[page.length - 1]!.tag : undefined,
    mayAdmin: v.may(name, 'admin'),
  };
}

/** The manifest's size plus everything it references directly. */
export function totalSize(bytes: Buffer, mediaType: string, size: number): number {
  try {
    const m = parseManifest(bytes, mediaType);
    return size + [...m.blobs, ...m.manifests].reduce((n, x) => n + x.size, 0);
  } catch {
    return size;
  }
}

