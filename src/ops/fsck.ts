import { digestOf, parseDigest, parseManifest, type Digest } from '../oci/index.js';
import {
  hasBlobIntegrity,
  hasBlobList,
  hasLeftovers,
  scanAll,
  type BlobStore,
  type ContentScan,
  type MetadataStore,
  type UploadStore,
} from '../storage/index.js';

export interface FsckOptions {
  /** Re-hash every linked blob (default true); without it only existence and size are checked. */
  readonly hash?: boolean;
  /** Repositories served through an upstream: their manifests' blobs arrive on demand, so a missing link there is expected. */
  readonly isProxied?: (repository: string) => boolean;
  /** Temporary files and multipart uploads older than this (ms) count as orphaned uploads (default: one hour). */
  readonly leftoverGraceMs?: number;
  readonly now?: number;
}

export interface FsckProblem {
  readonly check: 'tag' | 'manifest' | 'blob' | 'upload';
  readonly repository?: string | undefined;
  readonly reference?: string | undefined;
  readonly detail: string;
}

export interface FsckReport {
  readonly ok: boolean;
  readonly tags: number;
  readonly manifests: number;
  readonly links: number;
  /** Distinct blobs checked (re-hashed unless `hash: false`) and their bytes. */
  readonly blobs: number;
  readonly bytes: number;
  readonly problems: readonly FsckProblem[];
  /** Not problems, worth knowing: bytes no repository links (garbage collection removes them), blobs of proxied manifests not fetched yet, young leftovers. */
  readonly notes: readonly string[];
}

const MAX_PROBLEMS = 1000;

/**
 * A consistency check of a whole store, read-only (`customs fsck`, and the fault tests after
 * each fault): every tag resolves to a stored manifest; every manifest hashes to its digest and
 * its blobs are linked in its repository and its child manifests stored; every linked blob's
 * bytes exist with the recorded size and (by default) hash to their digest; no partial upload
 * is left that no session owns. Corrupt bytes are reported, not moved: `customs scrub` does that.
 */
export async function fsck(
  stores: { blobs: BlobStore; metadata: MetadataStore & ContentScan; uploads?: UploadStore | undefined },
  o: FsckOptions = {},
): Promise<FsckReport> {
  const { blobs, metadata, uploads } = stores;
  const hash = o.hash ?? true;
  const proxied = o.isProxied ?? (() => false);
  const now = o.now ?? Date.now();
  const grace = o.leftoverGraceMs ?? 3600_000;
  const problems: FsckProblem[] = [];
  const notes: string[] = [];
  const problem = (p: FsckProblem): void => void (problems.length < MAX_PROBLEMS && problems.push(p));

  let tags = 0;
  for await (const t of scanAll(metadata.tagPage.bind(metadata), (t) => ({ repository: t.repository, tag: t.tag }))) {
    tags++;
    if (!(await metadata.getManifest(t.repository, t.digest))) problem({ check: 'tag', repository: t.repository, reference: t.tag, detail: `points at ${t.digest}, which is not stored` });
  }

  let manifests = 0;
  let notFetched = 0;
  for await (const m of scanAll(metadata.manifestPage.bind(metadata), (m) => ({ repository: m.repository, digest: m.digest }))) {
    manifests++;
    const where = { repository: m.repository, reference: m.digest };
    const actual = digestOf(m.bytes, parseDigest(m.digest).algorithm);
    if (actual !== m.digest) {
      problem({ check: 'manifest', ...where, detail: `stored bytes hash to ${actual}` });
      continue;
    }
    let parsed;
    try {
      parsed = parseManifest(m.bytes, m.mediaType);
    } catch (e) {
      problem({ check: 'manifest', ...where, detail: `does not parse: ${(e as Error).message}` });
      continue;
    }
    for (const b of parsed.blobs) {
      if (await metadata.linkedBlob(m.repository, b.digest)) continue;
      if (proxied(m.repository)) notFetched++;
      else problem({ check: 'manifest', ...where, detail: `references blob ${b.digest}, which is not linked in ${m.repository}` });
    }
    for (const c of parsed.manifests) {
      if (await metadata.getManifest(m.repository, c.digest)) continue;
      if (proxied(m.repository)) notFetched++;
      else problem({ check: 'manifest', ...where, detail: `references manifest ${c.digest}, which is not stored in ${m.repository}` });
    }
  }
  if (notFetched > 0) notes.push(`${notFetched} blob(s) or child manifest(s) of pull-through manifests not fetched yet (they arrive when first pulled)`);

  let links = 0;
  let nBlobs = 0;
  let bytes = 0;
  const seen = new Map<Digest, string | undefined>(); // digest -> problem found with its bytes (undefined: fine)
  for await (const l of scanAll(metadata.blobLinkPage.bind(metadata), (l) => ({ repository: l.repository, digest: l.digest }))) {
    links++;
    if (!seen.has(l.digest)) {
      const info = await blobs.stat(l.digest);
      let bad: string | undefined;
      if (!info) {
        bad = hasBlobIntegrity(blobs) && (await blobs.wasSetAside(l.digest)) ? 'was set aside as corrupt and has not been replaced' : 'bytes are missing';
      } else if (info.size !== l.size) {
        bad = `stored bytes are ${info.size} long, recorded ${l.size}`;
      } else if (hash && hasBlobIntegrity(blobs)) {
        const c = await blobs.check(l.digest);
        if (c.state === 'corrupt') bad = `stored bytes hash to ${c.actual} (run customs scrub to set them aside)`;
        else if (c.state === 'missing') bad = 'bytes are missing';
      }
      if (info) {
        nBlobs++;
        bytes += info.size;
      }
      seen.set(l.digest, bad);
    }
    const bad = seen.get(l.digest);
    if (bad) problem({ check: 'blob', repository: l.repository, reference: l.digest, detail: bad });
  }

  if (hasBlobList(blobs)) {
    let unlinked = 0;
    let unlinkedBytes = 0;
    for await (const b of blobs.list()) {
      if (seen.has(b.digest) || (await metadata.blobLinkCount(b.digest)) > 0) continue;
      unlinked++;
      unlinkedBytes += b.size;
    }
    if (unlinked > 0) notes.push(`${unlinked} stored blob(s) (${unlinkedBytes} bytes) no repository links: garbage collection removes them once older than its grace period`);
  }

  for (const store of [blobs, uploads]) {
    if (!store || !hasLeftovers(store)) continue;
    let young = 0;
    for await (const l of store.leftovers()) {
      if (now - l.since >= grace) problem({ check: 'upload', reference: l.name, detail: `${l.kind} left over since ${new Date(l.since).toISOString()}, owned by no upload in progress` });
      else young++;
    }
    if (young > 0) notes.push(`${young} temporary upload file(s) or multipart upload(s) younger than ${Math.round(grace / 1000)} s (writes in progress, or left by a failure and removed by upload expiry)`);
  }

  return { ok: problems.length === 0, tags, manifests, links, blobs: nBlobs, bytes, problems, notes };
}
