import { Badge, DigestText, Pager, Time, VerdictBadge, type PageContext, TableHead } from '../components.js';
import { artifactHref, formatSize, historyHref, href, repositoryHref } from '../format.js';
import type { RepositoryListView, RepositoryView } from '../inventory-view.js';
import { Layout, toHtml } from '../layout.js';

export function repositoriesPage(ctx: PageContext, v: RepositoryListView): string {
  return toHtml(
    <Layout title="Repositories" ctx={ctx}>
      <h1>Repositories</h1>
      <form method="get" action="/ui/repositories" class="filters" role="search">
        <label for="q">
          Name contains
          <input id="q" name="q" value={v.query} maxlength={255} />
        </label>
        <button type="submit">Search</button>
      </form>
      {v.rows.length === 0 ? (
        <p class="muted">No repository{v.query ? ` contains “${v.query}”` : ''} that you may see.</p>
      ) : (
        <table>
          <TableHead cols={['Repository', 'Tags', 'Last tag move']} num={['Tags']} />
          <tbody>
            {v.rows.map((r) => (
              <tr>
                <td>
                  <a href={repositoryHref(r.name)}>{r.name}</a>
                </td>
                <td class="num">{r.tags}</td>
                <td>
                  <Time at={r.updatedAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager next={v.next ? href('repositories', { q: v.query, after: v.next }) : undefined} first={v.after ? href('repositories', { q: v.query }) : undefined} />
    </Layout>,
  );
}

export function repositoryPage(ctx: PageContext, v: RepositoryView): string {
  return toHtml(
    <Layout title={v.name} ctx={ctx}>
      <h1>{v.name}</h1>
      <form method="get" action="/ui/repository" class="filters" role="search">
        <input type="hidden" name="name" value={v.name} />
        <label for="q">
          Tag contains
          <input id="q" name="q" value={v.query} maxlength={128} />
        </label>
        <button type="submit">Filter</button>
      </form>
      {v.rows.length === 0 ? (
        <p class="muted">No tags{v.query ? ` containing “${v.query}”` : ''}.</p>
      ) : (
        <table>
          <TableHead cols={['Tag', 'Digest', 'Type', 'Size', 'Pushed', 'Pinned', 'Verdict', ...(v.mayAdmin ? ['History'] : [])]} num={['Size']} />
          <tbody>
            {v.rows.map((t) => (
              <tr>
                <td>
                  <a href={artifactHref(v.name, t.tag)}>{t.tag}</a>
                </td>
                <td>
                  <DigestText digest={t.digest} href={artifactHref(v.name, t.digest)} />
                </td>
                <td class="mono">
                  {t.artifactType ?? t.mediaType}
                  {t.subject ? <span class="muted"> (referrer)</span> : null}
                </td>
                <td class="num">{formatSize(t.totalSize)}</td>
                <td>
                  <Time at={t.updatedAt} />
                </td>
                <td>{t.pin ? <Badge kind="pinned" title={`by ${t.pin.actor}${t.pin.reason ? `: ${t.pin.reason}` : ''}`}>pinned</Badge> : <span class="muted">no</span>}</td>
                <td>
                  <VerdictBadge quarantined={t.quarantined} verdict={t.verdict} />
                </td>
                {v.mayAdmin ? (
                  <td>
                    <a href={historyHref(v.name, t.tag)} aria-label={`history of ${t.tag}`}>
                      history
                    </a>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager next={v.next ? href('repository', { name: v.name, q: v.query, after: v.next }) : undefined} first={v.after ? href('repository', { name: v.name, q: v.query }) : undefined} />
    </Layout>,
  );
}
