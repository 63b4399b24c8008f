import { randomBytes } from 'node:crypto';
import { digestOf, type Digest } from '../../src/oci/index.js';

/**
 * The distribution API as any client speaks it (POST a session, PUT ?digest= with the bytes),
 * so it works against customs and against Debian's docker-registry alike.
 */
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export interface Image {
  readonly repository: string;
  readonly tag: string;
  readonly digest: Digest;
  readonly manifest: Buffer;
  readonly blobs: ReadonlyArray<{ digest: Digest; bytes: Buffer }>;
}

export async function pushBlob(url: string, repo: string, bytes: Buffer, headers: Record<string, string> = {}): Promise<Digest> {
  const digest = digestOf(bytes);
  const start = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
  const startText = await start.text();
  if (start.status !== 202) throw new Error(`POST upload ${repo}: ${start.status} ${startText}`);
  const loc = new URL(start.headers.get('location')!, url);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, { method: 'PUT', headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) }, body: bytes });
  const text = await put.text();
  if (put.status !== 201) throw new Error(`PUT blob ${repo}: ${put.status} ${text}`);
  return digest;
}

/** An image-shaped artifact: a config and `layers` (random bytes of the given sizes), tagged. */
export async function pushImage(url: string, repository: string, tag: string, layerSizes: number[], headers: Record<string, string> = {}): Promise<Image> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, tag, nonce: randomBytes(8).toString('hex') }));
  const layers = layerSizes.map((n) => randomBytes(n));
  const blobs = [config, ...layers].map((bytes) => ({ digest: digestOf(bytes), bytes }));
  for (const b of blobs) await pushBlob(url, repository, b.bytes, headers);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: blobs[0]!.digest, size: config.length },
      layers: blobs.slice(1).map((b) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: b.digest, size: b.bytes.length })),
    }),
  );
  const res = await fetch(`${url}/v2/${repository}/manifests/${tag}`, { method: 'PUT', headers: { ...headers, 'content-type': OCI_MANIFEST }, body: manifest });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`PUT manifest ${repository}:${tag}: ${res.status} ${text}`);
  return { repository, tag, digest: digestOf(manifest), manifest, blobs };
}

/** GET a blob: status, OCI error code, and whether the body hashes to the digest asked for. */
export async function getBlob(url: string, repo: string, digest: Digest, headers: Record<string, string> = {}): Promise<{ status: number; code?: string; message?: string; ok: boolean; size: number }> {
  const res = await fetch(`${url}/v2/${repo}/blobs/${digest}`, { headers });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) {
    const e = (JSON.parse(body.toString() || '{}') as { errors?: { code: string; message: string }[] }).errors?.[0];
    return { status: res.status, code: e?.code, message: e?.message, ok: false, size: body.length };
  }
  return { status: 200, ok: digestOf(body) === digest, size: body.length };
}

export async function getManifest(url: string, repo: string, ref: string, headers: Record<string, string> = {}): Promise<{ status: number; code?: string; digest: string | null; bytes: Buffer }> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${ref}`, { headers: { ...headers, accept: OCI_MANIFEST } });
  const bytes = Buffer.from(await res.arrayBuffer());
  let code: string | undefined;
  if (res.status >= 400) code = (JSON.parse(bytes.toString() || '{}') as { errors?: { code: string }[] }).errors?.[0]?.code;
  return { status: res.status, code, digest: res.headers.get('docker-content-digest'), bytes };
}
