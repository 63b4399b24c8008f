import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sigstore } from '../src/artifacts/media-types.js';
import { buildReferrerManifest } from '../src/artifacts/modelpack.js';
import { cosignSignStatement, ociSubject, signStatement } from '../src/artifacts/sign.js';
import { digestOf, digestTag, type Digest } from '../src/oci/index.js';
import { newKey } from './gate-fixtures.js';
import { startContainerd, writeMirrorHosts, type Containerd } from './helpers/containerd.js';
import { httpsJson } from './helpers/https-json.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { dataDirTrusting } from './helpers/trusted-data.js';
import { makeTestCa, pem } from './helpers/test-ca.js';
import { skopeo, startDistribution, writeOciLayout, type Distribution } from './proxy-harness.js';

/**
 * containerd as customs' client: Debian's containerd 1.6 with its own root, state and socket, a
 * hosts.toml mirror for two registry names (`ctr images pull --hosts-dir`, unpacked, the node
 * authenticated by a client certificate) (`upstream-a.test`, `upstream-b.test`) pointing at
 * customs over TLS (a CA made with openssl); customs pulls through from two Debian docker-registry
 * upstreams of those names, seeded with skopeo. containerd sends `ns=<registry>`; customs maps it.
 */
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

interface Image {
  readonly digest: Digest;
  readonly manifest: Buffer;
  readonly config: Buffer;
  readonly layer: Buffer;
}

/** A runnable-shaped image: one gzip'd tar layer with a file, its diff_id in the config. */
function buildImage(work: string, name: string): Image {
  const root = join(work, `rootfs-${name}`);
  execFileSync('mkdir', ['-p', join(root, 'model')]);
  execFileSync('sh', ['-c', `printf 'weights of %s\\n' "$1" > "$2"`, 'sh', name, join(root, 'model', 'weights.bin')]);
  const tar = execFileSync('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '-cf', '-', '-C', root, '.']);
  const layer = gzipSync(tar);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/model/weights.bin'] }, rootfs: { type: 'layers', diff_ids: [digestOf(tar)] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(layer), size: layer.length }],
    }),
  );
  return { digest: digestOf(manifest), manifest, config, layer };
}

describe('containerd pulls through customs as its registry mirror (hosts.toml, ns=, TLS)', () => {
  let work: string;
  let ca: ReturnType<typeof makeTestCa>;
  const upstreams: Distribution[] = [];
  let s: TestServer;
  let containerd: Containerd;
  let hostsDir: string;
  const producer = newKey();
  const images: Record<string, Image> = {};

  /** Pushes `img` as `models/<name>:v1` to `up` with skopeo; with `sign`, a cosign v3 signature referrer and its fallback tag. */
  async function seed(up: Distribution, name: string, img: Image, sign: boolean): Promise<void> {
    const layout = join(work, `layout-${name}`);
    const manifests = [{ refs: ['v1'], mediaType: OCI_MANIFEST, bytes: img.manifest }];
    const blobs = [img.config, img.layer];
    let fallback: Buffer | undefined;
    if (sign) {
      const bundle = Buffer.from(JSON.stringify(signStatement(cosignSignStatement(ociSubject(`models/${name}`, img.digest)), producer.key)));
      const referrer = buildReferrerManifest({
        subject: { mediaType: OCI_MANIFEST, digest: img.digest, size: img.manifest.length },
        artifactType: Sigstore.bundleV03,
        layer: { mediaType: Sigstore.bundleV03, digest: digestOf(bundle), size: bundle.length },
        annotations: { [Sigstore.contentAnnotation]: 'dsse-envelope', [Sigstore.predicateTypeAnnotation]: Sigstore.cosignSignPredicate },
      });
      blobs.push(bundle, Buffer.from('{}'));
      manifests.push({ refs: ['sig'], mediaType: OCI_MANIFEST, bytes: referrer.bytes });
      // distribution 2.8 has no referrers API: clients keep the referrers in the sha256-<hex> fallback tag.
      fallback = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: referrer.digest, size: referrer.bytes.length, artifactType: Sigstore.bundleV03 }] }));
    }
    await writeOciLayout(layout, blobs, manifests);
    const copy = (ref: string, tag: string) => skopeo(['copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:${ref}`, `docker://${up.host}/models/${name}:${tag}`]);
    await copy('v1', 'v1');
    if (fallback) {
      await copy('sig', 'sig-push');
      const put = await fetch(`${up.url}/v2/models/${name}/manifests/${digestTag(img.digest)}`, { method: 'PUT', headers: { 'content-type': OCI_INDEX }, body: fallback });
      if (put.status !== 201) throw new Error(`fallback tag push: ${put.status} ${await put.text()}`);
    }
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'customs-containerd-'));
    ca = makeTestCa(work);
    ca.issue('customs', { cn: 'customs', dns: ['localhost'], ips: ['127.0.0.1'] });
    ca.issue('node-1', { cn: 'node-1', client: true });
    upstreams.push(await startDistribution(), await startDistribution());
    const [a, b] = upstreams as [Distribution, Distribution];
    for (const name of ['signed', 'unsigned', 'quarantined', 'other']) images[name] = buildImage(work, name);
    await seed(a, 'signed', images.signed!, true);
    await seed(b, 'unsigned', images.unsigned!, false);
    await seed(a, 'quarantined', images.quarantined!, true);
    await seed(b, 'other', images.other!, true);

    const data = await dataDirTrusting(work, { producer: producer.publicPem });
    s = await startTestServer({
      dataDir: data,
      gate: undefined,
      config: {
        // Nodes authenticate with client certificates; nobody pulls anonymously.
        tls: { cert: join(work, 'customs.pem'), key: join(work, 'customs-key.pem'), clientCA: ca.caCert },
        auth: { anonymous: { pull: 'never' } },
        upstreams: [
          { name: 'upstream-a.test', url: a.url },
          { name: 'upstream-b.test', url: b.url },
        ],
        policy: { rules: [{ name: 'mirrored', match: ['upstream-a.test/**', 'upstream-b.test/**'], signatures: { authorities: [{ trustedKeys: true }] } }] },
      },
    });
    const q = await httpsJson('POST', `${s.url}/admin/quarantine`, pem(ca.caCert), { digest: images.quarantined!.digest, reason: 'INC-11: poisoned' }, s.auth());
    expect(q.status, q.text).toBe(200);

    hostsDir = join(work, 'certs.d');
    const client = { cert: join(work, 'node-1.pem'), key: join(work, 'node-1-key.pem') };
    for (const registry of ['upstream-a.test', 'upstream-b.test']) await writeMirrorHosts(hostsDir, registry, s.url, ca.caCert, client);
    containerd = await startContainerd(join(work, 'containerd'));
  }, 180_000);
  afterAll(async () => {
    await containerd?.stop();
    await s?.close();
    for (const u of upstreams) await u.stop();
    await rm(work, { recursive: true, force: true });
  });

  const pull = (ref: string) => containerd.ctr(['images', 'pull', '--hosts-dir', hostsDir, '--platform', 'linux/amd64', ref]);

  async function denials(): Promise<{ actor: string; action: string; target?: string; reason?: string }[]> {
    const r = await httpsJson('GET', `${s.url}/admin/audit?since=1h`, pem(ca.caCert), undefined, s.auth());
    return (r.json as { entries: { actor: string; action: string; target?: string; reason?: string }[] }).entries.filter((e) => e.action === 'deny');
  }

  it('knows the node by its client certificate; without one nothing is served', async () => {
    const anonymous = await httpsJson('GET', `${s.url}/v2/models/signed/manifests/v1?ns=upstream-a.test`, pem(ca.caCert));
    expect(anonymous.status).toBe(401);
  });

  it('pulls a signed image from each upstream name, digests unchanged', async () => {
    for (const [registry, name] of [
      ['upstream-a.test', 'signed'],
      ['upstream-b.test', 'other'],
    ] as const) {
      const img = images[name]!;
      await pull(`${registry}/models/${name}:v1`);
      // What containerd stored is what the upstream has, byte for byte (content store keys are digests).
      const content = (await containerd.ctr(['content', 'ls', '-q'])).stdout.split('\n');
      for (const d of [img.digest, digestOf(img.config), digestOf(img.layer)]) expect(content, `${name} ${d}`).toContain(d);
      const manifest = (await containerd.ctr(['content', 'get', img.digest])).stdout;
      expect(digestOf(Buffer.from(manifest))).toBe(img.digest);
      // The image is registered under its name with the upstream's digest, and unpacked.
      const ls = (await containerd.ctr(['images', 'ls'])).stdout.split('\n').find((l) => l.startsWith(`${registry}/models/${name}:v1 `));
      expect(ls, `${registry}/models/${name}:v1 in ctr images ls`).toContain(img.digest);
      const snapshots = (await containerd.ctr(['snapshots', 'ls'])).stdout;
      expect(snapshots.split('\n').length).toBeGreaterThan(1);
    }
    // customs signed a verification summary for what it served, in the pull-through repository (a referrer by digest).
    await s.server.summaries!.settled();
    const referrers = await httpsJson('GET', `${s.url}/v2/upstream-a.test/models/signed/referrers/${images.signed!.digest}`, pem(ca.caCert), undefined, s.auth());
    const types = (referrers.json as { manifests: { annotations?: Record<string, string> }[] }).manifests.map((m) => m.annotations?.['dev.sigstore.bundle.predicateType']);
    expect(types).toContain('https://slsa.dev/verification_summary/v1');
    // Nothing of either pull was denied.
    const audit = await denials();
    expect(audit.filter((e) => e.target?.includes('/models/signed/') || e.target?.includes('/models/other/'))).toEqual([]);
  });

  it('fails an unsigned and a quarantined image, and customs audit log names the rule for each', async () => {
    await expect(pull('upstream-b.test/models/unsigned:v1')).rejects.toThrow();
    await expect(pull('upstream-a.test/models/quarantined:v1')).rejects.toThrow();
    const audit = await denials();
    const unsigned = audit.filter((e) => e.target === '/v2/models/unsigned/manifests/v1?ns=upstream-b.test');
    expect(unsigned.length, JSON.stringify(audit)).toBeGreaterThan(0);
    expect(unsigned[0]!.reason).toMatch(/mirrored\/signatures: no signature found/);
    expect(unsigned[0]!.actor).toBe('cert:node-1');
    const quarantined = audit.filter((e) => e.target === '/v2/models/quarantined/manifests/v1?ns=upstream-a.test');
    expect(quarantined.length, JSON.stringify(audit)).toBeGreaterThan(0);
    expect(quarantined[0]!.reason).toContain(`${images.quarantined!.digest} is quarantined`);
    // Nothing of them reached containerd's content store.
    const content = (await containerd.ctr(['content', 'ls', '-q'])).stdout;
    for (const name of ['unsigned', 'quarantined']) {
      expect(content).not.toContain(images[name]!.digest);
      expect(content).not.toContain(digestOf(images[name]!.layer));
    }
  });
});

