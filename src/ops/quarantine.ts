import { err, isRegistryError, parseDigest, type Digest } from '../oci/index.js';
import type { Actor, MetadataStore, QuarantineRecord } from '../storage/index.js';
import type { ConsumerView, LineageService } from './lineage.js';
import type { TagControl } from './tags.js';
import type { ReadGateLike } from './types.js';

/** One line of the table `quarantine --material` prints. */
export interface QuarantineAction {
  readonly action: 'quarantine' | 'already-quarantined' | 'rollback' | 'no-rollback-target';
  readonly repository: string | undefined;
  readonly tag: string | undefined;
  readonly digest: Digest;
  readonly to: Digest | undefined;
  readonly note: string;
}

export interface MaterialQuarantineResult {
  readonly material: string;
  readonly affected: number;
  readonly actions: QuarantineAction[];
  /** Artifacts only unverified provenance names: reported, not quarantined (see LineageService.consumers). */
  readonly unverified: ConsumerView[];
}

/**
 * Quarantine by digest or by material. The quarantine row is what denies (the
 * serving rule reads it on every request); invalidating the gate's verdict cache
 * only keeps a later release from serving a stale verdict.
 */
export class QuarantineService {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly gate: ReadGateLike,
    private readonly lineage: LineageService,
    private readonly tags: TagControl,
  ) {}

  async quarantine(digest: Digest, by: Actor): Promise<boolean> {
    parseDigest(digest);
    const added = await this.metadata.quarantine(digest, by);
    this.gate.invalidate(digest);
    return added;
  }

  async release(digest: Digest, by: Actor): Promise<boolean> {
    parseDigest(digest);
    const released = await this.metadata.release(digest, by);
    if (!released) throw err('NAME_UNKNOWN', `${digest} is not quarantined`);
    this.gate.invalidate(digest);
    return released;
  }

  list(): Promise<QuarantineRecord[]> {
    return this.metadata.listQuarantine();
  }

  /**
   * Quarantines every artifact whose verified provenance names `material` (transitively),
   * and the material itself when customs stores it, as a manifest or as a file of one
   * (poisoned data is not served either; every dataset holding the file is then denied).
   * Artifacts only unverified provenance names are reported, never acted on. With `rollback`, every tag pointing at a quarantined digest
   * moves back to its newest earlier digest that is not quarantined and that the
   * gate allows; a tag with no such digest stays (and is denied) and is reported.
   */
  async quarantineMaterial(material: string, opts: { rollback: boolean; pin: boolean }, by: Actor): Promise<MaterialQuarantineResult> {
    const { consumers, unverified, digests } = await this.affected(material);
    const actions: QuarantineAction[] = [];
    for (const d of digests) {
      const added = await this.quarantine(d, { actor: by.actor, reason: `${by.reason ?? 'quarantine'} [material ${material}]` });
      const c = consumers.find((x) => x.digest === d);
      actions.push({
        action: added ? 'quarantine' : 'already-quarantined',
        repository: c?.repository,
        tag: undefined,
        digest: d,
        to: undefined,
        note: c ? `provenance names ${c.via}${c.depth > 1 ? ` (depth ${c.depth})` : ''}${c.role ? ` as ${c.role}` : ''}` : 'the material itself',
      });
    }
    if (opts.rollback) {
      for (const d of digests) {
        for (const repository of await this.metadata.repositoriesOf(d)) {
          for (const tag of await this.metadata.tagsOf(repository, d)) {
            try {
              const r = await this.tags.rollback(repository, tag, { pin: opts.pin }, { actor: by.actor, reason: `${by.reason ?? 'rollback'} [material ${material}]` });
              actions.push({ action: 'rollback', repository, tag, digest: d, to: r.to, note: r.skipped.length ? `skipped ${r.skipped.length} ineligible` : '' });
            } catch (e) {
              if (!isRegistryError(e) || (e.code !== 'MANIFEST_UNKNOWN' && e.code !== 'DENIED')) throw e;
              actions.push({ action: 'no-rollback-target', repository, tag, digest: d, to: undefined, note: e.message });
            }
          }
        }
      }
    }
    await this.metadata.appendAudit({
      actor: by.actor,
      action: 'quarantine.material',
      target: material,
      reason: by.reason,
      detail: { rollback: opts.rollback, quarantined: [...digests], actions: actions.length, unverified: unverified.map((u) => `${u.repository}@${u.digest}`) },
    });
    return { material, affected: digests.size, actions, unverified };
  }

  /**
   * What `quarantineMaterial` quarantines: every consumer by verified provenance (transitively), and the
   * material itself when customs stores it (as a manifest, or as a file of one). Consumers only unverified
   * provenance names are returned apart, never quarantined.
   */
  private async affected(material: string): Promise<{ consumers: ConsumerView[]; unverified: ConsumerView[]; digests: Set<Digest> }> {
    const { consumers, unverified, containedIn } = await this.lineage.consumers(material);
    const digests = new Set<Digest>(consumers.map((c) => c.digest));
    const isOci = /^sha(256|512):/.test(material);
    if (isOci && (containedIn.length > 0 || (await this.metadata.repositoriesOf(material as Digest)).length > 0)) digests.add(material as Digest);
    return { consumers, unverified, digests };
  }

  /**
   * What `quarantineMaterial` with `rollback` would do, changing nothing: the digests it
   * would quarantine and, for every tag serving one, where the tag would move (computed as
   * if those digests were quarantined already, as they are when the rollbacks run).
   */
  async planMaterial(material: string): Promise<MaterialPlan> {
    const { consumers, unverified, digests } = await this.affected(material);
    const already = new Set(await this.metadata.quarantinedAmong([...digests]));
    const quarantine = [...digests].map((d) => {
      const c = consumers.find((x) => x.digest === d);
      return { digest: d, repository: c?.repository, already: already.has(d), note: c ? `provenance names ${c.via}${c.depth > 1 ? ` (depth ${c.depth})` : ''}${c.role ? ` as ${c.role}` : ''}` : 'the material itself' };
    });
    const rollbacks: MaterialPlan['rollbacks'][number][] = [];
    for (const d of digests) {
      for (const repository of await this.metadata.repositoriesOf(d)) {
        for (const tag of await this.metadata.tagsOf(repository, d)) {
          try {
            const r = await this.tags.planRollback(repository, tag, {}, digests);
            rollbacks.push({ repository, tag, from: d, to: r.to, note: r.skipped.length ? `skips ${r.skipped.length} ineligible` : '' });
          } catch (e) {
            if (!isRegistryError(e) || (e.code !== 'MANIFEST_UNKNOWN' && e.code !== 'DENIED')) throw e;
            rollbacks.push({ repository, tag, from: d, to: undefined, note: e.message });
          }
        }
      }
    }
    return { material, quarantine, rollbacks, unverified };
  }
}

/** The plan of a material quarantine with rollback, shown before an operator confirms it. */
export interface MaterialPlan {
  readonly material: string;
  readonly quarantine: readonly { readonly digest: Digest; readonly repository: string | undefined; readonly already: boolean; readonly note: string }[];
  /** Each tag serving an affected digest, and where it would move (`to` undefined: nowhere; it stays, denied). */
  readonly rollbacks: readonly { readonly repository: string; readonly tag: string; readonly from: Digest; readonly to: Digest | undefined; readonly note: string }[];
  /** Named only by provenance that does not verify: shown, not acted on. */
  readonly unverified: readonly ConsumerView[];
}
