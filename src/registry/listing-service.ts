import { err, MediaType, type Descriptor, type Digest } from '../oci/index.js';
import type { MetadataStore, Page } from '../storage/index.js';
import type { PullThrough } from '../proxy/pull-through.js';

export interface PageResult {
  readonly items: string[];
  /** The `last` value of the next page, when there is one. */
  readonly next: string | undefined;
}

export interface ReferrersResult {
  readonly index: { schemaVersion: 2; mediaType: string; manifests: Descriptor[] };
  readonly filtered: boolean;
}

/** What the gate says of a referrer as evidence about its subject (the `io.customs.evidence` annotation). */
export type EvidenceStatus = 'verified' | 'unsigned-allowed' | 'unverified';
export const EVIDENCE_ANNOTATION = 'io.customs.evidence';
/** Referrers judged per listing; past this many the annotation says `unchecked` (the list itself is complete). */
const MAX_JUDGED = 128;

/** Content discovery: tag lists, the catalog, the referrers API. */
export class ListingService {
  constructor(
    private readonly metadata: MetadataStore,
    private readonly pullThrough: PullThrough | undefined,
    /** Does `referrer` verify as evidence about `subject`? Listing is metadata: every referrer is listed either way. */
    private readonly evidenceOf?: (repository: string, referrer: Digest, subject: Digest) => Promise<EvidenceStatus>,
  ) {}

  async tags(repository: string, page: Page): Promise<PageResult> {
    // A proxied repository lists the upstream's tags too (distribution's proxy does), with the local ones.
    const upstream = this.pullThrough?.handles(repository) ? await this.pullThrough.tags?.(repository) : undefined;
    if (upstream) {
      const local = await this.metadata.listTags(repository, {});
      const all = [...new Set([...upstream, ...local])].sort();
      return paged(page, async (p) => {
        const after = p.last === undefined ? all : all.filter((t) => t > p.last!);
        return p.n === undefined ? after : after.slice(0, p.n);
      });
    }
    if (!(await this.metadata.repositoryExists(repository))) throw err('NAME_UNKNOWN', 'repository name not known to registry', { name: repository });
    return paged(page, (p) => this.metadata.listTags(repository, p));
  }

  async catalog(page: Page): Promise<PageResult> {
    return paged(page, (p) => this.metadata.listRepositories(p));
  }

  async referrers(repository: string, subject: Digest, artifactType: string | undefined): Promise<ReferrersResult> {
    const local = await this.metadata.listReferrers(repository, subject);
    const all = [...local];
    if (this.pullThrough?.handles(repository)) {
      const seen = new Set(local.map((d) => d.digest));
      for (const d of await this.pullThrough.referrers(repository, subject)) if (!seen.has(d.digest)) all.push(d);
    }
    const listed = artifactType ? all.filter((d) => d.artifactType === artifactType) : all;
    const manifests = this.evidenceOf ? await this.annotate(repository, subject, listed) : listed;
    return { index: { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }, filtered: artifactType !== undefined };
  }

  /** Adds `io.customs.evidence` to each descriptor (the spec's annotations are kept; clients ignore unknown keys). */
  private async annotate(repository: string, subject: Digest, list: Descriptor[]): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    for (const [n, d] of list.entries()) {
      const status = n < MAX_JUDGED ? await this.evidenceOf!(repository, d.digest, subject).catch(() => 'unverified' as const) : 'unchecked';
      out.push({ ...d, annotations: { ...d.annotations, [EVIDENCE_ANNOTATION]: status } });
    }
    return out;
  }
}

/** Fetches one more than asked to learn whether a next page exists. */
async function paged(page: Page, fetch: (p: Page) => Promise<string[]>): Promise<PageResult> {
  if (page.n === undefined) return { items: await fetch({ last: page.last }), next: undefined };
  if (page.n === 0) return { items: [], next: undefined };
  const items = await fetch({ n: page.n + 1, last: page.last });
  if (items.length <= page.n) return { items, next: undefined };
  const shown = items.slice(0, page.n);
  return { items: shown, next: shown[shown.length - 1] };
}
