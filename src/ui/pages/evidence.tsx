import { Badge, DigestText, TableHead } from '../components.js';
import type { EvidenceNode, MaterialRef, ProvenanceView, SbomView } from '../evidence.js';
import { artifactHref, materialHref, ranText } from '../format.js';

/** The referrers of an artifact as a tree: each node says what it is, whether the gate serves it, and what it holds. */
export function EvidenceTree(p: { repository: string; nodes: readonly EvidenceNode[] }) {
  if (p.nodes.length === 0) return <p class="muted">No referrers: nothing signs, describes or attests this artifact here.</p>;
  return (
    <ul class="tree">
      {p.nodes.map((n) => (
        <li>
          <EvidenceItem repository={p.repository} node={n} />
        </li>
      ))}
    </ul>
  );
}

const KIND_LABEL = { signature: 'signature', sbom: 'SBOM', provenance: 'provenance', attestation: 'attestation', other: 'referrer' } as const;

function EvidenceItem(p: { repository: string; node: EvidenceNode }) {
  const n = p.node;
  return (
    <div class="node" data-kind={n.kind}>
      <h3>
        <Badge kind="kind">{KIND_LABEL[n.kind]}</Badge> <DigestText digest={n.digest} href={artifactHref(p.repository, n.digest)} />{' '}
        {n.served.served ? (
          <Badge kind="served" title="the registry serves this referrer over /v2/">served</Badge>
        ) : (
          <Badge kind="not-served" title={n.served.reason}>not served</Badge>
        )}
      </h3>
      <dl class="facts">
        <dt>Artifact type</dt>
        <dd class="mono">{n.artifactType ?? 'none'}</dd>
        {n.predicateType ? (
          <>
            <dt>Predicate</dt>
            <dd class="mono">{n.predicateType}</dd>
          </>
        ) : null}
        {n.created ? (
          <>
            <dt>Created</dt>
            <dd>{n.created}</dd>
          </>
        ) : null}
        {!n.served.served && n.served.reason ? (
          <>
            <dt>Why not served</dt>
            <dd>{n.served.reason}</dd>
          </>
        ) : null}
      </dl>
      {!n.shown ? <p class="muted">Its content is not shown: the gate does not serve it, and you do not have the admin permission here.</p> : null}
      {n.signers.length ? (
        <div class="signers">
          <strong>Signed by</strong> <span class="muted">(as the envelope claims; the gate's findings say what verified)</span>
          <ul>
            {n.signers.map((s) => (
              <li>
                {s.fingerprint ? (
                  <>
                    key <code>sha256:{s.fingerprint}</code>{' '}
                    {s.trustedAs ? <Badge kind="passed">trusted key {s.trustedAs}</Badge> : <Badge kind="unknown">not a key the policy trusts</Badge>}
                  </>
                ) : (
                  <code>{s.claimed}</code>
                )}
              </li>
            ))}
          </ul>
          {n.loggedAt.length ? <p class="muted">Transparency log: {n.loggedAt.join(', ')}</p> : null}
        </div>
      ) : null}
      {n.sbom ? <SbomTable sbom={n.sbom} /> : null}
      {n.provenance ? <ProvenanceFacts repository={p.repository} prov={n.provenance} /> : null}
      {n.children.length ? <EvidenceTree repository={p.repository} nodes={n.children} /> : null}
    </div>
  );
}

function SbomTable(p: { sbom: SbomView }) {
  const s = p.sbom;
  return (
    <div class="sbom">
      <p>
        <strong>{s.format}</strong>
        {s.name ? <> for {s.name}</> : null}: {s.total} component(s); licenses: {s.licenses.length ? s.licenses.join(', ') : <span class="muted">none declared</span>}
      </p>
      {s.components.length ? (
        <details>
          <summary>Component table ({s.total > s.components.length ? `the first ${s.components.length} of ${s.total}` : s.total})</summary>
        <table>
          <TableHead cols={['Component', 'Version', 'Type', 'Licenses', 'Package URL']} />
          <tbody>
            {s.components.map((c) => (
              <tr>
                <td>{c.name}</td>
                <td>{c.version ?? ''}</td>
                <td>{c.type ?? ''}</td>
                <td>{c.licenses.join(', ')}</td>
                <td class="mono">{c.purl ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
        </details>
      ) : null}
    </div>
  );
}

function ProvenanceFacts(p: { repository: string; prov: ProvenanceView }) {
  const v = p.prov;
  const code = v.materials.filter((m) => m.kind === 'code');
  const others = v.materials.filter((m) => m.kind !== 'code');
  return (
    <div class="provenance">
      <dl class="facts">
        <dt>Builder</dt>
        <dd class="mono">{v.builderId ?? 'not stated'}</dd>
        <dt>Build type</dt>
        <dd class="mono">{v.buildType ?? 'not stated'}</dd>
        <dt>Ran</dt>
          <dd>{ranText(v.startedOn, v.finishedOn)}</dd>
        <dt>Code</dt>
        <dd>
          {code.length === 0 ? <span class="muted">no commit recorded</span> : null}
          {code.map((m) => (
            <div>
              {m.uri ?? m.name ?? ''}{' '}
              {m.keys.map((k) => (
                <a href={materialHref(k)}>
                  <code>{k}</code>
                </a>
              ))}
            </div>
          ))}
        </dd>
      </dl>
      {v.parameters.length ? (
        <table>
          <caption class="muted">Parameters</caption>
          <TableHead cols={['Parameter', 'Value']} />
          <tbody>
            {v.parameters.map(([k, val]) => (
              <tr>
                <td class="mono">{k}</td>
                <td class="mono">{val}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {others.length ? <MaterialsTable materials={others} caption="Materials (datasets, base models)" /> : null}
    </div>
  );
}

/** What an artifact was built from, each digest a link to what else was built from it. */
export function MaterialsTable(p: { materials: readonly MaterialRef[]; caption?: string }) {
  return (
    <table>
      {p.caption ? <caption class="muted">{p.caption}</caption> : null}
      <TableHead cols={['Kind', 'Name', 'Digest', 'Stored here in']} />
      <tbody>
        {p.materials.map((m) => (
          <tr>
            <td>{m.kind}</td>
            <td>
              {m.name ?? ''} <span class="muted mono">{m.uri ?? ''}</span>
            </td>
            <td>
              {m.keys.map((k) => (
                <div>
                  <DigestText digest={k} href={materialHref(k)} />
                </div>
              ))}
            </td>
            <td>
              {m.storedIn.map((r) => (
                <div>
                  <a href={artifactHref(r, m.keys.find((k) => k.startsWith('sha256:')) ?? '')}>{r}</a>
                </div>
              ))}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
