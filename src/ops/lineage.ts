import { digestOf, err, parseManifest, type Digest, type Reference } from '../oci/index.js';
import type { BlobFetcher, ManifestRecord, MetadataStore, ProvenanceMaterial, ProvenanceRecord } from '../storage/index.js';
import { isProvenance, materialKind, mlflowRunOf, provenanceFacts, readEnvelope, statementNames, type MlflowRunFacts } from './envelope.js';
import { readSmall, type Judge, type OpsLog } from './types.js';

/** Attestation layers are small; anything larger is not read into memory. */
const MAX_ATTESTATION = 4 * 1024 * 1024;
const SBOM_TYPES = ['application/vnd.cyclonedx+json', 'application/spdx+json'];
const SBOM_PREDICATES = ['https://cyclonedx.org/bom', 'https://spdx.dev/Document'];

/** Whether a referrer verified as evidence about its subject (the gate's evidence check). */
export type EvidenceStatus = 'verified' | 'unsigned-allowed' | 'unverified';

/**
 * Does `referrer` verify as evidence about `subject` under the repository's trust policy? Lineage
 * acts only on `verified` (a signature checked): provenance and SBOMs anyone with a push token can
 * attach unsigned are listed apart and never drive a quarantine or a blast radius.
 */
export type EvidenceCheck = (repository: string, referrer: Digest, subject: Digest) => Promise<{ status: EvidenceStatus; detail: string }>;

/** Without an evidence check nothing is verified (fail closed). */
export const NOTHING_VERIFIED: EvidenceCheck = async () => ({ status: 'unverified', detail: 'no evidence verifier configured' });

export interface ReferrerView {
  readonly digest: Digest;
  readonly evidence: EvidenceStatus;
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
  /** For a material customs stores as a manifest (a dataset): its files, by path and digest. */
  readonly files: { path: string | undefined; digest: Digest; size: number }[];
  /** For a stored dataset pushed with `--dvc`: the DVC md5 and commit its own verified provenance records. */
  readonly dvc?: { readonly path: string | undefined; readonly md5: string; readonly commit: string | undefined } | undefined;
}

/** One version a tag has pointed at, with what verified provenance says it was built from. */
export interface TagVersion {
  readonly digest: Digest;
  readonly since: number;
  readonly actor: string;
  readonly reason: string | undefined;
  readonly current: boolean;
  readonly mlflowRuns: string[];
  readonly commits: string[];
  readonly datasets: MaterialView[];
}

export interface ProvenanceView {
  readonly referrer: Digest;
  readonly predicateType: string;
  readonly builderId: string | undefined;
  readonly startedOn: string | undefined;
  readonly finishedOn: string | undefined;
  readonly signers: readonly string[];
  readonly evidence: EvidenceStatus;
  /** Why it is (not) verified. */
  readonly verification: string;
  /** The MLflow run the provenance names, when it came from one. */
  readonly mlflowRun?: MlflowRunFacts | undefined;
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
  /** Provenance whose signature verified: the materials below come from these only. */
  readonly provenance: ProvenanceView[];
  readonly code: MaterialView[];
  readonly datasets: MaterialView[];
  readonly baseModels: MaterialView[];
  readonly otherMaterials: MaterialView[];
  /** Provenance attached without a signature that verifies: shown, never acted on. */
  readonly unverifiedProvenance: (ProvenanceView & { materials: MaterialView[] })[];
  readonly referrers: ReferrerView[];
  /** SBOMs whose signature verified (signed referrers or attestations). */
  readonly sbom: SbomSummary[];
  /** SBOMs attached unsigned (served when the policy allows it; not evidence lineage relies on). */
  readonly unverifiedSbom: SbomSummary[];
  /** For a tag: every digest it pointed at, newest first, each with its runs, commits and datasets. */
  readonly tagHistory?: TagVersion[];
}

export interface ConsumerView {
  readonly repository: string;
  readonly digest: Digest;
  readonly via: string;
  readonly role: string | undefined;
  readonly depth: number;
  readonly tags: string[];
  /** The provenance referrer that names the material. */
  readonly referrer: Digest;
  readonly evidence: EvidenceStatus;
}

export interface ConsumersReport {
  /** Consumers by verified provenance: what a quarantine by material acts on. */
  readonly consumers: ConsumerView[];
  /** Named only by provenance that does not verify: listed apart, never acted on or followed further. */
  readonly unverified: ConsumerView[];
  /** When the material is a file: the stored manifests (datasets) that hold it, searched as materials too. */
  readonly containedIn: { repository: string; digest: Digest }[];
}

/** Indexes provenance as it is stored and answers lineage questions from the index. */
export class LineageService {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly blobs: BlobFetcher,
    private readonly judge: Judge,
    private readonly log: OpsLog,
    private readonly evidence: EvidenceCheck = NOTHING_VERIFIED,
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
    const provenance: ProvenanceView[] = [];
    const unverifiedProvenance: Lineage['unverifiedProvenance'][number][] = [];
    for (const p of prov) {
      const ev = await this.evidence(repository, p.referrer, digest).catch((e: Error) => ({ status: 'unverified' as const, detail: e.message }));
      const mlflowRun = await this.mlflowRun(repository, p.referrer);
      const view: ProvenanceView = { referrer: p.referrer, predicateType: p.predicateType, builderId: p.builderId, startedOn: p.startedOn, finishedOn: p.finishedOn, signers: p.signers, evidence: ev.status, verification: ev.detail, ...(mlflowRun ? { mlflowRun } : {}) };
      const mats: MaterialView[] = [];
      for (const m of p.materials) mats.push(await this.materialView(m));
      if (ev.status === 'verified') {
        provenance.push(view);
        materials.push(...mats);
      } else unverifiedProvenance.push({ ...view, materials: mats });
    }
    const referrers: ReferrerView[] = [];
    const sbom: SbomSummary[] = [];
    const unverifiedSbom: SbomSummary[] = [];
    for (const d of referrerList) {
      const view = await this.referrerView(repository, digest, d.digest, d.artifactType, d.annotations);
      referrers.push(view.view);
      if (view.sbom) {
        // The same document attached twice (raw and in a signed attestation) is listed once, with every referrer.
        const list = view.view.evidence === 'verified' ? sbom : unverifiedSbom;
        const same = list.find((x) => x.document === view.sbom!.document);
        if (same) same.referrers.push(d.digest);
        else list.push(view.sbom);
      }
    }
    // A document also attached with a verified signature is verified: its unsigned copies join that entry.
    for (const u of [...unverifiedSbom]) {
      const v = sbom.find((x) => x.document === u.document);
      if (!v) continue;
      v.referrers.push(...u.referrers);
      unverifiedSbom.splice(unverifiedSbom.indexOf(u), 1);
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
      provenance,
      code: materials.filter((m) => m.kind === 'code'),
      datasets: materials.filter((m) => m.kind === 'dataset'),
      baseModels: materials.filter((m) => m.kind === 'base-model'),
      otherMaterials: materials.filter((m) => m.kind === 'other'),
      unverifiedProvenance,
      referrers,
      sbom,
      unverifiedSbom,
      ...(reference.kind === 'tag' ? { tagHistory: await this.tagHistory(repository, reference.tag) } : {}),
    };
  }

  /** Every version of a tag, newest first: its MLflow runs, code commits and datasets, from verified provenance only. */
  private async tagHistory(repository: string, tag: string): Promise<TagVersion[]> {
    const moves = (await this.metadata.tagHistory(repository, tag)).filter((m) => m.to !== undefined).sort((a, b) => b.at - a.at);
    const out: TagVersion[] = [];
    for (const [i, m] of moves.entries()) {
      if (out.some((v) => v.digest === m.to)) continue;
      const { verified } = await this.provenanceOf(repository, m.to!);
      const runs = new Set<string>();
      const commits = new Set<string>();
      const datasets: MaterialView[] = [];
      for (const p of verified) {
        const run = await this.mlflowRun(repository, p.referrer);
        if (run) runs.add(run.runId);
        for (const mat of p.materials) {
          if (mat.digest.gitCommit) commits.add(mat.digest.gitCommit);
          if (materialKind(mat) === 'dataset') datasets.push(await this.materialView(mat));
        }
      }
      out.push({ digest: m.to!, since: m.at, actor: m.actor, reason: m.reason, current: i === 0, mlflowRuns: [...runs], commits: [...commits], datasets });
    }
    return out;
  }

  /** The MLflow run named by the provenance in `referrer`'s layer (read again: the index keeps materials only). */
  private async mlflowRun(repository: string, referrer: Digest): Promise<MlflowRunFacts | undefined> {
    const record = await this.metadata.getManifest(repository, referrer);
    for (const layer of record ? layersOf(record) : []) {
      if (layer.size > MAX_ATTESTATION) continue;
      const bytes = await readSmall(this.blobs, layer.digest, MAX_ATTESTATION).catch(() => undefined);
      const st = bytes && readEnvelope(bytes)?.statement;
      if (st && isProvenance(st.predicateType)) return mlflowRunOf(st.predicate);
    }
    return undefined;
  }

  /** Stored provenance of `digest`, split by whether its signature verifies (deep verify acts on `verified` only). */
  async provenanceOf(repository: string, digest: Digest): Promise<{ verified: ProvenanceRecord[]; unverified: (ProvenanceRecord & { detail: string })[] }> {
    const verified: ProvenanceRecord[] = [];
    const unverified: (ProvenanceRecord & { detail: string })[] = [];
    for (const p of await this.metadata.provenanceFor(repository, digest)) {
      const ev = await this.evidence(repository, p.referrer, digest).catch((e: Error) => ({ status: 'unverified' as const, detail: e.message }));
      if (ev.status === 'verified') verified.push(p);
      else unverified.push({ ...p, detail: ev.detail });
    }
    return { verified, unverified };
  }

  /** A material as lineage shows it: where customs stores it and, for a stored dataset, its files. */
  private async materialView(m: ProvenanceMaterial): Promise<MaterialView> {
    const sha = m.digest.sha256 ? (`sha256:${m.digest.sha256.toLowerCase()}` as Digest) : undefined;
    const storedIn = sha ? await this.metadata.repositoriesOf(sha) : [];
    const files: MaterialView['files'] = [];
    const record = sha && storedIn[0] ? await this.metadata.getManifest(storedIn[0], sha) : undefined;
    if (record) for (const l of layersOf(record)) files.push({ path: l.path, digest: l.digest, size: l.size });
    const dvc = record ? await this.dvcRecord(storedIn[0]!, sha!) : undefined;
    return { ...m, kind: materialKind(m), storedIn, files, ...(dvc ? { dvc } : {}) };
  }

  /** What a stored dataset's own verified provenance says DVC recorded (`push dataset --dvc`). */
  private async dvcRecord(repository: string, digest: Digest): Promise<MaterialView['dvc']> {
    const { verified } = await this.provenanceOf(repository, digest);
    for (const p of verified) {
      const data = p.materials.find((x) => x.role === 'dvc-tracked-data' && x.digest.md5);
      if (!data) continue;
      const source = p.materials.find((x) => x.digest.gitCommit);
      return { path: data.name, md5: data.digest.md5!, commit: source?.digest.gitCommit };
    }
    return undefined;
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
    subject: Digest,
    digest: Digest,
    artifactType: string | undefined,
    annotations: Record<string, string> | undefined,
  ): Promise<{ view: ReferrerView; sbom?: SbomSummary }> {
    const evidence = (await this.evidence(repository, digest, subject).catch(() => ({ status: 'unverified' as const }))).status;
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
      view: { digest, evidence, artifactType, predicateType, created: annotations?.['org.opencontainers.image.created'], signers: [...new Set(signers)], loggedAt },
      sbom,
    };
  }

  /**
   * Every artifact whose verified provenance names `material`, and theirs in turn (a dataset derived
   * from a dataset, a model fine-tuned from a model). A file's digest (the CSV a dataset holds) also
   * finds the stored manifests holding it, and their consumers. Provenance that does not verify is
   * reported apart and not followed: an attacker must not be able to pull a good model into (or hide
   * a real consumer from) a blast radius by attaching provenance.
   */
  async consumers(given: string): Promise<ConsumersReport> {
    // DVC writes a directory's md5 as `<hex>.dir`; the index keys it by the hex alone.
    const material = /^md5:[a-fA-F0-9]{32}\.dir$/.test(given) ? given.slice(0, -4) : given;
    const consumers: ConsumerView[] = [];
    const unverified: ConsumerView[] = [];
    const isOci = /^sha(256|512):[a-f0-9]+$/.test(material);
    const containedIn = isOci ? await this.metadata.manifestsContaining(material as Digest) : [];
    const seen = new Set<string>([material]);
    let frontier: { key: string; depth: number }[] = [{ key: material, depth: 1 }];
    for (const c of containedIn) {
      if (seen.has(c.digest)) continue;
      seen.add(c.digest);
      frontier.push({ key: c.digest, depth: 1 });
    }
    const checked = new Set<string>();
    while (frontier.length > 0) {
      const next: { key: string; depth: number }[] = [];
      for (const { key, depth } of frontier) {
        for (const c of await this.metadata.consumersOf(key)) {
          const edge = `${c.repository}@${c.subject}<${c.referrer}`;
          if (checked.has(edge)) continue;
          checked.add(edge);
          const ev = await this.evidence(c.repository, c.referrer, c.subject).catch(() => ({ status: 'unverified' as const, detail: '' }));
          const view: ConsumerView = { repository: c.repository, digest: c.subject, via: key, role: c.role, depth, tags: await this.metadata.tagsOf(c.repository, c.subject), referrer: c.referrer, evidence: ev.status };
          if (ev.status !== 'verified') {
            unverified.push(view);
            continue;
          }
          const id = `${c.repository}@${c.subject}`;
          if (seen.has(id)) continue;
          seen.add(id);
          consumers.push(view);
          if (!seen.has(c.subject)) {
            seen.add(c.subject);
            next.push({ key: c.subject, depth: depth + 1 });
          }
        }
      }
      frontier = next;
    }
    // A consumer also reached through verified provenance is not "unverified".
    const verifiedIds = new Set(consumers.map((c) => `${c.repository}@${c.digest}`));
    return { consumers, unverified: unverified.filter((u) => !verifiedIds.has(`${u.repository}@${u.digest}`)), containedIn };
  }
}

function layersOf(record: ManifestRecord): { digest: Digest; size: number; mediaType: string; path: string | undefined }[] {
  try {
    const m = parseManifest(record.bytes, record.mediaType);
    const config = m.config?.digest;
    return m.blobs
      .filter((b) => b.digest !== config)
      .map((b) => ({ digest: b.digest, size: b.size, mediaType: b.mediaType, path: b.annotations?.['org.cncf.model.filepath'] ?? b.annotations?.['org.opencontainers.image.title'] }));
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
