// OCI Distribution Spec 1.1, workflow "Push": blob uploads (monolithic, chunked, streamed),
// upload status and cancel, cross-repository mount, manifest PUT with and without subject.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MT, descOf, expectBytes, expectError, getManifest, oddJson, pushBlob, pushImage, putManifest, sha256 } from './helpers/content.js';
import { req, type Res } from './helpers/http.js';
import { openTarget, repoName, type Target } from './helpers/target.js';

let t: Target;
beforeAll(async () => {
  t = await openTarget();
}, 60_000);
afterAll(async () => t?.close());

const octet = { 'content-type': 'application/octet-stream' };

async function expectBlob(repo: string, digest: string, bytes: Buffer) {
  const res = await req(t, 'GET', `/v2/${repo}/blobs/${digest}`);
  expect(res.status).toBe(200);
  expectBytes(res.body, bytes);
}

/** `Range: 0-<end>` as the spec writes it (some registries prefix `bytes=`; the spec does not). */
function expectRange(res: Res, end: number) {
  expect(res.header('range')).toBe(`0-${end}`);
}

async function startSession(repo: string): Promise<string> {
  const res = await req(t, 'POST', `/v2/${repo}/blobs/uploads/`, { headers: { 'content-length': '0' } });
  expect(res.status, res.text()).toBe(202);
  const loc = res.header('location');
  expect(loc).toBeTruthy();
  return loc!;
}

describe('monolithic uploads', () => {
  const repo = repoName('push');

  it('single POST with ?digest= answers 201 with a pullable Location and Docker-Content-Digest', async () => {
    const blob = randomBytes(5000);
    const digest = sha256(blob);
    const res = await req(t, 'POST', `/v2/${repo}/blobs/uploads/`, { query: { digest }, headers: octet, body: blob });
    expect(res.status, res.text()).toBe(201);
    expect(res.header('docker-content-digest')).toBe(digest);
    const loc = await req(t, 'GET', res.header('location')!);
    expect(loc.status).toBe(200);
    expectBytes(loc.body, blob);
  });

  it('POST opens a session (202 + Location); PUT with the whole body and ?digest= answers 201', async () => {
    const blob = randomBytes(7000);
    const digest = sha256(blob);
    const loc = await startSession(repo);
    const put = await req(t, 'PUT', loc, { query: { digest }, headers: octet, body: blob });
    expect(put.status, put.text()).toBe(201);
    expect(put.header('docker-content-digest')).toBe(digest);
    const pulled = await req(t, 'GET', put.header('location')!);
    expect(pulled.status).toBe(200);
    expectBytes(pulled.body, blob);
  });

  it('an empty blob can be pushed and pulled', async () => {
    const blob = Buffer.alloc(0);
    const digest = await pushBlob(t, repo, blob);
    const head = await req(t, 'HEAD', `/v2/${repo}/blobs/${digest}`);
    expect(head.status).toBe(200);
    expect(head.header('content-length')).toBe('0');
  });

  it('pushing a blob that already exists succeeds again (201)', async () => {
    const blob = randomBytes(300);
    await pushBlob(t, repo, blob);
    await pushBlob(t, repo, blob);
    await expectBlob(repo, sha256(blob), blob);
  });
});

describe('large and concurrent uploads', () => {
  const repo = repoName('push');

  it('a 64 MiB blob streamed in one PATCH comes back with the same digest', async () => {
    const block = randomBytes(1 << 20);
    const parts = function* () {
      for (let i = 0; i < 64; i++) {
        const b = Buffer.from(block);
        b.writeUInt32BE(i, 0);
        yield b;
      }
    };
    const h = createHash('sha256');
    for (const p of parts()) h.update(p);
    const digest = `sha256:${h.digest('hex')}`;
    const loc = await startSession(repo);
    const p = await req(t, 'PATCH', loc, { headers: octet, body: Readable.from(parts()) });
    expect(p.status).toBe(202);
    expectRange(p, 64 * (1 << 20) - 1);
    const put = await req(t, 'PUT', p.header('location')!, { query: { digest } });
    expect(put.status, put.text()).toBe(201);
    const get = await req(t, 'GET', `/v2/${repo}/blobs/${digest}`);
    expect(get.status).toBe(200);
    expect(sha256(get.body)).toBe(digest);
  });

  it('two concurrent uploads of the same blob both succeed (layer upload de-duplication)', async () => {
    const blob = randomBytes(3 << 20);
    const digest = sha256(blob);
    const [a, b] = await Promise.all([startSession(repo), startSession(repo)]);
    expect(a).not.toBe(b);
    const [pa, pb] = await Promise.all([
      req(t, 'PUT', a, { query: { digest }, headers: octet, body: blob }),
      req(t, 'PUT', b, { query: { digest }, headers: octet, body: blob }),
    ]);
    expect(pa.status).toBe(201);
    expect(pb.status).toBe(201);
    await expectBlob(repo, digest, blob);
  });
});

describe('chunked uploads', () => {
  const repo = repoName('push');
  const blob = randomBytes(3 * 65536 + 123);
  const digest = sha256(blob);
  const c1 = blob.subarray(0, 65536);
  const c2 = blob.subarray(65536, 2 * 65536);
  const c3 = blob.subarray(2 * 65536);

  it('PATCH chunks in order (202, Location, Range 0-N), GET status (204), PUT closes (201)', async () => {
    let loc = await startSession(repo);
    const p1 = await req(t, 'PATCH', loc, { headers: { ...octet, 'content-range': `0-${c1.length - 1}` }, body: c1 });
    expect(p1.status, p1.text()).toBe(202);
    expectRange(p1, c1.length - 1);
    loc = p1.header('location')!;
    expect(loc).toBeTruthy();

    const st = await req(t, 'GET', loc);
    expect(st.status).toBe(204);
    expectRange(st, c1.length - 1);
    expect(st.header('location')).toBeTruthy();
    loc = st.header('location')!;

    const p2 = await req(t, 'PATCH', loc, { headers: { ...octet, 'content-range': `65536-${2 * 65536 - 1}` }, body: c2 });
    expect(p2.status, p2.text()).toBe(202);
    expectRange(p2, 2 * 65536 - 1);
    loc = p2.header('location')!;

    const p3 = await req(t, 'PATCH', loc, { headers: { ...octet, 'content-range': `${2 * 65536}-${blob.length - 1}` }, body: c3 });
    expect(p3.status).toBe(202);
    expectRange(p3, blob.length - 1);

    const put = await req(t, 'PUT', p3.header('location')!, { query: { digest } });
    expect(put.status, put.text()).toBe(201);
    expect(put.header('location')).toBeTruthy();
    expect(put.header('docker-content-digest')).toBe(digest);
    await expectBlob(repo, digest, blob);
  });

  it('the final chunk may come with the closing PUT', async () => {
    const loc = await startSession(repo);
    const head = blob.subarray(0, 100_000);
    const tail = blob.subarray(100_000);
    const p1 = await req(t, 'PATCH', loc, { headers: { ...octet, 'content-range': `0-${head.length - 1}` }, body: head });
    expect(p1.status).toBe(202);
    const put = await req(t, 'PUT', p1.header('location')!, {
      query: { digest },
      headers: { ...octet, 'content-range': `${head.length}-${blob.length - 1}` },
      body: tail,
    });
    expect(put.status, put.text()).toBe(201);
    await expectBlob(repo, digest, blob);
  });

  it('a chunk that does not start where the last ended is 416', async () => {
    const loc = await startSession(repo);
    // First chunk must begin at 0.
    const skip = await req(t, 'PATCH', loc, { headers: { ...octet, 'content-range': `10-${10 + c1.length - 1}` }, body: c1 });
    expect(skip.status).toBe(416);
    const p1 = await req(t, 'PATCH', loc, { headers: { ...octet, 'content-range': `0-${c1.length - 1}` }, body: c1 });
    expect(p1.status).toBe(202);
    const again = await req(t, 'PATCH', p1.header('location')!, { headers: { ...octet, 'content-range': `0-${c1.length - 1}` }, body: c1 });
    expect(again.status).toBe(416);
    // After a 416 the status still says how far the upload got, and the upload can go on.
    const st = await req(t, 'GET', p1.header('location')!);
    expect(st.status).toBe(204);
    expectRange(st, c1.length - 1);
    const rest = blob.subarray(c1.length);
    const p2 = await req(t, 'PATCH', st.header('location')!, {
      headers: { ...octet, 'content-range': `${c1.length}-${blob.length - 1}` },
      body: rest,
    });
    expect(p2.status).toBe(202);
    const put = await req(t, 'PUT', p2.header('location')!, { query: { digest } });
    expect(put.status).toBe(201);
    await expectBlob(repo, digest, blob);
  });

  it('a streamed PATCH without Content-Range or Content-Length (chunked encoding) appends the body', async () => {
    const loc = await startSession(repo);
    const parts = [c1, c2, c3];
    const p = await req(t, 'PATCH', loc, { headers: octet, body: Readable.from(parts) });
    expect(p.status, p.text()).toBe(202);
    expectRange(p, blob.length - 1);
    const put = await req(t, 'PUT', p.header('location')!, { query: { digest } });
    expect(put.status, put.text()).toBe(201);
    await expectBlob(repo, digest, blob);
  });

  it('DELETE cancels an upload (204); the session is then 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const loc = await startSession(repo);
    const p1 = await req(t, 'PATCH', loc, { headers: { ...octet, 'content-range': `0-${c1.length - 1}` }, body: c1 });
    expect(p1.status).toBe(202);
    const del = await req(t, 'DELETE', p1.header('location')!);
    expect(del.status).toBe(204);
    expectError(await req(t, 'GET', p1.header('location')!), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(
      await req(t, 'PUT', p1.header('location')!, { query: { digest: sha256(c1) } }),
      404,
      'BLOB_UPLOAD_UNKNOWN',
    );
    // The cancelled bytes were not committed as a blob.
    expect((await req(t, 'HEAD', `/v2/${repo}/blobs/${sha256(c1)}`)).status).toBe(404);
  });

  it('a finished upload session is gone (404 BLOB_UPLOAD_UNKNOWN)', async () => {
    const small = randomBytes(10);
    const loc = await startSession(repo);
    const put = await req(t, 'PUT', loc, { query: { digest: sha256(small) }, headers: octet, body: small });
    expect(put.status).toBe(201);
    expectError(await req(t, 'GET', loc), 404, 'BLOB_UPLOAD_UNKNOWN');
  });
});

describe('cross-repository mount (end-11)', () => {
  const from = repoName('mount-src');
  const to = repoName('mount-dst');
  const blob = randomBytes(4096);
  let digest: string;
  beforeAll(async () => {
    digest = await pushBlob(t, from, blob);
  });

  it('mounting a blob that is in `from` answers 201 with Location and makes it readable in the target', async () => {
    expect((await req(t, 'HEAD', `/v2/${to}/blobs/${digest}`)).status).toBe(404);
    const res = await req(t, 'POST', `/v2/${to}/blobs/uploads/`, { query: { mount: digest, from } });
    expect(res.status, res.text()).toBe(201);
    expect(res.header('location')).toBeTruthy();
    expect(res.header('docker-content-digest')).toBe(digest);
    await expectBlob(to, digest, blob);
  });

  it('mounting a blob that `from` does not hold opens a normal session (202)', async () => {
    const other = randomBytes(100);
    const res = await req(t, 'POST', `/v2/${repoName('mount-dst')}/blobs/uploads/`, {
      query: { mount: sha256(other), from },
    });
    expect(res.status).toBe(202);
    // ... which works as an upload session.
    const put = await req(t, 'PUT', res.header('location')!, { query: { digest: sha256(other) }, headers: octet, body: other });
    expect(put.status).toBe(201);
  });

  it('mounting from a repository that does not exist opens a session (202)', async () => {
    const res = await req(t, 'POST', `/v2/${repoName('mount-dst')}/blobs/uploads/`, { query: { mount: digest, from: repoName('nosuch') } });
    expect(res.status).toBe(202);
    expect(res.header('location')).toBeTruthy();
  });

  it('mount without `from` answers 201 (mounted) or 202 (session), never an error', async () => {
    const dst = repoName('mount-dst');
    const res = await req(t, 'POST', `/v2/${dst}/blobs/uploads/`, { query: { mount: digest } });
    expect([201, 202]).toContain(res.status);
    expect(res.header('location')).toBeTruthy();
    if (res.status === 201) await expectBlob(dst, digest, blob);
  });
});

describe('pushing manifests (end-7)', () => {
  const repo = repoName('push');

  it('PUT by tag answers 201 with Location and the Docker-Content-Digest of the exact bytes', async () => {
    const img = await pushImage(t, repo, 'v1');
    const res = await getManifest(t, repo, 'v1');
    expect(res.status).toBe(200);
    expectBytes(res.body, img.manifest);
    expect(res.header('docker-content-digest')).toBe(img.digest);
  });

  it('PUT by digest answers 201; the manifest is then pullable by that digest', async () => {
    const img = await pushImage(t, repo);
    const res = await getManifest(t, repo, img.digest);
    expect(res.status).toBe(200);
    expectBytes(res.body, img.manifest);
  });

  it('re-pushing a tag moves it to the new manifest; the old one stays pullable by digest', async () => {
    const a = await pushImage(t, repo, 'moving');
    const b = await pushImage(t, repo, 'moving');
    expect((await getManifest(t, repo, 'moving')).header('docker-content-digest')).toBe(b.digest);
    expect((await getManifest(t, repo, a.digest)).status).toBe(200);
  });

  it('a Content-Type with parameters is accepted; the stored media type has none', async () => {
    const img = await pushImage(t, repo, undefined);
    const again = await putManifest(t, repo, 'params', img.manifest, `${MT.ociManifest}; charset=utf-8`);
    expect(again.status, again.text()).toBe(201);
    expect((await getManifest(t, repo, 'params')).header('content-type')).toBe(MT.ociManifest);
  });

  it('a manifest with `subject` answers 201 with OCI-Subject: <subject digest>', async () => {
    const subject = await pushImage(t, repo, 'subject');
    const ref = await pushImage(t, repo, undefined, { subject: subject.desc, artifactType: 'application/vnd.example.sig' });
    // pushImage checked 201; push it again by tag to see the response headers.
    const res = await putManifest(t, repo, 'sig', ref.manifest, MT.ociManifest);
    expect(res.status).toBe(201);
    expect(res.header('oci-subject')).toBe(subject.digest);
  });

  it('a manifest whose subject does not exist (yet) is accepted', async () => {
    const missing = descOf(MT.ociManifest, randomBytes(50));
    const ref = await pushImage(t, repo, undefined, { subject: missing, artifactType: 'application/vnd.example.sbom' });
    expect((await getManifest(t, repo, ref.digest)).status).toBe(200);
  });

  it('an artifact with the empty config and a non-image artifactType is accepted byte-exact', async () => {
    const empty = Buffer.from('{}');
    await pushBlob(t, repo, empty);
    const file = randomBytes(64);
    await pushBlob(t, repo, file);
    const m = oddJson({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      artifactType: 'application/vnd.example.model.v1',
      config: descOf(MT.ociEmpty, empty),
      layers: [descOf('application/vnd.example.weights', file, { annotations: { 'org.opencontainers.image.title': 'w.bin' } })],
      annotations: { 'org.example.k': 'v' },
    });
    const put = await putManifest(t, repo, 'model', m, MT.ociManifest);
    expect(put.status, put.text()).toBe(201);
    const get = await getManifest(t, repo, 'model');
    expectBytes(get.body, m);
  });

  it('a manifest of 4 MiB is accepted (clients and registries SHOULD support at least 4 MiB)', async () => {
    const img = await pushImage(t, repo);
    const base = JSON.parse(img.manifest.toString());
    const skeleton = Buffer.from(JSON.stringify({ ...base, annotations: { pad: '' } }));
    const pad = 4 * 1024 * 1024 - skeleton.length;
    const big = Buffer.from(JSON.stringify({ ...base, annotations: { pad: 'x'.repeat(pad) } }));
    expect(big.length).toBe(4 * 1024 * 1024);
    const res = await putManifest(t, repo, 'big', big, MT.ociManifest);
    expect(res.status, res.text().slice(0, 200)).toBe(201);
    expectBytes((await getManifest(t, repo, 'big')).body, big);
  });
});

describe('errors while pushing', () => {
  const repo = repoName('push');
  it('a digest that does not match the uploaded bytes is 400 DIGEST_INVALID and nothing is stored', async () => {
    const blob = randomBytes(100);
    const wrong = sha256(randomBytes(100));
    const loc = await startSession(repo);
    expectError(await req(t, 'PUT', loc, { query: { digest: wrong }, headers: octet, body: blob }), 400, 'DIGEST_INVALID');
    expect((await req(t, 'HEAD', `/v2/${repo}/blobs/${wrong}`)).status).toBe(404);
    expectError(
      await req(t, 'POST', `/v2/${repo}/blobs/uploads/`, { query: { digest: wrong }, headers: octet, body: blob }),
      400,
      'DIGEST_INVALID',
    );
    expect((await req(t, 'HEAD', `/v2/${repo}/blobs/${wrong}`)).status).toBe(404);
  });

  it('closing an upload without ?digest= is 400 (DIGEST_INVALID)', async () => {
    const loc = await startSession(repo);
    const res = await req(t, 'PUT', loc, { headers: octet, body: randomBytes(10) });
    expectError(res, 400, ['DIGEST_INVALID', 'BLOB_UPLOAD_INVALID']);
  });

  it('a manifest PUT by digest whose bytes have another digest is 400', async () => {
    const img = await pushImage(t, repo, 'x');
    const res = await putManifest(t, repo, sha256(randomBytes(8)), img.manifest, MT.ociManifest);
    expectError(res, 400, ['DIGEST_INVALID', 'MANIFEST_INVALID']);
  });
});
