import { isRegistryError, type Digest, type Reference } from '../oci/index.js';
import type { ReadGate } from '../registry/read-gate.js';
import type { AuditInput } from '../storage/index.js';
import type { AdmissionConfig } from './config.js';
import { parseImageRef, repositoryFor, type SelfHosts, type UpstreamName } from './references.js';
import { allow, deny, type AdmissionRequest, type AdmissionResponse, type JsonPatchOp } from './review.js';
import { extractImages, type ImageLocation } from './workloads.js';

/**
 * The admission webhook's decisions (issue 18): every image a workload names is resolved the way the
 * node will pull it, then asked of the same gate that serves pulls (quarantine included), so a
 * quarantine or a rollback answers the very next request. `validate` allows or denies with every
 * failed rule; `mutate` also rewrites each tag to the digest that was judged.
 */
export interface ManifestResolver {
  /** Tag or digest -> the stored (or pulled-through) manifest's digest; undefined when unknown. */
  resolve(repository: string, reference: Reference): Promise<{ record: { digest: Digest } } | undefined>;
}

/**
 * A Hugging Face repository as customs' Hub API serves it (`hf://` storage URIs): the revision's
 * manifest read through the gate (DENIED thrown with the gate's reasons), and the commit id the Hub
 * API gives that revision (what a pinned `hf://<org>/<model>:<commit>` names).
 */
export interface HubRevisions {
  open(repoId: string, revision: string): Promise<{ readonly repository: string; readonly digest: Digest; readonly commit: string }>;
}

export interface AdmissionDeps {
  readonly config: AdmissionConfig;
  readonly manifests: ManifestResolver;
  readonly gate: Pick<ReadGate, 'manifest'>;
  readonly selfHosts: () => SelfHosts;
  readonly upstreams: readonly UpstreamName[];
  readonly audit: (e: AuditInput) => Promise<unknown>;
  readonly log: { warn(obj: object, msg: string): void };
  /** Customs' Hub API (its repositories and revisions), for `hf://` storage URIs. */
  readonly hub?: () => HubRevisions | undefined;
}

type Judgement =
  | { readonly loc: ImageLocation; readonly outcome: 'allowed'; readonly digest: Digest; readonly pinned: boolean; readonly pinTo: string }
  | { readonly loc: ImageLocation; readonly outcome: 'denied'; readonly reasons: string[] }
  | { readonly loc: ImageLocation; readonly outcome: 'undecided'; readonly reason: string }
  | { readonly loc: ImageLocation; readonly outcome: 'bypass'; readonly reason: string };

export class AdmissionWebhook {
  constructor(private readonly d: AdmissionDeps) {}

  async review(req: AdmissionRequest, mutate: boolean): Promise<AdmissionResponse> {
    const { uid } = req;
    if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') return allow(uid);
    if (req.namespace && this.d.config.skipNamespaces.includes(req.namespace)) return allow(uid, { annotations: { 'customs/skipped': `namespace ${req.namespace}` } });
    // Status and scale updates change no image; the ephemeralcontainers subresource (kubectl debug) adds some.
    if (req.subResource && req.subResource !== 'ephemeralcontainers') return allow(uid);
    const extracted = extractImages({ group: req.kind.group, kind: req.kind.kind }, req.object);
    if (!extracted.understood) return allow(uid);

    const judged = await this.judgeAll(extracted.locations);
    const object = `${req.kind.kind} ${req.namespace ? `${req.namespace}/` : ''}${req.name || objectName(req.object)}`;
    const warnings = [...extracted.unsupported];
    const failures: string[] = [];
    for (const j of judged) {
      if (j.outcome === 'denied') failures.push(`${j.loc.where} (${j.loc.value}): ${j.reasons.join('; ')}`);
      else if (j.outcome === 'bypass') {
        if (this.d.config.unmappedRegistries === 'deny') failures.push(`${j.loc.where} (${j.loc.value}): ${j.reason}`);
        else warnings.push(`${j.loc.where}: ${j.reason}`);
      }
    }
    const undecided = judged.filter((j): j is Extract<Judgement, { outcome: 'undecided' }> => j.outcome === 'undecided');
    if (undecided.length > 0 && this.d.config.failurePolicy === 'Fail') {
      for (const u of undecided) failures.push(`${u.loc.where} (${u.loc.value}): customs cannot decide (failurePolicy Fail): ${u.reason}`);
    } else {
      for (const u of undecided) warnings.push(`${u.loc.where}: customs cannot decide; allowed by failurePolicy Ignore: ${u.reason}`);
    }

    if (failures.length > 0) {
      const message = `customs denied ${object}: ${failures.join(' | ')}`;
      // A dry run has no side effects (the webhook configurations declare sideEffects: NoneOnDryRun).
      if (!req.dryRun) {
        const entry = {
          actor: `k8s:${req.userInfo?.username ?? 'unknown'}`.slice(0, 200),
          action: 'admission.deny',
          target: object.slice(0, 300),
          reason: message.slice(0, 4000),
          detail: { uid, operation: req.operation, endpoint: mutate ? 'mutate' : 'validate', images: failures.length },
        };
        await this.d.audit(entry).catch((e: Error) => this.d.log.warn({ err: e.message }, 'could not record the admission denial'));
      }
      return deny(uid, message);
    }
    const patch: JsonPatchOp[] = [];
    if (mutate) {
      for (const j of judged) if (j.outcome === 'allowed' && !j.pinned) patch.push({ op: 'replace', path: j.loc.pointer, value: j.pinTo });
    }
    return allow(uid, { patch, warnings });
  }

  private async judgeAll(locations: readonly ImageLocation[]): Promise<Judgement[]> {
    const ms = this.d.config.timeoutSeconds * 1000;
    return Promise.all(
      locations.map(async (loc) => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<Judgement>((res) => {
          timer = setTimeout(() => res({ loc, outcome: 'undecided', reason: `no answer within ${this.d.config.timeoutSeconds} s` }), ms);
        });
        try {
          return await Promise.race([this.judge(loc), late]);
        } finally {
          clearTimeout(timer);
        }
      }),
    );
  }

  private async judge(loc: ImageLocation): Promise<Judgement> {
    if (loc.kind === 'hf') return this.judgeHub(loc);
    const ref = parseImageRef(loc.kind === 'oci' ? loc.value.slice('oci://'.length) : loc.value);
    if (typeof ref === 'string') return { loc, outcome: 'denied', reasons: [`not a valid image reference: ${ref}`] };
    const repository = repositoryFor(ref, this.d.selfHosts(), this.d.upstreams);
    if (!repository) return { loc, outcome: 'bypass', reason: `registry ${ref.registry} is neither customs nor one of its upstreams: the node would pull it unverified` };
    // A digest wins over a tag, as on the node.
    const reference: Reference = ref.digest ? { kind: 'digest', digest: ref.digest } : { kind: 'tag', tag: ref.tag! };
    try {
      const found = await this.d.manifests.resolve(repository, reference);
      if (!found) return { loc, outcome: 'denied', reasons: [`${repository}:${ref.digest ?? ref.tag} is not in customs (nor at its upstream)`] };
      await this.d.gate.manifest(repository, found.record.digest);
      return { loc, outcome: 'allowed', digest: found.record.digest, pinned: ref.digest !== undefined, pinTo: `${loc.value}@${found.record.digest}` };
    } catch (e) {
      return this.failed(loc, e, repository);
    }
  }

  /**
   * `hf://<org>/<model>[:<revision>]`, as KServe's storage initializer reads it: the model is what customs'
   * Hub API serves for that revision (`main` when none is given), judged by the same gate. Mutation pins the
   * revision to the commit id the Hub API gives it, so a later tag move cannot change what the pod downloads.
   * (The pod must download through customs: its HF_ENDPOINT set to customs' Hub API, docs/kubernetes.md.)
   */
  private async judgeHub(loc: ImageLocation): Promise<Judgement> {
    const m = HF_URI.exec(loc.value);
    if (!m) return { loc, outcome: 'denied', reasons: [`not a Hugging Face model URI (hf://<org>/<model>[:<revision>]): ${loc.value.slice(0, 200)}`] };
    const [, repoId, revision] = m as unknown as [string, string, string | undefined];
    const hub = this.d.hub?.();
    if (!hub) return { loc, outcome: 'bypass', reason: `customs' Hugging Face API is not available to decide ${loc.value}` };
    try {
      const r = await hub.open(repoId, revision ?? 'main');
      return { loc, outcome: 'allowed', digest: r.digest, pinned: revision === r.commit, pinTo: `hf://${repoId}:${r.commit}` };
    } catch (e) {
      return this.failed(loc, e, repoId);
    }
  }

  /** A refusal is a denial with its reasons; anything else (the store is away, a timeout upstream) is undecided. */
  private failed(loc: ImageLocation, e: unknown, repository: string): Judgement {
    if (isRegistryError(e) && e.code === 'DENIED') return { loc, outcome: 'denied', reasons: deniedReasons(e.message, e.detail) };
    if (isRegistryError(e) && ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'NAME_INVALID'].includes(e.code)) return { loc, outcome: 'denied', reasons: [e.message] };
    this.d.log.warn({ err: (e as Error).message, repository }, 'admission could not decide');
    return { loc, outcome: 'undecided', reason: (e as Error).message.slice(0, 300) };
  }
}

/** KServe's `hf://<org>/<model>[:<revision>]` (a branch, tag or commit). */
const HF_URI = /^hf:\/\/([A-Za-z0-9][\w.-]{0,95}\/[A-Za-z0-9][\w.-]{0,95})(?::([\w.-]{1,128}))?$/;

/** The name a CREATE has before the API server fills in `request.name` (or its generateName prefix). */
function objectName(o: unknown): string {
  const m = (o as { metadata?: { name?: unknown; generateName?: unknown } } | undefined)?.metadata;
  return typeof m?.name === 'string' ? m.name : typeof m?.generateName === 'string' ? `${m.generateName}*` : '(unnamed)';
}

/** Every failed rule of a DENIED answer (`rule/check: reason`), else its message. */
function deniedReasons(message: string, detail: unknown): string[] {
  const failed = (detail as { failed?: { rule: string; check: string; reason: string }[] } | undefined)?.failed;
  if (Array.isArray(failed) && failed.length > 0) return failed.map((f) => `${f.rule}/${f.check}: ${f.reason}`);
  return [message];
}
