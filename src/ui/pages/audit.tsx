import type { AuditPageView } from '../audit-view.js';
import { Badge, DigestText, Time, type PageContext, TableHead } from '../components.js';
import { clip, formatTime, href } from '../format.js';
import { Layout, toHtml } from '../layout.js';

/** The filter as given (text), for the form and for links to other pages of the same filter. */
export interface AuditFilterText {
  readonly since: string;
  readonly until: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
}

export function auditPage(ctx: PageContext, v: AuditPageView, f: AuditFilterText): string {
  const c = v.chain;
  const query = { since: f.since, until: f.until, actor: f.actor, action: f.action, target: f.target };
  const contiguous = !f.actor && !f.action && !f.target;
  return toHtml(
    <Layout title="Audit log" ctx={ctx}>
      <h1>Audit log</h1>
      <section aria-labelledby="chain-h">
        <h2 id="chain-h">Hash chain</h2>
        <p role="status" id="chain-state">
          {c.ok === undefined ? (
            <>
              <Badge kind="unknown">checking</Badge> Walking the chain from its first entry: {c.walking?.checked ?? 0} entries checked so far. <a href="/ui/audit">Reload</a> for the result.
            </>
          ) : c.ok ? (
            <>
              <Badge kind="ok">intact</Badge> Verified up to entry {c.verifiedTo}
              {c.head ? ` (head ${c.head.seq}:${c.head.hash})` : ''}.
            </>
          ) : (
            <>
              <Badge kind="broken">broken</Badge> First broken entry: {c.firstProblem?.seq ?? '?'}: {c.firstProblem?.problem ?? ''}. Entries 1 to {c.verifiedTo} verify.
            </>
          )}
        </p>
        <p class="muted">
          Last full walk from the first entry: {c.fullAt !== undefined ? formatTime(c.fullAt) : 'none finished yet'}; entries added since are checked on every view ({formatTime(c.checkedAt)}).
          {c.walking && c.ok !== undefined ? ` A new full walk is running: ${c.walking.checked} entries checked so far.` : ''}
        </p>
        <form method="get" action="/ui/audit" class="inline">
          <input type="hidden" name="verify" value="1" />
          <button type="submit" class="secondary">
            Verify the whole chain now
          </button>
        </form>
      </section>
      <h2>Entries</h2>
      <form method="get" action="/ui/audit" class="filters" role="search">
        <label for="since">
          Since (24h, 7d or UTC time)
          <input id="since" name="since" value={f.since} size={20} />
        </label>
        <label for="until">
          Until
          <input id="until" name="until" value={f.until} size={20} />
        </label>
        <label for="actor">
          Actor contains
          <input id="actor" name="actor" value={f.actor} size={16} />
        </label>
        <label for="action">
          Action
          <input id="action" name="action" value={f.action} size={16} list="actions" />
        </label>
        <datalist id="actions">
          {['push', 'delete', 'tag.delete', 'tag.move', 'rollback', 'pin', 'unpin', 'quarantine', 'release', 'deny', 'auth.failure', 'verify.deep', 'gc', 'ui.signin', 'ui.signout'].map((a) => (
            <option value={a} />
          ))}
        </datalist>
        <label for="target">
          Target or repository contains
          <input id="target" name="target" value={f.target} size={24} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <p>
        <a href={href('audit/export', query)} download="audit.jsonl">
          Export these entries as JSON lines
        </a>{' '}
        <span class="muted">
          {contiguous ? '(a contiguous slice of the chain: customs audit verify --file checks it)' : '(filtered by actor, action or target: not a contiguous chain)'}
        </span>
      </p>
      <table>
        <TableHead cols={['#', 'When', 'Actor', 'Action', 'Target', 'Reason', 'Detail']} num={['#']} />
        <tbody>
          {v.entries.map((e) => (
            <tr>
              <td class="num">{e.seq}</td>
              <td>
                <Time at={e.at} />
              </td>
              <td class="nowrap">{e.actor}</td>
              <td class="nowrap">{e.action}</td>
              <td class="mono">{/^sha(256|512):[a-f0-9]+$/.test(e.target ?? '') ? <DigestText digest={e.target} /> : (e.target ?? e.repository ?? '')}</td>
              <td class="wrap">{e.reason ?? ''}</td>
              <td class="wrap">
                {e.detail ? (
                  <details>
                    <summary class="mono">{clip(JSON.stringify(e.detail), 48)}</summary>
                    <pre>{JSON.stringify(e.detail, null, 2)}</pre>
                  </details>
                ) : (
                  ''
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {v.entries.length === 0 ? <p class="muted">No entry matches.</p> : null}
      {v.older !== undefined ? (
        <nav class="pager" aria-label="older entries">
          <a href={href('audit', { ...query, before: v.older })}>Older entries</a>
        </nav>
      ) : null}
    </Layout>,
  );
}

