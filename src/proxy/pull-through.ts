import type { Readable } from 'node:stream';
import type { Descriptor, Digest, Reference } from '../oci/index.js';
import type { BlobBody, ByteRange } from '../storage/index.js';

/**
 * What the registry asks of pull-through (implemented in src/proxy). The registry
 * calls it when local storage cannot answer, or when a tag is past its freshness
 * window; whatever this returns has been stored locally (verified) or is being
 * streamed while it is stored.
 */
export interface UpstreamManifest {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly bytes: Buffer;
  /** True when served from the local copy because the upstream failed (stale-if-error). */
  readonly stale: boolean;
  /** Added by src/proxy: the local repository the manifest is stored under (differs from the request's with `ns`). */
  readonly repository?: string;
  /** Added by src/proxy: the `ns` value honoured, to echo as `OCI-Namespace` (distribution spec, "Registry Proxying"). */
  readonly namespace?: string;
}

/** A blob known locally or being filled from the upstream (see blob-fill.ts). */
export interface UpstreamBlob {
  readonly size: number;
  /**
   * The bytes, opened when a body is sent (never for HEAD): positional reads of
   * the fill in progress (they wait for bytes still to come), else the store's.
   * The HTTP layer sends `range` of a random-access body; a stream body carries it.
   */
  open(range: ByteRange | undefined): Promise<BlobBody>;
}


/** Added by src/proxy: the `ns` query parameter of the request, when it had one. */
export interface ProxyRequestOptions {
  readonly ns?: string;
}

/** Added by src/proxy: how a request's repository maps onto an upstream. */
export interface ProxyTarget {
  /** The upstream's configured name (its path prefix). */
  readonly upstream: string;
  /** The repository at the upstream (Docker Hub's implicit `library/` applied). */
  readonly remote: string;
  /** The local repository everything is stored under: `<upstream>/<name as requested>` (equal to the request's name without `ns`). */
  readonly repository: string;
  /** The honoured `ns`, to echo as `OCI-Namespace`; undefined without `ns`. */
  readonly namespace: string | undefined;
}

/** Added by src/proxy: referrers with their freshness. */
export interface UpstreamReferrers {
  readonly descriptors: Descriptor[];
  readonly stale: boolean;
  readonly namespace?: string;
}

export interface PullThrough {
  /** True when `repository` (possibly with an `ns` query parameter) is served by an upstream. */
  handles(repository: string, ns?: string): boolean;
  /** Added by src/proxy: the upstream and local repository for a request, or undefined when not proxied. */
  resolve(repository: string, ns?: string): ProxyTarget | undefined;
  /**
   * Resolves a manifest for a proxied repository: the local copy when it is a digest
   * or a fresh tag, else through the upstream (stored locally, byte-exact), else the
   * local copy marked stale when the upstream fails. Undefined when nobody has it.
   */
  manifest(repository: string, reference: Reference, opts?: ProxyRequestOptions): Promise<UpstreamManifest | undefined>;
  /** Streams a blob from the local copy, an in-progress fill, or a new single-flight fill. */
  blob(repository: string, digest: Digest, opts?: ProxyRequestOptions): Promise<UpstreamBlob | undefined>;
  /** Upstream referrers of `digest` (API, fallback tag, cosign legacy tags), to merge with local ones. */
  referrers(repository: string, digest: Digest, opts?: ProxyRequestOptions): Promise<Descriptor[]>;
  /** Added for tag listing: the upstream's tags of `repository`; undefined when the upstream has none or cannot answer. */
  tags?(repository: string): Promise<string[] | undefined>;
  /** Added by src/proxy: as `referrers`, with the stale flag and namespace echo. */
  referrersDetail(repository: string, digest: Digest, opts?: ProxyRequestOptions): Promise<UpstreamReferrers>;
}
