import type { Digest } from '../oci/index.js';
import type { TagMove } from './metadata-store.js';
import type { AuditEntry } from './ops-store.js';

/**
 * Optional capability: the questions an operator console asks of the metadata, each
 * answered by one query with its filter and its page in the database (10,000
 * repositories and 100,000 tag moves must not be read into memory to show 50 rows).
 * Both metadata stores have it (`store.inventory`); one contract suite checks them
 * alike (test/inventory-contract.ts).
 */
export interface RepositoryQuery {
  /** Only names containing this substring. */
  readonly contains?: string;
  /** Only names starting with one of these, or equal to one of `names` (a caller's permitted globs). Both empty: none. */
  readonly prefixes?: readonly string[];
  /** Exact names allowed besides the prefixes (`a/**` matches `a` itself). */
  readonly names?: readonly string[];
  /** Names strictly after this one, in byte order. */
  readonly after?: string;
  readonly limit: number;
}

export interface RepositorySummary {
  readonly name: string;
  readonly tags: number;
  /** When a tag of the repository last moved (epoch ms), if it has tags. */
  readonly updatedAt: number | undefined;
}

export interface TagDetail {
  readonly tag: string;
  readonly digest: Digest;
  /** When the tag last moved (epoch ms): its push time. */
  readonly updatedAt: number;
  readonly mediaType: string;
  readonly artifactType: string | undefined;
  /** The manifest's own size. */
  readonly size: number;
  readonly subject: Digest | undefined;
  /** The manifest as pushed (small; the console sums its layer sizes). */
  readonly bytes: Buffer;
  readonly pin: { readonly actor: string; readonly reason: string | undefined } | undefined;
  readonly quarantined: boolean;
}

export interface HistoryEntry extends TagMove {
  /** Position in the history (greater is newer); page with `before`. */
  readonly id: number;
}

export interface AuditFilter {
  /** Entries at or after this time (epoch ms). */
  readonly since?: number;
  /** Entries before this time (epoch ms). */
  readonly until?: number;
  /** Actor containing this substring. */
  readonly actor?: string;
  /** This action or one of its sub-actions (`quarantine` matches `quarantine.material`). */
  readonly action?: string;
  /** Target or repository containing this substring. */
  readonly target?: string;
}

export interface InventoryCounts {
  readonly repositories: number;
  /** Manifests without a subject (models, datasets, images, indexes). */
  readonly artifacts: number;
  /** Manifests with a subject (signatures, SBOMs, attestations). */
  readonly referrers: number;
  readonly tags: number;
  readonly quarantined: number;
}

export interface Inventory {
  /** Repositories in name order with their tag count. */
  searchRepositories(q: RepositoryQuery): Promise<RepositorySummary[]>;
  /** Tags of a repository in tag order, joined with their manifest, pin and quarantine. */
  tagDetails(repository: string, page: { readonly after?: string; readonly contains?: string; readonly limit: number }): Promise<TagDetail[]>;
  /** A tag's history, newest first, entries with `id < before`. */
  tagHistoryPage(repository: string, tag: string, page: { readonly before?: number; readonly limit: number }): Promise<HistoryEntry[]>;
  /** Audit entries matching the filter, newest first, with `seq < beforeSeq`. */
  queryAudit(filter: AuditFilter, page: { readonly beforeSeq?: number; readonly limit: number }): Promise<AuditEntry[]>;
  countAudit(filter: AuditFilter): Promise<number>;
  counts(): Promise<InventoryCounts>;
}

export interface InventorySource {
  readonly inventory: Inventory;
}

export const hasInventory = (s: object): s is InventorySource => typeof (s as Partial<InventorySource>).inventory?.searchRepositories === 'function';
