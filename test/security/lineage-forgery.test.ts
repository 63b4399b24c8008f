import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { opsCommands as cli } from '../../src/cli/ops/index.js';
import { capture, Pusher, sha, type Pushed } from '../ops-fixtures.js';
import { anonymous, startArena, type Arena } from './helpers.js';

/**
 * Threat T4 of docs/security.md: unverified evidence must not drive operator decisions. The
 * attacker holds the CI job's push token for models/fraud and attaches provenance signed by a key
 * nobody trusts, naming a poisoned dataset, to a good model: `lineage --consumers` and
 * `quarantine --material --rollback` must not take the good model down, and must still find the real
 * consumer whose provenance the release key signed.
 */
const MODEL = 'application/vnd.cncf.model.manifest.v1+json';
const DATASET = 'application/vnd.customs.dataset.v1';

describe('T4: lineage acts only on provenance whose signature verifies', () => {
  let a: Arena;
  let release: Pusher;
  let attacker: Pusher;
  let poisoned: Pushed;
  let good: Pushed;
  let real: Pushed;
  let forged: string;

  beforeAll(async () => {
    a = await startArena();
    const ops = { authorization: `Bearer ${a.token('ops')}` };
    release = new Pusher(a.srv.url, ops);
    await a.srv.trustKey(release.key.publicKey, 'release');
    attacker = new Pusher(a.srv.url, { authorization: `Bearer ${a.token('ci')}` }); // its own key: not trusted
    poisoned = await release.artifact('data/tx', DATASET, 'poisoned', 'v2');
    const clean = await release.artifact('data/tx', DATASET, 'clean', 'v1');
    good = await release.artifact('models/fraud', MODEL, 'good', 'prod');
    await release.provenance('models/fraud', good, [{ role: 'training-dataset', name: 'data/tx', digest: sha(clean.digest) }]);
    real = await release.artifact('models/churn', MODEL, 'really-poisoned', 'prod');
    await release.provenance('models/churn', real, [{ role: 'training-dataset', name: 'data/tx', digest: sha(poisoned.digest) }]);
    forged = await attacker.provenance('models/fraud', good, [{ role: 'training-dataset', name: 'data/tx', digest: sha(poisoned.digest) }]);
  });
  afterAll(async () => {
    await a?.srv.close();
  });

  it('lineage shows the forged provenance apart, marked unverified, and takes no material from it', async () => {
    const l = await cli.lineage(a.ops, capture().io, 'models/fraud:prod', {});
    expect(l.datasets.map((d) => d.name)).toEqual(['data/tx']);
    expect(l.datasets.map((d) => d.digest.sha256)).not.toContain(poisoned.digest.slice(7));
    expect(l.unverifiedProvenance.map((p) => [p.referrer, p.evidence])).toEqual([[forged, 'unverified']]);
    // Nor is the forged referrer served as evidence.
    expect((await anonymous(a.srv, 'GET', `models/fraud/manifests/${forged}`)).status).toBe(403);
  });

  it('consumers of the poisoned dataset: the real one, not the framed one (listed apart)', async () => {
    const r = await cli.consumers(a.ops, capture().io, poisoned.digest, {});
    expect(r.consumers.map((c) => [c.repository, c.digest])).toEqual([['models/churn', real.digest]]);
    expect(r.unverified.map((c) => [c.repository, c.digest, c.referrer])).toEqual([['models/fraud', good.digest, forged]]);
  });

  it('quarantine --material --rollback quarantines the real consumer and leaves the framed model serving', async () => {
    const cap = capture();
    const q = await cli.quarantineMaterial(a.ops, cap.io, poisoned.digest, { reason: 'INC-11', rollback: true });
    expect(q.actions.filter((x) => x.action === 'quarantine').map((x) => x.digest).sort()).toEqual([poisoned.digest, real.digest].sort());
    expect(cap.out.join('\n')).toMatch(/not acted on: models\/fraud@sha256:/);
    const { quarantined } = await cli.listQuarantine(a.ops, capture().io, {});
    expect(quarantined.map((x) => x.digest)).not.toContain(good.digest);
    const history = await cli.history(a.ops, capture().io, 'models/fraud:prod', {});
    expect(history.history.filter((m) => m.actor === 'token:ops' && m.reason?.includes('INC-11'))).toEqual([]);
  });

  it('deep verify lists the forged provenance as unverified and does not check its materials', async () => {
    const res = await fetch(`${a.srv.url}/admin/verify/deep`, {
      method: 'POST',
      headers: { authorization: `Bearer ${a.token('ops')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ repository: 'models/fraud', reference: 'prod' }),
    });
    const report = (await res.json()) as { checks: { kind: string; digest: string; detail: string }[] };
    expect(report?.checks.find((c) => c.kind === 'provenance')).toMatchObject({ digest: forged, detail: expect.stringMatching(/^unverified provenance/) });
    expect(report?.checks.some((c) => c.kind === 'material' && c.digest === poisoned.digest)).toBe(false);
  });
});
