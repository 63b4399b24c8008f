import { execFile } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistryClient } from '../src/artifacts/client.js';
import { keyHint } from '../src/artifacts/sign.js';
import { digestTag, type Digest } from '../src/oci/index.js';
import { ACCEPT, clientFor, expectDenied, newKey, pushModel, pushSignature, req, type PushedModel } from './gate-fixtures.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { goTool } from './helpers/tools.js';

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { env, timeout: 120_000 }, (e, stdout, stderr) => (e ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr}`)) : resolve({ stdout, stderr }))),
  );
}

/**
 * Signed verification summaries: the first allow of a digest attaches a SLSA VSA signed with
 * customs' own key, found through the referrers API (sigstore bundle v0.3, as cosign v3 writes
 * it) and cosign's legacy `.att` tag, verified here with @sigstore/verify against the key served
 * at /admission/v1/verifier.pub. A quarantined digest gets none.
 */
const VSA = 'https://slsa.dev/verification_summary/v1';
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

interface Statement {
  _type: string;
  subject: { name: string; digest: Record<string, string> }[];
  predicateType: string;
  predicate: { verifier: { id: string }; timeVerified: string; verificationResult: string; inputAttestations: { digest: { sha256: string } }[]; policy: { digest: { sha256: string } }; verifiedLevels: string[]; resourceUri: string };
}

/** Verifies a sigstore bundle with @sigstore/verify, trusting exactly customs' public key; returns the statement. */
function verifyWithSigstore(bundleJson: unknown, publicPem: string): Statement {
  const key = createPublicKey(publicPem);
  const empty = toTrustMaterial(TrustedRoot.fromJSON({ mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1' }));
  const material = { ...empty, publicKey: (hint: string) => {
    if (hint !== keyHint(key)) throw new Error(`unknown key hint ${hint}`);
    return { publicKey: key, validFor: () => true };
  } };
  const bundle = bundleFromJSON(bundleJson);
  new Verifier(material, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(bundle));
  return JSON.parse(Buffer.from(bundle.content.$case === 'dsseEnvelope' ? bundle.content.dsseEnvelope.payload : Buffer.alloc(0)).toString('utf8')) as Statement;
}

async function expectQuarantined(res: Response): Promise<void> {
  expect(res.status).toBe(403);
  expect(((await res.json()) as { errors: { message: string }[] }).errors[0]!.message).toMatch(/is quarantined/);
}

describe('signed verification summaries (SLSA VSA)', () => {
  let data: string;
  let s: TestServer;
  let client: RegistryClient;
  const producer = newKey();
  let publicPem: string;

  beforeAll(async () => {
    data = await mkdtemp(join(tmpdir(), 'customs-vsa-'));
    await mkdir(join(data, 'trust', 'keys'), { recursive: true });
    await writeFile(join(data, 'trust', 'keys', 'producer.pub'), producer.publicPem);
    s = await startTestServer({ dataDir: data, gate: undefined, config: { policy: { rules: [{ name: 'models', match: 'models/**', signatures: { authorities: [{ trustedKeys: true }] } }] } } });
    client = clientFor(s);
    publicPem = await (await fetch(`${s.url}/admission/v1/verifier.pub`)).text();
  }, 120_000);
  afterAll(async () => {
    await s?.close();
    await rm(data, { recursive: true, force: true });
  });

  async function signedModel(repo: string, name: string): Promise<{ m: PushedModel; sig: Digest }> {
    const m = await pushModel(client, repo, 'v1', [{ path: 'model.safetensors', bytes: Buffer.from(`weights of ${name}`) }]);
    const sig = await pushSignature(client, repo, m.descriptor, producer.key);
    return { m, sig };
  }

  async function summaries(repo: string, digest: string): Promise<{ digest: string; annotations?: Record<string, string> }[]> {
    const r = await fetch(`${s.url}/v2/${repo}/referrers/${digest}?artifactType=${encodeURIComponent(BUNDLE)}`);
    expect(r.status).toBe(200);
    const index = (await r.json()) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    return index.manifests.filter((d) => d.annotations?.['dev.sigstore.bundle.predicateType'] === VSA);
  }

  async function layerOf(repo: string, reference: string): Promise<Buffer> {
    const m = (await (await req(s, 'GET', `${repo}/manifests/${reference}`)).json()) as { layers: { digest: string }[] };
    const b = await req(s, 'GET', `${repo}/blobs/${m.layers[0]!.digest}`);
    expect(b.status).toBe(200);
    return Buffer.from(await b.arrayBuffer());
  }

  it('generates customs verifier key on first use and serves its public key', async () => {
    expect(publicPem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(await readFile(join(data, 'trust', 'verifier.pub'), 'utf8')).toBe(publicPem);
    const key = await readFile(join(data, 'trust', 'verifier.key'), 'utf8');
    expect(key).toMatch(/PRIVATE KEY/);
    expect(createPublicKey(key).export({ type: 'spki', format: 'pem' })).toBe(publicPem);
    // Not a trusted content key: it vouches for its summaries only.
    expect((await import('node:fs')).readdirSync(join(data, 'trust', 'keys'))).toEqual(['producer.pub']);
  });

  it('attaches a summary on the first allow, verifiable with @sigstore/verify against customs key, by referrers and by .att tag', async () => {
    const { m, sig } = await signedModel('models/fraud', 'fraud');
    const before = Date.now();
    const pulled = await req(s, 'GET', `models/fraud/manifests/v1`);
    expect(pulled.status).toBe(200);
    await s.server.summaries!.settled();

    const found = await summaries('models/fraud', m.digest);
    expect(found).toHaveLength(1);
    expect(found[0]!.annotations?.['dev.sigstore.bundle.content']).toBe('dsse-envelope');
    const bundle = JSON.parse((await layerOf('models/fraud', found[0]!.digest)).toString()) as { mediaType: string };
    expect(bundle.mediaType).toBe(BUNDLE);
    const st = verifyWithSigstore(bundle, publicPem);
    expect(st.predicateType).toBe(VSA);
    expect(st.subject).toEqual([{ name: 'models/fraud', digest: { sha256: m.digest.slice(7) } }]);
    expect(st.predicate.verificationResult).toBe('PASSED');
    expect(st.predicate.verifier.id).toBe('https://customs.dev/verifier/v1');
    expect(st.predicate.inputAttestations.map((a) => `sha256:${a.digest.sha256}`)).toEqual([sig]);
    expect(st.predicate.verifiedLevels).toEqual(['SLSA_BUILD_LEVEL_0', 'CUSTOMS_SIGNATURES_VERIFIED']);
    expect(st.predicate.resourceUri).toBe(`oci://${s.host}/models/fraud@${m.digest}`);
    const issued = Date.parse(st.predicate.timeVerified);
    expect(issued).toBeGreaterThanOrEqual(before - 1000);
    expect(issued).toBeLessThanOrEqual(Date.now());

    // cosign's legacy tag: a DSSE envelope layer holding the same statement, signed by the same key.
    const envelope = JSON.parse((await layerOf('models/fraud', `${digestTag(m.digest)}.att`)).toString()) as { payload: string; payloadType: string; signatures: { sig: string }[] };
    const legacy = verifyWithSigstore({ mediaType: BUNDLE, verificationMaterial: { publicKey: { hint: keyHint(createPublicKey(publicPem)) }, tlogEntries: [] }, dsseEnvelope: envelope }, publicPem);
    expect(legacy).toEqual(st);

    // A summary by another key does not verify against customs' key.
    expect(() => verifyWithSigstore(bundle, newKey().publicPem)).toThrow();
  });

  it('cosign v3 verify-attestation finds and verifies it with customs public key (referrers bundle and legacy .att)', async () => {
    const { m } = await signedModel('models/cosign', 'cosign');
    expect((await req(s, 'GET', 'models/cosign/manifests/v1')).status).toBe(200);
    await s.server.summaries!.settled();
    const pub = join(data, 'customs-verifier.pub');
    await writeFile(pub, publicPem);
    const ref = `${s.host}/models/cosign@${m.digest}`;
    const base = ['verify-attestation', '--key', pub, '--type', VSA, '--insecure-ignore-tlog=true', '--allow-http-registry=true', '--allow-insecure-registry=true', '--output', 'json'];
    for (const bundleFormat of ['true', 'false']) {
      const out = await run(goTool('cosign'), [...base, `--new-bundle-format=${bundleFormat}`, ref], { ...process.env, HOME: data, SIGSTORE_NO_CACHE: 'true', TUF_ROOT: join(data, 'tuf') });
      const envelope = JSON.parse(out.stdout.trim().split('\n')[0]!) as { payload: string };
      const st = JSON.parse(Buffer.from(envelope.payload, 'base64').toString()) as Statement;
      expect(st.predicateType, `--new-bundle-format=${bundleFormat}: ${out.stderr}`).toBe(VSA);
      expect(st.subject[0]!.digest.sha256).toBe(m.digest.slice(7));
    }
  });

  it('publishes once per policy and trust: pulling again adds nothing', async () => {
    const { m } = await signedModel('models/again', 'again');
    for (let i = 0; i < 3; i++) {
      expect((await req(s, 'GET', `models/again/manifests/v1`)).status).toBe(200);
      await s.server.summaries!.settled();
    }
    expect(await summaries('models/again', m.digest)).toHaveLength(1);
  });

  it('publishes once across a restart too (the summary already attached is found by its policy and trust hashes)', async () => {
    const { m } = await signedModel('models/restart', 'restart');
    expect((await req(s, 'GET', 'models/restart/manifests/v1')).status).toBe(200);
    await s.server.summaries!.settled();
    await s.close();
    s = await startTestServer({ dataDir: data, gate: undefined, config: { policy: { rules: [{ name: 'models', match: 'models/**', signatures: { authorities: [{ trustedKeys: true }] } }] } } });
    client = clientFor(s);
    expect((await req(s, 'GET', 'models/restart/manifests/v1')).status).toBe(200);
    await s.server.summaries!.settled();
    expect(await summaries('models/restart', m.digest)).toHaveLength(1);
    // The same key after the restart: it was generated once.
    expect(await (await fetch(`${s.url}/admission/v1/verifier.pub`)).text()).toBe(publicPem);
  });

  it('writes none for a denied digest, and none for a quarantined one even when its verdict allows it', async () => {
    const unsigned = await pushModel(client, 'models/unsigned', 'v1', [{ path: 'model.safetensors', bytes: Buffer.from('unsigned weights') }]);
    await expectDenied(await req(s, 'GET', 'models/unsigned/manifests/v1'), 'unsigned');

    const { m } = await signedModel('models/poisoned', 'poisoned');
    const q = await fetch(`${s.url}/admin/quarantine`, { method: 'POST', headers: { ...s.auth(), 'content-type': 'application/json' }, body: JSON.stringify({ digest: m.digest, reason: 'INC-7: poisoned' }) });
    expect(q.status).toBe(200);
    await expectQuarantined(await req(s, 'GET', 'models/poisoned/manifests/v1'));
    // The verdict alone still allows it (customs verify asks the gate without quarantine): no summary all the same.
    const v = await fetch(`${s.url}/admin/verify`, { method: 'POST', headers: { ...s.auth(), 'content-type': 'application/json' }, body: JSON.stringify({ repository: 'models/poisoned', reference: 'v1' }) });
    expect(((await v.json()) as { allowed: boolean }).allowed).toBe(true);
    await s.server.summaries!.settled();
    expect(await summaries('models/poisoned', m.digest)).toEqual([]);
    expect(await summaries('models/unsigned', unsigned.digest)).toEqual([]);
  });

  it('a digest quarantined after its summary gets no new one when the trust changes', async () => {
    const { m } = await signedModel('models/later', 'later');
    expect((await req(s, 'GET', 'models/later/manifests/v1')).status).toBe(200);
    await s.server.summaries!.settled();
    expect(await summaries('models/later', m.digest)).toHaveLength(1);
    await fetch(`${s.url}/admin/quarantine`, { method: 'POST', headers: { ...s.auth(), 'content-type': 'application/json' }, body: JSON.stringify({ digest: m.digest, reason: 'INC-8' }) });
    // New trust material: a new trust hash, under which an allowed digest would get a new summary.
    await writeFile(join(data, 'trust', 'keys', 'second.pub'), newKey().publicPem);
    await s.server.reload();
    await expectQuarantined(await req(s, 'GET', 'models/later/manifests/v1'));
    await fetch(`${s.url}/admin/verify`, { method: 'POST', headers: { ...s.auth(), 'content-type': 'application/json' }, body: JSON.stringify({ repository: 'models/later', reference: 'v1' }) });
    await s.server.summaries!.settled();
    expect(await summaries('models/later', m.digest)).toHaveLength(1);
  });

  it('content signed by customs verifier key itself is not allowed: the key vouches for summaries only', async () => {
    const verifierKey = (await import('../src/artifacts/sign.js')).signingKeyFromPem(await readFile(join(data, 'trust', 'verifier.key'), 'utf8'));
    const m = await pushModel(client, 'models/self-signed', 'v1', [{ path: 'model.safetensors', bytes: Buffer.from('self') }]);
    await pushSignature(client, 'models/self-signed', m.descriptor, verifierKey);
    await expectDenied(await fetch(`${s.url}/v2/models/self-signed/manifests/v1`, { headers: { accept: ACCEPT } }), 'signed by the verifier key');
  });
});
