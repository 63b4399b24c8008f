// Real client: skopeo (Debian 1.9.3) copies OCI layouts into the registry and back
// with digests unchanged, including an artifact with a non-image config and a subject.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MT, expectBytes, getManifest } from './helpers/content.js';
import { req } from './helpers/http.js';
import { Layout, addArtifact, addImage, layoutManifest, readLayoutBlob, run } from './helpers/oci-layout.js';
import { openTarget, repoName, type Target } from './helpers/target.js';

let t: Target;
let work: string;
beforeAll(async () => {
  t = await openTarget();
  work = await mkdtemp(join(tmpdir(), 'conf-skopeo-'));
}, 60_000);
afterAll(async () => {
  await t?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

function skopeo(...args: string[]) {
  return run('skopeo', ['--insecure-policy', ...args], { timeout: 60_000, maxBuffer: 16 << 20 });
}
const destCreds = () => (t.token ? ['--dest-creds', `x:${t.token}`] : []);
const srcCreds = () => (t.token ? ['--src-creds', `x:${t.token}`] : []);

describe('skopeo copy', () => {
  const repo = repoName('skopeo');
  let src: string;
  let image: Awaited<ReturnType<typeof addImage>>;
  let artifact: Awaited<ReturnType<typeof addArtifact>>;
  const evidenceConfig = 'application/vnd.example.evidence.config.v1+json';

  beforeAll(async () => {
    src = join(work, 'src');
    const layout = await Layout.create(src);
    image = await addImage(layout, 'v1');
    artifact = await addArtifact(layout, 'evidence', image.desc, evidenceConfig);
  });

  it('pushes an OCI image layout with its digests unchanged', async () => {
    await skopeo('copy', '--preserve-digests', '--dest-tls-verify=false', ...destCreds(), `oci:${src}:v1`, `docker://${t.host}/${repo}:v1`);
    const res = await getManifest(t, repo, 'v1');
    expect(res.status).toBe(200);
    expect(res.header('docker-content-digest')).toBe(image.desc.digest);
    expect(res.header('content-type')).toBe(MT.ociManifest);
    expectBytes(res.body, image.manifest);
    const layer = await req(t, 'GET', `/v2/${repo}/blobs/${JSON.parse(image.manifest.toString()).layers[0].digest}`);
    expectBytes(layer.body, image.layer);
  });

  it('pulls it back into a new layout, byte for byte', async () => {
    const back = join(work, 'back');
    await skopeo('copy', '--preserve-digests', '--src-tls-verify=false', ...srcCreds(), `docker://${t.host}/${repo}:v1`, `oci:${back}:v1`);
    const desc = await layoutManifest(back, 'v1');
    expect(desc.digest).toBe(image.desc.digest);
    expectBytes(await readLayoutBlob(back, desc.digest), image.manifest);
    const m = JSON.parse(image.manifest.toString());
    for (const d of [m.config.digest, m.layers[0].digest]) {
      expectBytes(await readLayoutBlob(back, d), await readLayoutBlob(src, d));
    }
    expect((await readdir(join(back, 'blobs', 'sha256'))).sort()).toEqual(
      [image.desc.digest, m.config.digest, m.layers[0].digest].map((d: string) => d.slice(7)).sort(),
    );
  });

  it('copies an artifact with a non-image config and a subject; the referrers API lists it', async () => {
    await skopeo('copy', '--preserve-digests', '--dest-tls-verify=false', ...destCreds(), `oci:${src}:evidence`, `docker://${t.host}/${repo}:evidence`);
    const res = await getManifest(t, repo, 'evidence');
    expect(res.status).toBe(200);
    expect(res.header('docker-content-digest')).toBe(artifact.desc.digest);
    expectBytes(res.body, artifact.manifest);

    const refs = await req(t, 'GET', `/v2/${repo}/referrers/${image.desc.digest}`);
    expect(refs.status, refs.text()).toBe(200);
    const listed = refs.json().manifests;
    expect(listed).toEqual([
      {
        mediaType: MT.ociManifest,
        digest: artifact.desc.digest,
        size: artifact.manifest.length,
        artifactType: evidenceConfig,
        annotations: { 'org.example.evidence': 'yes', 'io.customs.evidence': 'unverified' },
      },
    ]);

    // skopeo reads it back (raw: it is not an image).
    const { stdout } = await skopeo('inspect', '--raw', '--tls-verify=false', ...(t.token ? ['--creds', `x:${t.token}`] : []), `docker://${t.host}/${repo}:evidence`);
    expect(Buffer.from(stdout).equals(artifact.manifest)).toBe(true);
  });
});
