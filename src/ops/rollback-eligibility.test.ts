import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, err, type Digest } from '../oci/index.js';
import { FsBlobStore } from '../storage/fs/fs-blob-store.js';
import { SqliteMetadataStore } from '../storage/sqlite/sqlite-metadata-store.js';
import { createOps, type Ops, type ReadGateLike } from './index.js';

/** Rollback eligibility over the real SQLite store, with a gate that denies one digest. */
let dir: string;
let metadata: SqliteMetadataStore;
let ops: Ops;
const denied = new Set<Digest>();
const moved: string[] = [];
const gate: ReadGateLike = {
  manifest: async (_r, d) => {
    if (denied.has(d)) throw err('DENIED', 'policy says no', [`no signature on ${d}`]);
    return {};
  },
  blob: async () => ({}),
  invalidate: () => undefined,
};
const op = { actor: 'op', reason: 'test' };

const manifest = (repository: string, name: string) => {
  const bytes = Buffer.from(JSON.stringify({ name }));
  return { repository, digest: digestOf(bytes), mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: undefined, size: bytes.length, subject: undefined, annotations: undefined, bytes, references: [] };
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'customs-ops-'));
  const blobs = new FsBlobStore(dir);
  await blobs.init();
  metadata = new SqliteMetadataStore(join(dir, 'metadata.sqlite'));
  ops = createOps({ metadata, blobs, gate, log: { warn: () => undefined, info: () => undefined }, invalidateTags: (r) => void moved.push(r) });
});
afterAll(async () => {
  await metadata.close();
  await rm(dir, { recursive: true, force: true });
});

describe('rollback eligibility', () => {
  it('skips digests the gate denies and says why; invalidates cached tag resolutions', async () => {
    const v = [1, 2, 3].map((i) => manifest('r/model', `v${i}`));
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
