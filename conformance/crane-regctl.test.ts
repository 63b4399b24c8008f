// crane 0.22.1 and regctl 0.11.7 against customs, directly and through the proxy (Debian's docker-registry
// upstream seeded with skopeo): copy keeps digests, tag listing, referrers (API and the upstream's fallback
// tag). Negative: a layer tampered with in the upstream's storage is refused by customs (the client gets an
// error, nothing is stored); unsigned content under the default gate is refused to both clients.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skopeo, startDistribution, type Distribution } from '../test/proxy-harness.js';
import { MT } from './helpers/content.js';
import { Clients, startCustoms, type Customs } from './helpers/clients.js';
import { Layout, addArtifact, addImage } from './helpers/oci-layout.js';

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let c: Clients;
let up: Distribution;
let direct: Customs;
let proxy: Customs;
let gated: Customs;
const seeded: { image: string; evidence: string; tampered: string; tamperedLayer: string } = { image: '', evidence: '', tampered: '', tamperedLayer: '' };

/** crane with customs' admin token of `reg` (crane auth login writes $HOME/.docker/config.json). */
const crane = (args: string[]) => c.run('crane', ['--insecure', ...args]);
const regctl = (args: string[]) => c.run('regctl', args);

beforeAll(async () => {
  c = await Clients.create();
  up = await startDistribution();
  const layout = await Layout.create(join(c.home, 'layout'));
  const img = await addImage(layout, 'v1', 'crane and regctl');
  seeded.image = img.desc.digest;
  const ev = await addArtifact(layout, 'evidence', img.desc, 'application/vnd.example.evidence.config.v1+json');
  seeded.evidence = ev.desc.digest;
  // The referrers tag schema (distribution 2.8 has no referrers API): an index under sha256-<hex>.
  const fallback = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ ...ev.desc, artifactType: 'application/vnd.example.evidence.config.v1+json' }] }));
  const bad = await addImage(layout, 'tampered', 'this layer will be altered upstream');
  seeded.tampered = bad.desc.digest;
  seeded.tamperedLayer = sha256(bad.layer);
  for (const tag of ['v1', 'evidence', 'tampered']) {
    await skopeo(['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', `oci:${join(c.home, 'layout')}:${tag}`, `docker://${up.host}/models/img:${tag}`]);
  }
  // skopeo 1.9 rewrites an index whose entries carry artifactType (and refuses to with --preserve-digests): byte-exact PUT.
  const put = await fetch(`${up.url}/v2/models/img/manifests/sha256-${img.desc.digest.slice(7)}`, { method: 'PUT', headers: { 'content-type': MT.ociIndex }, body: fallback });
  if (put.status !== 201) throw new Error(`fallback tag push: ${put.status} ${await put.text()}`);
  direct = await startCustoms({ gate: 'off' });
  proxy = await startCustoms({ gate: 'off', upstreams: { up: up.url } });
  gated = await startCustoms({ gate: undefined });
  for (const r of [direct, proxy, gated]) {
    await crane(['auth', 'login', r.host, '-u', 'ci', '-p', r.s.token!]);
    await regctl(['registry', 'set', r.host, '--tls', 'disabled']);
    await regctl(['registry', 'login', r.host, '-u', 'ci', '-p', r.s.token!]);
  }
  await regctl(['registry', 'set', up.host, '--tls', 'disabled']);
}, 180_000);

afterAll(async () => {
  await direct?.close();
  await proxy?.close();
  await gated?.close();
  await up?.stop();
  await c?.close();
});

describe('crane', () => {
  it('copies from the upstream into customs and back out: the digest never changes; crane ls lists the tags', async () => {
    await crane(['copy', `${up.host}/models/img:v1`, `${direct.host}/crane/app:v1`]);
    expect((await crane(['digest', `${direct.host}/crane/app:v1`])).stdout.trim()).toBe(seeded.image);
    const manifest = (await crane(['manifest', `${direct.host}/crane/app@${seeded.image}`])).stdout;
    expect(sha256(manifest)).toBe(seeded.image);
    await crane(['copy', `${direct.host}/crane/app:v1`, `${direct.host}/crane/again:v2`]);
    expect((await crane(['digest', `${direct.host}/crane/again:v2`])).stdout.trim()).toBe(seeded.image);
    await crane(['tag', `${direct.host}/crane/again:v2`, 'stable']);
    expect((await crane(['ls', `${direct.host}/crane/again`])).stdout.split('\n').filter(Boolean).sort()).toEqual(['stable', 'v2']);
  });

  it('through the proxy: the upstream digest, its tags, and a copy out of the proxied namespace', async () => {
    expect((await crane(['digest', `${proxy.host}/up/models/img:v1`])).stdout.trim()).toBe(seeded.image);
    const tags = (await crane(['ls', `${proxy.host}/up/models/img`])).stdout.split('\n').filter(Boolean);
    expect(tags).toEqual(expect.arrayContaining(['v1', 'evidence', 'tampered']));
    await crane(['copy', `${proxy.host}/up/models/img:v1`, `${proxy.host}/local/img:v1`]);
    expect((await crane(['digest', `${proxy.host}/local/img:v1`])).stdout.trim()).toBe(seeded.image);
  });

  it('negative: a layer altered in the upstream\'s storage is refused by customs (the pull fails, nothing is stored)', async () => {
    // distribution 2.8 serves whatever sits in its storage; customs checks every byte against the digest.
    const hex = seeded.tamperedLayer.slice(7);
    await writeFile(join(up.root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data'), Buffer.from('not the layer that was signed'));
    const out = await c.refuses('crane', ['--insecure', 'pull', '--format', 'oci', `${proxy.host}/up/models/img:tampered`, join(c.home, 'tampered-pull')]);
    expect(out).toMatch(/digest|DIGEST_INVALID|unexpected EOF|connection reset|INTERNAL_ERROR/i);
    const res = await fetch(`${proxy.s.url}/v2/up/models/img/blobs/${seeded.tamperedLayer}`, { headers: proxy.s.auth() });
    expect(res.status).not.toBe(200);
  });

  it('negative: unsigned content under the default gate is refused, with the reason', async () => {
    await crane(['copy', `${up.host}/models/img:v1`, `${gated.host}/crane/unsigned:v1`]);
    const out = await c.refuses('crane', ['--insecure', 'manifest', `${gated.host}/crane/unsigned:v1`]);
    expect(out).toMatch(/DENIED/);
    expect(out).toMatch(/no signature found/);
  });
});

describe('regctl', () => {
  it('image copy --referrers: digests unchanged, the referrer follows its subject; tag ls; artifact list', async () => {
    await regctl(['image', 'copy', '--referrers', `${up.host}/models/img:v1`, `${direct.host}/regctl/app:v1`]);
    expect((await regctl(['image', 'digest', `${direct.host}/regctl/app:v1`])).stdout.trim()).toBe(seeded.image);
    const listed = JSON.parse((await regctl(['artifact', 'list', `${direct.host}/regctl/app@${seeded.image}`, '--format', '{{json .Descriptors}}'])).stdout) as { digest: string }[];
    expect(listed.map((d) => d.digest)).toContain(seeded.evidence);
    // The referrer arrived with `subject` and is listed by customs' referrers API (OCI 1.1), not a fallback tag.
    const api = (await (await fetch(`${direct.s.url}/v2/regctl/app/referrers/${seeded.image}`, { headers: direct.s.auth() })).json()) as { manifests: { digest: string }[] };
    expect(api.manifests.map((d) => d.digest)).toContain(seeded.evidence);
    await regctl(['image', 'copy', '--referrers', `${direct.host}/regctl/app:v1`, `${direct.host}/regctl/copy:v1`]);
    expect((await regctl(['image', 'digest', `${direct.host}/regctl/copy:v1`])).stdout.trim()).toBe(seeded.image);
    expect((await regctl(['tag', 'ls', `${direct.host}/regctl/copy`])).stdout.split('\n').filter(Boolean)).toEqual(['v1']);
  });

  it('artifact put with --subject, then artifact list finds it; through the proxy the upstream\'s fallback-tag referrer is listed', async () => {
    const sig = join(c.home, 'sig.json');
    await mkdir(c.home, { recursive: true });
    await writeFile(sig, '{"sig":"regctl"}');
    await regctl(['artifact', 'put', '--subject', `${direct.host}/regctl/app:v1`, '--artifact-type', 'application/vnd.example.sig.v1', '--file', sig, '--file-media-type', 'application/json']);
    const listed = JSON.parse((await regctl(['artifact', 'list', `${direct.host}/regctl/app@${seeded.image}`, '--filter-artifact-type', 'application/vnd.example.sig.v1', '--format', '{{json .Descriptors}}'])).stdout) as { artifactType: string }[];
    expect(listed.map((d) => d.artifactType)).toEqual(['application/vnd.example.sig.v1']);
    const viaProxy = JSON.parse((await regctl(['artifact', 'list', `${proxy.host}/up/models/img@${seeded.image}`, '--format', '{{json .Descriptors}}'])).stdout) as { digest: string }[];
    expect(viaProxy.map((d) => d.digest)).toContain(seeded.evidence);
    const tags = (await regctl(['tag', 'ls', `${proxy.host}/up/models/img`])).stdout.split('\n').filter(Boolean);
    expect(tags).toContain('v1');
  });

  it('negative: regctl image copy out of customs of unsigned content under the default gate is refused', async () => {
    const out = await c.refuses('regctl', ['image', 'copy', `${gated.host}/crane/unsigned:v1`, `${direct.host}/regctl/never:v1`]);
    expect(out).toMatch(/denied|403|forbidden/i);
    const res = await fetch(`${direct.s.url}/v2/regctl/never/manifests/v1`, { headers: direct.s.auth() });
    expect(res.status).toBe(404);
  });
});

describe('when the upstream is gone', () => {
  it('a proxied tag list answers with the local tags (what was pulled through), not an error', async () => {
    await up.stop();
    const tags = (await crane(['ls', `${proxy.host}/up/models/img`])).stdout.split('\n').filter(Boolean);
    expect(tags).toContain('v1');
    expect(tags).not.toContain('evidence'); // never pulled through: only the upstream knew it
  });
});
