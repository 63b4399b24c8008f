import { createHash } from 'node:crypto';
import { digestTag } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import { imageManifestSchema, type Descriptor, type ImageManifest } from '../oci/schemas.js';
import { errorText, rejected, type Outcome, type Signed, type SubjectContext } from './evidence.js';
import { classifyLayer, readSbomLayer, verifyLayer } from './evidence-layer.js';
import { sbomFormatOfPredicate, summarizeSbom, type SbomSummary } from './sbom.js';
import { hasTagResolver, type ContentSource } from './types.js';
import type { ResolvedAuthority } from './trust.js';

/**
 * The I/O half of a check: read the subject and its referrers through the ContentSource,
 * hand the bytes to the pure verifiers, and summarise SBOMs. Nothing here decides.
 */
export interface Limits {
  /** Referrers read per subject; more are ignored (a flood of junk referrers must not stall the gate). */
  maxReferrers: number;
  /** Largest referrer blob read into memory (bundles, envelopes, SBOMs). */
  maxBlobBytes: number;
  /** Layers read per referrer manifest. */
  maxLayersPerReferrer: number;
}
export const DEFAULT_LIMITS: Limits = { maxReferrers: 64, maxBlobBytes: 8 * 1024 * 1024, maxLayersPerReferrer: 16 };

export interface SbomEvidence {
  readonly source: string;
  readonly summary?: SbomSummary;
  readonly error?: string;
}

export interface Evidence {
  readonly subject: SubjectContext & { mediaType: string };
  readonly signed: Signed[];
  /** Rejections, with the referrer they came from. */
  readonly rejected: { referrer: string; reason: string; format: string }[];
  readonly sboms: SbomEvidence[];
  readonly referrers: string[];
  /** Some content was not available (yet): the verdict must not be cached. */
  incomplete: boolean;
}

export async function loadSubject(
  source: ContentSource,
  repository: string,
  digest: string,
  authorities: ResolvedAuthority[],
  now: Date,
): Promise<(SubjectContext & { mediaType: string }) | string> {
  const m = await source.getManifest(repository, digest);
  if (!m) return `manifest ${digest} is unknown in ${repository}`;
  const actual = `sha256:${createHash('sha256').update(m.bytes).digest('hex')}`;
  if (digest.startsWith('sha256:') && actual !== digest) return `stored bytes of ${digest} hash to ${actual}`;
  let manifest: ImageManifest | undefined;
  try {
    const r = imageManifestSchema.safeParse(JSON.parse(m.bytes.toString('utf8')));
    if (r.success) manifest = r.data;
  } catch {
    manifest = undefined;
  }
  return { digest, bytes: m.bytes, mediaType: m.mediaType, authorities, now, ...(manifest ? { manifest } : {}) };
}

export async function gatherEvidence(source: ContentSource, repository: string, subject: SubjectContext & { mediaType: string }, limits: Limits): Promise<Evidence> {
  const ev: Evidence = { subject, signed: [], rejected: [], sboms: [], referrers: [], incomplete: false };
  const listed = await source.listReferrers(repository, subject.digest);
  const refs: { desc: Descriptor; legacy?: 'sig' | 'att' }[] = [...listed]
    .sort((a, b) => (a.digest < b.digest ? -1 : 1))
    .slice(0, limits.maxReferrers)
    .map((desc) => ({ desc }));
  if (hasTagResolver(source)) {
    for (const kind of ['sig', 'att'] as const) {
      const d = await source.resolveTag(repository, `${digestTag(subject.digest)}.${kind}`);
      if (d) refs.push({ desc: { mediaType: MediaType.ociManifest, digest: d as `${string}:${string}`, size: 0 }, legacy: kind });
    }
  }
  const seen = new Set<string>();
  for (const { desc, legacy } of refs) {
    if (seen.has(desc.digest)) continue;
    seen.add(desc.digest);
    try {
      await readReferrer(source, repository, desc.digest, legacy, ev, limits);
    } catch (e) {
      ev.rejected.push({ referrer: desc.digest, format: 'referrer', reason: errorText(e) });
    }
  }
  // in-toto SBOM predicates, once their envelope verified.
  for (const s of ev.signed) {
    const fmt = s.statement ? sbomFormatOfPredicate(s.statement.predicateType) : undefined;
    if (!fmt) continue;
    ev.sboms.push(await summarize(`attestation ${s.statement!.predicateType}`, s.statement!.predicate, fmt));
  }
  return ev;
}

async function readReferrer(source: ContentSource, repository: string, digest: string, legacy: 'sig' | 'att' | undefined, ev: Evidence, limits: Limits): Promise<void> {
  const m = await source.getManifest(repository, digest);
  if (!m) {
    ev.incomplete = true;
    throw new Error('referrer manifest is not available');
  }
  const parsed = imageManifestSchema.safeParse(JSON.parse(m.bytes.toString('utf8')));
  if (!parsed.success) return; // an index or something else: not evidence we read
  const ref = parsed.data;
  // The referrers API vouches for the subject; a manifest we read must agree (legacy tags have none).
  if (!legacy && ref.subject?.digest !== ev.subject.digest) throw new Error(`referrer's subject is ${ref.subject?.digest ?? 'missing'}`);
  ev.referrers.push(digest);
  const artifactType = ref.artifactType ?? ref.config.mediaType;
  const blob = async (d: Descriptor): Promise<Buffer> => {
    if (d.size > limits.maxBlobBytes) throw new Error(`referrer blob ${d.digest} is larger than ${limits.maxBlobBytes} bytes`);
    const b = await source.readBlob(repository, d.digest, limits.maxBlobBytes);
    if (!b) {
      ev.incomplete = true;
      throw new Error(`referrer blob ${d.digest} is not available`);
    }
    if (`sha256:${createHash('sha256').update(b).digest('hex')}` !== d.digest) throw new Error(`referrer blob ${d.digest} does not match its digest`);
    return b;
  };
  const record = (outs: Outcome[]): void => {
    for (const o of outs) {
      if (o.ok) ev.signed.push(o);
      else ev.rejected.push({ referrer: digest, format: o.format, reason: o.reason });
    }
  };
  for (const layer of ref.layers.slice(0, limits.maxLayersPerReferrer)) {
    const kind = classifyLayer({ mediaType: layer.mediaType, annotations: layer.annotations ?? {} }, artifactType, legacy);
    if (kind.kind === 'signature' || kind.kind === 'attestation') record(verifyLayer(kind, await blob(layer), ev.subject));
    else if (kind.kind === 'unsupported') record([rejected(kind.format, kind.reason)]);
    else if (kind.kind === 'sbom') {
      const r = await readSbomLayer(await blob(layer), kind.format);
      ev.sboms.push('summary' in r ? { source: `referrer ${digest.slice(0, 19)}`, summary: r.summary } : { source: `referrer ${digest}`, error: r.error });
    }
  }
}

async function summarize(source: string, doc: unknown, fmt: 'cyclonedx' | 'spdx'): Promise<SbomEvidence> {
  try {
    return { source, summary: await summarizeSbom(doc, fmt) };
  } catch (e) {
    return { source, error: errorText(e) };
  }
}
