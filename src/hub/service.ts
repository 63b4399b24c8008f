import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { err, isRegistryError, isValidTag, parseDigest, type Digest } from '../oci/index.js';
import type { ProxyLogger } from '../proxy/logger.js';
import type { BlobRead, BlobService, ManifestService, ReadDecision } from '../registry/index.js';
import type { ByteRange, MetadataStore } from '../storage/index.js';
import { revisionView, type RevisionView, type ServedFile } from './manifest.js';
import { isCommit, isValidRepoId, localRepository, type RepoType } from './names.js';
import { checkHubRequest, type HubRules } from './policy.js';
import type { HubPullThrough, HubTarget } from './pull-through.js';

/**
 * The Hugging Face Hub's download API over customs' artifacts: what `snapshot_download`,
 * `hf_hub_download`, `HfApi.model_info` and `list_repo_files` ask, answered by the
 * registry's own services. A manifest is read through `ManifestService.get` and a file
 * through `BlobService.read`, so the gate, quarantine and audit are the OCI API's,
 * with the same reasons; the HTTP layer only renders (src/http/hub.ts).
 *
 * Revisions: a tag, a manifest digest (`sha256:<hex>`), or a commit. A local artifact's
 * commit is the first 40 hex digits of its manifest digest; an imported one's is the
 * upstream commit it was built from.
 */
export interface HubRepoRequest {
  /** An explicit upstream endpoint (`<prefix>/<upstream>/...`); undefined for `<prefix>/...`. */
  readonly upstream: string | undefined;
  readonly type: RepoType;
  /** As the client spelled it: `name` or `namespace/name`. */
  readonly repoId: string;
}

/** Where a request's repo lives: a local repository, or an upstream's (pulled through). */
export interface HubRepo {
  readonly request: HubRepoRequest;
  /** The customs repository: what access control and the gate are asked about. */
  readonly repository: string;
  readonly upstream: HubTarget | undefined;
}

export interface OpenedRevision {
  readonly repo: HubRepo;
  readonly digest: Digest;
  readonly view: RevisionView;
  readonly decision: ReadDecision;
  readonly stale: boolean;
  readonly lastModified: string;
}

export interface HubServiceDeps {
  readonly manifests: Pick<ManifestService, 'get'>;
  readonly blobs: Pick<BlobService, 'read'>;
  readonly metadata: Pick<MetadataStore, 'resolveTag' | 'listTags' | 'repositoryExists' | 'getManifest'>;
  readonly pull: HubPullThrough | undefined;
  readonly rules: HubRules;
  /** `<prefix>/<org>/<model>` goes to this upstream when no local repository has that name. */
  readonly defaultUpstream: string | undefined;
  readonly logger: ProxyLogger;
}

/** Tags looked at when a commit is not in the recent-commit cache (a repository's tags are few). */
const MAX_TAGS_SCANNED = 1000;

export class HubService {
  /** commit -> manifest digest of what this process answered lately: a client's next request names the commit it was told. */
  private readonly commits = new LRUCache<string, Digest>({ max: 50_000 });

  constructor(private readonly d: HubServiceDeps) {}

  async repo(request: HubRepoRequest): Promise<HubRepo> {
    const unknown = () => err('NAME_UNKNOWN', `repository ${request.repoId} not found`);
    if (!isValidRepoId(request.repoId)) throw unknown();
    const { pull } = this.d;
    if (request.upstream !== undefined) {
      const t = pull?.targetFor(request.upstream, request.type, request.repoId);
      if (!t) throw unknown();
      return { request, repository: t.repository, upstream: t };
    }
    const local = localRepository(request.repoId);
    if (this.d.defaultUpstream && pull && !(local && (await this.d.metadata.repositoryExists(local)))) {
      const t = pull.targetFor(this.d.defaultUpstream, request.type, request.repoId);
      if (t) return { request, repository: t.repository, upstream: t };
    }
    if (!local) throw unknown();
    return { request, repository: local, upstream: undefined };
  }

  /** Resolves the revision and reads its manifest through the gate (DENIED is thrown with the gate's reasons). */
  async open(repo: HubRepo, revision: string): Promise<OpenedRevision> {
    const { digest, stale } = await this.resolve(repo, revision);
    const { record, decision } = await this.d.manifests.get(repo.repository, { kind: 'digest', digest });
    const view = revisionView(record.digest, record.bytes);
    if (!view) throw err('MANIFEST_UNKNOWN', `revision ${revision} of ${repo.request.repoId} is not an artifact with files (an index or an image manifest)`);
    if (view.kind !== repo.request.type) throw err('NAME_UNKNOWN', `${repo.request.repoId} is a ${view.kind} repository, not a ${repo.request.type} one`);
    this.commits.set(`${repo.repository}\0${view.commit}`, record.digest);
    const lastModified = view.createdAt && !Number.isNaN(Date.parse(view.createdAt)) ? new Date(view.createdAt).toISOString() : new Date(record.createdAt).toISOString();
    return { repo, digest: record.digest, view, decision, stale, lastModified };
  }

  /** A file of an opened revision, read through the gate; `rangeOf` turns the client's Range into a range. */
  async file(rev: OpenedRevision, path: string, rangeOf: (size: number) => ByteRange | undefined): Promise<{ file: ServedFile; read: BlobRead }> {
    const file = rev.view.files.find((f) => f.path === path);
    if (!file) throw err('BLOB_UNKNOWN', `${path} not found in ${rev.repo.request.repoId}@${rev.view.commit}`, { commit: rev.view.commit });
    return { file, read: await this.d.blobs.read(rev.repo.repository, file.digest, rangeOf) };
  }

  /** `GET /api/<type>s/<id>[/revision/<rev>]`: the info object huggingface_hub's ModelInfo/DatasetInfo read. */
  info(rev: OpenedRevision): Record<string, unknown> {
    const { request } = rev.repo;
    const author = request.repoId.includes('/') ? request.repoId.split('/')[0] : undefined;
    const siblings = rev.view.files.map((f) => ({
      rfilename: f.path,
      size: f.size,
      blobId: f.oid,
      ...(f.lfs ? { lfs: { sha256: f.lfs.sha256, size: f.size, pointerSize: f.lfs.pointerSize } } : {}),
    }));
    return {
      _id: rev.digest.slice(7, 31),
      id: request.repoId,
      ...(request.type === 'model' ? { modelId: request.repoId } : {}),
      ...(author ? { author } : {}),
      sha: rev.view.commit,
      lastModified: rev.lastModified,
      createdAt: rev.lastModified,
      private: false,
      disabled: false,
      gated: false,
      downloads: 0,
      likes: 0,
      tags: [],
      siblings,
      usedStorage: rev.view.files.reduce((n, f) => n + f.size, 0),
    };
  }

  /** `GET /api/<type>s/<id>/tree/<rev>[/<path>]`: files and folders, recursively or one level. */
  tree(rev: OpenedRevision, path: string, recursive: boolean): Record<string, unknown>[] {
    const base = path.replace(/^\/+|\/+$/g, '');
    const under = (p: string) => base === '' || p.startsWith(`${base}/`);
    const files = rev.view.files.filter((f) => under(f.path));
    if (base !== '' && files.length === 0) {
      if (rev.view.files.some((f) => f.path === base)) throw err('BLOB_UNKNOWN', `${base} is a file, not a folder`, { commit: rev.view.commit });
      throw err('BLOB_UNKNOWN', `${base} not found in ${rev.repo.request.repoId}@${rev.view.commit}`, { commit: rev.view.commit });
    }
    const depth = base === '' ? 0 : base.split('/').length;
    const dirs = new Set<string>();
    const out: Record<string, unknown>[] = [];
    for (const f of files) {
      const parts = f.path.split('/');
      for (let i = depth + 1; i < parts.length; i++) {
        if (!recursive && i > depth + 1) break;
        const dir = parts.slice(0, i).join('/');
        if (dirs.has(dir)) continue;
        dirs.add(dir);
        out.push({ type: 'directory', oid: createHash('sha1').update(`${rev.view.commit}\0${dir}`).digest('hex'), size: 0, path: dir });
      }
      if (!recursive && parts.length > depth + 1) continue;
      out.push({ type: 'file', oid: f.oid, size: f.size, path: f.path, ...(f.lfs ? { lfs: { oid: f.lfs.sha256, size: f.size, pointerSize: f.lfs.pointerSize } } : {}) });
    }
    return out;
  }

  private async resolve(repo: HubRepo, revision: string): Promise<{ digest: Digest; stale: boolean }> {
    const byDigest = revision.includes(':');
    // A manifest digest is customs' own name for a revision, and a pin in itself.
    if (byDigest) {
      try {
        return { digest: parseDigest(revision).digest, stale: false };
      } catch {
        throw err('MANIFEST_UNKNOWN', `revision ${revision.slice(0, 100)} not found`);
      }
    }
    // Upstream revisions: resolution, pins and the allow-list are the pull-through's (OCI clients go there too).
    if (repo.upstream) return this.d.pull!.revision(repo.upstream, revision);
    const cached = isCommit(revision) ? this.commits.get(`${repo.repository}\0${revision}`) : undefined;
    if (cached) return { digest: cached, stale: false };
    checkHubRequest(this.d.rules(repo.repository), { repository: repo.repository, revision }, (m) => this.d.logger.warn({ repository: repo.repository }, m));
    if (isValidTag(revision)) {
      // A Hub client's default revision is `main`; an OCI repository's default tag is `latest`.
      const tagged = (await this.d.metadata.resolveTag(repo.repository, revision)) ?? (revision === 'main' ? await this.d.metadata.resolveTag(repo.repository, 'latest') : undefined);
      if (tagged) return { digest: tagged, stale: false };
    }
    if (isCommit(revision)) {
      const found = await this.findCommit(repo.repository, revision);
      if (found) return { digest: found, stale: false };
    }
    if (!(await this.d.metadata.repositoryExists(repo.repository))) throw err('NAME_UNKNOWN', `repository ${repo.request.repoId} not found`);
    throw err('MANIFEST_UNKNOWN', `revision ${revision.slice(0, 100)} of ${repo.request.repoId} not found`);
  }

  /** A commit this process has not handed out lately: the tagged manifests whose commit it is. */
  private async findCommit(repository: string, commit: string): Promise<Digest | undefined> {
    for (const tag of await this.d.metadata.listTags(repository, { n: MAX_TAGS_SCANNED })) {
      const digest = await this.d.metadata.resolveTag(repository, tag);
      const record = digest && (await this.d.metadata.getManifest(repository, digest));
      if (record && revisionView(record.digest, record.bytes)?.commit === commit) return record.digest;
    }
    return undefined;
  }
}

/** True for the errors a Hub client reads as "this does not exist" (RepoNotFound, RevisionNotFound, EntryNotFound). */
export const isNotFound = (e: unknown): boolean => isRegistryError(e) && (e.code === 'NAME_UNKNOWN' || e.code === 'MANIFEST_UNKNOWN' || e.code === 'BLOB_UNKNOWN');
