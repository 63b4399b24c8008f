import { MediaType, err, type Digest } from '../oci/index.js';
import type { BlobService, ManifestService } from '../registry/index.js';
import type { Actor, MetadataStore } from '../storage/index.js';
import { revisionView } from './manifest.js';
import type { RepoType } from './names.js';
import type { HubPullThrough } from './pull-through.js';

/**
 * `customs hub import <org>/<model>[@rev] --to <repo>:<tag>`: a revision brought in without a
 * Hub client, through the same pull-through code path (resolution, verification, storage as
 * `<upstream>/<org>/<model>:<commit>`), every LFS file fetched, then, with `to`, the artifact
 * tagged in a local repository as a push would (pins, history, audit), and the gate's verdict
 * on it reported. A denied revision is imported all the same: the operator may sign it.
 */
export type ImportEvent =
  | { readonly event: 'revision'; readonly repository: string; readonly commit: string; readonly digest: Digest; readonly files: readonly { path: string; size: number }[] }
  | { readonly event: 'progress'; readonly path: string; readonly bytes: number; readonly size: number }
  | { readonly event: 'file'; readonly path: string; readonly size: number; readonly fetched: boolean }
  | { readonly event: 'tagged'; readonly repository: string; readonly tag: string; readonly digest: Digest }
  | { readonly event: 'verdict'; readonly repository: string; readonly digest: Digest; readonly allowed: boolean; readonly findings: readonly string[] };

export interface ImportRequest {
  readonly upstream: string;
  readonly type: RepoType;
  readonly repoId: string;
  readonly revision: string;
  readonly to?: { readonly repository: string; readonly tag: string } | undefined;
}

export interface ImportResult {
  readonly repository: string;
  readonly commit: string;
  readonly digest: Digest;
  readonly allowed: boolean;
}

export interface HubImporterDeps {
  readonly pull: HubPullThrough;
  readonly manifests: Pick<ManifestService, 'put'>;
  readonly blobs: Pick<BlobService, 'link'>;
  readonly metadata: Pick<MetadataStore, 'getManifest' | 'linkedBlob'>;
  /** The gate's verdict (with the failed findings) on a manifest in a repository. */
  readonly judge: (repository: string, digest: Digest) => Promise<{ allowed: boolean; findings: string[] }>;
}

/** Progress events at most this often per file (bytes), besides the last. */
const PROGRESS_STEP = 8 * 1024 * 1024;

export class HubImporter {
  constructor(private readonly d: HubImporterDeps) {}

  async run(req: ImportRequest, by: Actor, emit: (e: ImportEvent) => void): Promise<ImportResult> {
    const { pull, metadata } = this.d;
    const t = pull.targetFor(req.upstream, req.type, req.repoId);
    if (!t) throw err('NAME_UNKNOWN', `no hub upstream ${req.upstream} or invalid repo id ${req.repoId}`);
    const { digest } = await pull.revision(t, req.revision);
    const record = await metadata.getManifest(t.repository, digest);
    const view = record && revisionView(digest, record.bytes);
    if (!record || !view) throw err('MANIFEST_UNKNOWN', `revision ${req.revision} of ${req.repoId} vanished while it was imported`);
    emit({ event: 'revision', repository: t.repository, commit: view.commit, digest, files: view.files.map((f) => ({ path: f.path, size: f.size })) });
    for (const f of view.files) {
      if (await metadata.linkedBlob(t.repository, f.digest)) {
        emit({ event: 'file', path: f.path, size: f.size, fetched: false });
        continue;
      }
      let bytes = 0;
      let told = 0;
      await pull.fetchFile(t.repository, f.digest, (n) => {
        bytes += n;
        if (bytes - told >= PROGRESS_STEP) {
          told = bytes;
          emit({ event: 'progress', path: f.path, bytes, size: f.size });
        }
      });
      emit({ event: 'file', path: f.path, size: f.size, fetched: true });
    }
    let judged = t.repository;
    if (req.to) {
      // As a push would: every blob linked first, then the manifest under the tag (pins, history and audit apply).
      const m = JSON.parse(record.bytes.toString('utf8')) as { config: { digest: Digest; size: number }; layers: { digest: Digest; size: number }[] };
      for (const b of [m.config, ...m.layers]) await this.d.blobs.link(req.to.repository, { digest: b.digest, size: b.size });
      await this.d.manifests.put(req.to.repository, { kind: 'tag', tag: req.to.tag }, record.bytes, MediaType.ociManifest, { actor: by.actor, reason: by.reason ?? `hub import of ${req.upstream}/${req.repoId}@${view.commit}` });
      emit({ event: 'tagged', repository: req.to.repository, tag: req.to.tag, digest });
      judged = req.to.repository;
    }
    const v = await this.d.judge(judged, digest);
    emit({ event: 'verdict', repository: judged, digest, allowed: v.allowed, findings: v.findings });
    return { repository: judged, commit: view.commit, digest, allowed: v.allowed };
  }
}
