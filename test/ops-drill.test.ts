import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { opsCommands as cli, type AdminTarget } from '../src/cli/ops/index.js';
import type { Digest } from '../src/oci/index.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { capture, probe, Pusher, sha, type Pushed } from './ops-fixtures.js';

/**
 * The incident drill of issue 5, over HTTP against a real server: dataset D1 is
 * poisoned; models A and B were trained on it, C on D2. Identify, contain
 * (quarantine by material with rollback), verify the audit trail, then show that
 * editing one audit row is detected and named.
 */
const MODEL = 'application/vnd.cncf.model.manifest.v1+json';
const DATASET = 'application/vnd.customs.dataset.v1';
const COMMIT = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';

describe('operator drill: poisoned dataset', () => {
  let srv: TestServer;
  let p: Pusher;
  let t: AdminTarget;
  let d1: Pushed, d2: Pushed, d3: Pushed, m0: Pushed, a: Pushed, b: Pushed, c: Pushed;
  const v2 = (path: string) => `${srv.url}/v2/${path}`;

  beforeAll(async () => {
    srv = await startTestServer();
    p = new Pusher(srv.url, srv.auth());
    // Lineage counts only provenance whose signature verifies under the trust policy.
    await srv.trustKey(p.key.publicKey);
    t = { url: srv.url, token: srv.token };
    d1 = await p.artifact('data/transactions', DATASET, 'd1', 'v1');
    d2 = await p.artifact('data/transactions', DATASET, 'd2', 'v2');
    // D3 is derived from D1 (deduplicated): poisoned too, transitively.
    d3 = await p.artifact('data/transactions-dedup', DATASET, 'd3', 'v1');
    await p.provenance('data/transactions-dedup', d3, [{ role: 'training-dataset', name: 'data/transactions', digest: sha(d1.digest) }]);
    const code = { role: 'source', name: 'trainer', uri: 'git+https://git.example/fraud@refs/heads/main', digest: { gitCommit: COMMIT } };
    // prod moves: m0 (trained on D2) -> A (D1) -> B (D1).
    m0 = await p.artifact('models/fraud', MODEL, 'm0', 'prod');
    await p.provenance('models/fraud', m0, [code, { role: 'training-dataset', name: 'data/transactions', digest: sha(d2.digest) }]);
    a = await p.artifact('models/fraud', MODEL, 'model-a', 'prod');
    await p.provenance('models/fraud', a, [code, { role: 'training-dataset', name: 'data/transactions', digest: sha(d1.digest) }]);
    await p.tag('models/fraud', 'candidate-a', a);
    b = await p.artifact('models/fraud', MODEL, 'model-b', 'prod');
    await p.provenance('models/fraud', b, [
      code,
      { role: 'training-dataset', name: 'data/transactions', digest: sha(d1.digest) },
      { role: 'base-model', name: 'models/fraud', digest: sha(m0.digest) },
    ]);
    c = await p.artifact('models/churn', MODEL, 'model-c', 'prod');
    await p.provenance('models/churn', c, [code, { role: 'training-dataset', name: 'data/transactions', digest: sha(d2.digest) }]);
    await p.referrer('models/churn', c, 'application/vnd.cyclonedx+json', {
      bomFormat: 'CycloneDX',
      specVersion: '1.6',
      metadata: { component: { type: 'machine-learning-model', name: 'model-c' } },
      components: [{ name: 'numpy' }, { name: 'scikit-learn' }, { name: 'd2', type: 'data' }],
    });
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('identifies: lineage of the prod model and every consumer of D1', async () => {
    const cap = capture();
    const l = await cli.lineage(t, cap.io, 'models/fraud:prod', {});
    expect(l.digest).toBe(b.digest);
    expect(l.tags).toEqual(['prod']);
    expect(l.code.map((m) => m.digest.gitCommit)).toEqual([COMMIT]);
    expect(l.datasets.map((m) => `sha256:${m.digest.sha256}`)).toEqual([d1.digest]);
    expect(l.datasets[0]!.storedIn).toEqual(['data/transactions']);
    expect(l.baseModels.map((m) => `sha256:${m.digest.sha256}`)).toEqual([m0.digest]);
    expect(l.provenance[0]).toMatchObject({ builderId: 'https://ci.example/trainer', signers: [`key:${p.key.hint}`] });
    expect(l.referrers).toHaveLength(1);
    expect(l.referrers[0]).toMatchObject({ predicateType: 'https://slsa.dev/provenance/v1', created: '2026-11-01T11:00:01Z' });
    expect(l.verdict.allowed).toBe(true);
    expect(cap.out.join('\n')).toMatch(new RegExp(`dataset +data/transactions sha256:${d1.digest.slice(7)}`));
    // A's lineage shows prod as a past tag (moved on to B).
    const la = await cli.lineage(t, capture().io, `models/fraud@${a.digest}`, {});
    expect(la.tags).toEqual(['candidate-a']);
    expect(la.pastTags.map((m) => [m.tag, m.to])).toEqual([['prod', b.digest]]);

    const cons = await cli.consumers(t, capture().io, d1.digest, {});
    expect(cons.consumers.map((x) => [x.repository, x.digest, x.depth]).sort()).toEqual(
      [
        ['data/transactions-dedup', d3.digest, 1],
        ['models/fraud', a.digest, 1],
        ['models/fraud', b.digest, 1],
      ].sort(),
    );
    // Through the base model: everything trained on m0 (B) consumes D2 transitively too.
    const viaD2 = await cli.consumers(t, capture().io, d2.digest, {});
    expect(viaD2.consumers.map((x) => x.digest).sort()).toEqual([m0.digest, b.digest, c.digest].sort());
    expect(viaD2.consumers.find((x) => x.digest === b.digest)!.depth).toBe(2);
    const lc = await cli.lineage(t, capture().io, 'models/churn:prod', {});
    // An SBOM attached unsigned is shown apart: served when the policy allows it, not evidence lineage relies on.
    expect(lc.sbom).toEqual([]);
    expect(lc.unverifiedSbom).toEqual([{ referrer: expect.any(String), referrers: [expect.any(String)], document: expect.stringMatching(/^sha256:/), format: 'CycloneDX 1.6', components: 3, name: 'model-c' }]);
    expect(lc.referrers.map((r) => r.artifactType).sort()).toEqual(['application/vnd.cyclonedx+json', 'application/vnd.dev.sigstore.bundle.v0.3+json']);
    const byCommit = await cli.consumers(t, capture().io, `gitCommit:${COMMIT}`, {});
    expect(byCommit.consumers).toHaveLength(4);
  });

  it('contains: quarantine --material D1 --rollback denies A and B by every path, rolls prod back, leaves C alone', async () => {
    const before = await Promise.all([a, b].map((m) => probe(v2(`models/fraud/blobs/${m.layer}`), srv.auth())));
    expect(before.map((r) => r.status)).toEqual([200, 200]);

    const cap = capture();
    const r = await cli.quarantineMaterial(t, cap.io, d1.digest, { reason: 'INC-7: D1 poisoned', rollback: true });
    expect(new Set(r.actions.filter((x) => x.action === 'quarantine').map((x) => x.digest))).toEqual(new Set([a.digest, b.digest, d3.digest, d1.digest]));
    const rollbacks = r.actions.filter((x) => x.action === 'rollback' || x.action === 'no-rollback-target');
    expect(rollbacks.map((x) => [x.repository, x.tag, x.action, x.to]).sort()).toEqual(
      [
        ['data/transactions', 'v1', 'no-rollback-target', undefined],
        ['data/transactions-dedup', 'v1', 'no-rollback-target', undefined],
        ['models/fraud', 'candidate-a', 'no-rollback-target', undefined],
        ['models/fraud', 'prod', 'rollback', m0.digest],
      ].sort(),
    );
    const printed = cap.out.join('\n');
    expect(printed).toMatch(/ACTION +REPOSITORY +TAG +DIGEST +TO +NOTE/);
    expect(printed).toMatch(/rollback +models\/fraud +prod/);

    for (const m of [a, b]) {
      for (const url of [v2(`models/fraud/manifests/${m.digest}`), v2(`models/fraud/blobs/${m.layer}`), v2(`models/fraud/blobs/${m.config}`)]) {
        const got = await probe(url, srv.auth());
        expect({ url, status: got.status, code: got.code }).toEqual({ url, status: 403, code: 'DENIED' });
      }
    }
    expect((await probe(v2('models/fraud/manifests/candidate-a'), srv.auth())).status).toBe(403);
    expect((await probe(v2('data/transactions/manifests/v1'), srv.auth())).status).toBe(403);
    expect((await probe(v2(`data/transactions/blobs/${d1.layer}`), srv.auth())).status).toBe(403);
    // prod serves m0 now; C and D2 untouched; the empty config shared by referrers stays readable.
    const prod = await probe(v2('models/fraud/manifests/prod'), srv.auth());
    expect([prod.status, prod.digest]).toEqual([200, m0.digest]);
    const churn = await probe(v2('models/churn/manifests/prod'), srv.auth());
    expect([churn.status, churn.digest]).toEqual([200, c.digest]);
    expect((await probe(v2(`models/churn/blobs/${c.layer}`), srv.auth())).status).toBe(200);
    expect((await probe(v2('data/transactions/manifests/v2'), srv.auth())).status).toBe(200);
    expect((await probe(v2('models/fraud/blobs/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'), srv.auth())).status).toBe(200);

    // The rollback is in prod's history with actor and reason, and prod is pinned against a re-push of B.
    const h = await cli.history(t, capture().io, 'models/fraud:prod', {});
    expect(h.history[0]).toMatchObject({ from: b.digest, to: m0.digest, reason: 'INC-7: D1 poisoned [material ' + d1.digest + ']' });
    expect(h.history[0]!.actor).not.toBe('');
    expect(h.pin?.digest).toBe(m0.digest);
    const repush = await p.tag('models/fraud', 'prod', b);
    expect(repush.status).toBe(403);
    expect(((await repush.json()) as { errors: { code: string; message: string }[] }).errors[0]!.message).toMatch(/pinned/);

    const la = await cli.lineage(t, capture().io, `models/fraud@${a.digest}`, {});
    expect(la).toMatchObject({ quarantined: true, verdict: { allowed: false } });
  });

  it('recovers: release lifts the quarantine; deep verify re-hashes and detects a corrupted blob', async () => {
    const deep = await cli.deepVerify(t, capture().io, 'models/churn:prod', {});
    expect(deep.ok).toBe(true);
    const kinds = deep.checks.map((x) => x.kind);
    expect(kinds).toEqual(expect.arrayContaining(['manifest', 'blob', 'referrer', 'gate', 'quarantine', 'material']));
    expect(deep.checks.find((x) => x.kind === 'material' && x.digest === d2.digest)?.ok).toBe(true);

    // Corrupt D2's data on disk: deep verify of C (whose provenance names D2) fails and names the blob.
    await writeFile(join(srv.dataDir, 'blobs', 'sha256', d2.layer.slice(7, 9), d2.layer.slice(7)), 'tampered');
    const cap = capture();
    await expect(cli.deepVerify(t, cap.io, 'models/churn:prod', {})).rejects.toMatchObject({ code: 'DENIED' });
    expect(cap.out.join('\n')).toMatch(new RegExp(`blob +sha256:${d2.layer.slice(7, 19)} +FAIL +content now hashes to`));

    await cli.release(t, capture().io, b.digest, { reason: 'false positive for B after review' });
    expect((await probe(v2(`models/fraud/manifests/${b.digest}`), srv.auth())).status).toBe(200);
    await expect(cli.release(t, capture().io, b.digest, { reason: 'again' })).rejects.toMatchObject({ code: 'NAME_UNKNOWN' });
  });

  it('proves: audit verify passes, and names an edited entry after a row is changed in the database', async () => {
    const cap = capture();
    const ok = await cli.auditVerify(t, cap.io, {});
    expect(ok.ok).toBe(true);
    expect(cap.out[0]).toMatch(/audit log intact/);
    const listed = await cli.auditList(t, capture().io, {});
    const actions = listed.entries.map((e) => e.action);
    for (const a of ['push', 'quarantine', 'rollback', 'quarantine.material', 'verify.deep', 'release']) expect(actions).toContain(a);
    const exported: string[] = [];
    const n = await cli.auditExport(t, { out: (l) => void exported.push(l), err: () => undefined }, {});
    expect(n).toBe(listed.entries.length);
    expect(JSON.parse(exported[0]!)).toMatchObject({ seq: 1, prevHash: '0'.repeat(64) });

    // The export checks offline too, and an edited line in it is named.
    const file = join(srv.dataDir, 'audit-export.jsonl');
    await writeFile(file, exported.join('\n') + '\n');
    expect((await cli.auditVerify(t, capture().io, { file, head: `${ok.head!.seq}:${ok.head!.hash}` })).ok).toBe(true);
    const edited = exported.map((l, i) => (i === 4 ? l.replace('"actor":"', '"actor":"x') : l));
    await writeFile(file, edited.join('\n'));
    await expect(cli.auditVerify(t, capture().io, { file })).rejects.toMatchObject({ message: expect.stringContaining('entry 5') });

    const target = listed.entries.find((e) => e.action === 'rollback')!;
    const db = new Database(join(srv.dataDir, 'metadata.sqlite'));
    try {
      // The table refuses updates; an attacker with the file drops the trigger first.
      expect(() => db.prepare("UPDATE audit_log SET reason = 'routine' WHERE seq = ?").run(target.seq)).toThrow(/append-only/);
      db.exec('DROP TRIGGER audit_log_no_update');
      db.prepare("UPDATE audit_log SET reason = 'routine' WHERE seq = ?").run(target.seq);
    } finally {
      db.close();
    }
    const bad = capture();
    await expect(cli.auditVerify(t, bad.io, {})).rejects.toMatchObject({ code: 'DENIED', message: expect.stringContaining(`entry ${target.seq}`) });
    expect(bad.out.join('\n')).toContain(`entry ${target.seq}: content does not match its hash: the entry was edited`);
  });

  it('refuses the admin API without a token', async () => {
    const res = await fetch(`${srv.url}/admin/audit/verify`);
    expect(res.status).toBe(401);
    const q = await fetch(`${srv.url}/admin/quarantine`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(q.status).toBe(401);
  });
});

export type { Digest };
