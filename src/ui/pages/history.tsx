import type { HistoryEntry, PinRecord } from '../../storage/index.js';
import { ActionForm, Badge, DigestText, Pager, ReasonInput, Time, type PageContext, TableHead } from '../components.js';
import { artifactHref, href, repositoryHref } from '../format.js';
import { Layout, toHtml } from '../layout.js';

export interface HistoryView {
  readonly repository: string;
  readonly tag: string;
  readonly current: string | undefined;
  readonly pin: PinRecord | undefined;
  readonly moves: readonly HistoryEntry[];
  /** `before` of the next (older) page. */
  readonly older: number | undefined;
}

export function historyPage(ctx: PageContext, h: HistoryView): string {
  return toHtml(
    <Layout title={`History of ${h.repository}:${h.tag}`} ctx={ctx}>
      <h1>
        History of <a href={repositoryHref(h.repository)}>{h.repository}</a>:<span class="mono">{h.tag}</span>
      </h1>
      <p>
        Now at <DigestText digest={h.current} href={h.current ? artifactHref(h.repository, h.current) : undefined} />{' '}
        {h.pin ? <Badge kind="pinned" title={h.pin.reason}>{`pinned by ${h.pin.actor}`}</Badge> : null}
      </p>
      {h.pin ? (
        <ActionForm action="/ui/unpin" csrf={ctx.csrf} fields={{ repository: h.repository, tag: h.tag, back: 'history' }}>
          <ReasonInput id="unpin-reason" label="Unpin, reason" />
          <button type="submit">Unpin</button>
        </ActionForm>
      ) : null}
      <table>
        <TableHead cols={['When', 'From', 'To', 'By', 'Reason', 'Roll back to here']} />
        <tbody>
          {h.moves.map((m) => (
            <tr>
              <td>
                <Time at={m.at} />
              </td>
              <td>
                <DigestText digest={m.from} href={m.from ? artifactHref(h.repository, m.from) : undefined} />
              </td>
              <td>
                <DigestText digest={m.to} href={m.to ? artifactHref(h.repository, m.to) : undefined} />
              </td>
              <td>{m.actor}</td>
              <td class="wrap">{m.reason ?? ''}</td>
              <td>
                {m.to && m.to !== h.current ? (
                  <ActionForm action="/ui/rollback" csrf={ctx.csrf} fields={{ repository: h.repository, tag: h.tag, to: m.to }}>
                    <ReasonInput id={`rb-${m.id}`} />
                    <button type="submit">Roll back to here</button>
                  </ActionForm>
                ) : m.to ? (
                  <span class="muted">current</span>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Pager next={h.older !== undefined ? href('history', { repository: h.repository, tag: h.tag, before: h.older }) : undefined} label="older moves" />
    </Layout>,
  );
}
