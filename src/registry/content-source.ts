import { Readable } from 'node:stream';
import { Digester, err, parseDigest, type Descriptor, type Digest } from '../oci/index.js';
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

  /**
   * Streams a blob for the gate's scans, verified as it is read (oras-go's VerifyReader): bytes that do not
   * hash to the digest, or stop short of the size, end in DIGEST_INVALID instead of an end of stream, so a
   * scan never judges a file it did not fully and truly see (a pull-through fill the upstream botched).
   */
  async openBlob(repository: string, digest: string): Promise<Readable | undefined> {
    const d = digest as Digest;
    const size = (await this.metadata.linkedBlob(repository, d))?.size;
    const stream = await this.open(repository, d, Number.MAX_SAFE_INTEGER);
    return stream && Readable.from(verified(stream, d, size));
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

/** The stream's bytes, then an error instead of the end when they do not match `digest` (and `size`, if known). */
async function* verified(stream: Readable, digest: Digest, size: number | undefined): AsyncGenerator<Buffer> {
  const d = new Digester(parseDigest(digest).algorithm);
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    d.update(chunk);
    yield chunk;
  }
  const actual = d.digest();
  if (actual !== digest || (size !== undefined && d.size !== size)) {
    throw err('DIGEST_INVALID', `blob ${digest} read back as ${actual} (${d.size} bytes): bytes that do not match their digest`);
  }
}
