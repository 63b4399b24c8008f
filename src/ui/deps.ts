import type { Digest, Reference } from '../oci/index.js';
import type { Ops } from '../ops/index.js';
import type { UpstreamStatus } from '../proxy/upstream-health.js';
import type { Actor, BlobFetcher, Inventory, MetadataStore } from '../storage/index.js';
import type { Policy, Trust, Verdict } from '../verify/index.js';

/**
 * What the console uses: the services /admin/ and /v2/ use, handed in by the composition
 * root (src/server.ts). Nothing here is the console's own state but its chain-check cache.
 */
export interface ConsoleDeps {
  readonly metadata: MetadataStore;
  /** The metadata store's paged queries (both stores have them). */
  readonly inventory: Inventory;
  /** Reads referrer layers (signatures, SBOMs, provenance: small, capped). */
  readonly blobs: BlobFetcher;
  readonly ops: Ops;
  /** The gate's verdict on a manifest in a repository (cached like every read's). */
  verdict(repository: string, digest: Digest): Promise<Verdict>;
  /**
   * Would the registry serve this manifest over /v2/ (the whole read rule: verdict, evidence,
   * quarantine)? `reason` says why not. The console shows content to a viewer who may only
   * pull exactly when this says yes.
   */
  served(repository: string, digest: Digest): Promise<{ served: boolean; reason?: string }>;
  /** The policy and trust material the gate runs with now (after the last reload). */
  policy(): { policy: Policy; trust: Trust; policyHash: string; trustHash: string };
  /** Configured upstreams and their health; empty without pull-through. */
  upstreams(): UpstreamStatus[];
  /** DELETE /v2/<name>/manifests/<reference>: the registry's own delete (hooks, caches, audit). */
  deleteManifest(repository: string, reference: Reference, by: Actor): Promise<void>;
}
