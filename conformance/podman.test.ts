// Real client: podman (Debian 4.3, vfs storage under a temp dir) pulls an image that
// skopeo pushed. No container is run: pull + image inspect.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Layout, addImage, run } from './helpers/oci-layout.js';
import { openTarget, repoName, type Target } from './helpers/target.js';

let t: Target;
let work: string;
beforeAll(async () => {
  t = await openTarget();
  work = await mkdtemp(join(tmpdir(), 'conf-podman-'));
}, 60_000);
afterAll(async () => {
  await t?.close();
  // vfs layers are plain directories; podman leaves nothing mounted after a pull.
  if (work) await rm(work, { recursive: true, force: true });
});

/** podman with all state under `work`, usable as root without systemd or a user session. */
function podman(...args: string[]) {
  return run(
    'podman',
    [
      '--root', join(work, 'root'),
      '--runroot', join(work, 'run'),
      '--tmpdir', join(work, 'tmp'),
      '--storage-driver', 'vfs',
      '--cgroup-manager', 'cgroupfs',
      '--events-backend', 'file',
      ...args,
    ],
    { timeout: 90_000, maxBuffer: 16 << 20, env: { ...process.env, XDG_RUNTIME_DIR: join(work, 'xdg'), CONTAINERS_CONF: '/dev/null' } },
  );
}

describe('podman pull', () => {
  it('pulls an image pushed by skopeo; the local image has the same manifest digest', async () => {
    const repo = repoName('podman');
    const src = join(work, 'layout');
    const layout = await Layout.create(src);
    const image = await addImage(layout, 'v1', 'pulled by podman');
    await run(
      'skopeo',
      ['--insecure-policy', 'copy', '--preserve-digests', '--dest-tls-verify=false', ...(t.token ? ['--dest-creds', `x:${t.token}`] : []), `oci:${src}:v1`, `docker://${t.host}/${repo}:v1`],
      { timeout: 60_000 },
    );

    const ref = `${t.host}/${repo}:v1`;
    await podman('pull', '--tls-verify=false', ...(t.token ? ['--creds', `x:${t.token}`] : []), ref);
    const { stdout } = await podman('image', 'inspect', ref);
    const [info] = JSON.parse(stdout);
    expect(info.Digest).toBe(image.desc.digest);
    expect(info.RepoDigests).toContain(`${t.host}/${repo}@${image.desc.digest}`);
    const config = JSON.parse(image.config.toString());
    expect(info.Id).toBe(JSON.parse(image.manifest.toString()).config.digest.slice(7));
    expect(info.Architecture).toBe(config.architecture);
    expect(info.RootFS.Layers).toEqual(config.rootfs.diff_ids);
  }, 120_000);
});
