import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { req, type Res } from './http.js';
import type { Target } from './target.js';

/** Media types, from the OCI image spec and Docker's image manifest v2 schema 2. */
export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** What a client says it accepts (distribution 2.8 hides OCI manifests from clients that do not say so). */
export const ACCEPT_ALL = [MT.ociManifest, MT.ociIndex, MT.dockerManifest, MT.dockerList].join(', ');

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

export const descOf = (mediaType: string, bytes: Buffer, extra: Partial<Desc> = {}): Desc => ({
  mediaType,
  digest: sha256(bytes),
  size: bytes.length,
  ...extra,
});

/** Upload a blob the most portable way (POST, then PUT with the whole body). */
export async function pushBlob(t: Target, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const post = await req(t, 'POST', `/v2/${repo}/blobs/uploads/`);
  expect(post.status, post.text()).toBe(202);
  const put = await req(t, 'PUT', post.header('location')!, {
    query: { digest },
    headers: { 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  expect(put.status, put.text()).toBe(201);
  return digest;
}

export async function putManifest(t: Target, repo: string, ref: string, bytes: Buffer, mediaType: string): Promise<Res> {
  return req(t, 'PUT', `/v2/${repo}/manifests/${ref}`, { headers: { 'content-type': mediaType }, body: bytes });
}

export async function getManifest(t: Target, repo: string, ref: string, method = 'GET'): Promise<Res> {
  return req(t, method, `/v2/${repo}/manifests/${ref}`, { headers: { accept: ACCEPT_ALL } });
}

/**
 * JSON with unusual but valid whitespace and key order, so that a registry that
 * re-serialises instead of storing bytes is caught.
 */
export const oddJson = (v: unknown): Buffer => Buffer.from(`  ${JSON.stringify(v, null, 3).replace(/": /g, '" :  ')}\r\n`);

export interface Image {
  config: Buffer;
  layer: Buffer;
  manifest: Buffer;
  digest: string;
  desc: Desc;
}

/** Push config and layer blobs, build an OCI image manifest for them (not pushed). */
export async function buildImage(
  t: Target,
  repo: string,
  opts: { subject?: Desc; artifactType?: string; configMediaType?: string; annotations?: Record<string, string>; docker?: boolean } = {},
): Promise<Image> {
  const docker = opts.docker ?? false;
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }),
  );
  const layer = randomBytes(1024 + Math.floor(Math.random() * 1024));
  await pushBlob(t, repo, config);
  await pushBlob(t, repo, layer);
  const mediaType = docker ? MT.dockerManifest : MT.ociManifest;
  const m: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType,
    ...(opts.artifactType ? { artifactType: opts.artifactType } : {}),
    config: descOf(opts.configMediaType ?? (docker ? MT.dockerConfig : MT.ociConfig), config),
    layers: [descOf(docker ? MT.dockerLayer : MT.ociLayer, layer)],
    ...(opts.subject ? { subject: opts.subject } : {}),
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  };
  const manifest = oddJson(m);
  return { config, layer, manifest, digest: sha256(manifest), desc: descOf(mediaType, manifest) };
}

/** Build and push an image under `ref` (a tag or its digest). */
export async function pushImage(t: Target, repo: string, ref?: string, opts: Parameters<typeof buildImage>[2] = {}): Promise<Image> {
  const img = await buildImage(t, repo, opts);
  const res = await putManifest(t, repo, ref ?? img.digest, img.manifest, img.desc.mediaType);
  expect(res.status, res.text()).toBe(201);
  return img;
}

/** The spec's error body: `{"errors":[{"code","message","detail"?}]}`; returns the codes. */
export function expectError(res: Res, status: number | number[], codes?: string | string[]): string[] {
  const statuses = Array.isArray(status) ? status : [status];
  expect(statuses, `status ${res.status}: ${res.text().slice(0, 300)}`).toContain(res.status);
  const body = res.json();
  expect(Array.isArray(body.errors), res.text()).toBe(true);
  expect(body.errors.length).toBeGreaterThan(0);
  for (const e of body.errors) {
    expect(e.code).toMatch(/^[A-Z_]+$/);
    if (e.message !== undefined) expect(typeof e.message).toBe('string');
  }
  const got = body.errors.map((e: { code: string }) => e.code);
  if (codes) {
    const want = Array.isArray(codes) ? codes : [codes];
    expect(want, `codes ${got.join(',')}`).toContain(got[0]);
  }
  return got;
}

/** Body unchanged byte for byte. */
export function expectBytes(actual: Buffer, expected: Buffer): void {
  expect(actual.length).toBe(expected.length);
  expect(actual.equals(expected), 'bytes differ').toBe(true);
}
