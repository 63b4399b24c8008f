import { err, isValidName, parseManifest, referenceString, type Descriptor, type Digest, type Reference } from '../oci/index.js';
import type { PinRecord, QuarantineRecord } from '../storage/index.js';
import type { Verdict } from '../verify/index.js';
import type { ConsoleDeps } from './deps.js';
import { evidenceTree, type EvidenceNode } from './evidence.js';
import { totalSize } from './inventory-view.js';
import { policyView } from './policy-view.js';
import { requirePermission, type Viewer } from './viewer.js';

export interface LayerView {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly size: number;
  /** The file's path (ModelPack's filepath annotation, or the OCI title). */
  readonly file: string | undefined;
}

export interface ArtifactView {
  readonly repository: string;
  readonly asked: string;
  readonly digest: Digest;
  readonly mediaType: string;
  readonly artifactType: string | undefined;
  readonly size: number;
  readonly totalSize: number;
  readonly createdAt: number;
  readonly subject: Digest | undefined;
  readonly annotations: readonly (readonly [string, string])[];
  readonly config: Descriptor | undefined;
  readonly layers: readonly LayerView[];
  /** An index's child manifests. */
  readonly manifests: readonly Descriptor[];
  readonly tags: readonly string[];
  readonly pins: readonly PinRecord[];
  readonly quarantine: QuarantineRecord | undefined;
  readonly verdict: Verdict;
  readonly served: { readonly served: boolean; readonly reason?: string | undefined };
  /** Withheld from a viewer who may only pull content the gate does not serve. */
  readonly contentShown: boolean;
  readonly manifestJson: string | undefined;
  readonly evidence: readonly EvidenceNode[];
  readonly may: { readonly admin: boolean; readonly quarantine: boolean; readonly delete: boolean };
}

const FILE_ANNOTATIONS = ['org.cncf.model.filepath', 'org.opencontainers.image.title'];

export async function artifact(d: ConsoleDeps, v: Viewer, repository: string, reference: Reference): Promise<ArtifactView> {
  if (!isValidName(repository)) throw err('NAME_INVALID', `invalid repository name ${JSON.stringify(repository.slice(0, 300))}`);
  requirePermission(v, repository, 'pull');
  const record = await d.ops.lineage.resolve(repository, reference);
  const digest = record.digest;
  const [tags, pins, quarantined, verdict, served] = await Promise.all([
    d.metadata.tagsOf(repository, digest),
    d.ops.tags.listPins(repository),
    d.metadata.quarantinedAmong([digest]),
    d.verdict(repository, digest),
    d.served(repository, digest),
  ]);
  const contentShown = served.served || v.may(repository, 'admin');
  let parsed: ReturnType<typeof parseManifest> | undefined;
  try {
    parsed = parseManifest(record.bytes, record.mediaType);
  } catch {
    parsed = undefined;
  }
  const layers = (parsed?.blobs ?? [])
    .filter((b) => b !== parsed?.config)
    .map((b) => ({ digest: b.digest, mediaType: b.mediaType, size: b.size, file: FILE_ANNOTATIONS.map((k) => b.annotations?.[k]).find((x) => x !== undefined) }));
  const keyIndex = policyView(d.policy()).keyIndex;
  return {
    repository,
    asked: referenceString(reference),
    digest,
    mediaType: record.mediaType,
    artifactType: record.artifactType,
    size: record.size,
    totalSize: totalSize(record.bytes, record.mediaType, record.size),
    createdAt: record.createdAt,
    subject: record.subject,
    annotations: Object.entries(record.annotations ?? parsed?.annotations ?? {}),
    config: parsed?.config,
    layers: contentShown ? layers : [],
    manifests: contentShown ? (parsed?.manifests ?? []) : [],
    tags,
    pins: pins.filter((p) => tags.includes(p.tag) || p.digest === digest),
    quarantine: quarantined.length ? (await d.ops.quarantine.list()).find((q) => q.digest === digest) : undefined,
    verdict,
    served,
    contentShown,
    manifestJson: contentShown ? prettyJson(record.bytes) : undefined,
    evidence: await evidenceTree(d, v, repository, digest, keyIndex),
    may: { admin: v.may(repository, 'admin'), quarantine: v.may(undefined, 'admin'), delete: v.may(repository, 'delete') },
  };
}

function prettyJson(bytes: Buffer): string {
  try {
    return JSON.stringify(JSON.parse(bytes.toString('utf8')), null, 2);
  } catch {
    return bytes.toString('utf8');
  }
}
