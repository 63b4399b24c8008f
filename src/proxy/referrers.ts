import { MANIFEST_MEDIA_TYPES, digestTag, isIndexMediaType, parseManifest, type Descriptor, type Digest, type ParsedManifest } from '../oci/index.js';
import type { MetadataStore } from '../storage/index.js';
import type { ProxyLogger } from './logger.js';
import type { ProxyTarget } from './pull-through.js';
import type { FetchedManifest, UpstreamClient } from './upstream-client.js';

/**
 * Referrers carried through the proxy. Sources, in order:
 *  1. the upstream's referrers API (distribution spec "Listing Referrers");
 *  2. without one, the `sha256-<hex>` fallback tag ("Referrers Tag Schema");
 *  3. cosign's legacy tags `sha256-<hex>.sig`, `.att`, `.sbom`.
 * Every manifest listed by (1) or (2) is fetched and accepted only if its `subject`
 * is the requested digest: an index that lists foreign manifests (oras-go#1396)
 * must not attach another artifact's signatures to this one. Accepted manifests are
 * stored locally, so the local referrers index (and offline mode) serves them.
 */
export const LEGACY_SUFFIXES = ['sig', 'att', 'sbom'] as const;
/** Annotation on descriptors of cosign legacy-tag manifests: the tag suffix (`sig`, `att`, `sbom`). */
export const LEGACY_TAG_ANNOTATION = 'dev.customs.cosign-legacy-tag';

export interface ReferrersContext {
  readonly client: UpstreamClient;
  readonly metadata: MetadataStore;
  readonly logger: ProxyLogger;
  readonly target: ProxyTarget;
  /** Stores an upstream manifest (tag optional); returns its parsed form. */
  store(fetched: FetchedManifest, tag: string | undefined): Promise<ParsedManifest>;
  /** Brings the blobs of a referrer into the store (signatures and SBOMs the gate reads). */
  prefetch(blobs: readonly Descriptor[], signal: AbortSignal): Promise<void>;
}

export async function refreshReferrers(ctx: ReferrersContext, subject: Digest, signal: AbortSignal): Promise<void> {
  const { client, target } = ctx;
  let listed: readonly Descriptor[] = [];
  const api = await client.getReferrers(target.remote, subject, signal);
  if (api !== 'unsupported') listed = api.manifests;
  else {
    const fallback = await client.getManifest(target.remote, digestTag(subject), signal);
    if (fallback) {
      const parsed = safeParse(fallback);
      if (parsed && isIndexMediaType(parsed.mediaType)) listed = parsed.manifests;
      else reject(ctx, subject, fallback.digest, 'fallback tag is not an index');
    }
  }
  await Promise.all(listed.map((d) => acceptReferrer(ctx, subject, d, signal)));
  await Promise.all(
    LEGACY_SUFFIXES.map(async (suffix) => {
      const tag = `${digestTag(subject)}.${suffix}`;
      const fetched = await client.getManifest(target.remote, tag, signal);
      if (!fetched) return;
      const parsed = await ctx.store(fetched, tag);
      await ctx.prefetch(parsed.blobs, signal);
    }),
  );
}

async function acceptReferrer(ctx: ReferrersContext, subject: Digest, d: Descriptor, signal: AbortSignal): Promise<void> {
  if (!MANIFEST_MEDIA_TYPES.includes(d.mediaType)) return reject(ctx, subject, d.digest, `entry media type ${d.mediaType} is not a manifest`);
  const local = await ctx.metadata.getManifest(ctx.target.repository, d.digest);
  if (local) {
    if (local.subject !== subject) reject(ctx, subject, d.digest, 'manifest has another subject');
    return;
  }
  const fetched = await ctx.client.getManifest(ctx.target.remote, d.digest, signal);
  if (!fetched) return reject(ctx, subject, d.digest, 'listed manifest is missing upstream');
  const parsed = safeParse(fetched);
  if (!parsed) return reject(ctx, subject, d.digest, 'listed manifest is invalid');
  if (parsed.subject?.digest !== subject) return reject(ctx, subject, d.digest, `manifest's subject is ${parsed.subject?.digest ?? 'absent'}`);
  await ctx.store(fetched, undefined);
  await ctx.prefetch(parsed.blobs, signal);
}

function safeParse(m: FetchedManifest): ParsedManifest | undefined {
  try {
    return parseManifest(m.bytes, m.mediaType);
  } catch {
    return undefined;
  }
}

function reject(ctx: ReferrersContext, subject: Digest, digest: Digest, why: string): void {
  ctx.logger.warn(
    { event: 'security', kind: 'referrer-rejected', upstream: ctx.target.upstream, repository: ctx.target.repository, subject, digest, why },
    'upstream referrer rejected',
  );
}

/** What is stored locally for `subject`: manifests with that subject, plus cosign legacy-tag manifests. */
export async function localReferrers(metadata: MetadataStore, repository: string, subject: Digest): Promise<Descriptor[]> {
  const out = await metadata.listReferrers(repository, subject);
  for (const suffix of LEGACY_SUFFIXES) {
    const digest = await metadata.resolveTag(repository, `${digestTag(subject)}.${suffix}`);
    const m = digest && (await metadata.getManifest(repository, digest));
    if (!m) continue;
    out.push({
      mediaType: m.mediaType,
      digest: m.digest,
      size: m.size,
      ...(m.artifactType ? { artifactType: m.artifactType } : {}),
      annotations: { ...m.annotations, [LEGACY_TAG_ANNOTATION]: suffix },
    });
  }
  return out;
}
