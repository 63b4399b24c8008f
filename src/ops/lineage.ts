import { digestOf, err, parseManifest, type Digest, type Reference } from '../oci/index.js';
import type { BlobFetcher, ManifestRecord, MetadataStore, ProvenanceMaterial } from '../storage/index.js';
import { isProvenance, materialKind, provenanceFacts, readEnvelope, statementNames } from './envelope.js';
import { readSmall, type Judge, type OpsLog } from './types.js';

/** Attestation layers are small; anything larger is not read into memory. */
const MAX_ATTESTATION = 4 * 1024 * 1024;
const SBOM_TYPES = ['application/vnd.cyclonedx+json', 'application/spdx+json'];
const SBOM_PREDICATES = ['https://cyclonedx.org/bom', 'https://spdx.dev/Document'];

export interface ReferrerView {
  readonly digest: Digest;
  readonly artifactType: string | undefined;
  readonly predicateType: string | undefined;
  readonly created: string | undefined;
  readonly signers: string[];
  readonly loggedAt: string[];
}

export interface SbomSummary {
  readonly referrer: Digest;
  readonly format: string;
  readonly components: number;
  readonly name: string | undefined;
  /** sha256 of the document as parsed JSON: the same SBOM attached raw and as a signed attestation is listed once. */
  readonly document: Digest;
  /** Every referrer carrying this same document (`referrer` first). */
  readonly referrers: Digest[];
}

export interface MaterialView extends ProvenanceMaterial {
  readonly kind: 'code' | 'dataset' | 'base-model' | 'other';
  /** Where customs stores it, when it does. */
  readonly storedIn: string[];
}

export interface Lineage {
  readonly repository: string;
  readonly digest: Digest;
  readonly artifactType: string | undefined;
  readonly tags: string[];
  readonly pastTags: { tag: string; from: Digest | undefined; to: Digest | undefined; actor: string; reason: string | undefined; at: number }[];
  readonly pins: { tag: string; actor: string; reason: string | undefined }[];
  readonly quarantined: boolean;
  readonly verdict: { allowed: boolean; findings: readonly string[] };
  readonly provenance: {
    referrer: Digest;
    predicateType: string;
    builderId: string | undefined;
    startedOn: string | undefined;
    finishedOn: string | undefined;
    signers: readonly string[];
  }[];
  readonly code: MaterialView[];
  readonly datasets: MaterialView[];
  readonly baseModels: MaterialView[];
  readonly otherMaterials: MaterialView[];
  readonly referrers: ReferrerView[];
  readonly sbom: SbomSummary[];
}

export interface ConsumerView {
  readonly repository: string;
  readonly digest: Digest;
  readonly via: string;
  readonly role: string | undefined;
  readonly depth: number;
  readonly tags: string[];
}

/** Indexes provenance as it is stored and answers lineage questions from the index. */
export class LineageService {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly blobs: BlobFetcher,
    private readonly judge: Judge,
    private readonly log: OpsLog,
  ) {}

  /**
   * Called after a manifest is stored: when it is a referrer whose layer holds SLSA
   * provenance about its subject, records subject and materials. A statement about
   * another digest is not indexed (it does not describe this subject).
   */
  async index(record: ManifestRecord): Promise<boolean> {
    if (!record.subject) return false;
    let indexed = false;
    for (const layer of layersOf(record)) {
      if (layer.size > MAX_ATTESTATION) continue;
      const bytes = await readSmall(this.blobs, layer.digest, MAX_ATTESTATION).catch(() => undefined);
      const env = bytes && readEnvelope(bytes);
      const st = env?.statement;
      if (!st || !isProvenance(st.predicateType)) continue;
      if (!statementNames(st, record.subject)) {
        this.log.warn({ repository: record.repository, referrer: record.digest, subject: record.subject }, 'provenance statement does not name its subject; not indexed');
        continue;
      }
      const facts = provenanceFacts(st);
      if (!facts) continue;
      await this.metadata.recordProvenance({
        repository: record.repository,
        referrer: record.digest,
        subject: record.subject,
        predicateType: st.predicateType,
        ...facts,
        signers: env.signers,
      });
      indexed = true;
    }
    return indexed;
  }

  async resolve(repository: string, reference: Reference): Promise<ManifestRecord> {
    const digest = reference.kind === 'digest' ? reference.digest : await this.metadata.resolveTag(repository, reference.tag);
    const record = digest && (await this.metadata.getManifest(repository, digest));
    if (!record) throw err('MANIFEST_UNKNOWN', `${repository}${reference.kind === 'tag' ? `:${reference.tag}` : `@${reference.digest}`} is not stored here`);
    return record;
  }

  async lineage(repository: string, reference: Reference): Promise<Lineage> {
    const record = await this.resolve(repository, reference);
    const digest = record.digest;
    const tags = await this.metadata.tagsOf(repository, digest);
    const moves = await this.metadata.tagMovesOf(repository, digest);
    const pins = (await Promise.all(tags.map((t) => this.metadata.getPin(repository, t)))).flatMap((p) => (p ? [{ tag: p.tag, actor: p.actor, reason: p.reason }] : []));
    const quarantined = (await this.metadata.quarantinedAmong([digest])).length > 0;
    const verdict = await this.judge(repository, digest);
    const referrerList = await this.metadata.listReferrers(repository, digest);
    const prov = await this.provenanceCatchingUp(repository, digest, referrerList.map((d) => d.digest));
    const materials: MaterialView[] = [];
    for (const p of prov) {
      for (const m of p.materials) {
        const sha = m.digest.sha256 ? (`sha256:${m.digest.sha256.toLowerCase()}` as Digest) : undefined;
        materials.push({ ...m, kind: materialKind(m), storedIn: sha ? await this.metadata.repositoriesOf(sha) : [] });
      }
    }
    const referrers: ReferrerView[] = [];
    const sbom: SbomSummary[] = [];
    for (const d of referrerList) {
      const view = await this.referrerView(repository, d.digest, d.artifactType, d.annotations);
      referrers.push(view.view);
      const same = view.sbom && sbom.find((x) => x.document === view.sbom!.document);
      if (same) same.referrers.push(d.digest);
      else if (view.sbom) sbom.push(view.sbom);
    }
    return {
      repository,
      digest,
      artifactType: record.artifactType,
      tags,
      pastTags: moves.filter((m) => m.from === digest).map((m) => ({ tag: m.tag, from: m.from, to: m.to, actor: m.actor, reason: m.reason, at: m.at })),
      pins,
      quarantined,
      verdict: quarantined ? { allowed: false, findings: ['quarantined', ...verdict.findings] } : verdict,
      provenance: prov.map((p) => ({ referrer: p.referrer, predicateType: p.predicateType, builderId: p.builderId, startedOn: p.startedOn, finishedOn: p.finishedOn, signers: p.signers })),
      code: materials.filter((m) => m.kind === 'code'),
      datasets: materials.filter((m) => m.kind === 'dataset'),
      baseModels: materials.filter((m) => m.kind === 'base-model'),
      otherMaterials: materials.filter((m) => m.kind === 'other'),
      referrers,
      sbom,
    };
  }

  /**
   * Provenance of `digest`, first indexing referrers stored without passing the
   * registry's write hooks (pull-through stores upstream referrers directly).
   */
  private async provenanceCatchingUp(repository: string, digest: Digest, referrers: readonly Digest[]) {
    let prov = await this.metadata.provenanceFor(repository, digest);
    const known = new Set(prov.map((p) => p.referrer));
    let added = false;
    for (const r of referrers) {
      if (known.has(r)) continue;
      const rec = await this.metadata.getManifest(repository, r);
      if (rec && (await this.index(rec).catch(() => false))) added = true;
    }
    if (added) prov = await this.metadata.provenanceFor(repository, digest);
    return prov;
  }

  private async referrerView(
    repository: string,
    digest: Digest,
    artifactType: string | undefined,
    annotations: Record<string, string> | undefined,
  ): Promise<{ view: ReferrerView; sbom?: SbomSummary }> {
    const record = await this.metadata.getManifest(repository, digest);
    let predicateType = annotations?.['dev.sigstore.bundle.predicateType'];
    const signers: string[] = [];
    const loggedAt: string[] = [];
    let sbom: SbomSummary | undefined;
    for (const layer of record ? layersOf(record) : []) {
      if (layer.size > MAX_ATTESTATION) continue;
      const bytes = await readSmall(this.blobs, layer.digest, MAX_ATTESTATION).catch(() => undefined);
      if (!bytes) continue;
      const env = readEnvelope(bytes);
      if (env) {
        signers.push(...env.signers);
        loggedAt.push(...env.loggedAt);
        predicateType ??= env.statement?.predicateType;
        if (env.statement && SBOM_PREDICATES.includes(env.statement.predicateType)) sbom = summarise(digest, env.statement.predicate);
      } else if (artifactType && SBOM_TYPES.includes(artifactType)) {
        sbom = summarise(digest, safeJson(bytes));
      }
    }
    if (!sbom && artifactType && SBOM_TYPES.includes(artifactType) && record) {
      for (const layer of layersOf(record)) {
        const bytes = layer.size <= MAX_ATTESTATION ? await readSmall(this.blobs, layer.digest, MAX_ATTESTATION).catch(() => undefined) : undefined;
        if (bytes) sbom = summarise(digest, safeJson(bytes));
      }
    }
    return {
      view: { digest, artifactType, predicateType, created: annotations?.['org.opencontainers.image.created'], signers: [...new Set(signers)], loggedAt },
      sbom,
    };
  }

  /** Every artifact whose provenance names `material`, and theirs in turn (a dataset derived from a dataset). */
  async consumers(material: string): Promise<ConsumerView[]> {
    const out: ConsumerView[] = [];
    const seen = new Set<string>([material]);
    let frontier: { key: string; depth: number }[] = [{ key: material, depth: 1 }];
    while (frontier.length > 0) {
      const next: { key: string; depth: number }[] = [];
      for (const { key, depth } of frontier) {
        for (const c of await this.metadata.consumersOf(key)) {
          const id = `${c.repository}@${c.subject}`;
          if (seen.has(id)) continue;
          seen.add(id);
          out.push({ repository: c.repository, digest: c.subject, via: key, role: c.role, depth, tags: await this.metadata.tagsOf(c.repository, c.subject) });
          if (!seen.has(c.subject)) {
            seen.add(c.subject);
            next.push({ key: c.subject, depth: depth + 1 });
          }
        }
      }
      frontier = next;
    }
    return out;
  }
}

function layersOf(record: ManifestRecord): { digest: Digest; size: number; mediaType: string }[] {
  try {
    const m = parseManifest(record.bytes, record.mediaType);
    const config = m.config?.digest;
    return m.blobs.filter((b) => b.digest !== config).map((b) => ({ digest: b.digest, size: b.size, mediaType: b.mediaType }));
  } catch {
    return [];
  }
}

function safeJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

function summarise(referrer: Digest, doc: unknown): SbomSummary | undefined {
  if (!doc || typeof doc !== 'object') return undefined;
  const d = doc as { bomFormat?: string; specVersion?: string; components?: unknown[]; spdxVersion?: string; packages?: unknown[]; name?: string; metadata?: { component?: { name?: string } } };
  const same = { referrer, document: digestOf(JSON.stringify(doc)), referrers: [referrer] };
  if (d.bomFormat === 'CycloneDX') return { ...same, format: `CycloneDX ${d.specVersion ?? ''}`.trim(), components: d.components?.length ?? 0, name: d.metadata?.component?.name };
  if (d.spdxVersion) return { ...same, format: d.spdxVersion, components: d.packages?.length ?? 0, name: d.name };
  return undefined;
}
