import { Readable } from 'node:stream';
import { MediaType, err, isRegistryError, parseManifest, type Digest } from '../oci/index.js';
import type { ProxyLogger } from '../proxy/logger.js';
import type { PinLookup } from '../proxy/pull-through-service.js';
import { pulledManifest } from '../proxy/stored-manifest.js';
import type { BlobStore, MetadataStore } from '../storage/index.js';
import type { HubUpstreamConfig } from './config.js';
import { buildRevisionArtifact, revisionView, type HubFile } from './manifest.js';
import { GitBlobHasher } from './names.js';
import type { HubTarget } from './pull-through.js';
import type { HubUpstreamClient, UpstreamRevision } from './upstream-client.js';

/**
 * How a resolved upstream revision becomes a stored artifact: its git-tracked files
 * (configs, READMEs, tokenizers) fetched and checked against their git blob ids, the
 * ModelPack config and manifest built (manifest.ts) and stored under `<commit>`; and
 * how a branch tag follows the upstream. The caller (pull-through.ts) makes it one
 * import per commit; LFS files are filled later, when first read.
 */
/** How many git files of a revision are fetched at once. */
const GIT_FILE_PARALLELISM = 4;
/** The Hub keeps larger files in git-lfs; a "git" file larger than this is refused. */
const MAX_GIT_FILE = 64 * 1024 * 1024;

export interface ImportContext {
  readonly client: HubUpstreamClient;
  readonly config: HubUpstreamConfig;
  /** The manifest the branch pointed at so far: its unchanged git files are not fetched again. */
  readonly previous: Digest | undefined;
}

export class RevisionStore {
  constructor(
    private readonly blobs: BlobStore,
    private readonly metadata: MetadataStore,
    private readonly logger: ProxyLogger,
    private readonly pins: PinLookup | undefined,
  ) {}

  /** Stores the revision (tagged `<commit>`) unless it is there already; returns its manifest digest. */
  async import(t: HubTarget, info: UpstreamRevision, ctx: ImportContext): Promise<Digest> {
    const existing = await this.metadata.resolveTag(t.repository, info.commit);
    if (existing) return existing;
    const deadline = AbortSignal.timeout(ctx.config.timeouts.overall * 1000);
    const known = await this.knownGitFiles(t.repository, ctx.previous);
    const files: (HubFile & { digest: Digest })[] = [];
    const git = info.files.filter((f) => !f.lfs);
    for (let i = 0; i < git.length; i += GIT_FILE_PARALLELISM) {
      const batch = git.slice(i, i + GIT_FILE_PARALLELISM).map(async (f) => {
        const stored = known.get(`${f.oid}\0${f.size}`);
        return stored ? { ...f, digest: stored } : this.fetchGitFile(t, info.commit, f, ctx, deadline);
      });
      files.push(...(await Promise.all(batch)));
    }
    for (const f of info.files) if (f.lfs) files.push({ ...f, digest: `sha256:${f.lfs.sha256}` });
    const built = buildRevisionArtifact({
      upstream: t.upstream,
      repoId: t.repoId,
      type: t.type,
      commit: info.commit,
      sourceUrl: ctx.client.sourceUrl(t.type, t.repoId),
      lastModified: info.lastModified,
      licenses: info.licenses,
      files,
    });
    const cfg = await this.blobs.put(Readable.from([built.config]));
    await this.metadata.linkBlob(t.repository, cfg);
    const parsed = parseManifest(built.manifest, MediaType.ociManifest);
    await this.metadata.putManifest(pulledManifest(t.repository, built.digest, built.manifest, parsed), info.commit, { actor: `upstream:${t.upstream}`, reason: 'hub pull-through' });
    this.logger.info({ upstream: t.upstream, repository: t.repository, commit: info.commit, digest: built.digest, files: files.length }, 'hub revision imported');
    return built.digest;
  }

  /** Moves a branch tag to `digest` (recorded in its history), unless it is pinned. */
  async tag(t: HubTarget, digest: Digest, branch: string): Promise<void> {
    if (await this.pins?.isPinned(t.repository, branch)) return;
    const record = await this.metadata.getManifest(t.repository, digest);
    if (!record) return;
    const { createdAt: _c, ...manifest } = record;
    await this.metadata.putManifest(manifest, branch, { actor: `upstream:${t.upstream}`, reason: 'hub pull-through: branch moved' });
  }

  /** The git files of the previous revision still linked here, by git object id and size. */
  private async knownGitFiles(repository: string, previous: Digest | undefined): Promise<Map<string, Digest>> {
    const out = new Map<string, Digest>();
    const record = previous && (await this.metadata.getManifest(repository, previous));
    const view = record && revisionView(record.digest, record.bytes);
    for (const f of view?.origin ? view.files : []) {
      if (f.lfs || !(await this.metadata.linkedBlob(repository, f.digest))) continue;
      out.set(`${f.oid}\0${f.size}`, f.digest);
    }
    return out;
  }

  /** A git-tracked file: fetched whole, checked against its git blob id and size, then stored. */
  private async fetchGitFile(t: HubTarget, commit: string, f: HubFile, ctx: ImportContext, deadline: AbortSignal): Promise<HubFile & { digest: Digest }> {
    const { client, config } = ctx;
    if (f.size > MAX_GIT_FILE) throw err('UPSTREAM_UNAVAILABLE', `upstream ${t.upstream} lists ${f.path} (${f.size} bytes) outside git-lfs`);
    let res;
    try {
      res = await client.openFile(t.type, t.repoId, commit, f.path, { signal: AbortSignal.any([deadline, AbortSignal.timeout(config.timeouts.header * 1000)]), idleMs: config.timeouts.idle * 1000, bulk: false });
    } catch (e) {
      if (isRegistryError(e) && e.code === 'BLOB_UNKNOWN') throw err('UPSTREAM_UNAVAILABLE', `upstream ${t.upstream} lists ${f.path} in ${t.repoId}@${commit} but does not serve it`);
      throw e;
    }
    const body = res.body;
    try {
      const info = await this.blobs.put(Readable.from(checkedGitBlob(body, f, t.upstream)), { expectedSize: f.size, maxSize: f.size });
      await this.metadata.linkBlob(t.repository, info);
      return { ...f, digest: info.digest };
    } catch (e) {
      body.destroy();
      if (isRegistryError(e) && (e.code === 'DIGEST_INVALID' || e.code === 'SIZE_INVALID')) {
        this.logger.error({ event: 'security', kind: 'upstream-digest-mismatch', upstream: t.upstream, repository: t.repository, path: f.path, detail: e.message }, 'upstream file failed verification');
        throw err('DIGEST_INVALID', `upstream ${t.upstream} sent ${f.path} of ${t.repoId}@${commit} with bytes that do not match its git blob id ${f.oid}; nothing was stored`);
      }
      throw e;
    }
  }
}

/** The body of a git-tracked file, failing (before its end is taken for success) unless size and git blob id match. */
async function* checkedGitBlob(body: AsyncIterable<Buffer>, f: HubFile, upstream: string): AsyncGenerator<Buffer> {
  const hasher = new GitBlobHasher(f.size);
  let n = 0;
  for await (const chunk of body) {
    n += chunk.byteLength;
    if (n > f.size) throw err('SIZE_INVALID', `upstream ${upstream} sent more than the ${f.size} bytes of ${f.path}`);
    hasher.update(chunk);
    yield chunk;
  }
  if (n !== f.size) throw err('SIZE_INVALID', `upstream ${upstream} sent ${n} of the ${f.size} bytes of ${f.path}`);
  const oid = hasher.hex();
  if (oid !== f.oid) throw err('DIGEST_INVALID', `${f.path} hashes to git blob ${oid}, the upstream lists ${f.oid}`);
}
