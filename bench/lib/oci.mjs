// Blob files and the few registry calls the benches need (plain HTTP: the
// Distribution API's monolithic POST+PUT upload, manifest PUT).
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { run } from './proc.mjs';

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

// 1 MiB writes: larger ones into a new file are slow on some VMs (see src/storage/file-writes.ts).
const CHUNK = MiB;

/**
 * Write `size` bytes of incompressible data to `path` and return its digest.
 * The file is real data (not sparse: reading holes is not what a registry
 * does), a 1 MiB random block repeated with each chunk's index stamped in.
 * `variant` is written into the first 8 bytes, so variants differ in digest.
 */
export async function makeBlobFile(path, size, variant = 0) {
  const base = randomFillSync(Buffer.allocUnsafe(CHUNK));
  const fh = await open(path, 'w');
  const h = createHash('sha256');
  try {
    for (let off = 0, i = 0; off < size; off += CHUNK, i++) {
      const n = Math.min(CHUNK, size - off);
      base.writeBigUInt64LE(BigInt(i), 8);
      if (i === 0) base.writeBigUInt64LE(BigInt(variant), 0);
      const b = base.subarray(0, n);
      h.update(b);
      await fh.write(b, 0, n, off);
    }
  } finally {
    await fh.close();
  }
  return `sha256:${h.digest('hex')}`;
}

/** Stamp a new variant into the first 8 bytes in place and rehash (a fresh digest, no rewrite). */
export async function setVariant(path, variant) {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(variant));
    await fh.write(b, 0, 8, 0);
  } finally {
    await fh.close();
  }
  return sha256File(path);
}

export function sha256File(path) {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path, { highWaterMark: 4 * MiB })
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(`sha256:${h.digest('hex')}`));
  });
}

/**
 * The disk's ceiling for a durable write: `size` bytes written then fdatasync'd
 * (what a registry that fsyncs before commit can at best reach). GiB/s. With
 * `sync: false`, the cost of putting that many new bytes in the page cache only.
 */
export async function diskWriteProbe(dir, size = GiB, { sync = true } = {}) {
  const path = `${dir}/disk-probe`;
  const buf = randomFillSync(Buffer.allocUnsafe(CHUNK));
  const t0 = performance.now();
  const fh = await open(path, 'w');
  try {
    for (let off = 0; off < size; off += CHUNK) await fh.write(buf, 0, Math.min(CHUNK, size - off), off);
    if (sync) await fh.datasync();
  } finally {
    await fh.close();
  }
  const secs = (performance.now() - t0) / 1000;
  await unlink(path);
  return size / GiB / secs;
}

/** Read a file once so it sits in the page cache. */
export function warmFile(path) {
  return new Promise((resolve, reject) => {
    createReadStream(path, { highWaterMark: 4 * MiB }).on('data', () => {}).on('error', reject).on('end', resolve);
  });
}

export function sha256(buf) {
  return `sha256:${createHash('sha256').update(buf).digest('hex')}`;
}

function curlHeaders(headers = {}) {
  return Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
}

async function startUpload(reg, repo) {
  const res = await fetch(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: reg.headers });
  await res.arrayBuffer();
  if (res.status !== 202) throw new Error(`${reg.name}: POST upload for ${repo}: HTTP ${res.status}`);
  const loc = res.headers.get('location');
  if (!loc) throw new Error(`${reg.name}: POST upload: no Location`);
  return new URL(loc, reg.url);
}

/**
 * Monolithic upload of a file: POST a session, then one PUT ?digest= with the
 * file as body (curl -T streams it). Returns the seconds for POST+PUT.
 */
export async function pushBlobFile(reg, repo, path, digest, size) {
  const t0 = performance.now();
  const loc = await startUpload(reg, repo);
  loc.searchParams.set('digest', digest);
  const r = await run('curl', [
    '-sS', '-o', '/dev/null', '-w', '%{http_code}',
    '-X', 'PUT', '-T', path,
    '-H', 'Content-Type: application/octet-stream',
    '-H', 'Expect:', // no 100-continue round trip
    ...curlHeaders(reg.headers),
    loc.href,
  ]);
  const secs = (performance.now() - t0) / 1000;
  if (r.code !== 0 || r.stdout.trim() !== '201') {
    throw new Error(`${reg.name}: PUT blob ${digest} (${size} bytes): curl exit ${r.code}, HTTP ${r.stdout.trim()} ${r.stderr}`);
  }
  return secs;
}

/** Monolithic upload of a small in-memory blob. */
export async function pushBlobBytes(reg, repo, bytes) {
  const digest = sha256(bytes);
  const loc = await startUpload(reg, repo);
  loc.searchParams.set('digest', digest);
  const res = await fetch(loc, {
    method: 'PUT',
    headers: { ...reg.headers, 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`${reg.name}: PUT blob ${digest}: HTTP ${res.status}`);
  return { digest, size: bytes.length };
}

export async function putManifest(reg, repo, ref, bytes, mediaType = OCI_MANIFEST) {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, {
    method: 'PUT',
    headers: { ...reg.headers, 'content-type': mediaType },
    body: bytes,
  });
  const body = await res.text();
  if (res.status !== 201) throw new Error(`${reg.name}: PUT manifest ${repo}:${ref}: HTTP ${res.status} ${body}`);
  return sha256(bytes);
}

/**
 * A small OCI image manifest (empty-JSON config, one 1 KiB layer), pushed
 * with its blobs and tagged. Returns { digest, bytes, size }.
 */
export async function pushSmallImage(reg, repo, tag, { annotations } = {}) {
  const config = Buffer.from('{}');
  const layer = Buffer.alloc(1024, 0x61);
  const c = await pushBlobBytes(reg, repo, config);
  const l = await pushBlobBytes(reg, repo, layer);
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: c.digest, size: c.size },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest, size: l.size }],
    annotations: annotations ?? { 'org.opencontainers.image.title': 'customs bench' },
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = await putManifest(reg, repo, tag, bytes);
  return { digest, bytes, size: bytes.length, mediaType: OCI_MANIFEST };
}

/** Tag an OCI image manifest whose one layer is a blob already in `repo` (clients fetch a manifest before its blobs). */
export async function pushManifestFor(reg, repo, tag, layer) {
  const c = await pushBlobBytes(reg, repo, Buffer.from('{}'));
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: c.digest, size: c.size },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size }],
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  return { digest: await putManifest(reg, repo, tag, bytes), bytes };
}

/** GET a manifest with the OCI Accept header and check its digest. */
export async function checkManifest(reg, repo, ref, expectDigest) {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, { headers: { ...reg.headers, accept: OCI_MANIFEST } });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`${reg.name}: GET manifest ${repo}:${ref}: HTTP ${res.status} ${body.toString().slice(0, 300)}`);
  if (sha256(body) !== expectDigest) throw new Error(`${reg.name}: GET manifest ${repo}:${ref}: wrong digest`);
}
