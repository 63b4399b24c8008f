import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../src/oci/index.js';
import { hasBlobIntegrity, hasBlobList, hasContentScan, scanAll, verifyAuditChain, type BlobStore, type MetadataStore, type UploadStore } from '../src/storage/index.js';

/**
 * The storage contract every backend must honour (distribution's testsuites.go
 * habit): run once per backend with a factory that makes fresh stores.
 */
export interface StorageUnderTest {
  blobs: BlobStore;
  uploads: UploadStore;
  metadata: MetadataStore;
  /** Replaces the stored bytes of `digest` behind the store's back (bit rot, a bad disk): the integrity contract. */
  rot(digest: Digest, bytes: Buffer): Promise<void>;
  close(): Promise<void>;
}

const body = (s: string | Buffer) => Readable.from([Buffer.from(s)]);
const text = async (r: Readable | undefined) => {
  const chunks: Buffer[] = [];
  for await (const c of r!) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
};
const actor = { actor: 'tester', reason: 'contract' };

export function runStorageContract(name: string, factory: () => Promise<StorageUnderTest>): void {
  describe(`storage contract: ${name}`, () => {
    let s: StorageUnderTest;
    beforeAll(async () => {
      s = await factory();
    });
    afterAll(async () => {
      await s.close();
    });

    describe('BlobStore', () => {
      it('stores content-addressed blobs and serves them whole and by range', async () => {
        const info = await s.blobs.put(body('hello world'));
        expect(info).toEqual({ digest: digestOf('hello world'), size: 11 });
        expect(await s.blobs.stat(info.digest)).toEqual(info);
        expect(await text(await s.blobs.get(info.digest))).toBe('hello world');
        expect(await text(await s.blobs.get(info.digest, { start: 6, end: 10 }))).toBe('world');
      });
      it('commits nothing when the digest does not match', async () => {
        const wrong = digestOf('something else');
        await expect(s.blobs.put(body('actual bytes'), { expected: wrong })).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
        expect(await s.blobs.stat(wrong)).toBeUndefined();
        expect(await s.blobs.stat(digestOf('actual bytes'))).toBeUndefined();
      });
      it('commits nothing when the size does not match or the limit is exceeded', async () => {
        await expect(s.blobs.put(body('12345'), { expectedSize: 4 })).rejects.toMatchObject({ code: 'SIZE_INVALID' });
        expect(await s.blobs.stat(digestOf('12345'))).toBeUndefined();
        await expect(s.blobs.put(body('123456789'), { maxSize: 4 })).rejects.toMatchObject({ code: 'TOO_LARGE' });
        expect(await s.blobs.stat(digestOf('123456789'))).toBeUndefined();
      });
      it('commits nothing when the source fails midway', async () => {
        const failing = new Readable({
          read() {
            this.push(Buffer.from('partial'));
            this.destroy(new Error('connection reset'));
          },
        });
        await expect(s.blobs.put(failing)).rejects.toThrow(/connection reset/);
        expect(await s.blobs.stat(digestOf('partial'))).toBeUndefined();
      });
      it('lists every blob with its size and age (garbage collection sweeps what no repository links)', async () => {
        expect(hasBlobList(s.blobs)).toBe(true);
        if (!hasBlobList(s.blobs)) return;
        const t0 = Date.now();
        const infos = [await s.blobs.put(body('listed one')), await s.blobs.put(body('listed two, longer'))];
        const listed = new Map<string, { size: number; modifiedAt: number }>();
        for await (const b of s.blobs.list()) listed.set(b.digest, b);
        for (const info of infos) {
          expect(listed.get(info.digest)?.size).toBe(info.size);
          // Clock granularity (S3 keeps whole seconds) and skew between this process and the store.
          expect(Math.abs(listed.get(info.digest)!.modifiedAt - t0)).toBeLessThan(60_000);
        }
        await s.blobs.delete(infos[0]!.digest);
        const after: string[] = [];
        for await (const b of s.blobs.list()) after.push(b.digest);
        expect(after).not.toContain(infos[0]!.digest);
        expect(after).toContain(infos[1]!.digest);
      });
      it('re-hashes blobs, and sets bytes that no longer match aside for good (integrity capability)', async () => {
        expect(hasBlobIntegrity(s.blobs)).toBe(true);
        if (!hasBlobIntegrity(s.blobs)) return;
        const good = Buffer.from('integrity: the original bytes');
        const info = await s.blobs.put(body(good));
        let paced = 0;
        expect(await s.blobs.check(info.digest, async (n) => void (paced += n))).toEqual({ state: 'ok', size: good.length });
        expect(paced).toBe(good.length);
        expect(await s.blobs.check(digestOf('never stored'))).toEqual({ state: 'missing' });
        const rotten = Buffer.from(good);
        rotten[3]! ^= 0x01;
        await s.rot(info.digest, rotten);
        const found = await s.blobs.check(info.digest);
        expect(found).toMatchObject({ state: 'corrupt', size: good.length, actual: digestOf(rotten) });
        if (found.state !== 'corrupt') return;
        expect(await s.blobs.setAside(info.digest, 'not-the-bytes-checked')).toBe(false);
        expect(await s.blobs.stat(info.digest)).toBeDefined();
        expect(await s.blobs.wasSetAside(info.digest)).toBe(false);
        expect(await s.blobs.setAside(info.digest, found.identity)).toBe(true);
        expect(await s.blobs.stat(info.digest)).toBeUndefined();
        expect(await s.blobs.get(info.digest)).toBeUndefined();
        expect(await s.blobs.wasSetAside(info.digest)).toBe(true);
        const aside: string[] = [];
        for await (const b of s.blobs.listSetAside()) aside.push(b.digest);
        expect(aside).toContain(info.digest);
        if (hasBlobList(s.blobs)) for await (const b of s.blobs.list()) expect(b.digest).not.toBe(info.digest);
        // A verified write of the digest stores good bytes again; the record of the corruption stays.
        await s.blobs.put(body(good), { expected: info.digest });
        expect(await s.blobs.check(info.digest)).toEqual({ state: 'ok', size: good.length });
        expect(await s.blobs.wasSetAside(info.digest)).toBe(true);
        expect(await s.blobs.setAside(digestOf('never stored'))).toBe(false);
      });
      it('deletes blobs', async () => {
        const info = await s.blobs.put(body('to delete'));
        expect(await s.blobs.delete(info.digest)).toBe(true);
        expect(await s.blobs.stat(info.digest)).toBeUndefined();
        expect(await s.blobs.get(info.digest)).toBeUndefined();
        expect(await s.blobs.delete(info.digest)).toBe(false);
      });
    });

    describe('UploadStore', () => {
      it('appends chunks in order and commits on finish', async () => {
        const session = await s.uploads.start('r/one');
        expect(session.size).toBe(0);
        expect((await s.uploads.append(session.id, body('abc'), 0)).size).toBe(3);
        expect((await s.uploads.append(session.id, body('def'), 3)).size).toBe(6);
        expect((await s.uploads.status(session.id))?.size).toBe(6);
        const blob = await s.uploads.finish(session.id, digestOf('abcdef'));
        expect(blob).toEqual({ digest: digestOf('abcdef'), size: 6 });
        expect(await text(await s.blobs.get(blob.digest))).toBe('abcdef');
        expect(await s.uploads.status(session.id)).toBeUndefined();
      });
      it('refuses out-of-order chunks without changing the session', async () => {
        const session = await s.uploads.start('r/one');
        await s.uploads.append(session.id, body('abc'), 0);
        await expect(s.uploads.append(session.id, body('xyz'), 5)).rejects.toMatchObject({ code: 'RANGE_INVALID' });
        await expect(s.uploads.append(session.id, body('xyz'), 0)).rejects.toMatchObject({ code: 'RANGE_INVALID' });
        expect((await s.uploads.status(session.id))?.size).toBe(3);
      });
      it('refuses a wrong digest on finish and stores nothing', async () => {
        const session = await s.uploads.start('r/one');
        await s.uploads.append(session.id, body('abc'), 0);
        const wrong = digestOf('abd');
        await expect(s.uploads.finish(session.id, wrong)).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
        expect(await s.blobs.stat(wrong)).toBeUndefined();
      });
      it('cancels and expires sessions', async () => {
        const a = await s.uploads.start('r/one');
        expect(await s.uploads.cancel(a.id)).toBe(true);
        expect(await s.uploads.status(a.id)).toBeUndefined();
        await expect(s.uploads.append(a.id, body('x'), 0)).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
        const b = await s.uploads.start('r/one');
        expect(await s.uploads.expire(60_000)).toBe(0);
        await new Promise((r) => setTimeout(r, 20));
        expect(await s.uploads.expire(1)).toBeGreaterThanOrEqual(1);
        expect(await s.uploads.status(b.id)).toBeUndefined();
      });
      it('answers unknown session ids (including path tricks) with nothing', async () => {
        expect(await s.uploads.status('../../etc')).toBeUndefined();
        expect(await s.uploads.status('00000000-0000-0000-0000-000000000000')).toBeUndefined();
      });
    });

    describe('MetadataStore', () => {
      const manifest = (repository: string, content: string, extra: Partial<{ subject: Digest; artifactType: string; references: Digest[] }> = {}) => ({
        repository,
        digest: digestOf(content),
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: extra.artifactType,
        size: content.length,
        subject: extra.subject,
        annotations: { 'org.example': content },
        bytes: Buffer.from(content),
        references: extra.references ?? [],
      });

      it('links blobs per repository', async () => {
        const d = digestOf('linked blob');
        await s.metadata.linkBlob('m/a', { digest: d, size: 11 });
        expect(await s.metadata.linkedBlob('m/a', d)).toEqual({ digest: d, size: 11 });
        expect(await s.metadata.linkedBlob('m/b', d)).toBeUndefined();
        await s.metadata.linkBlob('m/b', { digest: d, size: 11 });
        expect(await s.metadata.blobLinkCount(d)).toBe(2);
        expect(await s.metadata.unlinkBlob('m/a', d)).toBe(true);
        expect(await s.metadata.unlinkBlob('m/a', d)).toBe(false);
        expect(await s.metadata.blobLinkCount(d)).toBe(1);
      });

      it('links only bytes still present, and deletes bytes only when nothing links them', async () => {
        const d = digestOf('guarded blob');
        let removed = 0;
        const remove = async () => (removed++, true);
        expect(await s.metadata.linkBlobIf('g/a', { digest: d, size: 12 }, async () => false)).toBe(false);
        expect(await s.metadata.linkedBlob('g/a', d)).toBeUndefined();
        expect(await s.metadata.linkBlobIf('g/a', { digest: d, size: 12 }, async () => true)).toBe(true);
        expect(await s.metadata.linkedBlob('g/a', d)).toEqual({ digest: d, size: 12 });
        expect(await s.metadata.deleteIfUnlinked(d, remove)).toBe(false);
        expect(removed).toBe(0);
        await s.metadata.unlinkBlob('g/a', d);
        expect(await s.metadata.deleteIfUnlinked(d, remove)).toBe(true);
        expect(removed).toBe(1);
      });

      it('lists and removes blob links no manifest of their repository references (garbage collection)', async () => {
        const [kept, loose, young, shared] = ['gc kept', 'gc loose', 'gc young', 'gc shared'].map((t) => digestOf(t));
        for (const d of [kept, loose, shared]) await s.metadata.linkBlob('gc/a', { digest: d!, size: 7 });
        await s.metadata.linkBlob('gc/b', { digest: shared!, size: 7 });
        await s.metadata.putManifest(manifest('gc/a', '{"gc":"a"}', { references: [kept!] }), 'v1', actor);
        await s.metadata.putManifest(manifest('gc/b', '{"gc":"b"}', { references: [shared!] }), 'v1', actor);
        const cutoff = Date.now() + 1;
        await new Promise((r) => setTimeout(r, 5));
        await s.metadata.linkBlob('gc/a', { digest: young!, size: 7 });
        const mine = async (after?: { repository: string; digest: Digest }, limit = 1000) =>
          (await s.metadata.unreferencedBlobLinks(cutoff, limit, after)).filter((l) => l.repository.startsWith('gc/'));
        // `shared` is referenced in gc/b only: its gc/a link is garbage, its gc/b link is not; `young` is too new.
        expect(await mine()).toEqual([loose, shared].sort().map((d) => ({ repository: 'gc/a', digest: d, size: 7 })));
        const first = (await s.metadata.unreferencedBlobLinks(cutoff, 1, { repository: 'gc/', digest: '' as Digest }))[0]!;
        expect(await mine(first, 1)).toEqual([{ repository: 'gc/a', digest: [loose, shared].sort()[1], size: 7 }]);
        expect(await s.metadata.unlinkUnreferenced('gc/a', kept!, cutoff)).toBe(false); // referenced
        expect(await s.metadata.unlinkUnreferenced('gc/a', young!, cutoff)).toBe(false); // too young
        expect(await s.metadata.unlinkUnreferenced('gc/a', loose!, cutoff)).toBe(true);
        expect(await s.metadata.unlinkUnreferenced('gc/a', shared!, cutoff)).toBe(true);
        expect(await s.metadata.linkedBlob('gc/b', shared!)).toEqual({ digest: shared, size: 7 });
        expect(await s.metadata.blobLinkCount(loose!)).toBe(0);
        // Deleting the manifest makes its blobs garbage.
        await s.metadata.deleteManifest('gc/a', digestOf('{"gc":"a"}'), actor);
        expect((await mine()).map((l) => l.digest)).toEqual([kept]);
      });

      it('refuses, inside the transaction, a manifest whose required blobs are no longer linked', async () => {
        const blob = digestOf('gc required');
        const m = { ...manifest('gc/req', '{"req":1}', { references: [blob] }), requireLinked: [blob] };
        await expect(s.metadata.putManifest(m, 'v1', actor)).rejects.toMatchObject({ code: 'MANIFEST_BLOB_UNKNOWN' });
        expect(await s.metadata.getManifest('gc/req', m.digest)).toBeUndefined();
        expect(await s.metadata.resolveTag('gc/req', 'v1')).toBeUndefined();
        await s.metadata.linkBlob('gc/req', { digest: blob, size: 11 });
        expect(await s.metadata.putManifest(m, 'v1', actor)).toMatchObject({ to: m.digest });
      });

      it('finds and deletes untagged manifests past retention, re-checking in the deleting transaction', async () => {
        const repo = 'ret/a';
        const operator = { actor: 'operator', reason: 'retention contract' };
        const mine = async (before: number) => (await s.metadata.expiredUntaggedManifests(before, 1000)).filter((m) => m.repository.startsWith('ret/')).map((m) => m.digest);
        const tagged = manifest(repo, '{"ret":"tagged"}');
        const old = manifest(repo, '{"ret":"old"}');
        const child = manifest(repo, '{"ret":"child"}');
        const index = manifest(repo, '{"ret":"index"}', { references: [child.digest] });
        const signature = manifest(repo, '{"ret":"sig"}', { subject: tagged.digest });
        const orphanReferrer = manifest(repo, '{"ret":"orphan sig"}', { subject: digestOf('never pushed') });
        const quarantined = manifest(repo, '{"ret":"quarantined"}');
        const pinned = manifest(repo, '{"ret":"pinned"}');
        await s.metadata.putManifest(old, 'v1', actor);
        await s.metadata.putManifest(tagged, 'v1', actor); // v1 leaves `old`
        await s.metadata.putManifest(child, undefined, actor);
        await s.metadata.putManifest(index, 'multi', actor);
        for (const m of [signature, orphanReferrer, quarantined]) await s.metadata.putManifest(m, undefined, actor);
        await s.metadata.quarantine(quarantined.digest, operator);
        await s.metadata.putManifest(pinned, 'keep', actor);
        await s.metadata.pinTag(repo, 'keep', undefined, operator);
        expect(await mine(Date.now() - 60_000)).toEqual([]); // all too recent
        const now = Date.now() + 1;
        expect(await mine(now)).toEqual([old.digest, orphanReferrer.digest].sort());
        expect(await s.metadata.deleteExpiredUntagged(repo, tagged.digest, now, operator)).toBe(false);
        expect(await s.metadata.deleteExpiredUntagged(repo, child.digest, now, operator)).toBe(false);
        // Tagged again between the listing and the delete: the transaction's check keeps it.
        await s.metadata.moveTag(repo, 'again', orphanReferrer.digest, actor);
        expect(await s.metadata.deleteExpiredUntagged(repo, orphanReferrer.digest, Date.now() + 1, operator)).toBe(false);
        expect(await s.metadata.getManifest(repo, orphanReferrer.digest)).toBeDefined();
        const before = (await s.metadata.listAudit()).at(-1)!.seq;
        expect(await s.metadata.deleteExpiredUntagged(repo, old.digest, now, { actor: 'system:gc', reason: 'retention' })).toBe(true);
        expect(await s.metadata.getManifest(repo, old.digest)).toBeUndefined();
        expect(await s.metadata.listAudit({ afterSeq: before })).toEqual([expect.objectContaining({ actor: 'system:gc', action: 'delete', target: `${repo}@${old.digest}` })]);
        // Deleting the index makes its child eligible; a push naming the deleted child is refused in its transaction.
        await s.metadata.deleteManifest(repo, index.digest, actor);
        expect(await mine(Date.now() + 1)).toEqual([child.digest]);
        expect(await s.metadata.deleteExpiredUntagged(repo, child.digest, Date.now() + 1, operator)).toBe(true);
        const again = { ...index, requireManifests: [child.digest] };
        await expect(s.metadata.putManifest(again, 'multi', actor)).rejects.toMatchObject({ code: 'MANIFEST_BLOB_UNKNOWN' });
        expect(await s.metadata.getManifest(repo, index.digest)).toBeUndefined();
      });

      it('records pulls and finds, then deletes with their tags, cached manifests nobody pulled (eviction)', async () => {
        const repo = 'px/app';
        const operator = { actor: 'operator', reason: 'eviction contract' };
        const [pulled, old, sig, quarantined, pinned, child] = ['pulled', 'old', 'sig', 'quarantined', 'pinned', 'child'].map((n) => manifest(repo, `{"px":"${n}"}`));
        const signature = { ...sig!, subject: old!.digest };
        const index = manifest(repo, '{"px":"index"}', { references: [child!.digest] });
        const outside = manifest('pxz/b', '{"px":"outside"}');
        for (const [m, tag] of [[pulled, 'latest'], [old, 'old'], [signature, undefined], [quarantined, undefined], [pinned, 'keep'], [child, undefined], [index, 'multi'], [outside, 'v1']] as const) {
          await s.metadata.putManifest(m!, tag, actor);
        }
        await s.metadata.quarantine(quarantined!.digest, operator);
        await s.metadata.pinTag(repo, 'keep', undefined, operator);
        const now = Date.now() + 1;
        await s.metadata.recordPulls([{ repository: repo, digest: pulled!.digest, at: now + 60_000 }]);
        await s.metadata.recordPulls([{ repository: repo, digest: pulled!.digest, at: now - 60_000 }]); // an older time does not win
        const list = async (before: number) => (await s.metadata.unpulledManifests('px/', before, 1000)).map((m) => m.digest);
        expect(await list(Date.now() - 60_000)).toEqual([]);
        expect(await list(now)).toEqual([old!.digest, index.digest].sort());
        const first = (await s.metadata.unpulledManifests('px/', now, 1))[0]!;
        expect(await s.metadata.unpulledManifests('px/', now, 10, first)).toEqual([{ repository: repo, digest: [old!.digest, index.digest].sort()[1] }]);
        expect(await s.metadata.deleteUnpulled(repo, pulled!.digest, now, operator)).toEqual({ deleted: false, untagged: [] });
        const gone = await s.metadata.deleteUnpulled(repo, old!.digest, now, { actor: 'system:gc', reason: 'eviction' });
        expect(gone).toMatchObject({ deleted: true, untagged: [{ tag: 'old', from: old!.digest, to: undefined, actor: 'system:gc' }] });
        expect(await s.metadata.resolveTag(repo, 'old')).toBeUndefined();
        expect(await s.metadata.getManifest(repo, old!.digest)).toBeUndefined();
        expect((await s.metadata.tagHistory(repo, 'old'))[0]).toMatchObject({ from: old!.digest, to: undefined, actor: 'system:gc' });
        // The index goes; then its child is no longer referenced.
        expect((await s.metadata.deleteUnpulled(repo, index.digest, now, operator)).deleted).toBe(true);
        expect(await list(Date.now() + 1)).toEqual([child!.digest]);
      });

      it('stores manifests byte-exact and moves tags with history', async () => {
        const m1 = manifest('m/tags', '{"v":1}', { references: [digestOf('layer')] });
        const m2 = manifest('m/tags', '{"v":2}');
        expect(await s.metadata.putManifest(m1, 'prod', actor)).toMatchObject({ from: undefined, to: m1.digest, actor: 'tester' });
        expect(await s.metadata.putManifest(m1, 'prod', actor)).toBeUndefined(); // no move
        expect(await s.metadata.putManifest(m2, 'prod', { actor: 'ci' })).toMatchObject({ from: m1.digest, to: m2.digest });
        expect(await s.metadata.resolveTag('m/tags', 'prod')).toBe(m2.digest);
        const got = await s.metadata.getManifest('m/tags', m1.digest);
        expect(got?.bytes.toString()).toBe('{"v":1}');
        expect(got?.references).toEqual([digestOf('layer')]);
        expect(got?.annotations).toEqual({ 'org.example': '{"v":1}' });
        expect(await s.metadata.manifestsReferencing('m/tags', digestOf('layer'))).toEqual([m1.digest]);
        const history = await s.metadata.tagHistory('m/tags', 'prod');
        expect(history.map((h) => [h.from, h.to, h.actor])).toEqual([
          [m1.digest, m2.digest, 'ci'],
          [undefined, m1.digest, 'tester'],
        ]);
        expect(await s.metadata.moveTag('m/tags', 'prod', m1.digest, { actor: 'op', reason: 'rollback' })).toMatchObject({ from: m2.digest, to: m1.digest, reason: 'rollback' });
        await expect(s.metadata.moveTag('m/tags', 'prod', digestOf('nope'), actor)).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
        expect(await s.metadata.tagsOf('m/tags', m1.digest)).toEqual(['prod']);
      });

      it('deletes manifests with their tags, recording the untagging', async () => {
        const m = manifest('m/del', '{"del":1}');
        await s.metadata.putManifest(m, 'a', actor);
        await s.metadata.putManifest(m, 'b', actor);
        const { deleted, untagged } = await s.metadata.deleteManifest('m/del', m.digest, { actor: 'op' });
        expect(deleted).toBe(true);
        expect(untagged.map((u) => u.tag).sort()).toEqual(['a', 'b']);
        expect(await s.metadata.resolveTag('m/del', 'a')).toBeUndefined();
        expect(await s.metadata.getManifest('m/del', m.digest)).toBeUndefined();
        expect((await s.metadata.tagHistory('m/del', 'a'))[0]).toMatchObject({ from: m.digest, to: undefined, actor: 'op' });
        expect((await s.metadata.deleteManifest('m/del', m.digest, actor)).deleted).toBe(false);
      });

      it('deletes single tags', async () => {
        const m = manifest('m/tagdel', '{"t":1}');
        await s.metadata.putManifest(m, 'x', actor);
        expect(await s.metadata.deleteTag('m/tagdel', 'x', actor)).toMatchObject({ from: m.digest, to: undefined });
        expect(await s.metadata.deleteTag('m/tagdel', 'x', actor)).toBeUndefined();
        expect(await s.metadata.getManifest('m/tagdel', m.digest)).toBeDefined();
      });

      it('pages through every manifest, blob link and tag (content scan capability)', async () => {
        expect(hasContentScan(s.metadata)).toBe(true);
        if (!hasContentScan(s.metadata)) return;
        const scan = s.metadata;
        const layer = digestOf('scanned layer');
        await s.metadata.linkBlob('scan/b', { digest: layer, size: 13 });
        await s.metadata.linkBlob('scan/a', { digest: layer, size: 13 });
        const ms = ['{"scan":1}', '{"scan":2}', '{"scan":3}'].map((c) => manifest('scan/a', c, { references: [layer] }));
        for (const [i, m] of ms.entries()) await s.metadata.putManifest(m, `t${i}`, actor);
        const manifests = [];
        for await (const m of scanAll(scan.manifestPage.bind(scan), (m) => ({ repository: m.repository, digest: m.digest }), 2)) manifests.push(m);
        const keys = manifests.map((m) => `${m.repository}@${m.digest}`);
        expect(keys).toEqual([...keys].sort());
        expect(new Set(keys).size).toBe(keys.length);
        for (const m of ms) {
          const got = manifests.find((x) => x.repository === 'scan/a' && x.digest === m.digest);
          expect(got?.bytes.toString()).toBe(m.bytes.toString());
          expect(got?.references).toEqual([layer]);
        }
        const links = [];
        for await (const l of scanAll(scan.blobLinkPage.bind(scan), (l) => ({ repository: l.repository, digest: l.digest }), 1)) links.push(l);
        expect(links.filter((l) => l.digest === layer)).toEqual([
          { repository: 'scan/a', digest: layer, size: 13 },
          { repository: 'scan/b', digest: layer, size: 13 },
        ]);
        const tags = [];
        for await (const t of scanAll(scan.tagPage.bind(scan), (t) => ({ repository: t.repository, tag: t.tag }), 2)) tags.push(t);
        expect(tags.filter((t) => t.repository === 'scan/a')).toEqual(ms.map((m, i) => ({ repository: 'scan/a', tag: `t${i}`, digest: m.digest })));
        expect(await scan.linkingRepositories(layer)).toEqual(['scan/a', 'scan/b']);
        expect(await scan.linkingRepositories(digestOf('nobody links this'))).toEqual([]);
      });

      it('lists tags and repositories in lexical pages', async () => {
        for (const t of ['c', 'a', 'b', 'd']) await s.metadata.putManifest(manifest('m/pages', `{"t":"${t}"}`), t, actor);
        expect(await s.metadata.listTags('m/pages')).toEqual(['a', 'b', 'c', 'd']);
        expect(await s.metadata.listTags('m/pages', { n: 2 })).toEqual(['a', 'b']);
        expect(await s.metadata.listTags('m/pages', { n: 2, last: 'b' })).toEqual(['c', 'd']);
        expect(await s.metadata.repositoryExists('m/pages')).toBe(true);
        expect(await s.metadata.repositoryExists('m/none')).toBe(false);
        const repos = await s.metadata.listRepositories();
        expect(repos).toEqual([...repos].sort());
        expect(repos).toContain('m/pages');
        expect(await s.metadata.listRepositories({ n: 1, last: 'm/pages' })).not.toContain('m/pages');
      });

      it('lists only repositories that hold a manifest (not one whose last manifest was deleted, nor one with blobs only)', async () => {
        const m = manifest('m/emptied', '{"e":1}');
        await s.metadata.putManifest(m, 'x', actor);
        expect(await s.metadata.listRepositories()).toContain('m/emptied');
        await s.metadata.deleteManifest('m/emptied', m.digest, actor);
        await s.metadata.linkBlob('m/blobsonly', { digest: digestOf('only a blob'), size: 11 });
        const repos = await s.metadata.listRepositories();
        expect(repos).not.toContain('m/emptied');
        expect(repos).not.toContain('m/blobsonly');
      });

      it('indexes referrers by subject, per repository', async () => {
        const subject = digestOf('the model');
        const sig = manifest('m/ref', '{"sig":1}', { subject, artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json' });
        const sbom = manifest('m/ref', '{"sbom":1}', { subject, artifactType: 'application/vnd.cyclonedx+json' });
        await s.metadata.putManifest(sig, undefined, actor);
        await s.metadata.putManifest(sbom, undefined, actor);
        await s.metadata.putManifest({ ...sig, repository: 'm/other' }, undefined, actor);
        const refs = await s.metadata.listReferrers('m/ref', subject);
        expect(refs.map((r) => r.artifactType).sort()).toEqual(['application/vnd.cyclonedx+json', 'application/vnd.dev.sigstore.bundle.v0.3+json']);
        expect(refs[0]).toMatchObject({ mediaType: 'application/vnd.oci.image.manifest.v1+json', size: expect.any(Number) });
        await s.metadata.deleteManifest('m/ref', sig.digest, actor);
        expect((await s.metadata.listReferrers('m/ref', subject)).map((r) => r.digest)).toEqual([sbom.digest]);
        expect(await s.metadata.listReferrers('m/ref', digestOf('unknown'))).toEqual([]);
      });
    });

    describe('operator state: pins, quarantine, audit, lineage', () => {
      const manifest = (repository: string, content: string, subject?: Digest) => ({
        repository,
        digest: digestOf(content),
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: undefined,
        size: content.length,
        subject,
        annotations: undefined,
        bytes: Buffer.from(content),
        references: [],
      });
      const op = { actor: 'operator', reason: 'incident 42' };

      it('refuses every move of a pinned tag except an operator override, inside the transaction', async () => {
        const v1 = manifest('o/pin', '{"pin":1}');
        const v2 = manifest('o/pin', '{"pin":2}');
        await s.metadata.putManifest(v1, 'prod', actor);
        await s.metadata.putManifest(v2, undefined, actor);
        const { pin, move } = await s.metadata.pinTag('o/pin', 'prod', undefined, op);
        expect(move).toBeUndefined();
        expect(pin).toMatchObject({ repository: 'o/pin', tag: 'prod', digest: v1.digest, actor: 'operator', reason: 'incident 42' });
        expect(await s.metadata.getPin('o/pin', 'prod')).toMatchObject({ digest: v1.digest });
        await expect(s.metadata.putManifest(v2, 'prod', { actor: 'ci' })).rejects.toMatchObject({ code: 'DENIED' });
        await expect(s.metadata.putManifest(v1, 'prod', { actor: 'ci' })).resolves.toBeUndefined(); // same digest: not a move
        await expect(s.metadata.moveTag('o/pin', 'prod', v2.digest, op)).rejects.toMatchObject({ code: 'DENIED' });
        await expect(s.metadata.deleteTag('o/pin', 'prod', op)).rejects.toMatchObject({ code: 'DENIED' });
        await expect(s.metadata.deleteManifest('o/pin', v1.digest, op)).rejects.toMatchObject({ code: 'DENIED' });
        expect(await s.metadata.resolveTag('o/pin', 'prod')).toBe(v1.digest);
        // A refused push stores nothing: the manifest under a new digest did not appear.
        const v3 = manifest('o/pin', '{"pin":3}');
        await expect(s.metadata.putManifest(v3, 'prod', { actor: 'ci' })).rejects.toMatchObject({ code: 'DENIED' });
        expect(await s.metadata.getManifest('o/pin', v3.digest)).toBeUndefined();
        // Operator override: the pin follows the tag.
        expect(await s.metadata.moveTag('o/pin', 'prod', v2.digest, op, { override: true, action: 'rollback' })).toMatchObject({ from: v1.digest, to: v2.digest });
        expect(await s.metadata.getPin('o/pin', 'prod')).toMatchObject({ digest: v2.digest });
        expect((await s.metadata.listPins('o/pin')).map((p) => p.tag)).toEqual(['prod']);
        expect(await s.metadata.unpinTag('o/pin', 'prod', op)).toBe(true);
        expect(await s.metadata.unpinTag('o/pin', 'prod', op)).toBe(false);
        expect(await s.metadata.putManifest(v1, 'prod', { actor: 'ci' })).toMatchObject({ from: v2.digest, to: v1.digest });
        // Pinning to a digest moves the tag and records the move; moveTag with pin pins.
        expect((await s.metadata.pinTag('o/pin', 'prod', v2.digest, op)).move).toMatchObject({ from: v1.digest, to: v2.digest });
        await s.metadata.unpinTag('o/pin', 'prod', op);
        await s.metadata.moveTag('o/pin', 'prod', v1.digest, op, { pin: true });
        expect(await s.metadata.getPin('o/pin', 'prod')).toMatchObject({ digest: v1.digest });
        await expect(s.metadata.pinTag('o/pin', 'nope', undefined, op)).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
      });

      it('quarantines and releases digests globally', async () => {
        const a = digestOf('quarantined a');
        const b = digestOf('quarantined b');
        // Read first: a store that caches the quarantine set must drop it on the write below.
        expect(await s.metadata.quarantinedAmong([a, b])).toEqual([]);
        expect(await s.metadata.quarantine(a, op)).toBe(true);
        expect(await s.metadata.quarantine(a, op)).toBe(false);
        expect(await s.metadata.quarantinedAmong([a, b, a])).toEqual([a]);
        expect((await s.metadata.listQuarantine()).find((q) => q.digest === a)).toMatchObject({ actor: 'operator', reason: 'incident 42' });
        expect(await s.metadata.release(a, op)).toBe(true);
        expect(await s.metadata.release(a, op)).toBe(false);
        expect(await s.metadata.quarantinedAmong([a, b])).toEqual([]);
      });

      it('keeps a gap-free hash chain with an entry for every tag move, pin and quarantine', async () => {
        const m = manifest('o/audit', '{"audit":1}');
        const before = (await s.metadata.listAudit()).at(-1)?.seq ?? 0;
        await s.metadata.putManifest(m, 'latest', { actor: 'ci', reason: 'build 7' });
        await s.metadata.deleteTag('o/audit', 'latest', op);
        await s.metadata.appendAudit({ actor: 'alice', action: 'auth.failure', reason: 'bad token', detail: { remote: '127.0.0.1' } });
        await Promise.all(Array.from({ length: 20 }, (_, i) => s.metadata.appendAudit({ actor: `c${i}`, action: 'deny', target: 'x' })));
        const mine = await s.metadata.listAudit({ afterSeq: before });
        expect(mine.slice(0, 3).map((e) => [e.action, e.actor, e.target])).toEqual([
          ['push', 'ci', 'o/audit:latest'],
          ['tag.delete', 'operator', 'o/audit:latest'],
          ['auth.failure', 'alice', undefined],
        ]);
        expect(mine[0]).toMatchObject({ reason: 'build 7', repository: 'o/audit', detail: { digest: m.digest, tag: 'latest' } });
        expect(mine[2]!.detail).toEqual({ remote: '127.0.0.1' });
        const all = await s.metadata.listAudit();
        expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
        const report = verifyAuditChain(all);
        expect(report.problems).toEqual([]);
        expect(report.head).toEqual({ seq: all.length, hash: all.at(-1)!.hash });
        expect(all.some((e) => e.action === 'pin') && all.some((e) => e.action === 'quarantine') && all.some((e) => e.action === 'rollback')).toBe(true);
        expect((await s.metadata.listAudit({ afterSeq: 2, limit: 3 })).map((e) => e.seq)).toEqual([3, 4, 5]);
        expect((await s.metadata.listAudit({ since: Date.now() + 60_000 })).length).toBe(0);
      });

      it('indexes provenance materials and finds consumers; deleting the referrer forgets them', async () => {
        const model = digestOf('model A');
        const ds = digestOf('dataset D1');
        const att = manifest('o/lineage', '{"provenance":"A"}', model);
        await s.metadata.putManifest(att, undefined, actor);
        await s.metadata.recordProvenance({
          repository: 'o/lineage',
          referrer: att.digest,
          subject: model,
          predicateType: 'https://slsa.dev/provenance/v1',
          builderId: 'https://ci.example/builder',
          buildType: undefined,
          startedOn: undefined,
          finishedOn: '2026-01-01T00:00:00Z',
          signers: ['key:abc'],
          materials: [
            { role: 'source', name: undefined, uri: 'git+https://git.example/x@refs/heads/main', digest: { gitCommit: 'ABCDEF0123' } },
            { role: 'training-dataset', name: 'data/d1', uri: undefined, digest: { sha256: ds.slice(7) } },
          ],
        });
        const got = await s.metadata.provenanceFor(undefined, model);
        expect(got).toHaveLength(1);
        expect(got[0]).toMatchObject({ repository: 'o/lineage', referrer: att.digest, builderId: 'https://ci.example/builder', signers: ['key:abc'], startedOn: undefined });
        expect(got[0]!.materials[1]).toEqual({ role: 'training-dataset', name: 'data/d1', digest: { sha256: ds.slice(7) } });
        expect(await s.metadata.provenanceFor('o/other', model)).toEqual([]);
        expect(await s.metadata.consumersOf(ds)).toEqual([{ repository: 'o/lineage', subject: model, referrer: att.digest, role: 'training-dataset', name: 'data/d1' }]);
        expect((await s.metadata.consumersOf('gitCommit:abcdef0123')).map((c) => c.subject)).toEqual([model]);
        expect(await s.metadata.consumersOf(digestOf('unrelated'))).toEqual([]);
        expect(await s.metadata.repositoriesOf(att.digest)).toEqual(['o/lineage']);
        await s.metadata.deleteManifest('o/lineage', att.digest, actor);
        expect(await s.metadata.consumersOf(ds)).toEqual([]);
        expect(await s.metadata.provenanceFor(undefined, model)).toEqual([]);
      });

      it('finds the manifests, in every repository, that hold a blob (lineage by a dataset file)', async () => {
        const csv = digestOf('transactions.csv');
        const d1 = { ...manifest('o/ds-a', '{"ds":"a"}'), references: [digestOf('cfg'), csv] };
        const d2 = { ...manifest('o/ds-b', '{"ds":"b"}'), references: [csv] };
        await s.metadata.putManifest(d1, undefined, actor);
        await s.metadata.putManifest(d2, undefined, actor);
        expect(await s.metadata.manifestsContaining(csv)).toEqual([
          { repository: 'o/ds-a', digest: d1.digest },
          { repository: 'o/ds-b', digest: d2.digest },
        ]);
        expect(await s.metadata.manifestsContaining(digestOf('nothing holds this'))).toEqual([]);
        await s.metadata.deleteManifest('o/ds-b', d2.digest, actor);
        expect((await s.metadata.manifestsContaining(csv)).map((m) => m.repository)).toEqual(['o/ds-a']);
      });

      it('finds the tag moves of a digest', async () => {
        const v1 = manifest('o/moves', '{"moves":1}');
        const v2 = manifest('o/moves', '{"moves":2}');
        await s.metadata.putManifest(v1, 'a', actor);
        await s.metadata.putManifest(v2, 'a', actor);
        await s.metadata.putManifest(v1, 'b', actor);
        const moves = await s.metadata.tagMovesOf('o/moves', v1.digest);
        expect(moves.map((m) => [m.tag, m.from, m.to])).toEqual([
          ['b', undefined, v1.digest],
          ['a', v1.digest, v2.digest],
          ['a', undefined, v1.digest],
        ]);
      });
    });
  });
}
