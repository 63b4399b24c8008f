import type { DeepReport } from '../../ops/index.js';
import { ActionForm, Badge, DigestText, ReasonInput, type PageContext, TableHead } from '../components.js';
import { artifactHref } from '../format.js';
import { Layout, toHtml } from '../layout.js';

export function deletePage(ctx: PageContext, p: { repository: string; digest: string; tags: readonly string[]; referrers: number }): string {
  return toHtml(
    <Layout title={`Delete ${p.repository}@${p.digest}`} ctx={ctx}>
      <h1>
        Delete {p.repository}@<span class="mono">{p.digest}</span>?
      </h1>
      <p class="warn">
        This removes the manifest from {p.repository} and {p.tags.length ? `the tag(s) ${p.tags.join(', ')} that point at it` : 'no tag (none points at it)'}. {p.referrers} referrer(s) stay
        until garbage collection. Blobs other artifacts share are kept. The deletion is recorded in the audit log under your name.
      </p>
      <ActionForm action="/ui/delete" csrf={ctx.csrf} fields={{ repository: p.repository, digest: p.digest }} class="stack">
        <ReasonInput id="delete-reason" />
        <button type="submit" class="danger">
          Delete it
        </button>
      </ActionForm>
      <p>
        <a href={artifactHref(p.repository, p.digest)}>Cancel</a>
      </p>
    </Layout>,
  );
}

export function deepReportPage(ctx: PageContext, r: DeepReport): string {
  return toHtml(
    <Layout title={`Deep verification of ${r.repository}@${r.digest}`} ctx={ctx}>
      <h1>
        Deep verification of {r.repository}@<span class="mono">{r.digest}</span>
      </h1>
      <p class={r.ok ? 'notice' : 'error'} role="status">
        {r.ok ? 'Every check passed.' : `${r.checks.filter((c) => !c.ok).length} check(s) failed.`}
      </p>
      <table>
        <TableHead cols={['Check', 'Digest', 'Result', 'Detail']} />
        <tbody>
          {r.checks.map((c) => (
            <tr>
              <td>{c.kind}</td>
              <td>
                <DigestText digest={c.digest} />
              </td>
              <td>{c.ok ? <Badge kind="passed">ok</Badge> : <Badge kind="failed">failed</Badge>}</td>
              <td class="wrap">{c.detail}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p>
        <a href={artifactHref(r.repository, r.digest)}>Back to the artifact</a>
      </p>
    </Layout>,
  );
}

/** A refusal or failure for a signed-in viewer: the status and the registry's message. */
export function errorPage(ctx: PageContext, status: number, message: string): string {
  const title = status === 403 ? 'Not permitted' : status === 404 ? 'Not found' : status === 400 ? 'Bad request' : 'Something went wrong';
  return toHtml(
    <Layout title={title} ctx={ctx}>
      <h1>{title}</h1>
      <p class="error" role="alert">
        {message}
      </p>
    </Layout>,
  );
}
