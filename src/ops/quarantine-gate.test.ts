import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, err, type Digest } from '../oci/index.js';
import { FsBlobStore } from '../storage/fs/fs-blob-store.js';
import { SqliteMetadataStore } from '../storage/sqlite/sqlite-metadata-store.js';
import { createOps, QuarantineGate, type Ops, type ReadGateLike } from './index.js';

/** The quarantine gate and rollback eligibility over the real SQLite store, with an inner gate that denies one digest. */
let dir: string;
let metadata: SqliteMetadataStore;
let ops: Ops;
const denied = new Set<Digest>();
const invalidated: Digest[] = [];
const moved: string[] = [];
const inner: ReadGateLike = {
  manifest: async (_r, d) => {
    if (denied.has(d)) throw err('DENIED', 'policy says no', [`no signature on ${d}`]);
    return {};
  },
  blob: async () => ({ auditFindings: ['inner'] }),
  invalidate: (d) => void invalidated.push(d),
};
const op = { actor: 'op', reason: 'test' };

const manifest = (repository: string, name: string, references: Digest[]) => {
  const bytes = Buffer.from(JSON.stringify({ name, references }));
  return { repository, digest: digestOf(bytes), mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: undefined, size: bytes.length, subject: undefined, annotations: undefined, bytes, references };
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'customs-ops-'));
  const blobs = new FsBlobStore(dir);
  await blobs.init();
  metadata = new SqliteMetadataStore(join(dir, 'metadata.sqlite'));
  ops = createOps({ metadata, blobs, gate: inner, log: { warn: () => undefined, info: () => undefined }, invalidateTags: (r) => void moved.push(r) });
});
afterAll(async () => {
  await metadata.close();
  await rm(dir, { recursive: true, force: true });
});

for (const variant of ['one-query capability', 'generic fallback'] as const)
describe(`QuarantineGate (${variant})`, () => {
  const shared = digestOf('shared layer');
  const onlyA = digestOf('layer of a');
  const orphan = digestOf('uploaded, no manifest yet');
  const a = manifest('q/repo', 'a', [shared, onlyA]);
  const b = manifest('q/repo', 'b', [shared]);
  // The fallback path: a store without the optional blobQuarantine capability.
  let gate: QuarantineGate;
  beforeAll(() => {
    gate = variant === 'generic fallback'
      ? new QuarantineGate(inner, { quarantinedAmong: (d) => metadata.quarantinedAmong(d), manifestsReferencing: (r, d) => metadata.manifestsReferencing(r, d), quarantine: (d, by) => metadata.quarantine(d, by), release: (d, by) => metadata.release(d, by), listQuarantine: () => metadata.listQuarantine() })
      : ops.gate;
  });

  it('denies a quarantined manifest in every repository, and blobs only it references', async () => {
    await metadata.putManifest(a, 'latest', op);
    await metadata.putManifest(b, undefined, op);
    await metadata.putManifest({ ...a, repository: 'q/other' }, undefined, op);
    await expect(gate.blob('q/repo', onlyA)).resolves.toEqual({ auditFindings: ['inner'] });
    await ops.quarantine.quarantine(a.digest, op);
    expect(invalidated).toContain(a.digest);
    for (const repo of ['q/repo', 'q/other']) await expect(gate.manifest(repo, a.digest)).rejects.toMatchObject({ code: 'DENIED', detail: { quarantined: [a.digest] } });
    await expect(gate.blob('q/repo', onlyA)).rejects.toMatchObject({ code: 'DENIED' });
    await expect(gate.blob('q/other', onlyA)).rejects.toMatchObject({ code: 'DENIED' });
    // Shared with b (not quarantined): readable through b; the inner gate decides.
    await expect(gate.blob('q/repo', shared)).resolves.toEqual({ auditFindings: ['inner'] });
    // ... but not in q/other, where only the quarantined manifest references it.
    await expect(gate.blob('q/other', shared)).rejects.toMatchObject({ code: 'DENIED' });
    await expect(gate.blob('q/repo', orphan)).resolves.toEqual({ auditFindings: ['inner'] });
    await expect(gate.manifest('q/repo', b.digest)).resolves.toEqual({});
  });

  it('denies a blob whose own digest is quarantined, everywhere, and lifts it on release', async () => {
    await ops.quarantine.quarantine(shared, op);
    await expect(gate.blob('q/repo', shared)).rejects.toMatchObject({ code: 'DENIED' });
    await ops.quarantine.release(shared, op);
    await ops.quarantine.release(a.digest, op);
    await expect(gate.blob('q/repo', onlyA)).resolves.toBeDefined();
    await expect(gate.manifest('q/repo', a.digest)).resolves.toEqual({});
  });
});

describe('rollback eligibility', () => {
  it('skips digests the gate denies and says why; invalidates cached tag resolutions', async () => {
    const v = [1, 2, 3].map((i) => manifest('r/model', `v${i}`, []));
    for (const m of v) await metadata.putManifest(m, 'prod', op);
    denied.add(v[1]!.digest);
    const r = await ops.tags.rollback('r/model', 'prod', {}, op);
    expect(r.to).toBe(v[0]!.digest);
    expect(r.skipped).toEqual([{ digest: v[1]!.digest, eligible: false, skipped: expect.stringContaining(`the gate denies it: no signature on ${v[1]!.digest}`) }]);
    expect(moved).toContain('r/model');
    expect(await metadata.getPin('r/model', 'prod')).toMatchObject({ digest: v[0]!.digest, reason: 'test' });
    const l = await ops.lineage.lineage('r/model', { kind: 'digest', digest: v[1]!.digest });
    expect(l.verdict).toEqual({ allowed: false, findings: [`no signature on ${v[1]!.digest}`] });
  });
});
