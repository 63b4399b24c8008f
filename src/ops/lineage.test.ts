import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, EMPTY_JSON_DIGEST, type Digest } from '../oci/index.js';
import { FsBlobStore } from '../storage/fs/fs-blob-store.js';
import { SqliteMetadataStore } from '../storage/sqlite/sqlite-metadata-store.js';
import { createOps, type Ops } from './index.js';

/** Lineage indexing from stored referrer layers (raw DSSE here), over the real stores. */
let dir: string;
let blobs: FsBlobStore;
let metadata: SqliteMetadataStore;
let ops: Ops;
const warnings: string[] = [];
const by = { actor: 'proxy' };
/** Referrers whose signature verified (what the gate's evidence check would say). */
const signed = new Set<Digest>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'customs-lineage-'));
  blobs = new FsBlobStore(dir);
  await blobs.init();
  metadata = new SqliteMetadataStore(join(dir, 'metadata.sqlite'));
  ops = createOps({
    metadata,
    blobs,
    gate: { manifest: async () => ({}), blob: async () => ({}), invalidate: () => undefined },
    log: { warn: (_o, m) => void warnings.push(m), info: () => undefined },
    evidence: async (_r, referrer) => (signed.has(referrer) ? { status: 'verified', detail: 'signature verified' } : { status: 'unverified', detail: 'no signature verifies' }),
  });
});
afterAll(async () => {
  await metadata.close();
  await rm(dir, { recursive: true, force: true });
});

async function storeManifest(repository: string, doc: object, subject?: Digest): Promise<Digest> {
  const bytes = Buffer.from(JSON.stringify(doc));
  const digest = digestOf(bytes);
  const refs = [...(((doc as { layers?: { digest: Digest }[] }).layers ?? []).map((l) => l.digest)), (doc as { config: { digest: Digest } }).config.digest];
  await metadata.putManifest({ repository, digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: undefined, size: bytes.length, subject, annotations: undefined, bytes, references: refs }, undefined, by);
  return digest;
}

async function dsseReferrer(repository: string, subject: Digest, statementSubject: Digest, dataset: Digest): Promise<Digest> {
  const st = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'x', digest: { sha256: statementSubject.slice(7) } }],
    predicateType: 'https://slsa.dev/provenance/v1',
    predicate: { buildDefinition: { resolvedDependencies: [{ name: 'ds', digest: { sha256: dataset.slice(7) }, annotations: { role: 'training-dataset' } }] }, runDetails: { builder: { id: 'b' } } },
  };
  const env = Buffer.from(JSON.stringify({ payloadType: 'application/vnd.in-toto+json', payload: Buffer.from(JSON.stringify(st)).toString('base64'), signatures: [{ keyid: 'k', sig: 'AA==' }] }));
  const layer = await blobs.put(Readable.from([env]));
  return storeManifest(
    repository,
    {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY_JSON_DIGEST, size: 2 },
      layers: [{ mediaType: 'application/vnd.dsse.envelope.v1+json', digest: layer.digest, size: layer.size }],
      subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: subject, size: 10 },
    },
    subject,
  );
}

describe('lineage', () => {
  const model = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY_JSON_DIGEST, size: 2 }, layers: [] };
  const dataset = digestOf('dataset bytes');

  it('indexes referrers stored without the write hooks when lineage is asked, and then finds consumers', async () => {
    const m = await storeManifest('up/model', model);
    const ref = await dsseReferrer('up/model', m, m, dataset);
    signed.add(ref);
    expect((await ops.lineage.consumers(dataset)).consumers).toEqual([]); // not indexed yet: stored behind the hooks' back
    const l = await ops.lineage.lineage('up/model', { kind: 'digest', digest: m });
    expect(l.datasets.map((x) => x.digest)).toEqual([{ sha256: dataset.slice(7) }]);
    expect(l.provenance[0]!.signers).toEqual(['keyid:k']);
    expect((await ops.lineage.consumers(dataset)).consumers.map((c) => c.digest)).toEqual([m]);
  });

  it('unverified provenance is listed apart and never counted: it cannot make a good model a consumer', async () => {
    const poisoned = digestOf('poisoned dataset');
    const good = await storeManifest('up/good', { ...model, annotations: { n: 'good' } });
    const forged = await dsseReferrer('up/good', good, good, poisoned); // attached by anyone with a push token
    const l = await ops.lineage.lineage('up/good', { kind: 'digest', digest: good });
    expect(l.provenance).toEqual([]);
    expect(l.datasets).toEqual([]);
    expect(l.unverifiedProvenance.map((p) => [p.referrer, p.evidence, p.materials[0]!.digest])).toEqual([[forged, 'unverified', { sha256: poisoned.slice(7) }]]);
    const report = await ops.lineage.consumers(poisoned);
    expect(report.consumers).toEqual([]);
    expect(report.unverified.map((c) => [c.digest, c.referrer])).toEqual([[good, forged]]);
    const q = await ops.quarantine.quarantineMaterial(poisoned, { rollback: true, pin: false }, { actor: 'op', reason: 'INC' });
    expect(q.affected).toBe(0);
    expect(await metadata.quarantinedAmong([good])).toEqual([]);
    expect(q.unverified.map((c) => c.digest)).toEqual([good]);
  });

  it('finds the consumers of a dataset by the digest of a file it holds', async () => {
    const csv = await blobs.put(Readable.from([Buffer.from('id,amount\n1,2\n')]));
    const ds = await storeManifest('up/data', { ...model, layers: [{ mediaType: 'text/csv', digest: csv.digest, size: csv.size, annotations: { 'org.opencontainers.image.title': 'transactions.csv' } }] });
    const m = await storeManifest('up/trained', { ...model, annotations: { n: 'trained' } });
    signed.add(await dsseReferrer('up/trained', m, m, ds));
    await ops.lineage.lineage('up/trained', { kind: 'digest', digest: m }); // indexes the referrer
    const byFile = await ops.lineage.consumers(csv.digest);
    expect(byFile.containedIn).toEqual([{ repository: 'up/data', digest: ds }]);
    expect(byFile.consumers.map((c) => [c.repository, c.digest, c.via])).toEqual([['up/trained', m, ds]]);
    const l = await ops.lineage.lineage('up/trained', { kind: 'digest', digest: m });
    expect(l.datasets[0]!.files).toEqual([{ path: 'transactions.csv', digest: csv.digest, size: csv.size }]);
  });

  it('does not index a statement about another digest', async () => {
    const m = await storeManifest('up/other', { ...model, annotations: { n: '2' } });
    const ref = await dsseReferrer('up/other', m, digestOf('somebody else'), digestOf('other data'));
    const rec = (await metadata.getManifest('up/other', ref))!;
    expect(await ops.lineage.index(rec)).toBe(false);
    expect(warnings).toContain('provenance statement does not name its subject; not indexed');
    expect((await ops.lineage.consumers(digestOf('other data'))).consumers).toEqual([]);
  });
});
