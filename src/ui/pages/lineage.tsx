import type { MaterialQuarantineResult } from '../../ops/index.js';
import { ActionForm, Badge, DigestText, ReasonInput, Time, type PageContext, TableHead } from '../components.js';
import { artifactHref, href, materialHref, repositoryHref, ranText } from '../format.js';
import { GraphSvg } from '../graph.js';
import { Layout, toHtml } from '../layout.js';
import { MaterialsTable } from './evidence.js';
import type { MaterialLineageView, ModelLineageView, PlanView } from '../lineage-view.js';

export function modelLineagePage(ctx: PageContext, l: ModelLineageView): string {
  return toHtml(
    <Layout title={`Lineage of ${l.repository}@${l.digest}`} ctx={ctx}>
      <h1>
        Lineage of <a href={artifactHref(l.repository, l.digest)}>{l.repository}</a>@<span class="mono">{l.digest}</span>
      </h1>
      <p>
        {l.quarantined ? <Badge kind="quarantined">quarantined</Badge> : l.verdict.allowed ? <Badge kind="allowed">allowed</Badge> : <Badge kind="denied">denied</Badge>} Serving tags:{' '}
        {l.tags.length ? l.tags.map((t) => <code>{t} </code>) : <span class="muted">none</span>}
      </p>
      <GraphSvg graph={l.graph} id="lineage" />
      <h2>Built from</h2>
      {l.materials.length === 0 ? <p class="muted">No provenance names any material.</p> : null}
      {l.materials.length ? <MaterialsTable materials={l.materials} /> : null}
      <h2>Provenance</h2>
      {l.provenance.length === 0 ? <p class="muted">No provenance attestation is stored for it.</p> : null}
      {l.provenance.map((p) => (
        <dl class="facts">
          <dt>Attestation</dt>
          <dd>
            <DigestText digest={p.referrer} href={artifactHref(l.repository, p.referrer)} /> <span class="mono">{p.predicateType}</span>
          </dd>
          <dt>Builder</dt>
          <dd class="mono">{p.builderId ?? 'not stated'}</dd>
          <dt>Ran</dt>
          <dd>{ranText(p.startedOn, p.finishedOn)}</dd>
          <dt>Signers (claimed)</dt>
          <dd class="mono">{p.signers.join(', ') || 'none'}</dd>
        </dl>
      ))}
      {l.unverifiedProvenance.length ? (
        <>
          <h2>Unverified provenance (not lineage)</h2>
          <p class="muted">Attached without a signature that verifies under the trust policy: shown, never used for lineage or quarantine.</p>
          <table>
            <TableHead cols={['Attestation', 'Why unverified', 'Names']} />
            <tbody>
              {l.unverifiedProvenance.map((p) => (
                <tr>
                  <td>
                    <Badge kind="denied">unverified</Badge> <DigestText digest={p.referrer} href={artifactHref(l.repository, p.referrer)} />
                  </td>
                  <td class="wrap">{p.verification}</td>
                  <td class="wrap mono">{p.materials.map((m) => Object.entries(m.digest).map(([a, v]) => `${a}:${v}`).join(' ')).join(', ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
      {l.pastTags.length ? (
        <>
          <h2>Tags that served it before</h2>
          <table>
            <TableHead cols={['Tag', 'Moved to', 'By', 'Reason', 'When']} />
            <tbody>
              {l.pastTags.map((t) => (
                <tr>
                  <td>{t.tag}</td>
                  <td>
                    <DigestText digest={t.to} href={t.to ? artifactHref(l.repository, t.to) : undefined} />
                  </td>
                  <td>{t.actor}</td>
                  <td class="wrap">{t.reason ?? ''}</td>
                  <td>
                    <Time at={t.at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </Layout>,
  );
}

export function materialLineagePage(ctx: PageContext, l: MaterialLineageView): string {
  return toHtml(
    <Layout title={`Built from ${l.material}`} ctx={ctx}>
      <h1>
        Built from <span class="mono">{l.material}</span>
      </h1>
      {l.storedIn.length ? (
        <p>
          Stored here in:{' '}
          {l.storedIn.map((r) => (
            <a href={artifactHref(r, l.material)}>{r} </a>
          ))}
        </p>
      ) : (
        <p class="muted">customs does not store this material as an artifact.</p>
      )}
      <p>
        {l.consumers.length} artifact(s) name it in their provenance, directly or through another artifact; {l.consumers.reduce((n, c) => n + c.tags.length, 0)} tag(s) serve them.
        {l.hidden ? ` ${l.hidden} more are in repositories you may not see.` : ''}
      </p>
      {l.consumers.length || l.storedIn.length ? (
        <p>
          <a class="button danger" href={href('quarantine/plan', { material: l.material })}>
            Quarantine this material and roll back every affected tag…
          </a>
        </p>
      ) : null}
      <GraphSvg graph={l.graph} id="consumers" />
      {l.consumers.length ? (
        <table>
          <TableHead cols={['Repository', 'Artifact', 'Through', 'Role', 'Depth', 'Serving tags']} num={['Depth']} />
          <tbody>
            {l.consumers.map((c) => (
              <tr>
                <td>
                  <a href={repositoryHref(c.repository)}>{c.repository}</a>
                </td>
                <td>
                  <DigestText digest={c.digest} href={artifactHref(c.repository, c.digest)} />
                </td>
                <td>
                  <DigestText digest={c.via} href={materialHref(c.via)} />
                </td>
                <td>{c.role ?? ''}</td>
                <td class="num">{c.depth}</td>
                <td>{c.tags.length ? c.tags.map((t) => <code>{t} </code>) : <span class="muted">none</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {l.unverified.length ? (
        <>
          <h2>Named only by unverified provenance (not acted on)</h2>
          <table>
            <TableHead cols={['Repository', 'Artifact', 'Unverified attestation']} />
            <tbody>
              {l.unverified.map((c) => (
                <tr>
                  <td>
                    <a href={repositoryHref(c.repository)}>{c.repository}</a>
                  </td>
                  <td>
                    <DigestText digest={c.digest} href={artifactHref(c.repository, c.digest)} />
                  </td>
                  <td>
                    <Badge kind="denied">unverified</Badge> <DigestText digest={c.referrer} href={artifactHref(c.repository, c.referrer)} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </Layout>,
  );
}

export function planPage(ctx: PageContext, p: PlanView, changed = false): string {
  const { plan } = p;
  return toHtml(
    <Layout title={`Plan: quarantine ${plan.material}`} ctx={ctx}>
      <h1>
        Quarantine <span class="mono">{plan.material}</span> and roll back
      </h1>
      {changed ? (
        <p class="warn" role="alert">
          The plan changed since you saw it (something was pushed, moved or quarantined meanwhile). Nothing was done; review the new plan.
        </p>
      ) : null}
      <h2>These digests will be quarantined (refused everywhere)</h2>
      <table>
        <TableHead cols={['Digest', 'Repository', 'Why', 'State']} />
        <tbody>
          {plan.quarantine.map((q) => (
            <tr>
              <td>
                <DigestText digest={q.digest} href={q.repository ? artifactHref(q.repository, q.digest) : undefined} />
              </td>
              <td>{q.repository ?? ''}</td>
              <td class="wrap">{q.note}</td>
              <td>{q.already ? <Badge kind="quarantined">already quarantined</Badge> : 'will be quarantined'}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>These tags will move</h2>
      {plan.rollbacks.length === 0 ? <p class="muted">No tag serves an affected digest.</p> : null}
      {plan.rollbacks.length ? (
        <table>
          <TableHead cols={['Tag', 'From', 'To', 'Note']} />
          <tbody>
            {plan.rollbacks.map((r) => (
              <tr>
                <td class="mono">
                  {r.repository}:{r.tag}
                </td>
                <td>
                  <DigestText digest={r.from} href={artifactHref(r.repository, r.from)} />
                </td>
                <td>{r.to ? <DigestText digest={r.to} href={artifactHref(r.repository, r.to)} /> : <Badge kind="denied">no good version: stays, denied</Badge>}</td>
                <td class="wrap">{r.note}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <ActionForm action="/ui/quarantine/material" csrf={ctx.csrf} fields={{ material: plan.material, plan: p.hash }} class="stack">
        <ReasonInput id="material-reason" />
        <label for="pin">
          <span>
            <input id="pin" type="checkbox" name="pin" value="1" checked /> Pin the rolled-back tags (so CI cannot push over them)
          </span>
        </label>
        <button type="submit" class="danger">
          Quarantine and roll back
        </button>
      </ActionForm>
    </Layout>,
  );
}

export function materialResultPage(ctx: PageContext, r: MaterialQuarantineResult): string {
  return toHtml(
    <Layout title={`Quarantined ${r.material}`} ctx={ctx}>
      <h1>
        Quarantined <span class="mono">{r.material}</span>
      </h1>
      <p class="notice" role="status">
        {r.affected} digest(s) quarantined; {r.actions.filter((a) => a.action === 'rollback').length} tag(s) rolled back.
      </p>
      <table>
        <TableHead cols={['Action', 'Repository', 'Tag', 'Digest', 'Now at', 'Note']} />
        <tbody>
          {r.actions.map((a) => (
            <tr>
              <td>{a.action}</td>
              <td>{a.repository ?? ''}</td>
              <td>{a.tag ?? ''}</td>
              <td>
                <DigestText digest={a.digest} />
              </td>
              <td>{a.to ? <DigestText digest={a.to} href={a.repository ? artifactHref(a.repository, a.to) : undefined} /> : ''}</td>
              <td class="wrap">{a.note}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p>
        <a href={materialHref(r.material)}>Back to the lineage of {r.material}</a> · <a href={href('audit')}>Audit log</a>
      </p>
    </Layout>,
  );
}
