import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../src/oci/index.js';
import { hasInventory, type Inventory, type MetadataStore } from '../src/storage/index.js';

/** The console's queries (`store.inventory`), run against each metadata store. */
export function runInventoryContract(name: string, factory: () => Promise<{ metadata: MetadataStore; close(): Promise<void> }>): void {
  describe(`inventory contract: ${name}`, () => {
    let s: { metadata: MetadataStore; close(): Promise<void> };
    let inv: Inventory;
    const by = { actor: 'user:ci', reason: 'contract' };
    const manifest = (repository: string, content: string, subject?: Digest) => ({
      repository,
      digest: digestOf(content),
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: subject ? 'application/vnd.dev.sigstore.bundle.v0.3+json' : 'application/vnd.cncf.model.manifest.v1+json',
      size: content.length,
      subject,
      annotations: undefined,
      bytes: Buffer.from(content),
      references: [],
    });

    beforeAll(async () => {
      s = await factory();
      expect(hasInventory(s.metadata)).toBe(true);
      inv = (s.metadata as unknown as { inventory: Inventory }).inventory;
      for (const r of ['models/a', 'models/b', 'models/b/sub', 'data/x', 'other/models-like', 'modelsx']) {
        await s.metadata.putManifest(manifest(r, `{"r":"${r}"}`), 'v1', by);
      }
      const m1 = manifest('models/a', '{"v":1}');
      const m2 = manifest('models/a', '{"v":2}');
      await s.metadata.putManifest(m1, 'prod', by);
      await s.metadata.putManifest(m2, 'prod', { actor: 'user:alice', reason: 'promote' });
      await s.metadata.putManifest(manifest('models/a', '{"sig":1}', m2.digest), undefined, by);
      await s.metadata.pinTag('models/a', 'prod', undefined, { actor: 'user:alice', reason: 'freeze' });
      await s.metadata.quarantine(m2.digest, { actor: 'user:bob', reason: 'poisoned' });
      await s.metadata.appendAudit({ actor: 'anonymous', action: 'deny', target: '/v2/models/a/manifests/prod', reason: 'denied by policy' });
    });
    afterAll(async () => {
      await s?.close();
    });

    it('searches repositories by substring and by permitted prefixes, in name order, paged', async () => {
      const names = async (q: Parameters<Inventory['searchRepositories']>[0]) => (await inv.searchRepositories(q)).map((r) => r.name);
      expect(await names({ limit: 100 })).toEqual(['data/x', 'models/a', 'models/b', 'models/b/sub', 'modelsx', 'other/models-like']);
      expect(await names({ contains: 'models', limit: 100 })).toEqual(['models/a', 'models/b', 'models/b/sub', 'modelsx', 'other/models-like']);
      expect(await names({ prefixes: ['models/'], limit: 100 })).toEqual(['models/a', 'models/b', 'models/b/sub']);
      expect(await names({ prefixes: ['models/', 'data/'], contains: 'b', limit: 100 })).toEqual(['models/b', 'models/b/sub']);
      expect(await names({ prefixes: [], limit: 100 })).toEqual([]);
      expect(await names({ prefixes: [], names: ['data/x', 'nope'], limit: 100 })).toEqual(['data/x']);
      expect(await names({ prefixes: ['models/b'], names: ['modelsx'], limit: 100 })).toEqual(['models/b', 'models/b/sub', 'modelsx']);
      expect(await names({ prefixes: [''], limit: 2 })).toEqual(['data/x', 'models/a']);
      expect(await names({ after: 'models/a', limit: 2 })).toEqual(['models/b', 'models/b/sub']);
      // Characters SQL would treat specially are plain text here.
      expect(await names({ contains: '%', limit: 100 })).toEqual([]);
      expect(await names({ contains: '_', limit: 100 })).toEqual([]);
      const a = (await inv.searchRepositories({ contains: 'models/a', limit: 1 }))[0]!;
      expect(a.tags).toBe(2);
      expect(a.updatedAt).toBeGreaterThan(Date.now() - 600_000);
    });

    it('lists tags with their manifest, pin and quarantine state', async () => {
      const tags = await inv.tagDetails('models/a', { limit: 10 });
      expect(tags.map((t) => t.tag)).toEqual(['prod', 'v1']);
      const prod = tags[0]!;
      expect(prod).toMatchObject({ digest: digestOf('{"v":2}'), mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.cncf.model.manifest.v1+json', size: 7, quarantined: true, pin: { actor: 'user:alice', reason: 'freeze' } });
      expect(prod.bytes.toString()).toBe('{"v":2}');
      expect(tags[1]).toMatchObject({ tag: 'v1', quarantined: false, pin: undefined });
      expect((await inv.tagDetails('models/a', { after: 'prod', limit: 10 })).map((t) => t.tag)).toEqual(['v1']);
      expect((await inv.tagDetails('models/a', { contains: 'ro', limit: 10 })).map((t) => t.tag)).toEqual(['prod']);
      expect(await inv.tagDetails('no/such', { limit: 10 })).toEqual([]);
    });

    it('pages a tag history newest first', async () => {
      const all = await inv.tagHistoryPage('models/a', 'prod', { limit: 10 });
      expect(all.map((m) => [m.from, m.to, m.actor])).toEqual([
        [digestOf('{"v":1}'), digestOf('{"v":2}'), 'user:alice'],
        [undefined, digestOf('{"v":1}'), 'user:ci'],
      ]);
      expect(all[0]!.id).toBeGreaterThan(all[1]!.id);
      expect(await inv.tagHistoryPage('models/a', 'prod', { before: all[0]!.id, limit: 10 })).toEqual([all[1]]);
      expect(await inv.tagHistoryPage('models/a', 'prod', { limit: 1 })).toEqual([all[0]]);
    });

    it('filters the audit log by time, actor, action and target, newest first, and counts', async () => {
      const all = await inv.queryAudit({}, { limit: 1000 });
      expect(all.length).toBeGreaterThan(5);
      expect(all[0]!.seq).toBeGreaterThan(all[1]!.seq);
      expect((await inv.queryAudit({ actor: 'alice' }, { limit: 100 })).map((e) => e.action).sort()).toEqual(['pin', 'push']);
      expect((await inv.queryAudit({ action: 'quarantine' }, { limit: 100 })).map((e) => e.actor)).toEqual(['user:bob']);
      expect(await inv.queryAudit({ action: 'quar' }, { limit: 100 })).toEqual([]);
      const denies = await inv.queryAudit({ action: 'deny', target: 'models/a' }, { limit: 100 });
      expect(denies).toHaveLength(1);
      expect(await inv.countAudit({ action: 'deny', since: Date.now() - 86_400_000 })).toBe(1);
      expect(await inv.countAudit({ action: 'deny', until: Date.now() - 86_400_000 })).toBe(0);
      expect(await inv.queryAudit({ since: Date.now() + 60_000 }, { limit: 100 })).toEqual([]);
      const page = await inv.queryAudit({}, { beforeSeq: all[0]!.seq, limit: 2 });
      expect(page.map((e) => e.seq)).toEqual([all[1]!.seq, all[2]!.seq]);
      // Entries come back whole: the chain still verifies from them.
      expect(page[0]).toEqual(all[1]);
    });

    it('counts repositories, artifacts, referrers, tags and quarantined digests', async () => {
      expect(await inv.counts()).toEqual({ repositories: 6, artifacts: 8, referrers: 1, tags: 7, quarantined: 1 });
    });
  });
}
