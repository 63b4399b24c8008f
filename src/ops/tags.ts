import { err, type Digest } from '../oci/index.js';
import type { Actor, MetadataStore, PinRecord, TagMove } from '../storage/index.js';
import type { Judge } from './types.js';

export interface RollbackRequest {
  /** Move to this digest (it must be in the tag's history). */
  readonly to?: Digest;
  /** Go back this many eligible versions (default 1). */
  readonly steps?: number;
  /** Pin the tag where it lands (default true). */
  readonly pin?: boolean;
}

export interface RollbackCandidate {
  readonly digest: Digest;
  readonly eligible: boolean;
  /** Why a candidate was skipped. */
  readonly skipped?: string;
}

export interface RollbackResult {
  readonly repository: string;
  readonly tag: string;
  readonly from: Digest | undefined;
  readonly to: Digest;
  readonly pinned: boolean;
  readonly skipped: readonly RollbackCandidate[];
  readonly move: TagMove | undefined;
}

/**
 * Pins, tag history and rollback. Every change goes through one metadata
 * transaction that moves the tag, writes the history row and the audit entry;
 * `tagsMoved` lets the registry drop its cached tag resolutions.
 */
export class TagControl {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly judge: Judge,
    private readonly tagsMoved: (repository: string) => void,
  ) {}

  /** The proxy's question: may an upstream refresh move this tag? */
  async isPinned(repository: string, tag: string): Promise<boolean> {
    return (await this.metadata.getPin(repository, tag)) !== undefined;
  }

  /** Refuses a push that would move a pinned tag, with a message saying who pinned it and why. */
  async beforeTagPush(repository: string, tag: string, digest: Digest): Promise<void> {
    const pin = await this.metadata.getPin(repository, tag);
    if (!pin) return;
    if ((await this.metadata.resolveTag(repository, tag)) === digest) return;
    throw err('DENIED', `tag ${repository}:${tag} is pinned to ${pin.digest} by ${pin.actor}${pin.reason ? ` (${pin.reason})` : ''}; unpin it before pushing`, {
      pinned: { repository, tag, digest: pin.digest, actor: pin.actor, reason: pin.reason },
    });
  }

  /**
   * `customs tag`: points `tag` at `digest`, a manifest stored in the same repository, in one
   * transaction with its history row and its audit entry (action `tag`). A pinned tag is refused
   * (only unpin or rollback move it); so are the tags that are evidence by their name (cosign's
   * `sha256-<hex>.sig/.att/.sbom`, the referrers fallback `sha256-<hex>`): pushing those is their
   * clients' job, and a retag would change what the gate reads as a signature.
   */
  async tag(repository: string, tag: string, digest: Digest, by: Actor): Promise<TagMove | undefined> {
    if (/^sha256-[a-f0-9]{64}(\.(sig|att|sbom))?$/.test(tag)) {
      throw err('DENIED', `${tag} names evidence about ${tag.slice(0, 71).replace('-', ':')}: push it with the client that made it, not customs tag`);
    }
    const move = await this.metadata.moveTag(repository, tag, digest, by, { action: 'tag' });
    if (move) this.tagsMoved(repository);
    return move;
  }

  async pin(repository: string, tag: string, digest: Digest | undefined, by: Actor): Promise<{ pin: PinRecord; move: TagMove | undefined }> {
    const r = await this.metadata.pinTag(repository, tag, digest, by);
    if (r.move) this.tagsMoved(repository);
    return r;
  }

  async unpin(repository: string, tag: string, by: Actor): Promise<boolean> {
    const done = await this.metadata.unpinTag(repository, tag, by);
    if (!done) throw err('NAME_UNKNOWN', `tag ${repository}:${tag} is not pinned`);
    return done;
  }

  listPins(repository?: string): Promise<PinRecord[]> {
    return this.metadata.listPins(repository);
  }

  history(repository: string, tag: string): Promise<TagMove[]> {
    return this.metadata.tagHistory(repository, tag);
  }

  /** Earlier digests of the tag, newest first, distinct, without the current one. */
  private async earlier(repository: string, tag: string, current: Digest | undefined): Promise<Digest[]> {
    const seen = new Set<Digest>(current ? [current] : []);
    const out: Digest[] = [];
    for (const m of await this.metadata.tagHistory(repository, tag)) {
      for (const d of [m.to, m.from]) {
        if (!d || seen.has(d)) continue;
        seen.add(d);
        out.push(d);
      }
    }
    return out;
  }

  /**
   * A candidate must still be stored, not quarantined, and allowed by the gate (asked lazily: verification may be costly).
   * `assumeQuarantined`: digests a plan is about to quarantine, treated as quarantined already.
   */
  private async eligibility(repository: string, digest: Digest, assumeQuarantined?: ReadonlySet<Digest>): Promise<RollbackCandidate> {
    if (!(await this.metadata.getManifest(repository, digest))) return { digest, eligible: false, skipped: 'no longer stored' };
    if (assumeQuarantined?.has(digest) || (await this.metadata.quarantinedAmong([digest])).length > 0) return { digest, eligible: false, skipped: 'quarantined' };
    const v = await this.judge(repository, digest);
    if (!v.allowed) return { digest, eligible: false, skipped: `the gate denies it: ${v.findings.join('; ').slice(0, 300)}` };
    return { digest, eligible: true };
  }

  async rollback(repository: string, tag: string, req: RollbackRequest, by: Actor): Promise<RollbackResult> {
    const { from: current, to: target, skipped } = await this.planRollback(repository, tag, req);
    const pin = req.pin ?? true;
    const move = await this.metadata.moveTag(repository, tag, target, by, { override: true, pin, action: 'rollback' });
    this.tagsMoved(repository);
    return { repository, tag, from: current, to: target, pinned: pin || (await this.metadata.getPin(repository, tag)) !== undefined, skipped, move };
  }

  /**
   * Where `rollback` would move the tag, without moving it (the console shows this plan
   * before an operator confirms); throws as `rollback` does when there is no target.
   */
  async planRollback(repository: string, tag: string, req: RollbackRequest, assumeQuarantined?: ReadonlySet<Digest>): Promise<{ from: Digest | undefined; to: Digest; skipped: RollbackCandidate[] }> {
    if (req.to !== undefined && req.steps !== undefined) throw err('UNSUPPORTED', 'give --to or --steps, not both');
    const current = await this.metadata.resolveTag(repository, tag);
    const history = await this.metadata.tagHistory(repository, tag);
    if (history.length === 0) throw err('MANIFEST_UNKNOWN', `tag ${repository}:${tag} has no history`);
    const earlier = await this.earlier(repository, tag, current);
    const skipped: RollbackCandidate[] = [];
    let target: Digest | undefined;
    if (req.to !== undefined) {
      if (!earlier.includes(req.to)) throw err('MANIFEST_UNKNOWN', `${req.to} is not an earlier digest of ${repository}:${tag}`);
      const c = await this.eligibility(repository, req.to, assumeQuarantined);
      if (!c.eligible) throw err('DENIED', `cannot roll ${repository}:${tag} back to ${req.to}: ${c.skipped}`);
      target = c.digest;
    } else {
      let steps = req.steps ?? 1;
      if (!Number.isInteger(steps) || steps < 1) throw err('UNSUPPORTED', '--steps must be a positive integer');
      for (const d of earlier) {
        const c = await this.eligibility(repository, d, assumeQuarantined);
        if (!c.eligible) {
          skipped.push(c);
          continue;
        }
        if (--steps === 0) {
          target = c.digest;
          break;
        }
      }
      if (!target) throw err('MANIFEST_UNKNOWN', `no eligible earlier digest of ${repository}:${tag} ${req.steps ?? 1} step(s) back`, { skipped });
    }
    return { from: current, to: target, skipped };
  }
}
