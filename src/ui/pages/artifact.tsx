import type { ArtifactView } from '../artifact-view.js';
import { ActionForm, Badge, DigestText, ReasonInput, Time, VerdictBadge, type PageContext, TableHead } from '../components.js';
import { artifactHref, formatSize, historyHref, href, lineageHref, materialHref, repositoryHref } from '../format.js';
import { Layout, toHtml } from '../layout.js';
import { EvidenceTree } from './evidence.js';

export function artifactPage(ctx: PageContext, a: ArtifactView): string {
  const v = a.verdict;
  return toHtml(
    <Layout title={`${a.repository}@${a.digest}`} ctx={ctx}>
      <p class="muted">
        <a href={repositoryHref(a.repository)}>{a.repository}</a> / {a.asked}
      </p>
      <h1>
        {a.repository}@<span class="mono">{a.digest}</span>
      </h1>
      <div class="layout-2">
        <div>
          <dl class="facts">
            <dt>Verdict</dt>
            <dd>
              <VerdictBadge quarantined={a.quarantine !== undefined} verdict={v} /> {a.served.served ? 'served over /v2/' : `not served: ${a.served.reason ?? ''}`}
            </dd>
            <dt>Digest</dt>
            <dd>
              <code data-copy={a.digest}>{a.digest}</code>
            </dd>
            <dt>Media type</dt>
            <dd class="mono">{a.mediaType}</dd>
            <dt>Artifact type</dt>
            <dd class="mono">{a.artifactType ?? 'none'}</dd>
            <dt>Size</dt>
            <dd>
              {formatSize(a.totalSize)} <span class="muted">(manifest {a.size} B)</span>
            </dd>
            <dt>Stored</dt>
            <dd>
              <Time at={a.createdAt} />
            </dd>
            {a.subject ? (
              <>
                <dt>Subject</dt>
                <dd>
                  <DigestText digest={a.subject} href={artifactHref(a.repository, a.subject)} />
                </dd>
              </>
            ) : null}
            <dt>Tags</dt>
            <dd>
              {a.tags.length === 0 ? <span class="muted">none</span> : null}
              {a.tags.map((t) => {
                const pin = a.pins.find((p) => p.tag === t);
                return (
                  <div>
                    <span class="mono">{t}</span> {pin ? <Badge kind="pinned" title={`by ${pin.actor}${pin.reason ? `: ${pin.reason}` : ''}`}>pinned</Badge> : null}{' '}
                    {a.may.admin ? <a href={historyHref(a.repository, t)}>history</a> : null}
                  </div>
                );
              })}
            </dd>
            {a.quarantine ? (
              <>
                <dt>Quarantined</dt>
                <dd>
                  by {a.quarantine.actor} at <Time at={a.quarantine.at} />: {a.quarantine.reason ?? ''}
                </dd>
              </>
            ) : null}
          </dl>
          <h2>The gate's findings</h2>
          <p>
            Rule <strong>{v.rule}</strong>, mode <strong>{v.mode}</strong>, checked {v.checkedAt}
            {v.wouldDeny && v.allowed ? ' (audit mode: would be denied under enforce)' : ''}.
          </p>
          <table>
            <TableHead cols={['Rule', 'Check', 'Result', 'Why']} />
            <tbody>
              {v.findings.map((f) => (
                <tr>
                  <td>{f.rule}</td>
                  <td>{f.check}</td>
                  <td>{f.ok ? <Badge kind="passed">passed</Badge> : <Badge kind="failed">failed</Badge>}</td>
                  <td class="wrap">{f.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <Actions ctx={ctx} a={a} />
      </div>
      <h2>Files and layers</h2>
      {!a.contentShown ? <p class="muted">Not shown: the gate does not serve this artifact, and you do not have the admin permission here.</p> : null}
      {a.contentShown && a.layers.length === 0 && a.manifests.length === 0 ? <p class="muted">No layers.</p> : null}
      {a.layers.length ? (
        <table>
          <TableHead cols={['File', 'Media type', 'Size', 'Digest']} num={['Size']} />
          <tbody>
            {a.layers.map((l) => (
              <tr>
                <td class="mono">{l.file ?? ''}</td>
                <td class="mono">{l.mediaType}</td>
                <td class="num">{formatSize(l.size)}</td>
                <td>
                  <DigestText digest={l.digest} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {a.manifests.length ? (
        <table>
          <caption class="muted">Manifests of this index</caption>
          <TableHead cols={['Digest', 'Media type', 'Platform']} />
          <tbody>
            {a.manifests.map((m) => (
              <tr>
                <td>
                  <DigestText digest={m.digest} href={artifactHref(a.repository, m.digest)} />
                </td>
                <td class="mono">{m.mediaType}</td>
                <td>{m.platform ? `${m.platform.os}/${m.platform.architecture}` : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <h2>Referrers</h2>
      <EvidenceTree repository={a.repository} nodes={a.evidence} />
      {a.annotations.length ? (
        <>
          <h2>Annotations</h2>
          <table>
            <TableHead cols={['Key', 'Value']} />
            <tbody>
              {a.annotations.map(([k, val]) => (
                <tr>
                  <td class="mono">{k}</td>
                  <td>{val}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
      {a.manifestJson !== undefined ? (
        <>
          <h2>Manifest</h2>
          <pre tabindex={0} aria-label="manifest JSON">
            <code>{a.manifestJson}</code>
          </pre>
        </>
      ) : null}
    </Layout>,
  );
}

function Actions(p: { ctx: PageContext; a: ArtifactView }) {
  const { a, ctx } = p;
  const any = a.may.admin || a.may.quarantine || a.may.delete;
  return (
    <aside class="actions" aria-label="actions">
      <h2>Actions</h2>
      {!any ? <p class="muted">Your token may only read this repository.</p> : null}
      {a.may.admin
        ? a.tags.map((t) =>
            a.pins.some((x) => x.tag === t) ? (
              <ActionForm action="/ui/unpin" csrf={ctx.csrf} fields={{ repository: a.repository, tag: t, back: a.digest }}>
                <ReasonInput id={`unpin-${t}`} label={`Unpin ${t}, reason`} />
                <button type="submit">Unpin {t}</button>
              </ActionForm>
            ) : (
              <ActionForm action="/ui/pin" csrf={ctx.csrf} fields={{ repository: a.repository, tag: t, digest: a.digest, back: a.digest }}>
                <ReasonInput id={`pin-${t}`} label={`Pin ${t}, reason`} />
                <button type="submit">Pin {t}</button>
              </ActionForm>
            ),
          )
        : null}
      {a.may.quarantine ? (
        a.quarantine ? (
          <ActionForm action="/ui/release" csrf={ctx.csrf} fields={{ digest: a.digest, repository: a.repository }}>
            <ReasonInput id="release-reason" label="Release, reason" />
            <button type="submit">Release from quarantine</button>
          </ActionForm>
        ) : (
          <ActionForm action="/ui/quarantine" csrf={ctx.csrf} fields={{ digest: a.digest, repository: a.repository }}>
            <ReasonInput id="quarantine-reason" label="Quarantine, reason" />
            <button type="submit" class="danger">
              Quarantine
            </button>
          </ActionForm>
        )
      ) : null}
      {a.may.admin ? (
        <ActionForm action="/ui/verify" csrf={ctx.csrf} fields={{ repository: a.repository, digest: a.digest }}>
          <button type="submit" class="secondary">
            Re-verify deep
          </button>
        </ActionForm>
      ) : null}
      {a.may.delete ? (
        <p>
          <a class="button danger" href={href('delete', { repository: a.repository, digest: a.digest })}>
            Delete…
          </a>
        </p>
      ) : null}
      {a.may.admin ? (
        <p>
          <a href={lineageHref(a.repository, a.digest)}>Lineage: what it was built from</a>
        </p>
      ) : null}
      {a.may.quarantine ? (
        <p>
          <a href={materialHref(a.digest)}>What was built from it</a>
        </p>
      ) : null}
    </aside>
  );
}
