import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../src/artifacts/client.js';
import { digestTag } from '../src/oci/index.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { startDockerRegistry, type DockerRegistry } from './producer-fixtures.js';
import { expectDenied, expectOk, expectPullAllowed, expectPullDenied, newKey, pushModel, pushSignatureWithLayer, req, type ModelFile, type PushedModel } from './gate-fixtures.js';

/**
 * Issue 4, pull-through: the gate judges upstream content before customs serves it. The
 * upstream is Debian's docker-registry (distribution 2.8, no referrers API), so the signature
 * is found through the `sha256-<hex>` referrers tag index (distribution spec "Referrers Tag
 * Schema"), which the producer client writes when the registry does not answer OCI-Subject.
 */
const model = (n: string): ModelFile[] => [
  { path: 'config.json', bytes: Buffer.from(JSON.stringify({ name: n })) },
  { path: 'model.safetensors', bytes: randomBytes(300_000) },
];

describe('pull-through under an enforcing policy (upstream: docker-registry)', () => {
  let upstream: DockerRegistry;
  let data: string;
  let s: TestServer;
  let signed: PushedModel;
  let unsigned: PushedModel;
  let sig: { digest: string; layer: string };
  const key = newKey();

  beforeAll(async () => {
    upstream = await startDockerRegistry();
    const up = new RegistryClient({ url: upstream.url });
    signed = await pushModel(up, 'models/signed', 'v1', model('signed'));
    sig = await pushSignatureWithLayer(up, 'models/signed', signed.descriptor, key.key);
    unsigned = await pushModel(up, 'models/unsigned', 'v1', model('unsigned'));
    // The upstream really has no referrers API: the signature is reachable only through the fallback tag.
    expect((await fetch(`${upstream.url}/v2/models/signed/referrers/${signed.digest}`)).status).toBe(404);
    const fallback = await fetch(`${upstream.url}/v2/models/signed/manifests/${digestTag(signed.digest)}`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } });
    expect(((await fallback.json()) as { manifests: { digest: string }[] }).manifests.map((d) => d.digest)).toEqual([sig.digest]);

    data = await mkdtemp(join(tmpdir(), 'customs-gate-proxy-'));
    await mkdir(join(data, 'trust', 'keys'), { recursive: true });
    await writeFile(join(data, 'trust', 'keys', 'signer.pub'), key.publicPem);
    // No policy: the secure default (every repository, one signature by a key in <data>/trust/keys).
    // tagFreshness 0: tags, referrers and so verdicts about upstream content are revalidated on every pull.
    s = await startTestServer({ dataDir: data, gate: 'enforce', config: { upstreams: [{ name: 'up', url: upstream.url, tagFreshness: 0 }] } });
  }, 60_000);
  afterAll(async () => {
    await s?.close();
    await upstream?.close();
    if (data) await rm(data, { recursive: true, force: true });
  });

  it('does not serve the blobs of the unsigned artifact by digest, even before its manifest was asked for', async () => {
    for (const b of [unsigned.config, ...unsigned.layers]) {
      const e = await expectDenied(await req(s, 'GET', `up/models/unsigned/blobs/${b}`), `cold GET blob ${b}`);
      expect(e.message).toMatch(/belongs to no manifest in up\/models\/unsigned that the policy allows/);
      await expectDenied(await req(s, 'HEAD', `up/models/unsigned/blobs/${b}`), `cold HEAD blob ${b}`);
    }
  });

  it('denies the unsigned artifact: manifest by tag and digest, and every blob', async () => {
    const [d] = await expectPullDenied(s, 'up/models/unsigned', 'v1', unsigned);
    expect(d!.detail.failed).toEqual([{ rule: 'default', check: 'signatures', reason: expect.stringMatching(/no signature found/) }]);
  });

  it('serves the signed artifact (manifest and every blob) and its signature', async () => {
    await expectPullAllowed(s, 'up/models/signed', 'v1', signed);
    const refs = await req(s, 'GET', `up/models/signed/referrers/${signed.digest}`);
    const index = JSON.parse((await expectOk(refs, 'referrers through customs')).toString()) as { manifests: { digest: string }[] };
    expect(index.manifests.map((d) => d.digest)).toContain(sig.digest);
    await expectOk(await req(s, 'GET', `up/models/signed/manifests/${sig.digest}`), 'signature manifest', sig.digest);
    await expectOk(await req(s, 'GET', `up/models/signed/blobs/${sig.layer}`), 'signature bundle', sig.layer);
  });

  it('an artifact signed upstream after customs denied it is served once the upstream is revalidated', async () => {
    const up = new RegistryClient({ url: upstream.url });
    const late = await pushModel(up, 'models/late', 'v1', model('late'));
    await expectPullDenied(s, 'up/models/late', 'v1', late);
    await pushSignatureWithLayer(up, 'models/late', late.descriptor, key.key);
    await expectPullAllowed(s, 'up/models/late', 'v1', late);
    // Not covered: a signature withdrawn upstream. The proxy keeps the referrers it fetched (offline
    // mode serves them), so the local copy still counts; quarantine is the operator's way to stop it.
  });

  it('a blob of the signed artifact is still denied in the unsigned repository', async () => {
    await expectDenied(await req(s, 'GET', `up/models/unsigned/blobs/${signed.layers[1]}`), 'blob from another repository');
  });
});
