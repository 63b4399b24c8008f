import type { Readable } from 'node:stream';
import type { Descriptor, Digest } from '../oci/index.js';
import { bodyStream, type BlobStore, type MetadataStore } from '../storage/index.js';
import type { PullThrough } from '../proxy/pull-through.js';
import type { ContentSource, TagResolver } from '../verify/types.js';

/**
 * What the gate reads, from local storage and, for proxied repositories, through
 * the upstream (which stores what it fetches). Referrer content is read without
 * gating: it is the evidence the gate judges by.
 */
export class RegistryContentSource implements ContentSource, TagResolver {
  constructor(
    private readonly blobs: BlobStore,
    private readonly metadata: MetadataStore,
    private readonly pullThrough: PullThrough | undefined,
  ) {}

  private proxied(repository: string): boolean {
    return this.pullThrough?.handles(repository) ?? false;
  }

  async getManifest(repository: string, digest: string): Promise<{ mediaType: string; bytes: Buffer } | undefined> {
    const local = await this.metadata.getManifest(repository, digest as Digest);
    if (local) return { mediaType: local.mediaType, bytes: local.bytes };
    if (!this.proxied(repository)) return undefined;
    const up = await this.pullThrough!.manifest(repository, { kind: 'digest', digest: digest as Digest });
    return up ? { mediaType: up.mediaType, bytes: up.bytes } : undefined;
  }

  async listReferrers(repository: string, digest: string): Promise<Descriptor[]> {
    const local = await this.metadata.listReferrers(repository, digest as Digest);
    if (!this.proxied(repository)) return local;
    const seen = new Set(local.map((d) => d.digest));
    const upstream = await this.pullThrough!.referrers(repository, digest as Digest).catch(() => [] as Descriptor[]);
    return [...local, ...upstream.filter((d) => !seen.has(d.digest))];
  }

  async readBlob(repository: string, digest: string, maxBytes: number): Promise<Buffer | undefined> {
    const stream = await this.open(repository, digest as Digest, maxBytes);
    if (!stream) return undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.byteLength;
      if (size > maxBytes) {
        stream.destroy();
        return undefined;
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, size);
  }

  openBlob(repository: string, digest: string): Promise<Readable | undefined> {
    return this.open(repository, digest as Digest, Number.MAX_SAFE_INTEGER);
  }

  private async open(repository: string, digest: Digest, maxBytes: number): Promise<Readable | undefined> {
    const linked = await this.metadata.linkedBlob(repository, digest);
    if (linked) {
      if (linked.size > maxBytes) return undefined;
      return this.blobs.get(digest);
    }
    if (!this.proxied(repository)) return undefined;
    const up = await this.pullThrough!.blob(repository, digest);
    if (!up) return undefined;
    if (up.size > maxBytes) return undefined;
    return bodyStream(await up.open(undefined), 0, up.size - 1);
  }

  resolveTag(repository: string, tag: string): Promise<string | undefined> {
    return this.metadata.resolveTag(repository, tag);
  }
}
