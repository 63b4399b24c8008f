import { Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import type { SigningKey } from '../artifacts/sign.js';
import { imageManifestSchema, isRegistryError, MediaType, type Descriptor, type Digest } from '../oci/index.js';
import type { Actor, BlobInfo, BlobPusher, MetadataStore } from '../storage/index.js';
import type { Verdict } from '../verify/types.js';
import { bundleReferrer, legacyAttManifest, signSummary, summaryStatement, VSA_ANNOTATION, type LegacyLayer, type SummaryInput } from './vsa.js';

/** What the publisher writes through: the registry's own services, so pins, audit and caches behave as for any push. */
export interface SummaryWriter {
  readonly blobs: BlobPusher;
  link(repository: string, info: BlobInfo): Promise<void>;
  putManifest(repository: string, reference: { kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest }, bytes: Buffer, contentType: string, by: Actor): Promise<unknown>;
  /** Pull-through repositories take referrers by digest only (their tags are the upstream's). */
  isProxied(repository: string): boolean;
}

export interface SummaryPublisherOptions {
  readonly metadata: Pick<MetadataStore, 'getManifest' | 'listReferrers' | 'quarantinedAmong' | 'resolveTag'>;
  readonly writer: SummaryWriter;
  readonly key: SigningKey;
  readonly verifierId: string;
  readonly legacyAttTag: boolean;
  /** `oci://HOST/` prefix of resource URIs (customs' own host name as nodes use it). */
  readonly resourceHost: () => string;
  readonly log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  readonly now?: () => Date;
}

const BY: Actor = { actor: 'system:vsa', reason: 'verification summary' };

/**
 * Publishes a signed verification summary the first time the gate allows a digest in a repository
 * under a policy and trust (an allow in enforce mode, by a rule that matched: audit and off modes
 * verify nothing). A summary already attached for the same policy and trust hashes is not written
 * again; a quarantined digest gets none. Publishing runs beside the request that caused it and never
 * fails it.
 */
export class SummaryPublisher {
  private readonly done = new LRUCache<string, true>({ max: 50_000 });
  private readonly running = new Map<string, Promise<Digest | undefined>>();
  private readonly now: () => Date;

  constructor(private readonly o: SummaryPublisherOptions) {
    this.now = o.now ?? (() => new Date());
  }

  /** Called with every verdict the gate hands out; cheap when there is nothing to do. */
  offer(v: Verdict): void {
    if (!qualifies(v)) return;
    const key = `${v.repository}@${v.digest}|${v.policyHash}|${v.trustHash}`;
    if (this.done.has(key) || this.running.has(key)) return;
    const p = this.publish(v)
      .then((d) => {
        this.done.set(key, true);
        return d;
      })
      .catch((e: unknown) => {
        this.o.log.warn({ err: (e as Error).message, repository: v.repository, digest: v.digest }, 'could not publish a verification summary');
        return undefined;
      })
      .finally(() => this.running.delete(key));
    this.running.set(key, p);
  }

  /** Waits for publications in progress (tests, shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.running.values()]);
  }

  /** Publishes now (unless one exists for this policy and trust, or the digest is quarantined); the referrer's digest. */
  async publish(v: Verdict): Promise<Digest | undefined> {
    const digest = v.digest as Digest;
    if ((await this.o.metadata.quarantinedAmong([digest])).length > 0) return undefined;
    const subject = await this.o.metadata.getManifest(v.repository, digest);
    if (!subject) return undefined;
    const referrers = await this.o.metadata.listReferrers(v.repository, digest);
    const existing = referrers.find((r) => r.annotations?.[VSA_ANNOTATION.policyHash] === v.policyHash && r.annotations?.[VSA_ANNOTATION.trustHash] === v.trustHash);
    if (existing) return existing.digest;
    const ours = new Set(referrers.filter((r) => r.annotations?.[VSA_ANNOTATION.policyHash] !== undefined).map((r) => r.digest as string));
    const host = this.o.resourceHost();
    const input: SummaryInput = {
      repository: v.repository,
      digest,
      resourceUri: `oci://${host}/${v.repository}@${digest}`,
      verifierId: this.o.verifierId,
      rule: v.rule,
      policyHash: v.policyHash,
      trustHash: v.trustHash,
      inputs: v.referrers.filter((r) => !ours.has(r)).map((r) => ({ uri: `oci://${host}/${v.repository}@${r}`, digest: r as Digest })),
      levels: levelsOf(v),
      issuedAt: this.now(),
    };
    const signed = signSummary(summaryStatement(input), this.o.key);
    const subjectDesc: Descriptor = { mediaType: subject.mediaType, digest, size: subject.size };
    const referrer = bundleReferrer(subjectDesc, signed, input);
    await this.putBlob(v.repository, signed.bundleBytes);
    await this.putBlob(v.repository, Buffer.from('{}'));
    await this.o.writer.putManifest(v.repository, { kind: 'digest', digest: referrer.digest }, referrer.bytes, MediaType.ociManifest, BY);
    if (this.o.legacyAttTag && !this.o.writer.isProxied(v.repository)) await this.writeLegacy(v.repository, digest, signed, input);
    this.o.log.info({ repository: v.repository, digest, referrer: referrer.digest }, 'published a verification summary');
    return referrer.digest;
  }

  private async writeLegacy(repository: string, digest: Digest, signed: ReturnType<typeof signSummary>, input: SummaryInput): Promise<void> {
    const tag = `${digest.replace(':', '-')}.att`;
    const current = await this.o.metadata.resolveTag(repository, tag);
    let previous: LegacyLayer[] = [];
    if (current) {
      const m = await this.o.metadata.getManifest(repository, current);
      const parsed = m ? imageManifestSchema.safeParse(JSON.parse(m.bytes.toString('utf8'))) : undefined;
      if (parsed?.success) previous = parsed.data.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size, ...(l.annotations ? { annotations: { ...l.annotations } } : {}) }));
    }
    const { manifest, config } = legacyAttManifest(previous, signed, input);
    await this.putBlob(repository, signed.envelopeBytes);
    await this.putBlob(repository, config);
    try {
      await this.o.writer.putManifest(repository, { kind: 'tag', tag }, manifest, MediaType.ociManifest, BY);
    } catch (e) {
      // A pinned .att tag stays as the operator pinned it; the referrer form is published all the same.
      if (isRegistryError(e) && e.code === 'DENIED') this.o.log.warn({ repository, tag, err: e.message }, 'legacy attestation tag not written');
      else throw e;
    }
  }

  private async putBlob(repository: string, bytes: Buffer): Promise<void> {
    const info = await this.o.writer.blobs.put(Readable.from([bytes]), { expectedSize: bytes.length });
    await this.o.writer.link(repository, info);
  }
}

/** An allow in enforce mode by a rule that matched: the only verdict that verified something. */
function qualifies(v: Verdict): boolean {
  return v.allowed && v.mode === 'enforce' && !v.wouldDeny && v.rule !== '(default)' && !(v as { evidence?: unknown }).evidence;
}

/**
 * `verifiedLevels`: SLSA Build L1 when a SLSA provenance attestation passed the rule (its signer is
 * the policy's business; customs cannot tell a hosted builder's key from another), else L0; plus what
 * else the rule checked, as customs' own values (the spec reserves only the `SLSA_` prefix).
 */
function levelsOf(v: Verdict): string[] {
  const ok = v.findings.filter((f) => f.ok);
  const provenance = ok.some((f) => f.check === 'attestations' && f.reason.startsWith('https://slsa.dev/provenance/'));
  const levels = [provenance ? 'SLSA_BUILD_LEVEL_1' : 'SLSA_BUILD_LEVEL_0'];
  if (ok.some((f) => f.check === 'signatures')) levels.push('CUSTOMS_SIGNATURES_VERIFIED');
  if (ok.some((f) => f.check === 'attestations')) levels.push('CUSTOMS_ATTESTATIONS_VERIFIED');
  if (ok.some((f) => f.check === 'sbom')) levels.push('CUSTOMS_SBOM_CHECKED');
  if (ok.some((f) => f.check === 'model')) levels.push('CUSTOMS_MODEL_SCANNED');
  return levels;
}

/**
 * The verdict source with summaries: every verdict `check` hands out is offered to the publisher
 * (looked up when called, so the publisher can be built after the services it writes through).
 * Everything else passes through untouched.
 */
export function publishingSummaries<T extends { check(repository: string, digest: string): Promise<Verdict> }>(verdicts: T, publisher: () => SummaryPublisher | undefined): T {
  const check = async (repository: string, digest: string): Promise<Verdict> => {
    const v = await verdicts.check(repository, digest);
    publisher()?.offer(v);
    return v;
  };
  const bound = new Map<PropertyKey, unknown>(); // one bind per method: verdicts are asked on every pull
  return new Proxy(verdicts, {
    get(target, prop, receiver) {
      if (prop === 'check') return check;
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      let b = bound.get(prop);
      if (!b) bound.set(prop, (b = (v as (...a: unknown[]) => unknown).bind(target)));
      return b;
    },
  });
}
