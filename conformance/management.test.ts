// OCI Distribution Spec 1.1, workflow "Content Management": deleting tags, manifests and blobs.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MT, expectError, getManifest, pushBlob, pushImage, putManifest, sha256 } from './helpers/content.js';
import { req } from './helpers/http.js';
import { openTarget, repoName, type Target } from './helpers/target.js';

let t: Target;
beforeAll(async () => {
  t = await openTarget();
}, 60_000);
afterAll(async () => t?.close());

const tagsOf = async (repo: string): Promise<string[]> => {
  const res = await req(t, 'GET', `/v2/${repo}/tags/list`);
  if (res.status === 404) return [];
  expect(res.status).toBe(200);
  return res.json().tags ?? [];
};

describe('deleting tags (end-9 with a tag)', () => {
  it('DELETE of a tag answers 202; the tag is gone, the manifest and other tags stay', async () => {
    const repo = repoName('mgmt');
    const img = await pushImage(t, repo, 'keep');
    expect((await putManifest(t, repo, 'drop', img.manifest, MT.ociManifest)).status).toBe(201);
    const del = await req(t, 'DELETE', `/v2/${repo}/manifests/drop`);
    expect(del.status, del.text()).toBe(202);
    expectError(await getManifest(t, repo, 'drop'), 404, 'MANIFEST_UNKNOWN');
    expect((await getManifest(t, repo, 'keep')).status).toBe(200);
    expect((await getManifest(t, repo, img.digest)).status).toBe(200);
    expect(await tagsOf(repo)).toEqual(['keep']);
  });

  it('DELETE of an unknown tag is 404 MANIFEST_UNKNOWN', async () => {
    const repo = repoName('mgmt');
    await pushImage(t, repo, 'x');
    expectError(await req(t, 'DELETE', `/v2/${repo}/manifests/nope`), 404, 'MANIFEST_UNKNOWN');
  });
});

describe('deleting manifests (end-9 with a digest)', () => {
  it('DELETE by digest answers 202; GET by digest and by every tag pointing to it is then 404', async () => {
    const repo = repoName('mgmt');
    const img = await pushImage(t, repo, 'a');
    expect((await putManifest(t, repo, 'b', img.manifest, MT.ociManifest)).status).toBe(201);
    const other = await pushImage(t, repo, 'c');
    const del = await req(t, 'DELETE', `/v2/${repo}/manifests/${img.digest}`);
    expect(del.status, del.text()).toBe(202);
    expectError(await getManifest(t, repo, img.digest), 404, 'MANIFEST_UNKNOWN');
    expect((await getManifest(t, repo, img.digest, 'HEAD')).status).toBe(404);
    expectError(await getManifest(t, repo, 'a'), 404, 'MANIFEST_UNKNOWN');
    expectError(await getManifest(t, repo, 'b'), 404, 'MANIFEST_UNKNOWN');
    expect(await tagsOf(repo)).toEqual(['c']);
    expect((await getManifest(t, repo, other.digest)).status).toBe(200);
  });

  it('DELETE of an unknown digest is 404 MANIFEST_UNKNOWN', async () => {
    const repo = repoName('mgmt');
    await pushImage(t, repo, 'x');
    expectError(await req(t, 'DELETE', `/v2/${repo}/manifests/${sha256(randomBytes(8))}`), 404, 'MANIFEST_UNKNOWN');
  });

  it('DELETE in a repository that does not exist is 404', async () => {
    const res = await req(t, 'DELETE', `/v2/${repoName('nosuch')}/manifests/${sha256(randomBytes(8))}`);
    expectError(res, 404, ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']);
  });

  it('a deleted manifest can be pushed again', async () => {
    const repo = repoName('mgmt');
    const img = await pushImage(t, repo, 'v');
    expect((await req(t, 'DELETE', `/v2/${repo}/manifests/${img.digest}`)).status).toBe(202);
    expect((await putManifest(t, repo, 'v', img.manifest, MT.ociManifest)).status).toBe(201);
    expect((await getManifest(t, repo, 'v')).header('docker-content-digest')).toBe(img.digest);
  });
});

describe('deleting each manifest type by digest', () => {
  it('OCI index, Docker schema2 manifest and Docker manifest list: DELETE 202, then 404', async () => {
    const repo = repoName('mgmt');
    const oci = await pushImage(t, repo, 'oci');
    const docker = await pushImage(t, repo, 'docker', { docker: true });
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [oci.desc] }));
    const list = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.dockerList, manifests: [{ ...docker.desc, platform: { architecture: 'amd64', os: 'linux' } }] }));
    expect((await putManifest(t, repo, 'index', index, MT.ociIndex)).status).toBe(201);
    expect((await putManifest(t, repo, 'list', list, MT.dockerList)).status).toBe(201);
    // Indexes first: a registry MAY refuse to delete a manifest an index still refers to.
    for (const [tag, digest] of [['index', sha256(index)], ['list', sha256(list)], ['docker', docker.digest], ['oci', oci.digest]] as const) {
      const del = await req(t, 'DELETE', `/v2/${repo}/manifests/${digest}`);
      expect(del.status, `${tag}: ${del.text()}`).toBe(202);
      expectError(await getManifest(t, repo, digest), 404, 'MANIFEST_UNKNOWN');
      expectError(await getManifest(t, repo, tag), 404, 'MANIFEST_UNKNOWN');
    }
    expect(await tagsOf(repo)).toEqual([]);
  });
});

describe('deleting blobs (end-10)', () => {
  it('DELETE answers 202; GET/HEAD are then 404 BLOB_UNKNOWN; a second DELETE is 404', async () => {
    const repo = repoName('mgmt');
    const blob = randomBytes(2048);
    const digest = await pushBlob(t, repo, blob);
    const del = await req(t, 'DELETE', `/v2/${repo}/blobs/${digest}`);
    expect(del.status, del.text()).toBe(202);
    expectError(await req(t, 'GET', `/v2/${repo}/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
    expect((await req(t, 'HEAD', `/v2/${repo}/blobs/${digest}`)).status).toBe(404);
    expectError(await req(t, 'DELETE', `/v2/${repo}/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  });

  it('deleting a blob in one repository leaves it readable in another that holds it', async () => {
    const a = repoName('mgmt');
    const b = repoName('mgmt');
    const blob = randomBytes(512);
    const digest = await pushBlob(t, a, blob);
    await pushBlob(t, b, blob);
    expect((await req(t, 'DELETE', `/v2/${a}/blobs/${digest}`)).status).toBe(202);
    expect((await req(t, 'HEAD', `/v2/${a}/blobs/${digest}`)).status).toBe(404);
    const get = await req(t, 'GET', `/v2/${b}/blobs/${digest}`);
    expect(get.status).toBe(200);
    expect(get.body.equals(blob)).toBe(true);
  });

  it('a deleted blob can be uploaded again', async () => {
    const repo = repoName('mgmt');
    const blob = randomBytes(100);
    const digest = await pushBlob(t, repo, blob);
    expect((await req(t, 'DELETE', `/v2/${repo}/blobs/${digest}`)).status).toBe(202);
    await pushBlob(t, repo, blob);
    expect((await req(t, 'GET', `/v2/${repo}/blobs/${digest}`)).body.equals(blob)).toBe(true);
  });
});
