// OCI Distribution Spec 1.1, workflow "Content Discovery": tag list with n/last and Link,
// catalog with pagination, and the referrers API with artifactType filtering.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MT, buildImage, descOf, expectError, pushBlob, getManifest, oddJson, pushImage, putManifest, sha256, type Desc, type Image } from './helpers/content.js';
import { req, type Res } from './helpers/http.js';
import { openTarget, repoName, type Target } from './helpers/target.js';

let t: Target;
beforeAll(async () => {
  t = await openTarget();
}, 60_000);
afterAll(async () => t?.close());

/** The target of `Link: <url>; rel="next"` (RFC 5988), or undefined. */
function nextLink(res: Res): string | undefined {
  const link = res.header('link');
  if (!link) return undefined;
  const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
  expect(m, `Link header ${link}`).not.toBeNull();
  return m![1];
}

/** ASCII order, as Go's sort.Strings. */
const ascii = (xs: string[]) => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

describe('tag list (end-8a, end-8b)', () => {
  const repo = repoName('tags');
  const tags = ['v1', 'latest', 'A-upper', 'v10', 'v2', '_under', 'b.dot'];
  let img: Image;
  beforeAll(async () => {
    img = await pushImage(t, repo, tags[0]);
    for (const tag of tags.slice(1)) expect((await putManifest(t, repo, tag, img.manifest, MT.ociManifest)).status).toBe(201);
  });

  it('lists every tag, sorted, with the repository name', async () => {
    const res = await req(t, 'GET', `/v2/${repo}/tags/list`);
    expect(res.status).toBe(200);
    const body = res.json();
    expect(body.name).toBe(repo);
    expect(body.tags).toEqual(ascii(tags));
  });

  it('n limits the page; Link rel="next" leads through all tags in order', async () => {
    const seen: string[] = [];
    let path: string | undefined = `/v2/${repo}/tags/list?n=3`;
    let pages = 0;
    while (path && pages < 10) {
      const res = await req(t, 'GET', path);
      expect(res.status).toBe(200);
      const page: string[] = res.json().tags ?? [];
      expect(page.length).toBeLessThanOrEqual(3);
      seen.push(...page);
      path = nextLink(res);
      // A page short of n (without a Link) is only allowed at the end.
      if (page.length < 3) expect(path).toBeUndefined();
      pages++;
    }
    expect(seen).toEqual(ascii(tags));
    expect(pages).toBe(3);
  });

  it('n=<count> returns exactly that many tags; the first page has a Link when more exist', async () => {
    const res = await req(t, 'GET', `/v2/${repo}/tags/list?n=2`);
    expect(res.status).toBe(200);
    expect(res.json().tags).toEqual(ascii(tags).slice(0, 2));
    expect(nextLink(res)).toBeTruthy();
  });

  it('last=<tag> returns the tags after it (exclusive), with or without n', async () => {
    const sorted = ascii(tags);
    const res = await req(t, 'GET', `/v2/${repo}/tags/list?n=2&last=${sorted[1]}`);
    expect(res.status).toBe(200);
    expect(res.json().tags).toEqual(sorted.slice(2, 4));
    const rest = await req(t, 'GET', `/v2/${repo}/tags/list?last=${sorted[4]}`);
    expect(rest.status).toBe(200);
    expect(rest.json().tags).toEqual(sorted.slice(5));
  });

  it('n=0 returns an empty list and no Link', async () => {
    const res = await req(t, 'GET', `/v2/${repo}/tags/list?n=0`);
    expect(res.status).toBe(200);
    expect(res.json().tags ?? []).toEqual([]);
    expect(res.header('link')).toBeUndefined();
  });

  it('a repository that does not exist is 404 NAME_UNKNOWN', async () => {
    expectError(await req(t, 'GET', `/v2/${repoName('nosuch')}/tags/list`), 404, 'NAME_UNKNOWN');
  });
});

describe('catalog (/v2/_catalog)', () => {
  const repos = [repoName('cat'), repoName('cat'), repoName('cat'), repoName('cat')];
  beforeAll(async () => {
    for (const r of repos) await pushImage(t, r, 'latest');
  });

  it('lists the repositories, sorted', async () => {
    const res = await req(t, 'GET', '/v2/_catalog');
    expect(res.status).toBe(200);
    const all: string[] = res.json().repositories;
    for (const r of repos) expect(all).toContain(r);
    expect(all).toEqual(ascii(all));
  });

  it('n and Link paginate through every repository exactly once', async () => {
    const seen: string[] = [];
    let path: string | undefined = '/v2/_catalog?n=2';
    for (let i = 0; path && i < 1000; i++) {
      const res = await req(t, 'GET', path);
      expect(res.status).toBe(200);
      const page: string[] = res.json().repositories ?? [];
      expect(page.length).toBeLessThanOrEqual(2);
      seen.push(...page);
      path = nextLink(res);
    }
    expect(path).toBeUndefined();
    for (const r of repos) expect(seen).toContain(r);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(ascii(seen));
  });

  it('a repository whose last manifest was deleted is no longer listed', async () => {
    const r = repoName('cat');
    const img = await pushImage(t, r, 'gone');
    expect((await req(t, 'GET', '/v2/_catalog')).json().repositories).toContain(r);
    expect((await req(t, 'DELETE', `/v2/${r}/manifests/${img.digest}`)).status).toBe(202);
    expect((await req(t, 'GET', '/v2/_catalog')).json().repositories).not.toContain(r);
  });

  it('last=<repo> continues after that repository', async () => {
    const sorted = ascii(repos);
    const res = await req(t, 'GET', `/v2/_catalog?n=1&last=${sorted[1]}`);
    expect(res.status).toBe(200);
    const page: string[] = res.json().repositories;
    expect(page.length).toBe(1);
    expect(page[0]! > sorted[1]!).toBe(true);
  });
});

describe('referrers API (end-12a, end-12b)', () => {
  const repo = repoName('refs');
  let subject: Image;
  let sig: Image; // artifactType set on the manifest
  let sbom: Image; // no artifactType: the config media type stands in
  let indexRef: { bytes: Buffer; digest: string };
  const sigType = 'application/vnd.example.signature.v1';
  const sbomConfigType = 'application/vnd.example.sbom.config.v1+json';
  const indexType = 'application/vnd.example.bundle.v1';

  const referrers = async (digest: string, query?: Record<string, string>) => {
    const res = await req(t, 'GET', `/v2/${repo}/referrers/${digest}`, query ? { query } : {});
    expect(res.status, res.text()).toBe(200);
    expect(res.header('content-type')?.split(';')[0]).toBe(MT.ociIndex);
    const body = res.json();
    expect(body.schemaVersion).toBe(2);
    expect(body.mediaType).toBe(MT.ociIndex);
    expect(Array.isArray(body.manifests)).toBe(true);
    return { res, manifests: body.manifests as Desc[] };
  };

  beforeAll(async () => {
    subject = await pushImage(t, repo, 'app');
    sig = await pushImage(t, repo, undefined, {
      subject: subject.desc,
      artifactType: sigType,
      configMediaType: MT.ociEmpty,
      annotations: { 'org.example.signer': 'alice', 'org.opencontainers.image.created': '2026-01-01T00:00:00Z' },
    });
    sbom = await pushImage(t, repo, undefined, { subject: subject.desc, configMediaType: sbomConfigType, annotations: { 'org.example.format': 'cyclonedx' } });
    const idx = oddJson({
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      artifactType: indexType,
      manifests: [sig.desc],
      subject: subject.desc,
      annotations: { 'org.example.kind': 'bundle' },
    });
    const put = await putManifest(t, repo, sha256(idx), idx, MT.ociIndex);
    expect(put.status, put.text()).toBe(201);
    indexRef = { bytes: idx, digest: sha256(idx) };
  });

  it('lists every manifest whose subject is the digest, with artifactType and annotations', async () => {
    // The manifest's own annotations, plus customs' verdict on it as evidence (none of these verify: no signature).
    const judged = { 'io.customs.evidence': 'unverified' };
    const { manifests } = await referrers(subject.digest);
    const byDigest = new Map(manifests.map((d) => [d.digest, d]));
    expect(manifests.length).toBe(3);

    expect(byDigest.get(sig.digest)).toEqual({
      mediaType: MT.ociManifest,
      digest: sig.digest,
      size: sig.manifest.length,
      artifactType: sigType,
      annotations: { 'org.example.signer': 'alice', 'org.opencontainers.image.created': '2026-01-01T00:00:00Z', ...judged },
    });
    expect(byDigest.get(sbom.digest)).toEqual({
      mediaType: MT.ociManifest,
      digest: sbom.digest,
      size: sbom.manifest.length,
      artifactType: sbomConfigType,
      annotations: { 'org.example.format': 'cyclonedx', ...judged },
    });
    expect(byDigest.get(indexRef.digest)).toEqual({
      mediaType: MT.ociIndex,
      digest: indexRef.digest,
      size: indexRef.bytes.length,
      artifactType: indexType,
      annotations: { 'org.example.kind': 'bundle', ...judged },
    });
  });

  it('?artifactType= filters and says so with OCI-Filters-Applied: artifactType', async () => {
    const { res, manifests } = await referrers(subject.digest, { artifactType: sigType });
    expect(res.header('oci-filters-applied')).toBe('artifactType');
    expect(manifests.map((d) => d.digest)).toEqual([sig.digest]);
    const none = await referrers(subject.digest, { artifactType: 'application/vnd.example.none' });
    expect(none.res.header('oci-filters-applied')).toBe('artifactType');
    expect(none.manifests).toEqual([]);
  });

  it('an unknown digest gives 200 with an empty index', async () => {
    const { manifests } = await referrers(sha256(randomBytes(8)));
    expect(manifests).toEqual([]);
  });

  it('a referrer pushed before its subject is listed', async () => {
    const later = await buildLaterSubject();
    const { manifests } = await referrers(later.subjectDigest);
    expect(manifests.map((d) => d.digest)).toEqual([later.referrerDigest]);
  });

  it('referrers are per repository', async () => {
    const other = repoName('refs');
    await pushImage(t, other, 'x');
    const res = await req(t, 'GET', `/v2/${other}/referrers/${subject.digest}`);
    expect(res.status).toBe(200);
    expect(res.json().manifests).toEqual([]);
  });

  it('a deleted referrer disappears from the list', async () => {
    const extra = await pushImage(t, repo, undefined, { subject: subject.desc, artifactType: 'application/vnd.example.tmp' });
    expect((await referrers(subject.digest)).manifests.map((d) => d.digest)).toContain(extra.digest);
    const del = await req(t, 'DELETE', `/v2/${repo}/manifests/${extra.digest}`);
    expect(del.status).toBe(202);
    expect((await getManifest(t, repo, extra.digest)).status).toBe(404);
    expect((await referrers(subject.digest)).manifests.map((d) => d.digest)).not.toContain(extra.digest);
  });

  it('many referrers: every one is reachable, following Link rel="next" if the registry pages', async () => {
    const target = await pushImage(t, repo, 'many');
    const empty = Buffer.from('{}');
    await pushBlob(t, repo, empty);
    const want = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const m = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MT.ociManifest,
          artifactType: 'application/vnd.example.many',
          config: descOf(MT.ociEmpty, empty),
          layers: [descOf(MT.ociEmpty, empty)],
          subject: target.desc,
          annotations: { i: String(i) },
        }),
      );
      expect((await putManifest(t, repo, sha256(m), m, MT.ociManifest)).status).toBe(201);
      want.add(sha256(m));
    }
    const seen: string[] = [];
    let path: string | undefined = `/v2/${repo}/referrers/${target.digest}`;
    for (let i = 0; path && i < 50; i++) {
      const res = await req(t, 'GET', path);
      expect(res.status).toBe(200);
      seen.push(...res.json().manifests.map((d: Desc) => d.digest));
      path = nextLink(res);
    }
    expect(new Set(seen)).toEqual(want);
    expect(seen.length).toBe(want.size);
  });

  it('an invalid digest is 400', async () => {
    const res = await req(t, 'GET', `/v2/${repo}/referrers/sha256:not-hex`);
    expect(res.status).toBe(400);
  });

  async function buildLaterSubject() {
    const future = await buildImage(t, repo);
    const ref = await pushImage(t, repo, undefined, { subject: future.desc, artifactType: 'application/vnd.example.early' });
    const put = await putManifest(t, repo, future.digest, future.manifest, MT.ociManifest);
    expect(put.status).toBe(201);
    return { subjectDigest: future.digest, referrerDigest: ref.digest };
  }
});

