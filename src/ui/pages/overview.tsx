import { Badge, DigestText, Time, type PageContext, TableHead } from '../components.js';
import { href, materialHref } from '../format.js';
import type { OverviewView } from '../inventory-view.js';
import { Layout, toHtml } from '../layout.js';
import type { PolicyView } from '../policy-view.js';

export function overviewPage(ctx: PageContext, v: OverviewView): string {
  const a = v.admin;
  return toHtml(
    <Layout title="Overview" ctx={ctx}>
      <h1>Overview</h1>
      <ul class="cards" aria-label="counts">
        <li>
          <span class="n">{v.repositories}</span> <a href={href('repositories')}>repositories</a>
        </li>
        {v.artifacts !== undefined ? (
          <li>
            <span class="n">{v.artifacts}</span> artifacts
          </li>
        ) : null}
        {v.referrers !== undefined ? (
          <li>
            <span class="n">{v.referrers}</span> referrers (signatures, SBOMs, attestations)
          </li>
        ) : null}
        <li>
          <span class="n">{v.tags}</span> tags
        </li>
        {a ? (
          <li>
            <span class="n">{a.deniedLastDay}</span> <a href={href('audit', { action: 'deny', target: '/v2/', since: '24h' })}>denied pulls in the last 24 h</a>
          </li>
        ) : null}
        {a ? (
          <li>
            <span class="n">{a.quarantinedCount}</span> quarantined digests
          </li>
        ) : null}
      </ul>
      {a ? (
        <>
          <h2>Quarantined digests</h2>
          {a.quarantined.length === 0 ? (
            <p class="muted">Nothing is quarantined.</p>
          ) : (
            <table>
              <caption class="muted">The newest {a.quarantined.length} of {a.quarantinedCount}</caption>
              <TableHead cols={['Digest', 'By', 'Reason', 'When']} />
              <tbody>
                {a.quarantined.map((q) => (
                  <tr>
                    <td>
                      <DigestText digest={q.digest} href={materialHref(q.digest)} />
                    </td>
                    <td>{q.actor}</td>
                    <td class="wrap">{q.reason ?? ''}</td>
                    <td>
                      <Time at={q.at} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h2>Upstreams</h2>
          {a.upstreams.length === 0 ? (
            <p class="muted">No upstream is configured (no pull-through).</p>
          ) : (
            <table>
              <TableHead cols={['Name', 'URL', 'Health', 'Last success', 'Last error']} />
              <tbody>
                {a.upstreams.map((u) => (
                  <tr>
                    <td>{u.name}</td>
                    <td class="mono">{u.url}</td>
                    <td>
                      <Badge kind={u.state === 'ok' ? 'ok' : u.state === 'failing' ? 'failing' : 'unknown'}>{u.state === 'unknown' ? 'no request yet' : u.state}</Badge>
                    </td>
                    <td>
                      <Time at={u.lastOkAt} />
                    </td>
                    <td class="wrap">
                      {u.lastErrorAt !== undefined ? (
                        <>
                          <Time at={u.lastErrorAt} />: {u.lastError}
                        </>
                      ) : (
                        <span class="muted">none</span>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <PolicySection policy={a.policy} />
        </>
      ) : (
        <p class="muted">Quarantine, upstreams, denied pulls and the policy are shown to principals with the admin permission on every repository.</p>
      )}
    </Layout>,
  );
}

function PolicySection(p: { policy: PolicyView }) {
  const pv = p.policy;
  return (
    <>
      <h2>Policy as loaded</h2>
      <dl class="facts">
        <dt>Repositories no rule matches</dt>
        <dd>{pv.default}</dd>
        <dt>Mode override (--gate)</dt>
        <dd>{pv.modeOverride ?? 'none'}</dd>
        <dt>Policy hash</dt>
        <dd class="mono">{pv.policyHash}</dd>
        <dt>Trust material hash</dt>
        <dd class="mono">{pv.trustHash}</dd>
      </dl>
      <table>
        <TableHead cols={['Rule', 'Matches', 'Mode', 'Requires', 'Trusted signers']} />
        <tbody>
          {pv.rules.map((r) => (
            <tr>
              <td>{r.name}</td>
              <td class="mono">{r.match.join(', ')}</td>
              <td>
                <Badge kind={r.mode === 'enforce' ? 'allowed' : r.mode === 'audit' ? 'audit' : 'denied'}>{r.mode}</Badge>
              </td>
              <td>
                <ul>
                  {r.requirements.map((x) => (
                    <li>{x}</li>
                  ))}
                </ul>
              </td>
              <td>
                {r.authorities.map((au) => (
                  <div>
                    <strong>{au.label}</strong> ({au.kind})
                    <ul>
                      {au.keys.length === 0 && au.kind === 'keys' ? <li class="muted">no key loaded</li> : null}
                      {au.keys.map((k) => (
                        <li>
                          <code>sha256:{k.fingerprint}</code> <span class="muted">from {k.source}</span>
                        </li>
                      ))}
                      {au.details.map((x) => (
                        <li>{x}</li>
                      ))}
                    </ul>
                  </div>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

