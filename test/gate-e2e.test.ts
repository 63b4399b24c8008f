import { execFile } from 'node:child_process';
import { randomBytes, sign } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistryClient } from '../src/artifacts/client.js';
import { MediaType, digestOf, digestTag, type Digest } from '../src/oci/index.js';
import { makePickles } from './helpers/verify.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import {
  AUDIT_HEADER,
  clientFor,
  expectDenied,
  expectOk,
  expectPullAllowed,
  expectPullDenied,
  newKey,
  pushModel,
  pushSignature,
  pushSignatureWithLayer,
  req,
  type ModelFile,
} from './gate-fixtures.js';

/**
 * Issue 4, "What it must show": the verification gate seen by a client over HTTP, against a
 * real customs server. Signatures are what `cosign sign --key` (v3) pushes: a sigstore bundle
 * v0.3 with a DSSE envelope over the `https://sigstore.dev/cosign/sign/v1` statement, as an
 * OCI 1.1 referrer. Trust: the public keys in <data>/trust/keys/ (`customs keygen --data`).
 */
const trustedKeys = [{ trustedKeys: true }];
const policy = {
  default: 'deny',
  rules: [
    { name: 'models', match: 'models/**', signatures: { authorities: trustedKeys } },
    { name: 'audited', match: 'audited/**', mode: 'audit', signatures: { authorities: trustedKeys } },
    { name: 'pickles', match: 'pickles/**', signatures: { authorities: trustedKeys }, model: { pickleScan: true } },
  ],
};
const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;

const model = (n: string): ModelFile[] => [
  { path: 'config.json', bytes: Buffer.from(JSON.stringify({ hidden: 8, name: n })) },
  { path: 'model.safetensors', bytes: randomBytes(40_000) },
];

describe('verification gate over HTTP (enforcing policy, keys in <data>/trust/keys)', () => {
  let data: string;
  let s: TestServer;
  let client: RegistryClient;
  const trusted = newKey();
  const stranger = newKey();
  let pickles: Record<string, Buffer>;

  beforeAll(async () => {
    pickles = makePickles();
    data = await mkdtemp(join(tmpdir(), 'customs-gate-e2e-'));
    await mkdir(join(data, 'trust', 'keys'), { recursive: true });
    await writeFile(join(data, 'trust', 'keys', 'trusted.pub'), trusted.publicPem);
    // gate: undefined, so the policy's own modes apply (the helper defaults to --gate off).
    s = await startTestServer({ dataDir: data, gate: undefined, config: { policy } });
    client = clientFor(s);
  }, 120_000);
  afterAll(async () => {
    await s?.close();
    await rm(data, { recursive: true, force: true });
  });

  it('denies an unsigned model by tag, by digest (GET and HEAD), and every blob by digest', async () => {
    const m = await pushModel(client, 'models/unsigned', 'v1', model('unsigned'));
    const denials = await expectPullDenied(s, 'models/unsigned', 'v1', m);
    const manifestDenial = denials[0]!;
    expect(manifestDenial.detail).toMatchObject({ digest: m.digest, rule: 'models' });
    expect(manifestDenial.detail.failed).toEqual([{ rule: 'models', check: 'signatures', reason: expect.stringMatching(/no signature found/) }]);
    expect(manifestDenial.message).toMatch(/models\/signatures: no signature found/);
    // Blob denials say why too: the manifest owning it is denied.
    const blobDenial = denials[4]!;
    expect(blobDenial.message).toMatch(new RegExp(`blob ${m.config} belongs to no manifest served in models/unsigned`));
    expect(blobDenial.detail.failed?.[0]?.check).toBe('signatures');
  });

  it("a pusher's HEAD learns that a denied blob exists (so pushes do not fail); its GET stays denied", async () => {
    const m = await pushModel(client, 'models/repush', 'v1', model('repush'));
    const layer = m.layers[1]!;
    const head = await req(s, 'HEAD', `models/repush/blobs/${layer}`, { asPusher: true });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('40000');
    await expectDenied(await req(s, 'GET', `models/repush/blobs/${layer}`, { asPusher: true }), 'GET by a pusher');
    await expectDenied(await req(s, 'HEAD', `models/repush/blobs/${layer}`), 'anonymous HEAD');
    // Pushing the same model again under another tag (every blob already there) works.
    const again = await pushModel(client, 'models/repush', 'v2', [{ path: 'config.json', bytes: Buffer.from(JSON.stringify({ hidden: 8, name: 'repush' })) }]);
    await expectPullDenied(s, 'models/repush', 'v2', again);
  });

  it('a signature referrer makes it pullable without a restart; deleting the signature denies it again', async () => {
    const m = await pushModel(client, 'models/demo', 'v1', model('demo'));
    await expectPullDenied(s, 'models/demo', 'v1', m); // verdict now cached as denied
    const sig = await pushSignature(client, 'models/demo', m.descriptor, trusted.key);
    await expectPullAllowed(s, 'models/demo', 'v1', m);
    // The signature itself is served (evidence of allowed content), manifest and layer.
    const sigManifest = JSON.parse((await expectOk(await req(s, 'GET', `models/demo/manifests/${sig}`), 'signature manifest', sig)).toString()) as { layers: { digest: Digest }[] };
    await expectOk(await req(s, 'GET', `models/demo/blobs/${sigManifest.layers[0]!.digest}`), 'signature bundle blob', sigManifest.layers[0]!.digest);

    const del = await req(s, 'DELETE', `models/demo/manifests/${sig}`);
    expect(del.status).toBe(202);
    await expectPullDenied(s, 'models/demo', 'v1', m);

    await pushSignature(client, 'models/demo', m.descriptor, trusted.key);
    await expectPullAllowed(s, 'models/demo', 'v1', m);
  });

  it('a signature by an untrusted key, or one binding another digest, does not help', async () => {
    const m = await pushModel(client, 'models/forged', 'v1', model('forged'));
    await pushSignature(client, 'models/forged', m.descriptor, stranger.key);
    const [byKey] = await expectPullDenied(s, 'models/forged', 'v1', m);
    expect(byKey!.message).toMatch(/0 of 1 required signature\(s\) verified; rejected: sigstore bundle/);

    // A valid signature by the trusted key, but over another artifact's digest (replayed onto this one).
    const other = await pushModel(client, 'models/forged', 'other', model('other'));
    await pushSignature(client, 'models/forged', m.descriptor, trusted.key, other.digest);
    const [byDigest] = await expectPullDenied(s, 'models/forged', 'v1', m);
    expect(byDigest!.message).toMatch(/does not match the served manifest/);
    await expectPullDenied(s, 'models/forged', 'other', other);
  });

  it('the referrers API is not gated, but the referrers and their blobs of a denied subject are not served', async () => {
    const m = await pushModel(client, 'models/evidence', 'v1', model('evidence'));
    const { digest: sig, layer } = await pushSignatureWithLayer(client, 'models/evidence', m.descriptor, stranger.key);
    const list = await req(s, 'GET', `models/evidence/referrers/${m.digest}`);
    const index = JSON.parse((await expectOk(list, 'referrers API')).toString()) as { manifests: { digest: string; artifactType: string }[] };
    expect(index.manifests.map((d) => d.digest)).toEqual([sig]);
    // Reading the referrer manifest itself needs its own verdict (none) or an allowed subject (denied).
    await expectDenied(await req(s, 'GET', `models/evidence/manifests/${sig}`), 'referrer manifest of a denied subject');
    // Its blob (the bundle layer), by digest.
    await expectDenied(await req(s, 'GET', `models/evidence/blobs/${layer}`), 'referrer blob of a denied subject');
    await expectDenied(await req(s, 'HEAD', `models/evidence/blobs/${layer}`), 'referrer blob of a denied subject (HEAD)');
  });

  it("audit mode (a rule's mode) serves with the findings in the customs-audit-findings header", async () => {
    const m = await pushModel(client, 'audited/demo', 'v1', model('audited'));
    const responses = await expectPullAllowed(s, 'audited/demo', 'v1', m);
    for (const r of responses) expect(r.headers.get(AUDIT_HEADER), r.url).toMatch(/audited\/signatures: no signature found/);
    await pushSignature(client, 'audited/demo', m.descriptor, trusted.key);
    const clean = await req(s, 'GET', 'audited/demo/manifests/v1');
    await expectOk(clean, 'signed under audit');
    expect(clean.headers.get(AUDIT_HEADER)).toBeNull();
  });

  it('a signed pickle that calls os.system is denied under pickleScan; a signed joblib sklearn model is allowed', async () => {
    const evil = await pushModel(client, 'pickles/evil', 'v1', [{ path: 'model.pkl', bytes: pickles['evil-p4.pkl']! }]);
    await pushSignature(client, 'pickles/evil', evil.descriptor, trusted.key);
    const [d] = await expectPullDenied(s, 'pickles/evil', 'v1', evil);
    expect(d!.detail.failed).toEqual([{ rule: 'pickles', check: 'model', reason: expect.stringMatching(/model\.pkl imports posix\.system \(dangerous\)/) }]);

    const sk = await pushModel(client, 'pickles/sklearn', 'v1', [{ path: 'model.joblib', bytes: pickles['iforest.joblib']! }]);
    await expectPullDenied(s, 'pickles/sklearn', 'v1', sk); // unsigned
    await pushSignature(client, 'pickles/sklearn', sk.descriptor, trusted.key);
    await expectPullAllowed(s, 'pickles/sklearn', 'v1', sk);
  });

  it('an index signed as a whole serves its child manifests and their blobs, not unrelated manifests', async () => {
    const repo = 'models/multi';
    const children = [];
    for (const arch of ['amd64', 'arm64']) children.push(await pushModel(client, repo, `child-${arch}`, model(arch)));
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: children.map((c) => ({ ...c.descriptor, platform: { os: 'linux', architecture: 'amd64' } })) }));
    await client.putManifest(repo, 'v1', index, MediaType.ociIndex);
    const indexDesc = { mediaType: MediaType.ociIndex, digest: digestOf(index), size: index.length };
    const unrelated = await pushModel(client, repo, 'unrelated', model('unrelated'));

    await expectDenied(await req(s, 'GET', `${repo}/manifests/v1`), 'unsigned index');
    await expectDenied(await req(s, 'GET', `${repo}/manifests/${children[0]!.digest}`), 'child of an unsigned index');

    await pushSignature(client, repo, indexDesc, trusted.key);
    await expectOk(await req(s, 'GET', `${repo}/manifests/v1`), 'signed index', indexDesc.digest);
    for (const c of children) {
      await expectOk(await req(s, 'GET', `${repo}/manifests/${c.digest}`), 'child manifest', c.digest);
      for (const b of [c.config, ...c.layers]) await expectOk(await req(s, 'GET', `${repo}/blobs/${b}`), 'child blob', b);
    }
    await expectPullDenied(s, repo, 'unrelated', unrelated);
  });

  it('a cosign legacy sha256-<hex>.sig tag signs the model; the .sig manifest and its blobs are served as evidence', async () => {
    const repo = 'models/legacy';
    const m = await pushModel(client, repo, 'v1', model('legacy'));
    // `cosign sign --key` (v2, legacy layout): a simple-signing payload, its signature in a layer annotation.
    const payload = Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': `127.0.0.1/${repo}` }, image: { 'docker-manifest-digest': m.digest }, type: 'cosign container image signature' }, optional: null }));
    const signature = sign('sha256', payload, trusted.key.privateKey).toString('base64');
    const config = Buffer.from('{"architecture":"","os":""}');
    await client.pushBlob(repo, { kind: 'bytes', data: payload });
    await client.pushBlob(repo, { kind: 'bytes', data: config });
    const sigManifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: digestOf(payload), size: payload.length, annotations: { 'dev.cosignproject.cosign/signature': signature } }],
      }),
    );
    await expectPullDenied(s, repo, 'v1', m); // verdict cached as denied
    const tag = `${digestTag(m.digest)}.sig`;
    await client.putManifest(repo, tag, sigManifest, MediaType.ociManifest);
    // A tag push does not name a subject, so nothing invalidated the cached verdict: customs must see the tag anyway.
    await expectPullAllowed(s, repo, 'v1', m);
    await expectOk(await req(s, 'GET', `${repo}/manifests/${tag}`), 'the .sig manifest', digestOf(sigManifest));
    await expectOk(await req(s, 'GET', `${repo}/blobs/${digestOf(payload)}`), 'the simple-signing payload', digestOf(payload));

    // A payload naming another digest does not count (critical.image.docker-manifest-digest must equal the subject).
    const other = await pushModel(client, repo, 'other', model('legacy-other'));
    const otherTag = `${digestTag(other.digest)}.sig`;
    await client.putManifest(repo, otherTag, sigManifest, MediaType.ociManifest);
    const [d] = await expectPullDenied(s, repo, 'other', other);
    expect(d!.message).toMatch(/docker-manifest-digest|does not match/);

    // Deleting the .sig tag takes the signature away again.
    expect((await req(s, 'DELETE', `${repo}/manifests/${tag}`)).status).toBe(202);
    await expectPullDenied(s, repo, 'v1', m);
  });

  it('SIGHUP reload: a key added to <data>/trust/keys makes a previously denied artifact allowed', async () => {
    const newcomer = newKey();
    const m = await pushModel(client, 'models/later', 'v1', model('later'));
    await pushSignature(client, 'models/later', m.descriptor, newcomer.key);
    await expectPullDenied(s, 'models/later', 'v1', m);
    await writeFile(join(data, 'trust', 'keys', 'newcomer.pub'), newcomer.publicPem);
    await expectPullDenied(s, 'models/later', 'v1', m); // trust material is read at start and on reload only
    await s.server.reload();
    await expectPullAllowed(s, 'models/later', 'v1', m);
  });

  it('customs verify: exit 0 when allowed, 1 when denied, each finding printed; --config evaluates a what-if policy', async () => {
    const signed = await pushModel(client, 'models/cli', 'signed', model('cli-signed'));
    await pushSignature(client, 'models/cli', signed.descriptor, trusted.key);
    await pushModel(client, 'models/cli', 'unsigned', model('cli-unsigned'));
    const env = { ...process.env, CUSTOMS_TOKEN: s.token ?? '' };
    const verify = async (...args: string[]) =>
      run(process.execPath, ['bin/customs.js', 'verify', ...args, '--url', s.url], { cwd: ROOT, env }).then(
        (r) => ({ code: 0, stdout: r.stdout }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout + e.stderr }),
      );

    const ok = await verify('models/cli:signed');
    expect(ok.code, ok.stdout).toBe(0);
    expect(ok.stdout).toMatch(/ALLOWED\s+rule=models mode=enforce/);
    expect(ok.stdout).toMatch(/ok\s+models\/signatures: 1 of 1 required signature\(s\) verified/);

    const no = await verify('models/cli:unsigned');
    expect(no.code, no.stdout).toBe(1);
    expect(no.stdout).toMatch(/DENIED\s+rule=models/);
    expect(no.stdout).toMatch(/FAIL\s+models\/signatures: no signature found/);

    const byDigest = await verify(`models/cli@${signed.digest}`);
    expect(byDigest.code, byDigest.stdout).toBe(0);

    // What-if: also require an SBOM. The signed model has none, so it would be denied; the server's verdict is unchanged.
    const cfg = join(data, '..', `${data.split('/').pop()}-whatif.yaml`);
    await writeFile(cfg, ['policy:', '  default: deny', '  rules:', '    - name: strict', '      match: "models/**"', '      signatures: { authorities: [ { trustedKeys: true } ] }', '      sbom: { required: true }', ''].join('\n'));
    try {
      const whatIf = await verify('models/cli:signed', '--config', cfg);
      expect(whatIf.code, whatIf.stdout).toBe(1);
      expect(whatIf.stdout).toMatch(/DENIED\s+rule=strict/);
      expect(whatIf.stdout).toMatch(/ok\s+strict\/signatures/);
      expect(whatIf.stdout).toMatch(/FAIL\s+strict\/sbom: no SBOM found/);
      await expectOk(await req(s, 'GET', 'models/cli/manifests/signed'), 'server policy unchanged by a what-if', signed.digest);
    } finally {
      await rm(cfg, { force: true });
    }
  });
});

describe('--gate audit (every rule in audit mode)', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ gate: 'audit' });
  });
  afterAll(() => s?.close());

  it('serves an unsigned model, manifest and blobs, with the findings in a header', async () => {
    const m = await pushModel(clientFor(s), 'anything/model', 'v1', model('any'));
    const responses = await expectPullAllowed(s, 'anything/model', 'v1', m);
    for (const r of responses) expect(r.headers.get(AUDIT_HEADER), r.url).toMatch(/default\/signatures: no signature found/);
  });
});

describe('--gate enforce with the secure default (no config): keys from <data>/trust/keys', () => {
  let s: TestServer;
  const key = newKey();
  beforeAll(async () => {
    s = await startTestServer({ gate: 'enforce' });
  });
  afterAll(() => s?.close());

  it('denies until `customs keygen --data` style trust plus reload, then serves the signed model', async () => {
    const client = clientFor(s);
    const m = await pushModel(client, 'team/model', 'v1', model('team'));
    await pushSignature(client, 'team/model', m.descriptor, key.key);
    const [d] = await expectPullDenied(s, 'team/model', 'v1', m);
    expect(d!.detail.rule).toBe('default');
    await mkdir(join(s.dataDir, 'trust', 'keys'), { recursive: true });
    await writeFile(join(s.dataDir, 'trust', 'keys', 'team.pub'), key.publicPem);
    await s.server.reload();
    await expectPullAllowed(s, 'team/model', 'v1', m);
  });
});
