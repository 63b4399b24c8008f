import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, digestTag, type Digest } from '../src/oci/index.js';
import { collect, drain, opened, skopeo, startDistribution, startProxy, writeOciLayout, type Distribution, type ProxyHarness } from './proxy-harness.js';

/**
 * Pull-through against a real upstream: Debian's docker-registry (distribution
 * 2.8, no referrers API), seeded with skopeo from an OCI layout built here. The
 * upstream is stopped mid-suite: what was pulled must still be served.
 */
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const SIG_TYPE = 'application/vnd.example.signature.v1+json';

interface Seeded {
  image: { digest: Digest; bytes: Buffer; blobs: Buffer[] };
  index: { digest: Digest; bytes: Buffer; children: { digest: Digest; bytes: Buffer }[] };
  signature: { digest: Digest; blob: Buffer };
  legacy: { digest: Digest };
}

const desc = (mediaType: string, b: Buffer) => ({ mediaType, digest: digestOf(b), size: b.length });

function manifestOf(config: Buffer, layers: Buffer[], extra: Record<string, unknown> = {}, configType = 'application/vnd.oci.image.config.v1+json'): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      ...extra,
      config: desc(configType, config),
      layers: layers.map((l) => desc('application/vnd.oci.image.layer.v1.tar', l)),
    }),
  );
}

async function seed(upstream: Distribution, work: string): Promise<Seeded> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const big = randomBytes(5 * 1024 * 1024 + 3);
  const small = Buffer.from('weights: small layer');
  const image = manifestOf(config, [big, small]);
  const imageDigest = digestOf(image);

  const children = ['amd64', 'arm64'].map((arch) => {
    const c = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    const l = Buffer.from(`layer for ${arch}`);
    return { config: c, layer: l, bytes: manifestOf(c, [l]), arch };
  });
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: children.map((c) => ({ ...desc(OCI_MANIFEST, c.bytes), platform: { architecture: c.arch, os: 'linux' } })),
    }),
  );

  // A signature attached with `subject`, and the referrers fallback tag listing it (what oras/skopeo clients push to a 2.8 registry).
  const empty = Buffer.from('{}');
  const sigBlob = Buffer.from('{"signature":"not really"}');
  const signature = manifestOf(empty, [sigBlob], { artifactType: SIG_TYPE, subject: desc(OCI_MANIFEST, image) }, 'application/vnd.oci.empty.v1+json');
  const fallback = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...desc(OCI_MANIFEST, signature), artifactType: SIG_TYPE }] }));
  // cosign's legacy scheme: a manifest under the tag sha256-<hex>.sig.
  const simpleSigning = Buffer.from(JSON.stringify({ critical: { image: { 'docker-manifest-digest': imageDigest } } }));
  const legacy = manifestOf(config, [simpleSigning]);

  const layout = join(work, 'layout');
  await writeOciLayout(
    layout,
    [config, big, small, empty, sigBlob, simpleSigning, ...children.flatMap((c) => [c.config, c.layer])],
    [
      { refs: ['v1'], mediaType: OCI_MANIFEST, bytes: image },
      { refs: ['multi'], mediaType: OCI_INDEX, bytes: index },
      { refs: ['sig'], mediaType: OCI_MANIFEST, bytes: signature },
      { refs: ['legacy'], mediaType: OCI_MANIFEST, bytes: legacy },
    ],
    children.map((c) => c.bytes),
  );
  const dest = (tag: string) => `docker://${upstream.host}/models/demo:${tag}`;
  const copy = (ref: string, tag: string, multi = 'all') =>
    skopeo(['copy', `--multi-arch=${multi}`, '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:${ref}`, dest(tag)]);
  await copy('v1', 'v1');
  await copy('multi', 'multi');
  // skopeo 1.9 would rewrite an index whose entries carry artifactType (and refuses to with --preserve-digests):
  // it pushes the signature, and the fallback index goes up byte-exact with a plain manifest PUT.
  await copy('sig', 'sig-push');
  const put = await fetch(`${upstream.url}/v2/models/demo/manifests/${digestTag(imageDigest)}`, { method: 'PUT', headers: { 'content-type': OCI_INDEX }, body: fallback });
  if (put.status !== 201) throw new Error(`fallback tag push: ${put.status} ${await put.text()}`);
  await copy('legacy', `${digestTag(imageDigest)}.sig`);
  return {
    image: { digest: imageDigest, bytes: image, blobs: [config, big, small] },
    index: { digest: digestOf(index), bytes: index, children: children.map((c) => ({ digest: digestOf(c.bytes), bytes: c.bytes })) },
    signature: { digest: digestOf(signature), blob: sigBlob },
    legacy: { digest: digestOf(legacy) },
  };
}

describe('pull-through from docker-registry (distribution 2.8)', () => {
  let upstream: Distribution;
  let px: ProxyHarness;
  let work: string;
  let s: Seeded;
  let now = 1_000_000;
  const repo = 'dist/models/demo';

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'customs-proxy-dist-'));
    upstream = await startDistribution();
    s = await seed(upstream, work);
    px = await startProxy([{ name: 'dist', url: upstream.url, tagFreshness: 30, timeouts: { header: 30, idle: 30, overall: 120 } }], { clock: () => now });
  });
  afterAll(async () => {
    await px?.close();
    await upstream?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('pulls a manifest by tag byte-exact, digest unchanged', async () => {
    const m = await px.service.manifest(repo, { kind: 'tag', tag: 'v1' });
    expect(m).toMatchObject({ digest: s.image.digest, mediaType: OCI_MANIFEST, stale: false });
    expect(Buffer.compare(m!.bytes, s.image.bytes)).toBe(0);
    const rec = await px.metadata.getManifest(repo, s.image.digest);
    expect(digestOf(rec!.bytes)).toBe(s.image.digest);
    expect(await px.metadata.resolveTag(repo, 'v1')).toBe(s.image.digest);
  });

  it('pulls every blob, verified, and links it to the repository', async () => {
    for (const b of s.image.blobs) {
      const got = await px.service.blob(repo, digestOf(b));
      expect(await drain(await opened(got))).toEqual({ digest: digestOf(b), size: b.length });
      await expect.poll(() => px.metadata.linkedBlob(repo, digestOf(b))).toEqual({ digest: digestOf(b), size: b.length });
    }
  });

  it('pulls by digest, and an index child only when asked for', async () => {
    const idx = await px.service.manifest(repo, { kind: 'digest', digest: s.index.digest });
    expect(idx).toMatchObject({ digest: s.index.digest, mediaType: OCI_INDEX });
    expect(Buffer.compare(idx!.bytes, s.index.bytes)).toBe(0);
    const [amd64, arm64] = s.index.children;
    expect(await px.metadata.getManifest(repo, amd64!.digest)).toBeUndefined();
    const child = await px.service.manifest(repo, { kind: 'digest', digest: amd64!.digest });
    expect(Buffer.compare(child!.bytes, amd64!.bytes)).toBe(0);
    expect(await px.metadata.getManifest(repo, arm64!.digest)).toBeUndefined();
  });

  it('carries referrers through the fallback tag and cosign legacy tags', async () => {
    const r = await px.service.referrersDetail(repo, s.image.digest);
    expect(r.stale).toBe(false);
    const byDigest = new Map(r.descriptors.map((d) => [d.digest, d]));
    expect([...byDigest.keys()].sort()).toEqual([s.signature.digest, s.legacy.digest].sort());
    expect(byDigest.get(s.signature.digest)!.artifactType).toBe(SIG_TYPE);
    expect(byDigest.get(s.legacy.digest)!.annotations?.['dev.customs.cosign-legacy-tag']).toBe('sig');
    // The signature's blob was fetched for the gate.
    expect(await px.blobs.stat(digestOf(s.signature.blob))).toBeDefined();
  });

  it('with the upstream stopped, previously pulled content is still served (stale tag within the timeout)', async () => {
    await upstream.stop();
    now += 60_000; // past the freshness window: the tag is revalidated, and that fails
    const m = await px.service.manifest(repo, { kind: 'tag', tag: 'v1' });
    expect(m).toMatchObject({ digest: s.image.digest, stale: true });
    expect((await px.service.manifest(repo, { kind: 'digest', digest: s.image.digest }))?.stale).toBe(false);
    const small = s.image.blobs[2]!;
    expect(Buffer.compare(await collect(await opened(await px.service.blob(repo, digestOf(small)))), small)).toBe(0);
    const r = await px.service.referrersDetail(repo, s.image.digest);
    expect(r.stale).toBe(true);
    expect(r.descriptors.map((d) => d.digest).sort()).toEqual([s.signature.digest, s.legacy.digest].sort());
    await expect(px.service.manifest(repo, { kind: 'tag', tag: 'never-pulled' })).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
  });
});
