// OCI Distribution Spec 1.1, workflow "Pull": GET /v2/, blobs (GET/HEAD/Range), manifests (GET/HEAD).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCEPT_ALL, MT, expectBytes, expectError, getManifest, pushBlob, pushImage, sha256 } from './helpers/content.js';
import { req } from './helpers/http.js';
import { openTarget, repoName, type Target } from './helpers/target.js';

let t: Target;
beforeAll(async () => {
  t = await openTarget();
}, 60_000);
afterAll(async () => t?.close());

describe('API version check (end-1)', () => {
  it('GET /v2/ answers 200 with Docker-Distribution-API-Version: registry/2.0', async () => {
    const res = await req(t, 'GET', '/v2/');
    expect(res.status).toBe(200);
    expect(res.header('docker-distribution-api-version')).toBe('registry/2.0');
  });

  it('if anonymous pushes are refused, anonymous GET /v2/ is 401 with a WWW-Authenticate challenge', async () => {
    // Clients (containers/image, docker) decide whether to send credentials from the
    // /v2/ ping alone: a 200 there means they never authenticate, so pushes fail.
    const post = await req(t, 'POST', `/v2/${repoName('anon')}/blobs/uploads/`, { anonymous: true });
    if (post.status !== 401) return; // anonymous push allowed (or no access control): nothing to check
    const ping = await req(t, 'GET', '/v2/', { anonymous: true });
    expect(ping.status).toBe(401);
    expect(ping.header('www-authenticate')).toMatch(/^(Basic|Bearer) /);
  });
});

describe('pulling blobs (end-2)', () => {
  const repo = repoName('pull');
  const blob = randomBytes(100_000);
  let digest: string;
  beforeAll(async () => {
    digest = await pushBlob(t, repo, blob);
  });

  it('GET returns 200, the exact bytes, Docker-Content-Digest and Content-Length', async () => {
    const res = await req(t, 'GET', `/v2/${repo}/blobs/${digest}`);
    expect(res.status).toBe(200);
    expectBytes(res.body, blob);
    expect(res.header('docker-content-digest')).toBe(digest);
    expect(res.header('content-length')).toBe(String(blob.length));
    expect(sha256(res.body)).toBe(digest);
  });

  it('HEAD returns 200 with Content-Length and Docker-Content-Digest and no body', async () => {
    const res = await req(t, 'HEAD', `/v2/${repo}/blobs/${digest}`);
    expect(res.status).toBe(200);
    expect(res.header('content-length')).toBe(String(blob.length));
    expect(res.header('docker-content-digest')).toBe(digest);
    expect(res.body.length).toBe(0);
  });

  it('Range bytes=a-b returns 206 with Content-Range and exactly that slice', async () => {
    const res = await req(t, 'GET', `/v2/${repo}/blobs/${digest}`, { headers: { range: 'bytes=10-4009' } });
    expect(res.status).toBe(206);
    expect(res.header('content-range')).toBe(`bytes 10-4009/${blob.length}`);
    expect(res.header('content-length')).toBe('4000');
    expectBytes(res.body, blob.subarray(10, 4010));
  });

  it('Range bytes=a- (open end) and a suffix range return the right tail', async () => {
    const open = await req(t, 'GET', `/v2/${repo}/blobs/${digest}`, { headers: { range: `bytes=${blob.length - 100}-` } });
    expect(open.status).toBe(206);
    expect(open.header('content-range')).toBe(`bytes ${blob.length - 100}-${blob.length - 1}/${blob.length}`);
    expectBytes(open.body, blob.subarray(blob.length - 100));
    const suffix = await req(t, 'GET', `/v2/${repo}/blobs/${digest}`, { headers: { range: 'bytes=-7' } });
    expect(suffix.status).toBe(206);
    expectBytes(suffix.body, blob.subarray(blob.length - 7));
  });

  it('Range past the end returns 416 with Content-Range bytes */size', async () => {
    const res = await req(t, 'GET', `/v2/${repo}/blobs/${digest}`, { headers: { range: `bytes=${blob.length + 10}-` } });
    expect(res.status).toBe(416);
    expect(res.header('content-range')).toBe(`bytes */${blob.length}`);
  });

  it('an unknown blob is 404 BLOB_UNKNOWN on GET and 404 on HEAD', async () => {
    const unknown = sha256(randomBytes(16));
    expectError(await req(t, 'GET', `/v2/${repo}/blobs/${unknown}`), 404, 'BLOB_UNKNOWN');
    const head = await req(t, 'HEAD', `/v2/${repo}/blobs/${unknown}`);
    expect(head.status).toBe(404);
    expect(head.body.length).toBe(0);
  });

  it('a blob GET in a repository that does not exist is 404', async () => {
    const res = await req(t, 'GET', `/v2/${repoName('nosuch')}/blobs/${digest}`);
    expectError(res, 404, ['BLOB_UNKNOWN', 'NAME_UNKNOWN']);
  });
});

describe('pulling manifests (end-3), byte-exact for each manifest type', () => {
  const repo = repoName('pull');
  const cases: { name: string; mediaType: string; bytes: () => Promise<Buffer> }[] = [];
  let image: Awaited<ReturnType<typeof pushImage>>;
  let dockerImage: Awaited<ReturnType<typeof pushImage>>;

  beforeAll(async () => {
    image = await pushImage(t, repo, 'img');
    dockerImage = await pushImage(t, repo, 'dimg', { docker: true });
  });

  const index = () =>
    Buffer.from(
      `{"schemaVersion":2,\n\t"mediaType":"${MT.ociIndex}",  "manifests":[{"mediaType":"${MT.ociManifest}","digest":"${image.digest}","size":${image.manifest.length},"platform":{"architecture":"amd64","os":"linux"}}],"annotations":{"x":"y"}}\n\n`,
    );
  const list = () =>
    Buffer.from(
      `{\n "schemaVersion": 2,\n "mediaType": "${MT.dockerList}",\n "manifests": [ { "mediaType": "${MT.dockerManifest}", "digest": "${dockerImage.digest}", "size": ${dockerImage.manifest.length}, "platform": { "architecture": "arm64", "os": "linux", "variant": "v8" } } ]\n}`,
    );
  cases.push(
    { name: 'OCI image manifest', mediaType: MT.ociManifest, bytes: async () => image.manifest },
    { name: 'Docker schema2 manifest', mediaType: MT.dockerManifest, bytes: async () => dockerImage.manifest },
    { name: 'OCI image index', mediaType: MT.ociIndex, bytes: async () => index() },
    { name: 'Docker manifest list', mediaType: MT.dockerList, bytes: async () => list() },
  );

  for (const c of cases) {
    it(`${c.name}: PUT by tag, then GET/HEAD by tag and by digest serve the same bytes`, async () => {
      const bytes = await c.bytes();
      const digest = sha256(bytes);
      const tag = `t-${c.mediaType.length}-${randomBytes(3).toString('hex')}`;
      const put = await req(t, 'PUT', `/v2/${repo}/manifests/${tag}`, { headers: { 'content-type': c.mediaType }, body: bytes });
      expect(put.status, put.text()).toBe(201);
      expect(put.header('docker-content-digest')).toBe(digest);
      expect(put.header('location')).toBeTruthy();
      for (const ref of [tag, digest]) {
        const get = await getManifest(t, repo, ref);
        expect(get.status, get.text()).toBe(200);
        expectBytes(get.body, bytes);
        expect(get.header('content-type')).toBe(c.mediaType);
        expect(get.header('docker-content-digest')).toBe(digest);
        const head = await getManifest(t, repo, ref, 'HEAD');
        expect(head.status).toBe(200);
        expect(head.header('content-type')).toBe(c.mediaType);
        expect(head.header('docker-content-digest')).toBe(digest);
        expect(head.header('content-length')).toBe(String(bytes.length));
        expect(head.body.length).toBe(0);
      }
      // The Location of the PUT is a pullable manifest URL.
      const loc = await req(t, 'GET', put.header('location')!, { headers: { accept: ACCEPT_ALL } });
      expect(loc.status).toBe(200);
      expectBytes(loc.body, bytes);
    });
  }

  it('an unknown tag or digest is 404 MANIFEST_UNKNOWN; HEAD is 404', async () => {
    expectError(await getManifest(t, repo, 'no-such-tag'), 404, 'MANIFEST_UNKNOWN');
    expectError(await getManifest(t, repo, sha256(randomBytes(8))), 404, 'MANIFEST_UNKNOWN');
    const head = await getManifest(t, repo, 'no-such-tag', 'HEAD');
    expect(head.status).toBe(404);
  });

  it('a manifest in a repository that does not exist is 404', async () => {
    expectError(await getManifest(t, repoName('nosuch'), 'latest'), 404, ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']);
  });
});
