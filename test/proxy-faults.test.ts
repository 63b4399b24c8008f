import { afterEach, describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../src/oci/index.js';
import { join } from 'node:path';
import { parseUpstreams } from '../src/proxy/config.js';
import { PullThroughService } from '../src/proxy/pull-through-service.js';
import { LocalFillLease } from '../src/storage/fill-lease.js';
import { generatedBlob } from './helpers/fault-upstream.js';
import { code, collect, digestRef, drain, faultProxy, opened, streamError, tagRef, type ProxyHarness } from './proxy-harness.js';

/**
 * Pull-through against an upstream that misbehaves. Each test says what the client
 * gets and checks that nothing bad was stored (no blob, no manifest, no link, no
 * temporary file left behind).
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const setup = (opts: Parameters<typeof faultProxy>[1] = {}, upstream: Record<string, unknown> = {}, extra = {}) => faultProxy(cleanups, opts, upstream, extra);
const tag = tagRef;
const dig = digestRef;

async function nothingStored(px: ProxyHarness, repo: string, digest: Digest): Promise<void> {
  expect(await px.blobs.stat(digest)).toBeUndefined();
  expect(await px.metadata.linkedBlob(repo, digest)).toBeUndefined();
  expect(await px.metadata.getManifest(repo, digest)).toBeUndefined();
  await expect.poll(() => px.tempFiles()).toEqual([]);
}

describe('bearer token flow', () => {
  it('gets a token per repository scope, caches it, and pulls manifest and blob', async () => {
    const { up, px } = await setup({ auth: { expiresIn: 300 } });
    const img = up.addImage('team/app', ['v1'], [Buffer.from('layer one')]);
    up.addImage('team/other', ['v1'], [Buffer.from('layer two')]);

    const m = await px.service.manifest('up/team/app', tag('v1'));
    expect(m?.digest).toBe(img.digest);
    expect(Buffer.compare(m!.bytes, img.bytes)).toBe(0);
    const blob = await px.service.blob('up/team/app', img.layers[0]!.digest);
    expect((await collect(await opened(blob))).toString()).toBe('layer one');
    await px.service.manifest('up/team/other', tag('v1'));

    // One token per scope: the second request to team/app reused the cached token.
    expect(up.tokenRequests.map((t) => t.scopes)).toEqual([['repository:team/app:pull'], ['repository:team/other:pull']]);
    expect(up.tokenRequests.every((t) => t.service === 'fault-upstream' && t.authorization === undefined)).toBe(true);
    await expect.poll(() => px.blobs.stat(img.layers[0]!.digest)).toEqual({ digest: img.layers[0]!.digest, size: 9 });
  });

  it('fetches a new token when the cached one expires, and when the upstream rejects a cached one', async () => {
    let now = 1_000_000;
    const { up, px } = await setup({ auth: { expiresIn: 1 } }, {}, { clock: () => now });
    const a = up.addImage('team/app', ['v1', 'v2', 'v3'], [Buffer.from('x')]);
    await px.service.manifest('up/team/app', tag('v1'));
    expect(up.tokenRequests).toHaveLength(1);
    now += 2_000; // past expires_in on our clock: not reused
    await px.service.manifest('up/team/app', tag('v2'));
    expect(up.tokenRequests).toHaveLength(2);
    // Our clock stands still but the upstream's token expires: its 401 leads to a fresh token, and success.
    await new Promise((r) => setTimeout(r, 1100));
    expect((await px.service.manifest('up/team/app', tag('v3')))?.digest).toBe(a.digest);
    expect(up.tokenRequests).toHaveLength(3);
  });

  it('sends basic credentials to the token endpoint, never to the log', async () => {
    process.env.CUSTOMS_TEST_UPSTREAM_PW = 's3cret-pw';
    const { up, px } = await setup(
      { auth: { basic: { username: 'bob', password: 's3cret-pw' } } },
      { credentials: { basic: { username: 'bob', passwordEnv: 'CUSTOMS_TEST_UPSTREAM_PW' } } },
    );
    const img = up.addImage('team/app', ['v1'], [Buffer.from('x')]);
    expect((await px.service.manifest('up/team/app', tag('v1')))?.digest).toBe(img.digest);
    expect(up.tokenRequests[0]!.authorization).toBe(`Basic ${Buffer.from('bob:s3cret-pw').toString('base64')}`);
    expect(JSON.stringify(px.logs)).not.toContain('s3cret-pw');
    expect(JSON.stringify(px.logs)).not.toContain(Buffer.from('bob:s3cret-pw').toString('base64'));
  });

  it('with wrong credentials the client gets UPSTREAM_UNAVAILABLE and nothing is stored', async () => {
    process.env.CUSTOMS_TEST_UPSTREAM_BAD = 'wrong';
    const { up, px } = await setup(
      { auth: { basic: { username: 'bob', password: 'right' } } },
      { credentials: { basic: { username: 'bob', passwordEnv: 'CUSTOMS_TEST_UPSTREAM_BAD' } } },
    );
    const img = up.addImage('team/app', ['v1'], [Buffer.from('x')]);
    await expect(px.service.manifest('up/team/app', tag('v1'))).rejects.toSatisfy((e) => code(e) === 'UPSTREAM_UNAVAILABLE');
    await nothingStored(px, 'up/team/app', img.digest);
    expect(await px.metadata.resolveTag('up/team/app', 'v1')).toBeUndefined();
  });

  it('a redirect to another origin (a blob CDN) drops the Authorization header', async () => {
    const { up, px } = await setup({ auth: {}, blobRedirect: true });
    const img = up.addImage('team/app', ['v1'], [Buffer.from('cdn bytes')]);
    const blob = await px.service.blob('up/team/app', img.layers[0]!.digest);
    expect((await collect(await opened(blob))).toString()).toBe('cdn bytes');
    expect(up.requests.some((r) => r.path.includes('/blobs/') && r.authorization?.startsWith('Bearer '))).toBe(true);
    expect(up.cdnRequests).toHaveLength(1);
    expect(up.cdnRequests[0]!.authorization).toBeUndefined();
  });
});

describe('upstream errors and timeouts', () => {
  it('a 500 with nothing local: UPSTREAM_UNAVAILABLE, nothing stored', async () => {
    const { up, px } = await setup();
    const img = up.addImage('a', ['v1'], [Buffer.from('x')]);
    up.fault(/manifests/, { kind: 'status', status: 500 });
    await expect(px.service.manifest('up/a', tag('v1'))).rejects.toSatisfy((e) => code(e) === 'UPSTREAM_UNAVAILABLE');
    await expect(px.service.manifest('up/a', dig(img.digest))).rejects.toSatisfy((e) => code(e) === 'UPSTREAM_UNAVAILABLE');
    await nothingStored(px, 'up/a', img.digest);
  });

  it('a 500 on revalidation of a stale tag: the local copy, marked stale, and a warning', async () => {
    let now = 1_000_000;
    const { up, px } = await setup({}, { tagFreshness: 60 }, { clock: () => now });
    const img = up.addImage('a', ['v1'], [Buffer.from('x')]);
    expect((await px.service.manifest('up/a', tag('v1')))?.stale).toBe(false);
    up.fault(/manifests/, { kind: 'status', status: 500 });
    // Within the window the upstream is not asked at all.
    const before = up.requests.length;
    expect((await px.service.manifest('up/a', tag('v1')))?.stale).toBe(false);
    expect(up.requests.length).toBe(before);
    now += 61_000;
    const m = await px.service.manifest('up/a', tag('v1'));
    expect(m).toMatchObject({ digest: img.digest, stale: true });
    expect(px.logs.some((l) => l.level === 'warn' && /stale/.test(l.msg ?? ''))).toBe(true);
  });

  it('an upstream that never answers: the local copy after the header timeout (stale), or UPSTREAM_UNAVAILABLE', async () => {
    let now = 1_000_000;
    const { up, px } = await setup({}, { tagFreshness: 1, timeouts: { header: 3, idle: 30, overall: 120 } }, { clock: () => now });
    const img = up.addImage('a', ['v1'], [Buffer.from('x')]);
    const other = up.addImage('a', ['v2'], [Buffer.from('y')]);
    await px.service.manifest('up/a', tag('v1'));
    up.fault(/./, { kind: 'hang' });
    now += 2_000;
    expect(await px.service.manifest('up/a', tag('v1'))).toMatchObject({ digest: img.digest, stale: true });
    await expect(px.service.manifest('up/a', tag('v2'))).rejects.toSatisfy((e) => code(e) === 'UPSTREAM_UNAVAILABLE');
    await expect(px.service.blob('up/a', other.layers[0]!.digest)).rejects.toSatisfy((e) => code(e) === 'UPSTREAM_UNAVAILABLE');
    await nothingStored(px, 'up/a', other.digest);
    await nothingStored(px, 'up/a', other.layers[0]!.digest);
  });

  it('a digest reference that is local is served without asking the upstream', async () => {
    const { up, px } = await setup();
    const img = up.addImage('a', ['v1'], [Buffer.from('x')]);
    await px.service.manifest('up/a', tag('v1'));
    await drain(await opened(await px.service.blob('up/a', img.layers[0]!.digest)));
    await up.stop();
    expect((await px.service.manifest('up/a', dig(img.digest)))?.digest).toBe(img.digest);
    expect((await collect(await opened(await px.service.blob('up/a', img.layers[0]!.digest)))).toString()).toBe('x');
  });
});

describe('blob fills that go wrong', () => {
  it('a connection reset mid-blob: the client stream errors, nothing is stored, a retry succeeds', async () => {
    const { up, px } = await setup();
    const big = await generatedBlob(3 * 1024 * 1024 + 17, 'reset');
    up.addBlob('a', big);
    up.fault(/blobs/, { kind: 'reset', afterBytes: 1024 * 1024 }, { times: 1 });
    const blob = await px.service.blob('up/a', big.digest);
    expect(blob?.size).toBe(big.size);
    expect(code(await streamError(await opened(blob)))).toBe('UPSTREAM_UNAVAILABLE');
    await nothingStored(px, 'up/a', big.digest);
    const again = await px.service.blob('up/a', big.digest);
    expect(await drain(await opened(again))).toEqual({ digest: big.digest, size: big.size });
    // Clients get their last byte once the digest verified; the commit and link follow.
    await expect.poll(() => px.metadata.linkedBlob('up/a', big.digest)).toEqual({ digest: big.digest, size: big.size });
    expect(await px.blobs.stat(big.digest)).toEqual({ digest: big.digest, size: big.size });
  });

  it('wrong bytes for a digest: the stream is destroyed, a security event is logged, nothing is stored', async () => {
    const { up, px } = await setup();
    const big = await generatedBlob(2 * 1024 * 1024, 'wrong');
    up.addBlob('a', big);
    up.fault(/blobs/, { kind: 'wrong-bytes' });
    let release!: () => void;
    up.fault(/blobs/, { kind: 'stall', afterBytes: 1024 * 1024, until: new Promise<void>((r) => (release = r)) });
    const readers = await Promise.all([1, 2, 3].map(() => px.service.blob('up/a', big.digest)));
    release();
    const errors = await Promise.all(readers.map(async (b) => streamError(await opened(b))));
    expect(errors.map(code)).toEqual(['DIGEST_INVALID', 'DIGEST_INVALID', 'DIGEST_INVALID']);
    expect(up.count('GET', /blobs/)).toBe(1);
    expect(px.logs.filter((l) => l.level === 'error' && l.obj.event === 'security' && l.obj.digest === big.digest)).toHaveLength(1);
    await nothingStored(px, 'up/a', big.digest);
  });

  it('wrong bytes for a manifest digest: DIGEST_INVALID, nothing stored', async () => {
    const { up, px } = await setup();
    const img = up.addImage('a', ['v1'], [Buffer.from('x')]);
    up.fault(/manifests/, { kind: 'wrong-bytes' }, { method: 'GET' });
    await expect(px.service.manifest('up/a', dig(img.digest))).rejects.toSatisfy((e) => code(e) === 'DIGEST_INVALID');
    await expect(px.service.manifest('up/a', tag('v1'))).rejects.toSatisfy((e) => code(e) === 'DIGEST_INVALID');
    await nothingStored(px, 'up/a', img.digest);
    expect(await px.metadata.resolveTag('up/a', 'v1')).toBeUndefined();
    expect(px.logs.some((l) => l.level === 'error' && l.obj.event === 'security')).toBe(true);
  });

  it('a slow upstream: bytes reach the client before the upstream has finished sending', async () => {
    const { up, px } = await setup();
    const small = up.addBlob('a', Buffer.from('t'.repeat(4000)));
    let release!: () => void;
    up.fault(/blobs/, { kind: 'stall', afterBytes: 1000, until: new Promise<void>((r) => (release = r)) });
    const blob = await opened(await px.service.blob('up/a', small.digest));
    // The upstream has sent 1000 of 4000 bytes and waits: the client already has them.
    const first = await new Promise<Buffer>((r) => blob.once('data', r));
    expect(first.length).toBeLessThanOrEqual(1000);
    expect(await px.blobs.stat(small.digest)).toBeUndefined();
    release();
    const rest = await collect(blob);
    expect(first.length + rest.length).toBe(4000);
    await expect.poll(() => px.blobs.stat(small.digest)).toEqual({ digest: small.digest, size: 4000 });
  });

  it('a slow trickle: the client gets every byte, verified', async () => {
    const { up, px } = await setup();
    const small = up.addBlob('a', Buffer.from('q'.repeat(3000)));
    up.fault(/blobs/, { kind: 'trickle', bytes: 300, everyMs: 30 });
    const blob = await px.service.blob('up/a', small.digest);
    expect(await drain(await opened(blob))).toEqual({ digest: small.digest, size: 3000 });
    await expect.poll(() => px.blobs.stat(small.digest)).toEqual({ digest: small.digest, size: 3000 });
  });

  it('a trickle slower than the overall timeout: the fill is abandoned, the client stream errors, nothing stored', async () => {
    const { up, px } = await setup({}, { timeouts: { header: 10, idle: 30, overall: 0.5 } });
    const small = up.addBlob('a', Buffer.from('s'.repeat(4000)));
    up.fault(/blobs/, { kind: 'trickle', bytes: 100, everyMs: 100 });
    const blob = await px.service.blob('up/a', small.digest);
    expect(code(await streamError(await opened(blob)))).toBe('UPSTREAM_UNAVAILABLE');
    await nothingStored(px, 'up/a', small.digest);
  });

  it('a silent upstream mid-body trips the idle timeout', async () => {
    const { up, px } = await setup({}, { timeouts: { header: 10, idle: 0.3, overall: 120 } });
    const small = up.addBlob('a', Buffer.from('i'.repeat(2000)));
    up.fault(/blobs/, { kind: 'trickle', bytes: 1000, everyMs: 5000 });
    const blob = await px.service.blob('up/a', small.digest);
    expect(code(await streamError(await opened(blob)))).toBe('UPSTREAM_UNAVAILABLE');
    await nothingStored(px, 'up/a', small.digest);
  });

  it('the fill goes on when the only client disconnects, and commits', async () => {
    const { up, px } = await setup();
    const big = await generatedBlob(8 * 1024 * 1024, 'leave');
    up.addBlob('a', big);
    const blob = await opened(await px.service.blob('up/a', big.digest));
    await new Promise((r) => blob.once('data', r));
    blob.destroy();
    // The blob is committed, then linked: wait for the link, the last step.
    await expect.poll(() => px.metadata.linkedBlob('up/a', big.digest), { timeout: 20_000 }).toBeDefined();
    expect(await px.blobs.stat(big.digest)).toEqual({ digest: big.digest, size: big.size });
    await expect.poll(() => px.tempFiles()).toEqual([]);
  });

  it('two replicas sharing a store and a fill lease: one upstream GET, both serve the bytes', async () => {
    const lease = new LocalFillLease();
    const { up, px } = await setup({}, {}, { fillLease: lease });
    const big = await generatedBlob(4 * 1024 * 1024, 'replicas');
    up.addBlob('a', big);
    const other = new PullThroughService({
      blobs: px.blobs,
      metadata: px.metadata,
      upstreams: parseUpstreams([{ name: 'up', url: up.url }]),
      logger: { info() {}, warn() {}, error() {} },
      tempDir: join(px.dir, 'replica-2-tmp'),
      fillLease: lease,
    });
    await other.init();
    cleanups.push(async () => other.close());
    const [a, b] = await Promise.all([px.service.blob('up/a', big.digest), other.blob('up/a', big.digest)]);
    const [da, db] = await Promise.all([opened(a).then(drain), opened(b).then(drain)]);
    expect(da.digest).toBe(big.digest);
    expect(db.digest).toBe(big.digest);
    expect(up.count('GET', /blobs/)).toBe(1);
  });

  it('ranges are served from an in-progress fill and from the local copy', async () => {
    const { up, px } = await setup();
    const bytes = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
    const b = up.addBlob('a', bytes);
    let release!: () => void;
    up.fault(/blobs/, { kind: 'stall', afterBytes: 2500, until: new Promise<void>((r) => (release = r)) });
    const whole = await opened(await px.service.blob('up/a', b.digest));
    const part = await opened(await px.service.blob('up/a', b.digest), { start: 100, end: 1099 });
    const tail = await opened(await px.service.blob('up/a', b.digest), { start: 4000, end: 4999 });
    // While the upstream stalls at 2500 bytes, a range below that is complete.
    expect(Buffer.compare(await collect(part), bytes.subarray(100, 1100))).toBe(0);
    expect(await px.blobs.stat(b.digest)).toBeUndefined();
    release();
    expect(Buffer.compare(await collect(tail), bytes.subarray(4000))).toBe(0);
    expect(Buffer.compare(await collect(whole), bytes)).toBe(0);
    expect(up.count('GET', /blobs/)).toBe(1);
    await expect.poll(() => px.blobs.stat(b.digest)).toBeDefined();
    const local = await opened(await px.service.blob('up/a', b.digest), { start: 10, end: 19 });
    expect(Buffer.compare(await collect(local), bytes.subarray(10, 20))).toBe(0);
    expect(up.count('GET', /blobs/)).toBe(1);
  });
});

describe('referrers through the proxy', () => {
  const sigType = 'application/vnd.example.signature';

  it('a fallback tag listing a foreign manifest: only referrers whose subject matches are accepted and stored', async () => {
    const { up, px } = await setup();
    const img = up.addImage('a', ['v1'], [Buffer.from('x')]);
    const other = up.addImage('a', ['v2'], [Buffer.from('y')]);
    const subject = { digest: img.digest, size: img.bytes.length, mediaType: 'application/vnd.oci.image.manifest.v1+json' };
    const good = up.addImage('a', [], [Buffer.from('good sig')], { subject, artifactType: sigType });
    const foreign = up.addImage('a', [], [Buffer.from('foreign sig')], {
      subject: { ...subject, digest: other.digest, size: other.bytes.length },
      artifactType: sigType,
    });
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [good, foreign].map((m) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: m.digest, size: m.bytes.length, artifactType: sigType })),
    };
    up.addManifest('a', Buffer.from(JSON.stringify(index)), index.mediaType, [img.digest.replace(':', '-')]);

    const r = await px.service.referrersDetail('up/a', img.digest);
    expect(r.stale).toBe(false);
    expect(r.descriptors.map((d) => d.digest)).toEqual([good.digest]);
    expect(r.descriptors[0]!.artifactType).toBe(sigType);
    expect(await px.metadata.getManifest('up/a', good.digest)).toBeDefined();
    expect(await px.metadata.getManifest('up/a', foreign.digest)).toBeUndefined();
    expect(await px.blobs.stat(foreign.layers[0]!.digest)).toBeUndefined();
    // The accepted referrer's blobs were prefetched for the gate.
    expect(await px.blobs.stat(good.layers[0]!.digest)).toBeDefined();
    expect(px.logs.some((l) => l.obj.kind === 'referrer-rejected' && l.obj.digest === foreign.digest)).toBe(true);
  });

  it('uses the referrers API when the upstream has one, and cosign legacy tags', async () => {
    const { up, px } = await setup({ referrersApi: true });
    const img = up.addImage('a', ['v1'], [Buffer.from('x')]);
    const subject = { digest: img.digest, size: img.bytes.length, mediaType: 'application/vnd.oci.image.manifest.v1+json' };
    const sbom = up.addImage('a', [], [Buffer.from('{"bomFormat":"CycloneDX"}')], { subject, artifactType: 'application/vnd.cyclonedx+json' });
    const legacy = up.addImage('a', [`${img.digest.replace(':', '-')}.sig`], [Buffer.from('simple signing payload')]);
    const r = await px.service.referrers('up/a', img.digest);
    expect(r.map((d) => d.digest).sort()).toEqual([sbom.digest, legacy.digest].sort());
    const l = r.find((d) => d.digest === legacy.digest)!;
    expect(l.annotations?.['dev.customs.cosign-legacy-tag']).toBe('sig');
    expect(up.count('GET', /referrers/)).toBe(1);
    expect(await px.metadata.resolveTag('up/a', `${img.digest.replace(':', '-')}.sig`)).toBe(legacy.digest);
    expect(await px.blobs.stat(legacy.layers[0]!.digest)).toBeDefined();
  });

  it('offline: referrers already fetched are still served, marked stale', async () => {
    let now = 1_000_000;
    const { up, px } = await setup({ referrersApi: true }, { tagFreshness: 10 }, { clock: () => now });
    const img = up.addImage('a', ['v1'], [Buffer.from('x')]);
    const subject = { digest: img.digest, size: img.bytes.length, mediaType: 'application/vnd.oci.image.manifest.v1+json' };
    const sig = up.addImage('a', [], [Buffer.from('sig')], { subject, artifactType: sigType });
    expect((await px.service.referrers('up/a', img.digest)).map((d) => d.digest)).toEqual([sig.digest]);
    await up.stop();
    now += 11_000;
    const r = await px.service.referrersDetail('up/a', img.digest);
    expect(r).toMatchObject({ stale: true });
    expect(r.descriptors.map((d) => d.digest)).toEqual([sig.digest]);
  });
});

describe('names', () => {
  it("Docker Hub's implicit library/ and the ns parameter map onto the upstream repository", async () => {
    const { up, px } = await setup({}, { name: 'docker.io' });
    const img = up.addImage('library/alpine', ['3.20'], [Buffer.from('alpine')]);
    expect(px.service.resolve('docker.io/alpine')).toMatchObject({ remote: 'library/alpine', repository: 'docker.io/alpine' });
    expect(px.service.resolve('library/alpine', 'docker.io')).toMatchObject({ remote: 'library/alpine', repository: 'docker.io/library/alpine', namespace: 'docker.io' });
    expect(px.service.handles('library/alpine')).toBe(false);
    expect(px.service.handles('library/alpine', 'ghcr.io')).toBe(false);
    const a = await px.service.manifest('docker.io/alpine', tag('3.20'));
    const b = await px.service.manifest('alpine', tag('3.20'), { ns: 'docker.io' });
    const c = await px.service.manifest('library/alpine', tag('3.20'), { ns: 'docker.io' });
    expect(a).toMatchObject({ digest: img.digest, repository: 'docker.io/alpine', namespace: undefined });
    expect(b).toMatchObject({ digest: img.digest, repository: 'docker.io/alpine', namespace: 'docker.io' });
    expect(c).toMatchObject({ digest: img.digest, repository: 'docker.io/library/alpine', namespace: 'docker.io' });
    // a and b share one local repository (fresh tag: no second fetch); c is another local name.
    expect(up.count('GET', /manifests/)).toBe(2);
    expect(up.requests.filter((r) => r.path.includes('/manifests/')).every((r) => r.path.startsWith('/v2/library/alpine/'))).toBe(true);
    expect(digestOf(b!.bytes)).toBe(img.digest);
  });
});

describe('byte-exact manifests', () => {
  it('a Docker schema2 manifest list and manifest are stored and served as sent, never converted', async () => {
    const { up, px } = await setup();
    const config = up.addBlob('d', Buffer.from('{"architecture":"amd64","os":"linux"}'));
    const layer = up.addBlob('d', Buffer.from('docker layer'));
    // Odd but valid formatting: any re-serialisation would change the digest.
    const manifest = Buffer.from(
      `{\n   "schemaVersion": 2,\n   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",\n   "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": ${config.size}, "digest": "${config.digest}"},\n   "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": ${layer.size}, "digest": "${layer.digest}"}]\n}\n`,
    );
    const md = up.addManifest('d', manifest, 'application/vnd.docker.distribution.manifest.v2+json');
    const list = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json', manifests: [{ mediaType: 'application/vnd.docker.distribution.manifest.v2+json', size: manifest.length, digest: md, platform: { architecture: 'amd64', os: 'linux' } }] }, null, 3),
    );
    const ld = up.addManifest('d', list, 'application/vnd.docker.distribution.manifest.list.v2+json', ['latest']);
    const got = await px.service.manifest('up/d', tag('latest'));
    expect(got).toMatchObject({ digest: ld, mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json' });
    expect(Buffer.compare(got!.bytes, list)).toBe(0);
    const child = await px.service.manifest('up/d', dig(md));
    expect(child).toMatchObject({ digest: md, mediaType: 'application/vnd.docker.distribution.manifest.v2+json' });
    expect(Buffer.compare(child!.bytes, manifest)).toBe(0);
    expect(Buffer.compare((await px.metadata.getManifest('up/d', md))!.bytes, manifest)).toBe(0);
    // Every manifest request offered all four manifest media types (distribution answers 404 for a type not accepted).
    const accepts = up.requests.filter((r) => r.path.includes('/manifests/')).map((r) => r.accept ?? '');
    expect(accepts.length).toBeGreaterThan(0);
    for (const a of accepts) {
      for (const mt of ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json']) {
        expect(a).toContain(mt);
      }
    }
  });
});
