import type { Digest, ParsedManifest } from '../oci/index.js';
import type { NewManifest } from '../storage/index.js';

/**
 * The metadata row of a manifest a pull-through stores byte-exact. Its blobs are
 * fetched later, when asked for, so nothing is required to be linked yet.
 */
export function pulledManifest(repository: string, digest: Digest, bytes: Buffer, parsed: ParsedManifest): NewManifest {
  return {
    repository,
    digest,
    mediaType: parsed.mediaType,
    artifactType: parsed.artifactType,
    size: bytes.length,
    subject: parsed.subject?.digest,
    annotations: parsed.annotations,
    bytes,
    references: [...parsed.blobs, ...parsed.manifests].map((d) => d.digest),
  };
}
