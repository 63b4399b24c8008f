import { constants, createReadStream } from 'node:fs';
import { lstat, mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Digester, err, imageManifestSchema, isRegistryError, isIndexMediaType, parseRepoReference, referenceString, type Descriptor, type Digest } from '../oci/index.js';
import type { RegistryClient } from './client.js';
import { checkRelativePath, containedPath, hashFile } from './files.js';
import { ModelPack } from './media-types.js';
import { silentProgress, type Progress } from './progress.js';

/**
 * `customs pull`: fetch the manifest (the gate answers here: a denied artifact fails before
 * any byte is written), then every layer into `<dir>/<org.cncf.model.filepath>`, hashing
 * while streaming. An interrupted download leaves `<file>.partial`, continued with Range.
 */
export interface PulledFile {
  readonly path: string;
  readonly digest: Digest;
  readonly size: number;
  /** Bytes that were already on disk in `.partial` and not downloaded again. */
  readonly resumedFrom: number;
  readonly skipped: boolean;
}

export interface PullResult {
  readonly repository: string;
  readonly digest: Digest;
  readonly files: readonly PulledFile[];
}

/** Checks every layer's path before anything is written; duplicates are refused too. */
export function plannedPaths(layers: readonly Descriptor[]): string[] {
  const seen = new Set<string>();
  return layers.map((l) => {
    const p = l.annotations?.[ModelPack.filepathAnnotation];
    if (p === undefined) throw err('MANIFEST_INVALID', `layer ${l.digest} has no ${ModelPack.filepathAnnotation} annotation`);
    if (/\.tar(\+gzip|\+zstd)?$/.test(l.mediaType)) throw err('UNSUPPORTED', `layer ${p} is an archive (${l.mediaType}); only raw layers are supported`);
    const safe = checkRelativePath(p);
    if (seen.has(safe)) throw err('MANIFEST_INVALID', `two layers write ${safe}`);
    seen.add(safe);
    return safe;
  });
}

/** Creates `rel`'s directories under root one at a time, refusing any component that is a symlink or a file. */
async function ensureParents(root: string, rel: string): Promise<void> {
  const parts = rel.split('/').slice(0, -1);
  let cur = root;
  for (const part of parts) {
    cur = join(cur, part);
    const st = await lstat(cur).catch(() => undefined);
    if (!st) await mkdir(cur);
    else if (st.isSymbolicLink()) throw err('MANIFEST_INVALID', `refusing to write through symlink ${cur}`);
    else if (!st.isDirectory()) throw err('MANIFEST_INVALID', `${cur} exists and is not a directory`);
  }
}

export async function pull(client: RegistryClient, ref: string, dir: string, progress: Progress = silentProgress): Promise<PullResult> {
  const { repository, reference } = parseRepoReference(ref);
  const m = await client.getManifest(repository, referenceString(reference));
  if (isIndexMediaType(m.mediaType)) throw err('UNSUPPORTED', `${ref} is an index; pull one of its manifests by digest`);
  const manifest = imageManifestSchema.parse(JSON.parse(m.bytes.toString('utf8')));
  const paths = plannedPaths(manifest.layers);
  await mkdir(dir, { recursive: true });
  const total = manifest.layers.reduce((n, l) => n + l.size, 0);
  const files: PulledFile[] = [];
  progress.begin('downloading', total);
  for (const [i, layer] of manifest.layers.entries()) {
    const rel = paths[i]!;
    await ensureParents(dir, rel);
    const target = await containedPath(dir, rel);
    files.push(await fetchWithRetry(client, repository, layer, target, progress));
  }
  progress.end();
  return { repository, digest: m.digest, files };
}

/**
 * A dropped connection leaves `<file>.partial`; the next attempt continues from it. Content
 * errors (wrong digest or size) are not retried: the partial is gone and the registry is wrong.
 */
async function fetchWithRetry(client: RegistryClient, repo: string, layer: Descriptor, target: string, progress: Progress, attempts = 3): Promise<PulledFile> {
  for (let i = 1; ; i++) {
    try {
      return await fetchLayer(client, repo, layer, target, progress);
    } catch (e) {
      const code = isRegistryError(e) ? e.code : undefined;
      const retriable = code === undefined || code === 'UPSTREAM_UNAVAILABLE' || code === 'TOOMANYREQUESTS';
      if (!retriable || i >= attempts) throw e;
    }
  }
}

async function fetchLayer(client: RegistryClient, repo: string, layer: Descriptor, target: string, progress: Progress): Promise<PulledFile> {
  const existing = await lstat(target).catch(() => undefined);
  if (existing?.isFile() && existing.size === layer.size && (await hashFile(target)).digest === layer.digest) {
    progress.tick(layer.size);
    return { path: target, digest: layer.digest, size: layer.size, resumedFrom: 0, skipped: true };
  }
  const partial = `${target}.partial`;
  const pst = await lstat(partial).catch(() => undefined);
  if (pst && !pst.isFile()) throw err('MANIFEST_INVALID', `${partial} is not a regular file`);
  let offset = pst && pst.size <= layer.size ? pst.size : 0;
  if (pst && offset === 0) await rm(partial);
  const digester = new Digester(layer.digest.startsWith('sha512:') ? 'sha512' : 'sha256');
  if (offset > 0) {
    // Bytes kept from an earlier attempt are hashed again: the final digest covers the whole file.
    for await (const chunk of createReadStream(partial, { end: offset - 1, highWaterMark: 1024 * 1024 })) digester.update(chunk as Buffer);
  }
  let resumedFrom = offset;
  if (offset < layer.size || layer.size === 0) {
    const { body, partial: ranged } = await client.getBlob(repo, layer.digest, offset);
    if (offset > 0 && !ranged) {
      // The server ignored Range and sent everything: start over.
      await body.cancel();
      await rm(partial, { force: true });
      return fetchLayer(client, repo, layer, target, progress);
    }
    progress.tick(offset);
    let written = offset;
    const meter = new Transform({
      transform(chunk: Buffer, _e, cb) {
        written += chunk.byteLength;
        if (written > layer.size) return cb(err('SIZE_INVALID', `blob ${layer.digest} is larger than its descriptor says (${layer.size})`));
        digester.update(chunk);
        progress.tick(chunk.byteLength);
        cb(null, chunk);
      },
    });
    // O_NOFOLLOW: a symlink planted at <file>.partial must not redirect the write.
    const fh = await open(partial, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW, 0o644);
    await pipeline(Readable.fromWeb(body), meter, fh.createWriteStream());
  } else {
    progress.tick(offset);
    resumedFrom = offset;
  }
  const got = digester.digest();
  if (digester.size !== layer.size || got !== layer.digest) {
    await rm(partial, { force: true });
    throw err('DIGEST_INVALID', `downloaded ${target}: expected ${layer.digest} (${layer.size} bytes), got ${got} (${digester.size} bytes); the partial file was removed`);
  }
  await rename(partial, target);
  return { path: target, digest: layer.digest, size: layer.size, resumedFrom, skipped: false };
}
