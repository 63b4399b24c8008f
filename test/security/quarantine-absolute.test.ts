import { createPublicKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../src/artifacts/client.js';
import { opsCommands as cli } from '../../src/cli/ops/index.js';
import { digestOf } from '../../src/oci/index.js';
import { newKey, pushModel, pushSignatureWithLayer, type PushedModel } from '../gate-fixtures.js';
import { capture } from '../ops-fixtures.js';
import { startDockerRegistry, type DockerRegistry } from '../producer-fixtures.js';
import { anonymous, expectRefusedWithoutBytes, pushRaw, secretWeights, startArena, type Arena } from './helpers.js';

/**
 * Threat T3 of docs/security.md: quarantine is absolute. A quarantined digest, manifest or blob, is
 * refused to every reader in every repository, by tag, by digest, as a subject or referrer, through a
 * cross-repository mount and through the pull-through proxy, until it is released; a manifest that
 * references a quarantined blob is refused with that reason. Only /admin/inspect reads it, audited.
 */
describe('T3: quarantine is absolute', () => {
  let a: Arena;
  let upstream: DockerRegistry;
  let model: PushedModel;
  let teamModel: PushedModel;
  const signer = newKey();
  const weights = secretWeights('quarantined weights');

  beforeAll(async () => {
    upstream = await startDockerRegistry();
    a = await startArena({ config: { upstreams: [{ name: 'up', url: upstream.url, tagFreshness: 0 }] } });
    await a.srv.trustKey(createPublicKey(signer.publicPem), 'release');
    const admin = a.client('ops');
    model = await pushModel(admin, 'models/q', 'v1', [{ path: 'model.safetensors', bytes: weights }]);
    await pushSignatureWithLayer(admin, 'models/q', model.descriptor, signer.key);
    const attacker = a.client('attacker');
    teamModel = await pushModel(admin, 'team/app', 'v1', [{ path: 'app.safetensors', bytes: secretWeights('team app') }]);
    await pushSignatureWithLayer(attacker, 'team/app', teamModel.descriptor, signer.key);
    // The same model upstream, pulled through customs.
    const up = new RegistryClient({ url: upstream.url });
    await pushModel(up, 'models/q', 'v1', [{ path: 'model.safetensors', bytes: weights }]);
    await pushSignatureWithLayer(up, 'models/q', model.descriptor, signer.key);
    for (const p of ['models/q/manifests/v1', `models/q/blobs/${digestOf(weights)}`, `up/models/q/manifests/v1`, `up/models/q/blobs/${digestOf(weights)}`, 'team/app/manifests/v1']) {
      expect({ p, status: (await anonymous(a.srv, 'GET', p)).status }).toEqual({ p, status: 200 });
    }
    await cli.quarantine(a.ops, capture().io, model.digest, { reason: 'INC-9: backdoored' });
  }, 120_000);
  afterAll(async () => {
    await a?.srv.close();
    await upstream?.close();
  });

  it('refuses the manifest by tag and digest, and its layer, locally and through the proxy', async () => {
    for (const p of ['models/q/manifests/v1', `models/q/manifests/${model.digest}`, 'up/models/q/manifests/v1', `up/models/q/manifests/${model.digest}`]) {
      const got = await anonymous(a.srv, 'GET', p);
      expect({ p, status: got.status, quarantined: /quarantined/.test(got.message ?? '') }).toEqual({ p, status: 403, quarantined: true });
      // Anonymous: challenged (a discover token would learn more); with a reader token: refused with the reason.
      expect((await anonymous(a.srv, 'HEAD', p)).status).toBe(401);
      const head = await fetch(`${a.srv.url}/v2/${p}`, { method: 'HEAD', headers: { authorization: `Bearer ${a.token('reader')}` } });
      expect(head.status).toBe(403);
      expect(head.headers.get('customs-denied-reason')).toMatch(/quarantined/);
    }
    for (const repo of ['models/q', 'up/models/q']) expectRefusedWithoutBytes(await anonymous(a.srv, 'GET', `${repo}/blobs/${digestOf(weights)}`), weights, `${repo} layer`);
  });

  it('the Hugging Face API refuses it too (the same rule behind another API)', async () => {
    const res = await fetch(`${a.srv.url}/hf/models/q/resolve/v1/model.safetensors`, { headers: { authorization: `Bearer ${a.token('reader')}` } });
    const body = Buffer.from(await res.arrayBuffer());
    expect(res.status).toBe(403);
    expect(body.includes(weights.subarray(0, 64))).toBe(false);
    expect(res.headers.get('x-error-message') ?? body.toString()).toMatch(/quarantined/);
  });

  it('an unsigned referrer in another repository that names the layer does not get it served, anonymously or otherwise', async () => {
    const attacker = a.client('attacker');
    const ref = await pushRaw(attacker, 'team/app', undefined, {
      artifactType: 'application/vnd.example.anything',
      layers: [{ mediaType: 'application/octet-stream', data: weights }],
      subject: teamModel.descriptor,
    });
    expect((await anonymous(a.srv, 'GET', `team/app/manifests/${ref}`)).status).toBe(403);
    expectRefusedWithoutBytes(await anonymous(a.srv, 'GET', `team/app/blobs/${digestOf(weights)}`), weights, 'smuggled through team/app');
    const asReader = await fetch(`${a.srv.url}/v2/team/app/blobs/${digestOf(weights)}`, { headers: { authorization: `Bearer ${a.token('reader')}` } });
    expect(asReader.status).toBe(403);
  });

  it('a cross-repository mount does not carry a quarantined blob', async () => {
    const res = await fetch(`${a.srv.url}/v2/team/mounted/blobs/uploads/?mount=${digestOf(weights)}&from=models/q`, { method: 'POST', headers: { authorization: `Bearer ${a.token('attacker')}` } });
    expect(res.status).toBe(202); // a new upload session, not a 201 mount
    expect((await anonymous(a.srv, 'HEAD', `team/mounted/blobs/${digestOf(weights)}`)).status).not.toBe(200);
  });

  it('quarantining a layer refuses every manifest that references it, in every repository', async () => {
    const shared = secretWeights('shared base layer');
    const admin = a.client('ops');
    const m1 = await pushModel(admin, 'models/s1', 'v1', [{ path: 'base.bin', bytes: shared }]);
    const m2 = await pushModel(admin, 'team/s2', 'v1', [{ path: 'base.bin', bytes: shared }]);
    for (const m of [{ r: 'models/s1', d: m1 }, { r: 'team/s2', d: m2 }]) await pushSignatureWithLayer(admin, m.r, m.d.descriptor, signer.key);
    expect((await anonymous(a.srv, 'GET', 'team/s2/manifests/v1')).status).toBe(200);
    await cli.quarantine(a.ops, capture().io, digestOf(shared), { reason: 'INC-10: poisoned layer' });
    for (const p of ['models/s1/manifests/v1', 'team/s2/manifests/v1']) {
      const got = await anonymous(a.srv, 'GET', p);
      expect({ p, status: got.status }).toEqual({ p, status: 403 });
      expect(got.message).toMatch(/references quarantined content/);
    }
    for (const repo of ['models/s1', 'team/s2']) expectRefusedWithoutBytes(await anonymous(a.srv, 'GET', `${repo}/blobs/${digestOf(shared)}`), shared, repo);
    await cli.release(a.ops, capture().io, digestOf(shared), { reason: 'false alarm' });
    expect((await anonymous(a.srv, 'GET', 'team/s2/manifests/v1')).status).toBe(200);
  });

  it('an operator reads quarantined content only through /admin/inspect, with a reason, audited', async () => {
    const path = `/admin/inspect/blob?repository=models/q&digest=${digestOf(weights)}&reason=${encodeURIComponent('INC-9 forensics')}`;
    expect((await fetch(`${a.srv.url}${path}`, { headers: { authorization: `Bearer ${a.token('reader')}` } })).status).toBe(403);
    const res = await fetch(`${a.srv.url}${path}`, { headers: { authorization: `Bearer ${a.token('ops')}` } });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(weights)).toBe(true);
    const m = await fetch(`${a.srv.url}/admin/inspect/manifest?repository=models/q&reference=v1&reason=forensics`, { headers: { authorization: `Bearer ${a.token('ops')}` } });
    expect(m.status).toBe(200);
    expect(m.headers.get('customs-inspect')).toMatch(/quarantined/);
    const { entries } = await cli.auditList(a.ops, capture().io, {});
    expect(entries.filter((e) => e.action === 'inspect').map((e) => [e.actor, e.reason])).toEqual([
      ['token:ops', 'INC-9 forensics'],
      ['token:ops', 'forensics'],
    ]);
    const noReason = await fetch(`${a.srv.url}/admin/inspect/blob?repository=models/q&digest=${digestOf(weights)}`, { headers: { authorization: `Bearer ${a.token('ops')}` } });
    expect(noReason.status).toBe(400);
  });

  it('release lifts it everywhere at once', async () => {
    await cli.release(a.ops, capture().io, model.digest, { reason: 'INC-9 closed' });
    expect((await anonymous(a.srv, 'GET', 'models/q/manifests/v1')).status).toBe(200);
    expect((await anonymous(a.srv, 'GET', `up/models/q/blobs/${digestOf(weights)}`)).status).toBe(200);
  });
});
