// oras 1.3.6 against customs, directly and through the proxy: push/pull/attach/discover/cp keep every
// digest; with the default gate and anonymous pull on loopback a second push works (the refused blob
// HEAD is a 401 challenge, so oras sends its credentials); `oras pull` writes the files of a
// `customs push model` artifact; unsigned content and unsigned evidence are refused.
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../src/artifacts/client.js';
import { pushModel } from '../src/artifacts/push.js';
import { pushReferrerBlob } from '../src/artifacts/referrers.js';
import { generateKeyPair } from '../src/verify/keygen.js';
import { signingKeyFromPem } from '../src/artifacts/sign.js';
import { skopeo, startDistribution, writeOciLayout, type Distribution } from '../test/proxy-harness.js';
import { Clients, orasAuth, startCustoms, type Customs } from './helpers/clients.js';

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const SBOM_TYPE = 'application/vnd.cyclonedx+json';

interface Descriptor {
  digest: string;
  size: number;
  mediaType: string;
}
interface Discovered extends Descriptor {
  referrers?: (Descriptor & { artifactType?: string })[];
}

let c: Clients;
beforeAll(async () => {
  c = await Clients.create();
});
afterAll(async () => c?.close());

const json = <T>(r: { stdout: string }): T => JSON.parse(r.stdout) as T;

describe('oras against customs (gate off): digests unchanged', () => {
  let reg: Customs;
  beforeAll(async () => {
    reg = await startCustoms({ gate: 'off' });
  });
  afterAll(async () => reg?.close());
  const ref = (r: string) => `${reg.host}/${r}`;

  it('push then pull: the same manifest digest and file bytes, paths kept', async () => {
    const a = randomBytes(3000);
    await c.file('push1/weights.bin', a);
    await c.file('push1/conf/config.json', '{"layers":2}');
    const pushed = json<Descriptor>(await c.run('oras', ['push', ...orasAuth(reg), '--format', 'json', ref('oras/files:v1'), 'weights.bin', 'conf/config.json'], { cwd: join(c.home, 'push1') }));
    const desc = json<Descriptor>(await c.run('oras', ['manifest', 'fetch', ...orasAuth(reg), '--descriptor', ref('oras/files:v1')]));
    expect(desc.digest).toBe(pushed.digest);
    const raw = await c.run('oras', ['manifest', 'fetch', ...orasAuth(reg), ref(`oras/files@${pushed.digest}`)]);
    expect(sha256(raw.stdout)).toBe(pushed.digest);
    await c.run('oras', ['pull', ...orasAuth(reg), '-o', join(c.home, 'pull1'), ref('oras/files:v1')]);
    expect((await readFile(join(c.home, 'pull1', 'weights.bin'))).equals(a)).toBe(true);
    expect(await readFile(join(c.home, 'pull1', 'conf', 'config.json'), 'utf8')).toBe('{"layers":2}');
  });

  it('attach and discover: the referrer is listed with its artifact type; pulling it returns the same bytes', async () => {
    const subject = json<Descriptor>(await c.run('oras', ['manifest', 'fetch', ...orasAuth(reg), '--descriptor', ref('oras/files:v1')]));
    const sbom = '{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}';
    await c.file('attach/sbom.cdx.json', sbom);
    const att = json<Descriptor>(await c.run('oras', ['attach', ...orasAuth(reg), '--format', 'json', '--artifact-type', SBOM_TYPE, ref(`oras/files@${subject.digest}`), 'sbom.cdx.json'], { cwd: join(c.home, 'attach') }));
    const found = json<Discovered>(await c.run('oras', ['discover', ...orasAuth(reg), '--format', 'json', ref(`oras/files@${subject.digest}`)]));
    expect(found.digest).toBe(subject.digest);
    expect(found.referrers?.map((r) => [r.digest, r.artifactType])).toContainEqual([att.digest, SBOM_TYPE]);
    await c.run('oras', ['pull', ...orasAuth(reg), '-o', join(c.home, 'attach-pull'), ref(`oras/files@${att.digest}`)]);
    expect(await readFile(join(c.home, 'attach-pull', 'sbom.cdx.json'), 'utf8')).toBe(sbom);
  });

  it('oras cp -r copies the artifact and its referrers to another repository, digests unchanged', async () => {
    const subject = json<Descriptor>(await c.run('oras', ['manifest', 'fetch', ...orasAuth(reg), '--descriptor', ref('oras/files:v1')]));
    await c.run('oras', ['cp', '-r', '--from-plain-http', '--to-plain-http', '--from-username', 'ci', '--from-password', reg.s.token!, '--to-username', 'ci', '--to-password', reg.s.token!, ref('oras/files:v1'), ref('oras/copy:v1')]);
    const copied = json<Descriptor>(await c.run('oras', ['manifest', 'fetch', ...orasAuth(reg), '--descriptor', ref('oras/copy:v1')]));
    expect(copied.digest).toBe(subject.digest);
    const from = json<Discovered>(await c.run('oras', ['discover', ...orasAuth(reg), '--format', 'json', ref(`oras/files@${subject.digest}`)]));
    const to = json<Discovered>(await c.run('oras', ['discover', ...orasAuth(reg), '--format', 'json', ref(`oras/copy@${subject.digest}`)]));
    expect(to.referrers!.map((r) => r.digest).sort()).toEqual(from.referrers!.map((r) => r.digest).sort());
  });
});

describe('oras with the default gate (enforce, trusted key) and anonymous pull on loopback', () => {
  let reg: Customs;
  const release = generateKeyPair();
  const ref = (r: string) => `${reg.host}/${r}`;
  beforeAll(async () => {
    reg = await startCustoms({ gate: undefined, trustedKeys: { 'release.pub': release.publicKeyPem } });
  });
  afterAll(async () => reg?.close());

  it('a second push into the same repository succeeds: the refused HEAD of the shared empty config is a 401, so oras sends its credentials', async () => {
    await c.file('gated/a.txt', 'first');
    await c.run('oras', ['push', ...orasAuth(reg), ref('gated/files:v1'), 'a.txt'], { cwd: join(c.home, 'gated') });
    await c.file('gated/b.txt', 'second');
    const second = json<Descriptor>(await c.run('oras', ['push', ...orasAuth(reg), '--format', 'json', ref('gated/files:v2'), 'b.txt'], { cwd: join(c.home, 'gated') }));
    const tags = (await c.run('oras', ['repo', 'tags', ...orasAuth(reg), ref('gated/files')])).stdout.split('\n').filter(Boolean);
    expect(tags.sort()).toEqual(['v1', 'v2']);
    expect(second.digest).toMatch(/^sha256:/);
    // Without credentials the push is refused (the anonymous caller may only pull).
    await c.file('gated/c.txt', 'third');
    const out = await c.refuses('oras', ['push', '--plain-http', ref('gated/files:v3'), 'c.txt'], { cwd: join(c.home, 'gated') });
    expect(out).toMatch(/401|unauthorized|credential/i);
  });

  it('oras pull of unsigned content is refused with the gate\'s reason', async () => {
    const out = await c.refuses('oras', ['pull', ...orasAuth(reg), '-o', join(c.home, 'denied'), ref('gated/files:v1')]);
    expect(out).toMatch(/denied/i);
    expect(out).toMatch(/no signature found/);
  });

  it('oras pull writes the files of a signed `customs push model` artifact (org.opencontainers.image.title); an unsigned one is refused', async () => {
    const dir = await c.file('model/model.joblib', randomBytes(4096)).then((p) => join(p, '..'));
    await c.file('model/sub/metrics.json', '{"auc":0.97}');
    const client = new RegistryClient({ url: reg.s.url, token: reg.s.token });
    const base = { dir, meta: { format: 'joblib' }, datasets: [], baseModels: [], allowDirty: false, builderId: 'https://ci.example/b', params: {} };
    const signed = await pushModel(client, { ...base, target: { repository: 'models/oras', tag: 'v1' }, signingKey: signingKeyFromPem(release.privateKeyPem, release.publicKeyPem) });
    await c.run('oras', ['pull', ...orasAuth(reg), '-o', join(c.home, 'model-pull'), ref('models/oras:v1')]);
    expect((await readFile(join(c.home, 'model-pull', 'model.joblib'))).equals(await readFile(join(dir, 'model.joblib')))).toBe(true);
    expect(await readFile(join(c.home, 'model-pull', 'sub', 'metrics.json'), 'utf8')).toBe('{"auc":0.97}');
    const desc = json<Descriptor>(await c.run('oras', ['manifest', 'fetch', ...orasAuth(reg), '--descriptor', ref('models/oras:v1')]));
    expect(desc.digest).toBe(signed.digest);

    await pushModel(client, { ...base, target: { repository: 'models/oras-unsigned', tag: 'v1' } });
    const out = await c.refuses('oras', ['pull', ...orasAuth(reg), '-o', join(c.home, 'model-unsigned'), ref('models/oras-unsigned:v1')]);
    expect(out).toMatch(/denied/i);
  });

  it('oras discover of a denied subject lists its referrers (an operator during an incident) [needs HEAD of a denied manifest, issue 14]', async () => {
    const client = new RegistryClient({ url: reg.s.url, token: reg.s.token });
    const sbom = Buffer.from('{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}');
    const subject = await client.resolveName('gated/files', 'v1');
    const r = await pushReferrerBlob(client, 'gated/files', subject, { artifactType: SBOM_TYPE, layerMediaType: SBOM_TYPE, data: sbom, created: '2026-01-01T00:00:00Z' });
    const found = json<Discovered>(await c.run('oras', ['discover', ...orasAuth(reg), '--format', 'json', ref(`gated/files@${subject.digest}`)]));
    expect(found.referrers?.map((x) => x.digest)).toContain(r.digest);
  });

  it('an unsigned referrer attached to an allowed subject is not served as evidence; a trusted signature is [evidence rule, issue 14]', async () => {
    const client = new RegistryClient({ url: reg.s.url, token: reg.s.token });
    const model = await client.resolveName('models/oras', 'v1'); // signed above: allowed
    await c.file('evidence/sbom.cdx.json', '{"bomFormat":"CycloneDX","specVersion":"1.6","version":1}');
    const att = json<Descriptor>(await c.run('oras', ['attach', ...orasAuth(reg), '--format', 'json', '--artifact-type', SBOM_TYPE, ref(`models/oras@${model.digest}`), 'sbom.cdx.json'], { cwd: join(c.home, 'evidence') }));
    const out = await c.refuses('oras', ['pull', ...orasAuth(reg), '-o', join(c.home, 'evidence-pull'), ref(`models/oras@${att.digest}`)]);
    expect(out).toMatch(/denied/i);
    const signatures = json<Discovered>(await c.run('oras', ['discover', ...orasAuth(reg), '--format', 'json', '--artifact-type', 'application/vnd.dev.sigstore.bundle.v0.3+json', ref(`models/oras@${model.digest}`)]));
    expect(signatures.referrers?.length).toBeGreaterThan(0);
    await c.run('oras', ['manifest', 'fetch', ...orasAuth(reg), ref(`models/oras@${signatures.referrers![0]!.digest}`)]);
  });
});

describe('oras through the proxy (docker-registry upstream seeded with skopeo)', () => {
  let up: Distribution;
  let px: Customs;
  const file = randomBytes(5000);
  let manifestDigest: string;

  beforeAll(async () => {
    up = await startDistribution();
    // An OCI artifact as oras would push it: empty config, one file layer named by its title.
    const empty = Buffer.from('{}');
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/vnd.example.model.v1',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2 },
        layers: [{ mediaType: 'application/octet-stream', digest: sha256(file), size: file.length, annotations: { 'org.opencontainers.image.title': 'weights.bin' } }],
      }),
    );
    manifestDigest = sha256(manifest);
    const layout = join(c.home, 'layout');
    await writeOciLayout(layout, [empty, file], [{ refs: ['v1'], mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes: manifest }]);
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${up.host}/models/upstream:v1`]);
    px = await startCustoms({ gate: 'off', upstreams: { up: up.url } });
  });
  afterAll(async () => {
    await px?.close();
    await up?.stop();
  });
  const ref = (r: string) => `${px.host}/${r}`;

  it('oras pull through customs: the upstream manifest digest and file bytes unchanged', async () => {
    const desc = json<Descriptor>(await c.run('oras', ['manifest', 'fetch', ...orasAuth(px), '--descriptor', ref('up/models/upstream:v1')]));
    expect(desc.digest).toBe(manifestDigest);
    await c.run('oras', ['pull', ...orasAuth(px), '-o', join(c.home, 'proxy-pull'), ref('up/models/upstream:v1')]);
    expect((await readFile(join(c.home, 'proxy-pull', 'weights.bin'))).equals(file)).toBe(true);
  });

  it('oras attach into the proxied namespace (a referrer by digest) and discover it there', async () => {
    await c.file('proxy-attach/sig.json', '{"signature":"example"}');
    const att = json<Descriptor>(await c.run('oras', ['attach', ...orasAuth(px), '--format', 'json', '--artifact-type', 'application/vnd.example.signature.v1+json', ref(`up/models/upstream@${manifestDigest}`), 'sig.json'], { cwd: join(c.home, 'proxy-attach') }));
    const found = json<Discovered>(await c.run('oras', ['discover', ...orasAuth(px), '--format', 'json', ref(`up/models/upstream@${manifestDigest}`)]));
    expect(found.referrers?.map((r) => r.digest)).toContain(att.digest);
    // A tag in the proxied namespace would shadow the upstream's: refused.
    await c.file('proxy-attach/x.txt', 'x');
    const out = await c.refuses('oras', ['push', ...orasAuth(px), ref('up/models/upstream:mine'), 'x.txt'], { cwd: join(c.home, 'proxy-attach') });
    expect(out).toMatch(/denied/i);
  });
});
