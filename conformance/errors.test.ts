// OCI Distribution Spec 1.1, "Error Codes" and the validation a registry MUST do:
// every 4xx in the spec's JSON error format with the right code; never a 5xx for bad input;
// blobs linked per repository.
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MT, buildImage, descOf, expectError, getManifest, oddJson, pushBlob, pushImage, putManifest, sha256 } from './helpers/content.js';
import { rawReq, req } from './helpers/http.js';
import { openTarget, repoName, type Target } from './helpers/target.js';

let t: Target;
beforeAll(async () => {
  t = await openTarget();
}, 60_000);
afterAll(async () => t?.close());

const octet = { 'content-type': 'application/octet-stream' };

describe('manifest validation', () => {
  const repo = repoName('err');
  let config: Buffer;
  let layer: Buffer;
  beforeAll(async () => {
    const img = await buildImage(t, repo);
    config = img.config;
    layer = img.layer;
  });

  it('a body that is not JSON is 400 MANIFEST_INVALID', async () => {
    expectError(await putManifest(t, repo, 'bad', Buffer.from('{"schemaVersion": 2, '), MT.ociManifest), 400, 'MANIFEST_INVALID');
  });

  it('JSON that is not a manifest of its media type is 400 MANIFEST_INVALID', async () => {
    const bad = [
      { schemaVersion: 2, mediaType: MT.ociManifest, layers: [] }, // no config
      { schemaVersion: 3, mediaType: MT.ociManifest, config: descOf(MT.ociConfig, config), layers: [] },
      { schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociConfig, digest: 'nope', size: 1 }, layers: [] },
      { schemaVersion: 2, mediaType: MT.ociManifest, config: descOf(MT.ociConfig, config), layers: [{ mediaType: MT.ociLayer, size: 3 }] },
      { schemaVersion: 2, mediaType: MT.ociIndex, manifests: 'x' },
      [1, 2, 3],
    ];
    for (const m of bad) {
      const mt = !Array.isArray(m) && m.mediaType === MT.ociIndex ? MT.ociIndex : MT.ociManifest;
      expectError(await putManifest(t, repo, 'bad', Buffer.from(JSON.stringify(m)), mt), 400, 'MANIFEST_INVALID');
    }
    expect((await getManifest(t, repo, 'bad')).status).toBe(404);
  });

  it('a mediaType field that contradicts Content-Type is 400 MANIFEST_INVALID', async () => {
    const m = oddJson({ schemaVersion: 2, mediaType: MT.ociManifest, config: descOf(MT.ociConfig, config), layers: [descOf(MT.ociLayer, layer)] });
    expectError(await putManifest(t, repo, 'bad', m, MT.ociIndex), 400, 'MANIFEST_INVALID');
  });

  it('a manifest referencing a blob the repository does not have is 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const missing = randomBytes(32);
    const m = oddJson({ schemaVersion: 2, mediaType: MT.ociManifest, config: descOf(MT.ociConfig, config), layers: [descOf(MT.ociLayer, missing)] });
    expectError(await putManifest(t, repo, 'bad', m, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN');
    const noConfig = oddJson({ schemaVersion: 2, mediaType: MT.ociManifest, config: descOf(MT.ociConfig, missing), layers: [] });
    expectError(await putManifest(t, repo, 'bad', noConfig, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  it('an index referencing a manifest the repository does not have is 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const idx = oddJson({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [descOf(MT.ociManifest, randomBytes(40))] });
    expectError(await putManifest(t, repo, 'bad', idx, MT.ociIndex), 400, 'MANIFEST_BLOB_UNKNOWN');
  });

  it('a manifest over 4 MiB is 413', async () => {
    const img = await buildImage(t, repo);
    const base = JSON.parse(img.manifest.toString());
    const big = Buffer.from(JSON.stringify({ ...base, annotations: { pad: 'x'.repeat(4 * 1024 * 1024 + 10) } }));
    const res = await putManifest(t, repo, 'huge', big, MT.ociManifest);
    expect(res.status).toBe(413);
    if (res.body.length > 0 && res.header('content-type')?.includes('json')) expectError(res, 413);
    expect((await getManifest(t, repo, 'huge')).status).toBe(404);
  });

  it('a manifest in a repository without its blobs is refused: blobs are linked per repository', async () => {
    const other = repoName('err');
    const m = oddJson({ schemaVersion: 2, mediaType: MT.ociManifest, config: descOf(MT.ociConfig, config), layers: [descOf(MT.ociLayer, layer)] });
    expectError(await putManifest(t, other, 'x', m, MT.ociManifest), 400, 'MANIFEST_BLOB_UNKNOWN');
  });
});

describe('unknown things are 404 with their code', () => {
  const repo = repoName('err');
  beforeAll(async () => {
    await pushImage(t, repo, 'x');
  });

  it('unknown blob: 404 BLOB_UNKNOWN', async () => {
    expectError(await req(t, 'GET', `/v2/${repo}/blobs/${sha256(randomBytes(4))}`), 404, 'BLOB_UNKNOWN');
  });

  it('unknown manifest: 404 MANIFEST_UNKNOWN', async () => {
    expectError(await getManifest(t, repo, 'missing'), 404, 'MANIFEST_UNKNOWN');
  });

  it('unknown upload session: 404 BLOB_UPLOAD_UNKNOWN on GET, PATCH, PUT and DELETE', async () => {
    const loc = `/v2/${repo}/blobs/uploads/0b9d1e27-6f5b-4c4e-9f79-1f2c3a4b5c6d`;
    expectError(await req(t, 'GET', loc), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await req(t, 'PATCH', loc, { headers: octet, body: randomBytes(5) }), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await req(t, 'PUT', loc, { query: { digest: sha256('x') }, headers: octet, body: 'x' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    expectError(await req(t, 'DELETE', loc), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('an upload session of one repository is unknown in another', async () => {
    const post = await req(t, 'POST', `/v2/${repo}/blobs/uploads/`);
    expect(post.status).toBe(202);
    const id = new URL(post.header('location')!, t.url).pathname.split('/').pop();
    const other = repoName('err');
    expectError(await req(t, 'GET', `/v2/${other}/blobs/uploads/${id}`), 404, 'BLOB_UPLOAD_UNKNOWN');
  });
});

describe('blobs are linked per repository', () => {
  it('a blob pushed to A is not readable through B (GET/HEAD 404) until pushed or mounted there', async () => {
    const a = repoName('link');
    const b = repoName('link');
    await pushImage(t, b, 'exists'); // B exists as a repository
    const blob = randomBytes(999);
    const digest = await pushBlob(t, a, blob);
    expectError(await req(t, 'GET', `/v2/${b}/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
    expect((await req(t, 'HEAD', `/v2/${b}/blobs/${digest}`)).status).toBe(404);
    expect((await req(t, 'GET', `/v2/${b}/blobs/${digest}`, { headers: { range: 'bytes=0-9' } })).status).toBe(404);
    const mount = await req(t, 'POST', `/v2/${b}/blobs/uploads/`, { query: { mount: digest, from: a } });
    expect(mount.status).toBe(201);
    expect((await req(t, 'GET', `/v2/${b}/blobs/${digest}`)).body.equals(blob)).toBe(true);
  });

  it('a manifest pushed to A is not readable by digest through B', async () => {
    const a = repoName('link');
    const b = repoName('link');
    const img = await pushImage(t, a, 'v1');
    await pushImage(t, b, 'v1');
    expectError(await getManifest(t, b, img.digest), 404, 'MANIFEST_UNKNOWN');
  });
});

describe('names and digests', () => {
  const repo = repoName('err');
  beforeAll(async () => {
    await pushImage(t, repo, 'x');
  });

  // Each answer is 400 NAME_INVALID or 404 (a path the API does not route), never a success or 5xx.
  const badNames = [
    'UPPER/case',
    'conf/Upper',
    'conf/../etc',
    'conf/%2e%2e/etc',
    '../conf',
    'conf//double',
    '-lead/x',
    'conf/trail-',
    'conf/a..b',
    'conf/%00x',
    'a'.repeat(256),
  ];
  for (const name of badNames) {
    it(`name ${JSON.stringify(name.length > 40 ? name.slice(0, 20) + '…' : name)} is refused (NAME_INVALID or 404)`, async () => {
      for (const [method, path] of [
        ['GET', `/v2/${name}/manifests/latest`],
        ['GET', `/v2/${name}/tags/list`],
        ['POST', `/v2/${name}/blobs/uploads/`],
        ['PUT', `/v2/${name}/manifests/latest`],
      ] as const) {
        const res = await rawReq(t, method, path, method === 'PUT' ? { headers: { 'content-type': MT.ociManifest }, body: '{}' } : {});
        expect([400, 404], `${method} ${path}: ${res.status} ${res.text().slice(0, 200)}`).toContain(res.status);
        if (res.status === 400) expectError(res, 400, ['NAME_INVALID', 'MANIFEST_INVALID']);
      }
    });
  }

  it('an invalid tag is refused with 400 or 404', async () => {
    const img = await buildImage(t, repo);
    for (const tag of ['-dash', '.dot', 'a'.repeat(129), 'sp%20ace']) {
      const res = await rawReq(t, 'PUT', `/v2/${repo}/manifests/${tag}`, { headers: { 'content-type': MT.ociManifest }, body: img.manifest });
      expect([400, 404], `${tag}: ${res.status}`).toContain(res.status);
    }
  });

  // The spec's endpoint table lists only 404 as the failure of a manifest GET/HEAD, and the official
  // conformance suite asks for `.INVALID_MANIFEST_NAME` exactly that.
  it('GET, HEAD and DELETE of a manifest by a reference that cannot exist are 404 MANIFEST_UNKNOWN', async () => {
    for (const ref of ['.INVALID_MANIFEST_NAME', '-dash', 'a'.repeat(129), 'sha256:xyz', `md5:${'0'.repeat(32)}`]) {
      for (const method of ['GET', 'HEAD', 'DELETE']) {
        const res = await rawReq(t, method, `/v2/${repo}/manifests/${ref}`, { headers: { accept: MT.ociManifest } });
        expect(res.status, `${method} ${ref}: ${res.text().slice(0, 200)}`).toBe(404);
        if (method !== 'HEAD') expectError(res, 404, 'MANIFEST_UNKNOWN');
      }
    }
  });

  it('an unsupported digest algorithm is 400 (UNSUPPORTED or DIGEST_INVALID)', async () => {
    const loc = (await req(t, 'POST', `/v2/${repo}/blobs/uploads/`)).header('location')!;
    const res = await req(t, 'PUT', loc, { query: { digest: `md5:${'0'.repeat(32)}` }, headers: octet, body: 'abc' });
    expectError(res, 400, ['UNSUPPORTED', 'DIGEST_INVALID']);
    const mono = await req(t, 'POST', `/v2/${repo}/blobs/uploads/`, { query: { digest: `foo:${'0'.repeat(64)}` }, headers: octet, body: 'abc' });
    expectError(mono, 400, ['UNSUPPORTED', 'DIGEST_INVALID']);
  });

  it('a malformed digest is 400 DIGEST_INVALID (or 404 where it is a path)', async () => {
    const loc = (await req(t, 'POST', `/v2/${repo}/blobs/uploads/`)).header('location')!;
    expectError(await req(t, 'PUT', loc, { query: { digest: 'sha256:xyz' }, headers: octet, body: 'abc' }), 400, 'DIGEST_INVALID');
    for (const d of ['sha256:xyz', `sha256:${'A'.repeat(64)}`, `sha256:${'0'.repeat(63)}`, 'sha256', 'sha256:']) {
      const res = await rawReq(t, 'GET', `/v2/${repo}/blobs/${d}`);
      expect([400, 404], `${d}: ${res.status}`).toContain(res.status);
      if (res.status === 400) expectError(res, 400, ['DIGEST_INVALID', 'UNSUPPORTED']);
    }
  });
});

describe('bad input never makes a 5xx', () => {
  const repo = repoName('err');
  beforeAll(async () => {
    await pushImage(t, repo, 'x');
  });

  const cases: [string, string, { headers?: Record<string, string>; body?: string }?][] = [
    ['GET', '/v2/REPO/tags/list?n=abc'],
    ['GET', '/v2/REPO/tags/list?n=-1'],
    ['GET', '/v2/REPO/tags/list?n=99999999999999999999'],
    ['GET', '/v2/_catalog?n=abc'],
    ['GET', '/v2/_catalog?n=-5'],
    ['GET', `/v2/REPO/blobs/sha256:${'0'.repeat(64)}`, { headers: { range: 'bytes=abc' } }],
    ['GET', `/v2/REPO/blobs/sha256:${'0'.repeat(64)}`, { headers: { range: 'bytes=9-1' } }],
    ['GET', '/v2/REPO/manifests/x', { headers: { accept: 'x;;;q=abc, */*;q=-1' } }],
    ['PUT', '/v2/REPO/manifests/x', { headers: { 'content-type': 'text/plain' }, body: 'hello' }],
    ['PUT', '/v2/REPO/manifests/x', { headers: { 'content-type': MT.ociManifest }, body: '' }],
    ['PUT', '/v2/REPO/manifests/x', { headers: { 'content-type': MT.ociManifest }, body: 'null' }],
    ['PUT', '/v2/REPO/manifests/x', { headers: { 'content-type': MT.ociManifest }, body: '{"schemaVersion":2,"mediaType":{}}' }],
    ['PUT', '/v2/REPO/manifests/x', { headers: { 'content-type': MT.ociManifest }, body: '\uFEFF{}' }],
    ['PUT', '/v2/REPO/manifests/x', { headers: { 'content-type': MT.ociManifest }, body: '{"a":' + '['.repeat(5000) }],
    ['POST', '/v2/REPO/blobs/uploads/?digest=', { body: 'x' }],
    ['POST', '/v2/REPO/blobs/uploads/?mount=notadigest&from=REPO'],
    ['POST', '/v2/REPO/blobs/uploads/?mount=sha256:abc&from=..%2F..'],
    ['GET', '/v2/REPO/referrers/notadigest'],
    ['GET', '/v2/REPO/referrers/sha256:abc?artifactType=%ff'],
    ['DELETE', '/v2/REPO/blobs/notadigest'],
    ['DELETE', '/v2/REPO/manifests/-bad-'],
    ['PATCH', '/v2/REPO/blobs/uploads/not-a-uuid', { body: 'x' }],
    ['GET', '/v2/REPO/blobs/uploads/%2e%2e'],
  ];
  for (const [method, path, opts] of cases) {
    const title = `${method} ${path.slice(0, 70)}${opts?.headers ? ' ' + JSON.stringify(opts.headers) : ''}${opts?.body !== undefined ? ' body ' + JSON.stringify(opts.body.slice(0, 40)) : ''}`;
    it(title, async () => {
      const res = await rawReq(t, method, path.replace(/REPO/g, repo), opts ?? {});
      expect(res.status, res.text().slice(0, 200)).toBeLessThan(500);
      if (res.status >= 400 && res.header('content-type')?.includes('json')) expectError(res, res.status);
    });
  }

  it('a PATCH whose Content-Range disagrees with its body is refused (400 or 416), not stored', async () => {
    const loc = (await req(t, 'POST', `/v2/${repo}/blobs/uploads/`)).header('location')!;
    const res = await req(t, 'PATCH', loc, { headers: { ...octet, 'content-range': '0-99' }, body: randomBytes(10) });
    expect([400, 416]).toContain(res.status);
    const bad = await req(t, 'PATCH', loc, { headers: { ...octet, 'content-range': 'bytes 0-x' }, body: randomBytes(10) });
    expect([400, 416]).toContain(bad.status);
  });

  it('a PUT whose Content-Length disagrees with the bytes that arrive does not store a blob', async () => {
    // The client promises 100 bytes, sends 10 and closes: the registry must not commit them.
    const body = randomBytes(10);
    const loc = (await req(t, 'POST', `/v2/${repo}/blobs/uploads/`)).header('location')!;
    const url = new URL(loc, t.url);
    url.searchParams.set('digest', sha256(body));
    await new Promise<void>((resolve) => {
      const sock = connect(Number(url.port), url.hostname, () => {
        const auth = Object.entries(t.auth()).map(([k, v]) => `${k}: ${v}\r\n`).join('');
        sock.write(`PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n${auth}Content-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n`);
        sock.end(body);
      });
      sock.on('data', () => {});
      sock.on('error', () => resolve());
      sock.on('close', () => resolve());
    });
    expect((await req(t, 'HEAD', `/v2/${repo}/blobs/${sha256(body)}`)).status).toBe(404);
  });
});
