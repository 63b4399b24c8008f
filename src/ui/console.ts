import { err, isValidName, isValidTag, type Digest, type Reference } from '../oci/index.js';
import type { AuditFilter } from '../storage/index.js';
import * as actions from './actions.js';
import { artifact } from './artifact-view.js';
import { auditExport, auditPage as auditView, ChainCache } from './audit-view.js';
import type { PageContext } from './components.js';
import type { ConsoleDeps } from './deps.js';
import { overview, repository, repositoryList } from './inventory-view.js';
import { materialLineage, materialPlan, modelLineage, runMaterialPlan } from './lineage-view.js';
import { artifactPage } from './pages/artifact.js';
import { auditPage, type AuditFilterText } from './pages/audit.js';
import { historyPage } from './pages/history.js';
import { materialLineagePage, materialResultPage, modelLineagePage, planPage } from './pages/lineage.js';
import { deepReportPage, deletePage, errorPage } from './pages/misc.js';
import { overviewPage } from './pages/overview.js';
import { repositoriesPage, repositoryPage } from './pages/repositories.js';
import { requirePermission, type Viewer } from './viewer.js';

const HISTORY_PAGE = 100;

/**
 * The operator console: one method per page (view model, then HTML) and per action. The
 * HTTP layer (src/http/ui.ts) authenticates the session, checks CSRF and parses input;
 * every permission is asked here, of the viewer, with the API's own rule.
 */
export class Console {
  private readonly chain = new ChainCache();
  constructor(private readonly d: ConsoleDeps) {}

  async overview(ctx: PageContext): Promise<string> {
    return overviewPage(ctx, await overview(this.d, ctx.viewer));
  }

  async repositories(ctx: PageContext, q: string, after: string | undefined): Promise<string> {
    return repositoriesPage(ctx, await repositoryList(this.d, ctx.viewer, q, after));
  }

  async repository(ctx: PageContext, name: string, q: string, after: string | undefined): Promise<string> {
    return repositoryPage(ctx, await repository(this.d, ctx.viewer, name, q, after));
  }

  async artifact(ctx: PageContext, repo: string, reference: Reference): Promise<string> {
    return artifactPage(ctx, await artifact(this.d, ctx.viewer, repo, reference));
  }

  async lineage(ctx: PageContext, repo: string, reference: Reference): Promise<string> {
    return modelLineagePage(ctx, await modelLineage(this.d, ctx.viewer, repo, reference));
  }

  async consumers(ctx: PageContext, material: string): Promise<string> {
    return materialLineagePage(ctx, await materialLineage(this.d, ctx.viewer, material));
  }

  async plan(ctx: PageContext, material: string): Promise<string> {
    return planPage(ctx, await materialPlan(this.d, ctx.viewer, material));
  }

  /** Runs the confirmed plan, or shows the new one when it changed since it was shown. */
  async runPlan(ctx: PageContext, material: string, hash: string, opts: { pin: boolean; reason: string }): Promise<string> {
    const r = await runMaterialPlan(this.d, ctx.viewer, material, hash, opts);
    return 'done' in r ? materialResultPage(ctx, r.done) : planPage(ctx, r.changed, true);
  }

  async history(ctx: PageContext, repo: string, tag: string, before: number | undefined): Promise<string> {
    checkRepoTag(repo, tag);
    requirePermission(ctx.viewer, repo, 'admin'); // as GET /admin/history
    const rows = await this.d.inventory.tagHistoryPage(repo, tag, { before, limit: HISTORY_PAGE + 1 });
    if (rows.length === 0 && before === undefined) throw err('MANIFEST_UNKNOWN', `tag ${repo}:${tag} has no history`);
    const moves = rows.slice(0, HISTORY_PAGE);
    return historyPage(ctx, {
      repository: repo,
      tag,
      current: await this.d.metadata.resolveTag(repo, tag),
      pin: await this.d.metadata.getPin(repo, tag),
      moves,
      older: rows.length > HISTORY_PAGE ? moves[moves.length - 1]!.id : undefined,
    });
  }

  async audit(ctx: PageContext, filter: AuditFilter, text: AuditFilterText, before: number | undefined, fullCheck: boolean): Promise<string> {
    return auditPage(ctx, await auditView(this.d, ctx.viewer, this.chain, filter, before, fullCheck), text);
  }

  auditExport(v: Viewer, filter: AuditFilter): AsyncGenerator<string> {
    return auditExport(this.d, v, filter);
  }

  async confirmDelete(ctx: PageContext, repo: string, digest: Digest): Promise<string> {
    checkRepoTag(repo);
    requirePermission(ctx.viewer, repo, 'delete');
    const record = await this.d.ops.lineage.resolve(repo, { kind: 'digest', digest });
    const tags = await this.d.metadata.tagsOf(repo, record.digest);
    const referrers = (await this.d.metadata.listReferrers(repo, record.digest)).length;
    return deletePage(ctx, { repository: repo, digest: record.digest, tags, referrers });
  }

  async deepVerify(ctx: PageContext, repo: string, digest: Digest): Promise<string> {
    checkRepoTag(repo);
    return deepReportPage(ctx, await actions.deepVerify(this.d, ctx.viewer, repo, { kind: 'digest', digest }));
  }

  /** The actions that end on the page they came from, with a notice. */
  readonly act = {
    pin: (v: Viewer, repo: string, tag: string, digest: Digest | undefined, reason: string) => (checkRepoTag(repo, tag), actions.pin(this.d, v, repo, tag, digest, reason)),
    unpin: (v: Viewer, repo: string, tag: string, reason: string) => (checkRepoTag(repo, tag), actions.unpin(this.d, v, repo, tag, reason)),
    quarantine: (v: Viewer, digest: Digest, reason: string) => actions.quarantine(this.d, v, digest, reason),
    release: (v: Viewer, digest: Digest, reason: string) => actions.release(this.d, v, digest, reason),
    rollback: (v: Viewer, repo: string, tag: string, to: Digest, reason: string) => (checkRepoTag(repo, tag), actions.rollback(this.d, v, repo, tag, to, reason)),
    remove: (v: Viewer, repo: string, digest: Digest, reason: string) => (checkRepoTag(repo), actions.remove(this.d, v, repo, digest, reason)),
  };

  error(ctx: PageContext, status: number, message: string): string {
    return errorPage(ctx, status, message);
  }
}

function checkRepoTag(repo: string, tag?: string): void {
  if (!isValidName(repo)) throw err('NAME_INVALID', `invalid repository name ${JSON.stringify(repo.slice(0, 300))}`);
  if (tag !== undefined && !isValidTag(tag)) throw err('NAME_INVALID', `invalid tag ${JSON.stringify(tag.slice(0, 200))}`);
}
