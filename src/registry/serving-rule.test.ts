import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../oci/index.js';
import { SqliteMetadataStore } from '../storage/sqlite/sqlite-metadata-store.js';
import type { Verdict } from '../verify/types.js';
import { ServingRule, type LegacyKind, type VerdictSource } from './serving-rule.js';

/**
 * The one rule over the real SQLite store, with scripted verdicts: which manifests are allowed on
 * their own, and which verify as evidence about which subject. Every case is an attempt to get
 * something served by standing next to something allowed.
 */
let dir: string;
let store: SqliteMetadataStore;
const allowed = new Set<string>();
const evidence = new Set<string>(); // `${digest} ${subject} ${legacy}`
const op = { actor: 'op', reason: 'test' };

const verdict = (repository: string, digest: string, ok: boolean, reason: string): Verdict => ({
  digest,
  repository,
  allowed: ok,
  mode: 'enforce',
  wouldDeny: !ok,
  findings: [{ rule: 'r', check: 'signatures', ok, reason }],
  policyHash: 'p',
  trustHash: 't',
  rule: 'r',
  referrers: [],
  checkedAt: new Date().toISOString(),
});
const verdicts: VerdictSource = {
  check: async (r, d) => verdict(r, d, allowed.has(d), allowed.has(d) ? 'signed' : 'no signature found'),
  checkEvidence: async (r, d, s, l?: LegacyKind) => {
    const ok = evidence.has(`${d} ${s} ${l ?? ''}`);
    return { ...verdict(r, d, ok, ok ? 'verified' : 'evidence not verified: layer 0 is not evidence'), evidence: { subject: s } };
  },
  invalidate: () => undefined,
};
let rule: ServingRule;

const blob = (name: string): Digest => digestOf(name);
async function put(repository: string, o: { layers: Digest[]; subject?: Digest; tag?: string; index?: Digest[] }): Promise<Digest> {
  const body = o.index
    ? { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: o.index.map((d) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d, size: 2 })) }
    : {
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: blob('{}'), size: 2 },
        layers: o.layers.map((d) => ({ mediaType: 'application/octet-stream', digest: d, size: 1 })),
        ...(o.subject ? { subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: o.subject, size: 2 } } : {}),
      };
  const bytes = Buffer.from(JSON.stringify(body));
  const digest = digestOf(bytes);
  await store.putManifest(
    {
      repository,
      digest,
      mediaType: body.mediaType,
      artifactType: undefined,
      size: bytes.length,
      subject: o.subject,
      annotations: undefined,
      bytes,
      references: o.index ?? [blob('{}'), ...o.layers],
    },
    o.tag,
    op,
  );
  return digest;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'customs-serving-'));
  store = new SqliteMetadataStore(join(dir, 'metadata.sqlite'));
  rule = new ServingRule(verdicts, store);
});
afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const denied = { code: 'DENIED' };

describe('ServingRule', () => {
  it('serves an allowed manifest and its blobs; not a denied one, nor blobs only it references', async () => {
    const model = await put('m/fraud', { layers: [blob('weights v1')], tag: 'v1' });
    const unsigned = await put('m/fraud', { layers: [blob('unsigned weights')] });
    allowed.add(model);
    await expect(rule.manifest('m/fraud', model)).resolves.toEqual({});
    await expect(rule.blob('m/fraud', blob('weights v1'))).resolves.toEqual({});
    await expect(rule.manifest('m/fraud', unsigned)).rejects.toMatchObject(denied);
    await expect(rule.blob('m/fraud', blob('unsigned weights'))).rejects.toMatchObject(denied);
  });

  it('an unsigned referrer of an allowed subject is not served, nor its layers (the side door of issue 14)', async () => {
    const model = await put('m/side', { layers: [blob('good weights')] });
    allowed.add(model);
    const junk = await put('m/side', { layers: [blob('weights the gate denies')], subject: model });
    await expect(rule.manifest('m/side', junk)).rejects.toMatchObject({ code: 'DENIED', message: expect.stringContaining('evidence not verified') });
    await expect(rule.blob('m/side', blob('weights the gate denies'))).rejects.toMatchObject(denied);
    // The same referrer, once it verifies as evidence, is served with its layer.
    evidence.add(`${junk} ${model} `);
    await expect(rule.manifest('m/side', junk)).resolves.toEqual({});
    await expect(rule.blob('m/side', blob('weights the gate denies'))).resolves.toEqual({});
  });

  it('verified evidence of a denied subject is not served', async () => {
    const model = await put('m/denied', { layers: [blob('denied weights')] });
    const sig = await put('m/denied', { layers: [blob('a real signature')], subject: model });
    evidence.add(`${sig} ${model} `);
    await expect(rule.manifest('m/denied', sig)).rejects.toMatchObject({ code: 'DENIED', message: expect.stringContaining(`subject ${model} is not served`) });
  });

  it('a legacy sha256-<hex>.sig tag is evidence only when it verifies as a cosign signature', async () => {
    const model = await put('m/legacy', { layers: [blob('legacy model')] });
    allowed.add(model);
    const tag = `${model.replace(':', '-')}.sig`;
    const fake = await put('m/legacy', { layers: [blob('legacy smuggled')], tag });
    await expect(rule.manifest('m/legacy', fake)).rejects.toMatchObject(denied);
    await expect(rule.blob('m/legacy', blob('legacy smuggled'))).rejects.toMatchObject(denied);
    evidence.add(`${fake} ${model} sig`);
    await expect(rule.manifest('m/legacy', fake)).resolves.toEqual({});
  });

  it('children of a served index are served; of a denied index not', async () => {
    const child = await put('m/multi', { layers: [blob('amd64 layer')] });
    const index = await put('m/multi', { layers: [], index: [child] });
    await expect(rule.manifest('m/multi', child)).rejects.toMatchObject(denied);
    await expect(rule.blob('m/multi', blob('amd64 layer'))).rejects.toMatchObject(denied);
    allowed.add(index);
    await expect(rule.manifest('m/multi', child)).resolves.toEqual({});
    await expect(rule.blob('m/multi', blob('amd64 layer'))).resolves.toEqual({});
  });

  it('quarantine is absolute: the manifest everywhere, its blobs through any other owner, manifests that reference it', async () => {
    const shared = blob('shared base layer');
    const a = await put('q/a', { layers: [shared, blob('only a')] });
    const b = await put('q/b', { layers: [shared] });
    const ref = await put('q/a', { layers: [blob('sbom of a')], subject: a });
    allowed.add(a);
    allowed.add(b);
    evidence.add(`${ref} ${a} `);
    await store.quarantine(a, op);
    await expect(rule.manifest('q/a', a)).rejects.toMatchObject({ code: 'DENIED', detail: { quarantined: [a] } });
    await expect(rule.blob('q/a', blob('only a'))).rejects.toMatchObject(denied);
    // Its verified evidence is not served either: the subject is not.
    await expect(rule.manifest('q/a', ref)).rejects.toMatchObject(denied);
    // A layer shared with an unquarantined, allowed manifest stays readable through it.
    await expect(rule.blob('q/b', shared)).resolves.toEqual({});
    // Quarantining the layer itself: refused everywhere, and every manifest that references it is denied.
    await store.quarantine(shared, op);
    await expect(rule.blob('q/b', shared)).rejects.toMatchObject({ code: 'DENIED', detail: { quarantined: [shared] } });
    await expect(rule.manifest('q/b', b)).rejects.toMatchObject({ code: 'DENIED', message: expect.stringContaining('references quarantined content') });
    await store.release(shared, op);
    await store.release(a, op);
    await expect(rule.manifest('q/b', b)).resolves.toEqual({});
    await expect(rule.manifest('q/a', ref)).resolves.toEqual({});
  });

  it('a quarantined manifest does not lend its layers to an unsigned referrer in another repository', async () => {
    const weights = blob('quarantined weights');
    const model = await put('q/model', { layers: [weights] });
    allowed.add(model);
    await store.quarantine(model, op);
    const other = await put('q/elsewhere', { layers: [blob('x')] });
    allowed.add(other);
    const smuggler = await put('q/elsewhere', { layers: [weights], subject: other });
    await expect(rule.blob('q/elsewhere', weights)).rejects.toMatchObject(denied);
    await expect(rule.manifest('q/elsewhere', smuggler)).rejects.toMatchObject(denied);
  });

  it('where the policy serves anything (gate off), a blob whose only owner is quarantined is still refused', async () => {
    const weights = blob('weights under gate off');
    const model = await put('off/model', { layers: [weights] });
    allowed.add(model);
    allowed.add(weights); // what --gate off answers for any digest
    await expect(rule.blob('off/model', weights)).resolves.toEqual({});
    await store.quarantine(model, op);
    await expect(rule.blob('off/model', weights)).rejects.toMatchObject({ code: 'DENIED', message: expect.stringContaining('quarantined') });
  });

  it('a blob no manifest references is served only where the policy serves anything', async () => {
    await expect(rule.blob('m/orphans', blob('uploaded, no manifest yet'))).rejects.toMatchObject(denied);
    allowed.add(blob('allowed as a digest'));
    await expect(rule.blob('m/orphans', blob('allowed as a digest'))).resolves.toEqual({});
  });

  it('the cached answer (hot path) is "allowed" only when the full rule says so, and undefined otherwise', async () => {
    // A rule whose verdict source can peek: what `check` would answer, when it was asked before.
    const asked = new Map<string, Verdict>();
    const peeking: VerdictSource = {
      ...verdicts,
      check: async (r, d) => {
        const v = await verdicts.check(r, d);
        asked.set(`${r} ${d}`, v);
        return v;
      },
      peek: (r, d) => asked.get(`${r} ${d}`),
    };
    const hot = new ServingRule(peeking, store);
    const layer = blob('hot layer');
    const m = await put('m/hot', { layers: [layer] });
    const unsigned = await put('m/hot', { layers: [blob('hot unsigned layer')] });
    allowed.add(m);
    // Nothing cached yet: no answer, the full rule decides.
    expect(hot.manifestCached('m/hot', m)).toBeUndefined();
    await expect(hot.manifest('m/hot', m)).resolves.toEqual({});
    expect(hot.manifestCached('m/hot', m)).toEqual({});
    // A denied manifest never gets a cached answer.
    await expect(hot.manifest('m/hot', unsigned)).rejects.toMatchObject({ code: 'DENIED' });
    expect(hot.manifestCached('m/hot', unsigned)).toBeUndefined();
    // Quarantine of the manifest or of a layer it references: no cached answer, and the full rule refuses.
    await store.quarantine(layer, op);
    expect(hot.manifestCached('m/hot', m)).toBeUndefined();
    await expect(hot.manifest('m/hot', m)).rejects.toMatchObject({ code: 'DENIED' });
    await store.release(layer, op);
    expect(hot.manifestCached('m/hot', m)).toEqual({});
    await store.quarantine(m, op);
    expect(hot.manifestCached('m/hot', m)).toBeUndefined();
    await store.release(m, op);
    // A source that cannot peek: never a cached answer.
    expect(rule.manifestCached('m/hot', m)).toBeUndefined();
  });
});
