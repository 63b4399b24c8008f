import type { PullThrough, UpstreamReferrers } from './pull-through.js';

/**
 * Several pull-throughs as one, for the registry's services: the OCI upstreams
 * (`upstreams:`) and the Hugging Face Hubs (`hub.upstreams`) serve disjoint
 * repository prefixes, and each request goes to the one that handles its repository.
 */
export function combinePullThrough(parts: ReadonlyArray<PullThrough | undefined>): PullThrough | undefined {
  const list = parts.filter((p): p is PullThrough => p !== undefined);
  if (list.length <= 1) return list[0];
  const pick = (repository: string, ns?: string): PullThrough | undefined => list.find((p) => p.handles(repository, ns));
  const none: UpstreamReferrers = { descriptors: [], stale: false };
  return {
    handles: (repository, ns) => pick(repository, ns) !== undefined,
    resolve: (repository, ns) => pick(repository, ns)?.resolve(repository, ns),
    manifest: async (repository, reference, opts) => pick(repository, opts?.ns)?.manifest(repository, reference, opts),
    blob: async (repository, digest, opts) => pick(repository, opts?.ns)?.blob(repository, digest, opts),
    referrers: async (repository, digest, opts) => (await pick(repository, opts?.ns)?.referrers(repository, digest, opts)) ?? [],
    referrersDetail: async (repository, digest, opts) => (await pick(repository, opts?.ns)?.referrersDetail(repository, digest, opts)) ?? none,
  };
}
