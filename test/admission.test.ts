import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientFor, newKey, pushModel, pushSignature, type PushedModel } from './gate-fixtures.js';
import { httpsJson } from './helpers/https-json.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { dataDirTrusting } from './helpers/trusted-data.js';
import { makeTestCa, pem } from './helpers/test-ca.js';

/**
 * The admission webhook over HTTPS, with AdmissionReview bodies shaped as the API server sends them
 * (test/fixtures/admission/: Pod with init and ephemeral containers, Deployment, StatefulSet,
 * DaemonSet, Job, CronJob, KServe InferenceService). Images name customs by its certificate's name
 * (`customs.test:5443`), which is one of its own hosts by default.
 */
const FIXTURES = new URL('./fixtures/admission/', import.meta.url).pathname;
const HOST = 'customs.test:5443';

interface Review {
  apiVersion: string;
  kind: string;
  request: { uid: string; namespace: string; kind: { kind: string }; object: Record<string, unknown>; operation: string };
}
interface ReviewResponse {
  apiVersion: string;
  kind: string;
  response: { uid: string; allowed: boolean; status?: { code: number; message: string }; patchType?: string; patch?: string; warnings?: string[] };
}

const fixture = async (name: string): Promise<Review> => JSON.parse(await readFile(join(FIXTURES, name), 'utf8')) as Review;
/** The fixture with every `models/good:v1` replaced by `image` (and other names kept). */
const withImage = (r: Review, from: string, to: string): Review => JSON.parse(JSON.stringify(r).split(from).join(to)) as Review;

/** RFC 6902 `replace`, strictly: the target must exist (a patch that does not apply cleanly throws). */
function applyPatch(doc: unknown, ops: { op: string; path: string; value: unknown }[]): unknown {
  const out = structuredClone(doc);
  for (const o of ops) {
    if (o.op !== 'replace') throw new Error(`unexpected op ${o.op}`);
    const parts = o.path.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    let cur = out as Record<string, unknown>;
    for (const p of parts.slice(0, -1)) {
      if (cur === null || typeof cur !== 'object' || !(p in cur)) throw new Error(`path ${o.path} does not exist`);
      cur = cur[p] as Record<string, unknown>;
    }
    const last = parts.at(-1)!;
    if (!(last in cur)) throw new Error(`path ${o.path} does not exist`);
    cur[last] = o.value;
  }
  return out;
}

const decodePatch = (r: ReviewResponse): { op: string; path: string; value: string }[] => {
  expect(r.response.patchType).toBe('JSONPatch');
  return JSON.parse(Buffer.from(r.response.patch!, 'base64').toString('utf8')) as { op: string; path: string; value: string }[];
};

describe('admission webhook (admission.k8s.io/v1) over HTTPS', () => {
  let dir: string;
  let data: string;
  let s: TestServer;
  let caPem: string;
  const producer = newKey();
  const models: Record<string, PushedModel> = {};
  let rollV1: PushedModel;
  let rollV2: PushedModel;
  const policy = { rules: [{ name: 'models', match: 'models/**', signatures: { authorities: [{ trustedKeys: true }] } }] };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'customs-admission-'));
    data = await dataDirTrusting(dir, { producer: producer.publicPem });
    const ca = makeTestCa(dir);
    ca.issue('server', { cn: 'customs', dns: ['customs.test'], ips: ['127.0.0.1'] });
    caPem = pem(ca.caCert);

    // Content first, over plain HTTP; then the same data directory served over TLS with the webhook on.
    const plain = await startTestServer({ dataDir: data, gate: undefined, config: { policy } });
    const client = clientFor(plain);
    for (const name of ['good', 'other', 'init', 'debug', 'quar']) {
      models[name] = await pushModel(client, `models/${name}`, 'v1', [{ path: 'model.safetensors', bytes: Buffer.from(`weights of ${name}`) }]);
      await pushSignature(client, `models/${name}`, models[name]!.descriptor, producer.key);
    }
    models.bad = await pushModel(client, 'models/bad', 'v1', [{ path: 'model.safetensors', bytes: Buffer.from('unsigned weights') }]);
    rollV1 = await pushModel(client, 'models/roll', 'prod', [{ path: 'model.safetensors', bytes: Buffer.from('roll v1') }]);
    await pushSignature(client, 'models/roll', rollV1.descriptor, producer.key);
    rollV2 = await pushModel(client, 'models/roll', 'prod', [{ path: 'model.safetensors', bytes: Buffer.from('roll v2') }]);
    await pushSignature(client, 'models/roll', rollV2.descriptor, producer.key);
    await plain.close({ keepData: true });

    s = await startTestServer({
      dataDir: data,
      gate: undefined,
      config: { policy, tls: { cert: join(dir, 'server.pem'), key: join(dir, 'server-key.pem') }, admission: { enabled: true } },
    });
    expect(s.url).toMatch(/^https:/);
  }, 120_000);
  afterAll(async () => {
    await s?.close({ keepData: true });
    await rm(dir, { recursive: true, force: true });
  });

  const post = async (endpoint: 'validate' | 'mutate', body: unknown): Promise<ReviewResponse> => {
    const r = await httpsJson('POST', `${s.url}/admission/v1/${endpoint}`, caPem, body);
    expect(r.status, r.text).toBe(200);
    return r.json as ReviewResponse;
  };
  const admin = (method: string, path: string, body?: unknown) => httpsJson(method, `${s.url}/admin/${path}`, caPem, body, s.auth());

  it('allows every workload kind whose images all pass the gate, echoing the uid', async () => {
    const files = (await readdir(FIXTURES)).filter((f) => f.endsWith('.json'));
    expect(files.sort()).toEqual(['cronjob.json', 'daemonset.json', 'deployment.json', 'inferenceservice.json', 'job.json', 'pod.json', 'statefulset.json']);
    for (const f of files) {
      const review = await fixture(f);
      const r = await post('validate', review);
      expect(r.apiVersion).toBe('admission.k8s.io/v1');
      expect(r.kind).toBe('AdmissionReview');
      expect(r.response, f).toMatchObject({ uid: review.request.uid, allowed: true });
      expect(r.response.patch, f).toBeUndefined();
    }
  });

  it('mutates each tag to the digest that was verified, with a JSONPatch that applies cleanly', async () => {
    const expected: Record<string, string[]> = {
      'pod.json': ['/spec/containers/0/image', '/spec/containers/1/image', '/spec/initContainers/0/image', '/spec/ephemeralContainers/0/image'],
      'deployment.json': ['/spec/template/spec/containers/0/image'],
      'statefulset.json': ['/spec/template/spec/containers/0/image'],
      'daemonset.json': ['/spec/template/spec/containers/0/image', '/spec/template/spec/initContainers/0/image'],
      'job.json': ['/spec/template/spec/containers/0/image'],
      'cronjob.json': ['/spec/jobTemplate/spec/template/spec/containers/0/image'],
      'inferenceservice.json': ['/spec/predictor/model/storageUri', '/spec/transformer/containers/0/image'],
    };
    for (const [f, paths] of Object.entries(expected)) {
      const review = await fixture(f);
      const r = await post('mutate', review);
      expect(r.response.allowed, f).toBe(true);
      const patch = decodePatch(r);
      expect(patch.map((p) => p.path).sort(), f).toEqual([...paths].sort());
      const patched = applyPatch(review.request.object, patch);
      for (const p of patch) {
        const name = /models\/(\w+):v1@/.exec(p.value)?.[1];
        expect(p.value, f).toBe(`${p.path.endsWith('storageUri') ? 'oci://' : ''}${HOST}/models/${name}:v1@${models[name!]!.digest}`);
      }
      // Patched again, the object names digests only: nothing left to rewrite, and still allowed.
      const again = await post('mutate', { ...review, request: { ...review.request, object: patched } });
      expect(again.response.allowed).toBe(true);
      expect(again.response.patch).toBeUndefined();
    }
  });

  it('denies with every failed rule, and records one audit entry naming them', async () => {
    let review = await fixture('pod.json');
    review = withImage(review, `${HOST}/models/other:v1`, `${HOST}/models/bad:v1`);
    review = withImage(review, `${HOST}/models/debug:v1`, `${HOST}/models/missing:v1`);
    const r = await post('validate', review);
    expect(r.response.allowed).toBe(false);
    expect(r.response.status?.code).toBe(403);
    const msg = r.response.status!.message;
    expect(msg).toMatch(/^customs denied Pod ml\/fraud-scorer: /);
    expect(msg).toContain(`container sidecar (${HOST}/models/bad:v1): models/signatures: no signature found`);
    expect(msg).toContain(`ephemeralContainer debugger (${HOST}/models/missing:v1): models/missing:v1 is not in customs`);
    expect(msg).not.toContain('container scorer');
    // The mutating endpoint refuses it too, and patches nothing.
    const m = await post('mutate', review);
    expect(m.response.allowed).toBe(false);
    expect(m.response.patch).toBeUndefined();

    const audit = await admin('GET', 'audit?since=10m');
    const entries = (audit.json as { entries: { actor: string; action: string; target?: string; reason?: string }[] }).entries.filter((e) => e.action === 'admission.deny');
    const validate = entries.filter((e) => e.target === 'Pod ml/fraud-scorer');
    expect(validate.length).toBe(2); // one per denial: validate and mutate
    expect(validate[0]!.actor).toBe('k8s:system:serviceaccount:ml:deployer');
    expect(validate[0]!.reason).toContain('models/signatures: no signature found');

    // A dry run is denied the same way and leaves no audit entry (sideEffects: NoneOnDryRun).
    const dry = await post('validate', { ...review, request: { ...review.request, dryRun: true } });
    expect(dry.response.allowed).toBe(false);
    const after = ((await admin('GET', 'audit?since=10m')).json as { entries: { action: string; target?: string }[] }).entries;
    expect(after.filter((e) => e.action === 'admission.deny' && e.target === 'Pod ml/fraud-scorer')).toHaveLength(2);
  });

  it('denies images from registries customs does not serve (the node would pull them unverified)', async () => {
    for (const image of ['ghcr.io/acme/model:v1', 'nginx:1.27', 'registry.example:5000/models/good:v1']) {
      const r = await post('validate', withImage(await fixture('deployment.json'), `${HOST}/models/good:v1`, image));
      expect(r.response.allowed, image).toBe(false);
      expect(r.response.status!.message).toMatch(/is neither customs nor one of its upstreams/);
    }
    const hub = await post('validate', withImage(await fixture('deployment.json'), `${HOST}/models/good:v1`, 'nginx'));
    expect(hub.response.status!.message).toContain('registry docker.io is neither customs');
  });

  it('skips the configured namespaces and answers DELETE without looking', async () => {
    const review = withImage(await fixture('pod.json'), `${HOST}/models/good:v1`, `${HOST}/models/bad:v1`);
    const skipped = await post('validate', { ...review, request: { ...review.request, namespace: 'kube-system' } });
    expect(skipped.response.allowed).toBe(true);
    const del = await post('validate', { ...review, request: { ...review.request, operation: 'DELETE' } });
    expect(del.response.allowed).toBe(true);
  });

  it('a quarantine takes effect on the next admission request', async () => {
    const review = withImage(await fixture('cronjob.json'), `${HOST}/models/good:v1`, `${HOST}/models/quar:v1`);
    expect((await post('validate', review)).response.allowed).toBe(true);
    const q = await admin('POST', 'quarantine', { digest: models.quar!.digest, reason: 'INC-9: poisoned training data' });
    expect(q.status).toBe(200);
    const r = await post('validate', review);
    expect(r.response.allowed).toBe(false);
    expect(r.response.status!.message).toContain(`${models.quar!.digest} is quarantined`);
    // Pinned to the digest it does not get through either.
    const pinned = withImage(await fixture('cronjob.json'), `${HOST}/models/good:v1`, `${HOST}/models/quar@${models.quar!.digest}`);
    expect((await post('mutate', pinned)).response.allowed).toBe(false);
  });

  it('a rollback takes effect on the next admission request: the tag mutates to the rolled-back digest', async () => {
    const review = withImage(await fixture('inferenceservice.json'), `${HOST}/models/good:v1`, `${HOST}/models/roll:prod`);
    const before = decodePatch(await post('mutate', review)).find((p) => p.path.endsWith('storageUri'))!;
    expect(before.value).toBe(`oci://${HOST}/models/roll:prod@${rollV2.digest}`);
    const rb = await admin('POST', 'rollback', { repository: 'models/roll', tag: 'prod', steps: 1, reason: 'INC-10' });
    expect(rb.status, rb.text).toBe(200);
    const after = decodePatch(await post('mutate', review)).find((p) => p.path.endsWith('storageUri'))!;
    expect(after.value).toBe(`oci://${HOST}/models/roll:prod@${rollV1.digest}`);
  });

  it('judges hf:// storage URIs by what its Hugging Face API would serve, and pins them to the commit it answers', async () => {
    const isvc = await fixture('inferenceservice.json');
    const hf = (to: string) => withImage(isvc, `oci://${HOST}/models/good:v1`, to);
    const ok = await post('mutate', hf('hf://models/good:v1'));
    expect(ok.response.allowed, ok.response.status?.message).toBe(true);
    const pin = decodePatch(ok).find((p) => p.path === '/spec/predictor/model/storageUri')!;
    // A local repository's commit id is the first 40 hex digits of its manifest digest (src/hub/service.ts).
    expect(pin.value).toBe(`hf://models/good:${models.good!.digest.slice('sha256:'.length, 'sha256:'.length + 40)}`);
    // The pinned URI resolves to the same model and needs no rewrite.
    const again = await post('mutate', hf(pin.value));
    expect(again.response.allowed).toBe(true);
    expect(again.response.patch ? decodePatch(again).map((p) => p.path) : []).not.toContain('/spec/predictor/model/storageUri');
    // Refused as the OCI path refuses: unsigned, unknown, quarantined (models/quar, by the test above), malformed.
    const bad = await post('validate', hf('hf://models/bad:v1'));
    expect(bad.response.allowed).toBe(false);
    expect(bad.response.status!.message).toContain('predictor.model storageUri (hf://models/bad:v1): models/signatures: no signature found');
    const missing = await post('validate', hf('hf://models/nothere:v1'));
    expect(missing.response.allowed).toBe(false);
    expect(missing.response.status!.message).toMatch(/hf:\/\/models\/nothere:v1\): .*not found/);
    const quarantined = await post('validate', hf('hf://models/quar:v1'));
    expect(quarantined.response.allowed).toBe(false);
    expect(quarantined.response.status!.message).toContain(`${models.quar!.digest} is quarantined`);
    const malformed = await post('validate', hf('hf://just-a-name'));
    expect(malformed.response.allowed).toBe(false);
    expect(malformed.response.status!.message).toContain('not a Hugging Face model URI');
  });

  it('answers 400 to a body that is not an AdmissionReview', async () => {
    const r = await httpsJson('POST', `${s.url}/admission/v1/validate`, caPem, { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} });
    expect(r.status).toBe(400);
    expect(r.text).toContain('not an admission.k8s.io/v1 AdmissionReview');
    expect((await httpsJson('POST', `${s.url}/admission/v1/validate`, caPem, 'not json')).status).toBe(400);
  });
});

