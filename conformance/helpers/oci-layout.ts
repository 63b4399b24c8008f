import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { MT, descOf, sha256, type Desc } from './content.js';

export const run = promisify(execFile);

/**
 * OCI image layouts written by hand (image spec "OCI Image Layout"), for the real
 * clients to read: `oci-layout`, `index.json` and `blobs/sha256/<hex>`.
 */
export class Layout {
  private readonly manifests: Desc[] = [];
  constructor(readonly dir: string) {}

  static async create(dir: string): Promise<Layout> {
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    const l = new Layout(dir);
    await l.writeIndex();
    return l;
  }

  async blob(bytes: Buffer): Promise<string> {
    const digest = sha256(bytes);
    await writeFile(join(this.dir, 'blobs', 'sha256', digest.slice(7)), bytes);
    return digest;
  }

  /** Add a manifest under a tag (`org.opencontainers.image.ref.name`). */
  async addManifest(bytes: Buffer, mediaType: string, tag: string): Promise<Desc> {
    await this.blob(bytes);
    const desc = descOf(mediaType, bytes);
    this.manifests.push({ ...desc, annotations: { 'org.opencontainers.image.ref.name': tag } });
    await this.writeIndex();
    return desc;
  }

  private writeIndex(): Promise<void> {
    return writeFile(join(this.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: this.manifests }));
  }
}

/** The manifest descriptor a layout lists under `tag`. */
export async function layoutManifest(dir: string, tag: string): Promise<Desc> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
  const d = index.manifests.find((m: Desc) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!d) throw new Error(`no ${tag} in ${dir}/index.json: ${JSON.stringify(index)}`);
  return d;
}

export const readLayoutBlob = (dir: string, digest: string): Promise<Buffer> => readFile(join(dir, 'blobs', 'sha256', digest.replace(/^sha256:/, '')));

/** A real tar of a few files (GNU tar, reproducible flags), gzip-compressed. */
export async function makeLayer(files: Record<string, string>): Promise<{ tar: Buffer; gz: Buffer }> {
  const src = await mkdtemp(join(tmpdir(), 'conf-layer-'));
  try {
    for (const [name, content] of Object.entries(files)) {
      await mkdir(join(src, name, '..'), { recursive: true });
      await writeFile(join(src, name), content, { mode: 0o755 });
    }
    const { stdout } = await run(
      'tar',
      ['-C', src, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-cf', '-', ...Object.keys(files)],
      { encoding: 'buffer', maxBuffer: 64 << 20 },
    );
    const tar = stdout as unknown as Buffer;
    return { tar, gz: gzipSync(tar) };
  } finally {
    await rm(src, { recursive: true, force: true });
  }
}

/** An OCI image (one real tar+gzip layer, a real image config) added to the layout under `tag`. */
export async function addImage(layout: Layout, tag: string, text = 'hello'): Promise<{ manifest: Buffer; desc: Desc; layer: Buffer; config: Buffer }> {
  const { tar, gz } = await makeLayer({ 'hello.txt': `${text}\n`, 'etc/os-release': 'ID=conformance\n' });
  const config = Buffer.from(
    JSON.stringify({
      created: '2026-01-01T00:00:00Z',
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/true'], Env: ['PATH=/bin'] },
      rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
      history: [{ created: '2026-01-01T00:00:00Z', created_by: 'conformance test' }],
    }),
  );
  await layout.blob(config);
  await layout.blob(gz);
  const manifest = Buffer.from(
    JSON.stringify(
      {
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        config: descOf(MT.ociConfig, config),
        layers: [descOf(MT.ociLayer, gz)],
        annotations: { 'org.opencontainers.image.title': tag },
      },
      null,
      2,
    ),
  );
  const desc = await layout.addManifest(manifest, MT.ociManifest, tag);
  return { manifest, desc, layer: gz, config };
}

/** An artifact with a non-image config and a `subject`, added to the layout under `tag`. */
export async function addArtifact(
  layout: Layout,
  tag: string,
  subject: Desc,
  configMediaType: string,
): Promise<{ manifest: Buffer; desc: Desc }> {
  const config = Buffer.from('{"kind":"conformance-evidence"}');
  const payload = Buffer.from(`evidence for ${subject.digest}\n`);
  await layout.blob(config);
  await layout.blob(payload);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: descOf(configMediaType, config),
      layers: [descOf('application/vnd.example.evidence.v1+json', payload, { annotations: { 'org.opencontainers.image.title': 'evidence.json' } })],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      annotations: { 'org.example.evidence': 'yes' },
    }),
  );
  const desc = await layout.addManifest(manifest, MT.ociManifest, tag);
  return { manifest, desc };
}
