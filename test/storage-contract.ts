import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../src/oci/index.js';
import type { BlobStore, MetadataStore, UploadStore } from '../src/storage/index.js';

/**
 * The storage contract every backend must honour (distribution's testsuites.go
 * habit): run once per backend with a factory that makes fresh stores.
 */
export interface StorageUnderTest {
  blobs: BlobStore;
  uploads: UploadStore;
  metadata: MetadataStore;
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
  });
}
