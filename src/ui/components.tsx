import type { Child } from 'hono/jsx';
import { formatTime, shortDigest } from './format.js';
import type { Viewer } from './viewer.js';

/** What every page of a signed-in viewer needs besides its own view model. */
export interface PageContext {
  readonly viewer: Viewer;
  /** The session's CSRF token, put into every state-changing form. */
  readonly csrf: string;
  /** One line shown above the content (the outcome of the action that led here). */
  readonly notice?: string | undefined;
}

export type BadgeKind = 'allowed' | 'denied' | 'audit' | 'quarantined' | 'pinned' | 'passed' | 'failed' | 'ok' | 'failing' | 'unknown' | 'served' | 'not-served' | 'broken' | 'kind';

export const Badge = (p: { kind: BadgeKind; children: Child; title?: string | undefined }) => (
  <span class={`badge b-${p.kind}`} title={p.title}>
    {p.children}
  </span>
);

/** A digest shown short, whole in its title and copy button; a link when `href` is given. */
export const DigestText = (p: { digest: string | undefined; href?: string | undefined }) => {
  if (!p.digest) return <span class="muted">none</span>;
  const text = <code title={p.digest}>{shortDigest(p.digest)}</code>;
  return (
    <span data-copy={p.digest}>
      {p.href ? (
        <a href={p.href}>{text}</a>
      ) : (
        text
      )}
    </span>
  );
};

export const Time = (p: { at: number | undefined }) => (p.at === undefined ? <span class="muted">never</span> : <time datetime={new Date(p.at).toISOString()}>{formatTime(p.at)}</time>);

export const Csrf = (p: { token: string }) => <input type="hidden" name="csrf" value={p.token} />;

/** A POST form carrying the CSRF token; `fields` become hidden inputs. */
export const ActionForm = (p: { action: string; csrf: string; fields: Record<string, string | undefined>; children: Child; class?: string }) => (
  <form method="post" action={p.action} class={p.class ?? 'inline'}>
    <Csrf token={p.csrf} />
    {Object.entries(p.fields).map(([k, v]) => (v === undefined ? null : <input type="hidden" name={k} value={v} />))}
    {p.children}
  </form>
);

/** A required reason field: every operator action records why. */
export const ReasonInput = (p: { id: string; label?: string }) => (
  <>
    <label for={p.id}>{p.label ?? 'Reason'}</label>
    <input id={p.id} name="reason" required maxlength={2000} size={28} placeholder="INC-1234: why" />
  </>
);

export const Notice = (p: { text: string | undefined }) => (p.text ? <p class="notice" role="status">{p.text}</p> : null);

/** Verdict badge for a tag or an artifact: quarantine first, then the gate's decision. */
export function VerdictBadge(p: { quarantined: boolean; verdict: { allowed: boolean; wouldDeny: boolean; findings: readonly { ok: boolean; reason: string }[] } | undefined }) {
  if (p.quarantined) return <Badge kind="quarantined">quarantined</Badge>;
  const v = p.verdict;
  if (!v) return <Badge kind="unknown">not checked</Badge>;
  const failed = v.findings.filter((f) => !f.ok).map((f) => f.reason).join('; ');
  if (!v.allowed) return <Badge kind="denied" title={failed}>denied</Badge>;
  if (v.wouldDeny) return <Badge kind="audit" title={failed}>audit findings</Badge>;
  return <Badge kind="allowed">allowed</Badge>;
}

export const Pager = (p: { next?: string | undefined; first?: string | undefined; label?: string }) =>
  p.next || p.first ? (
    <nav class="pager" aria-label={p.label ?? 'pages'}>
      {p.first ? <a href={p.first}>First page</a> : null}
      {p.next ? <a href={p.next}>Next page</a> : null}
    </nav>
  ) : null;

/** A table's header row; `num` columns are right-aligned like their cells. */
export const TableHead = (p: { cols: readonly string[]; num?: readonly string[] }) => (
  <thead>
    <tr>
      {p.cols.map((c) => (
        <th scope="col" class={p.num?.includes(c) ? 'num' : undefined}>
          {c}
        </th>
      ))}
    </tr>
  </thead>
);
