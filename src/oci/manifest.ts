import { z } from 'zod';
import { err } from './errors.js';
import { MediaType, MANIFEST_MEDIA_TYPES, isIndexMediaType } from './media-types.js';
import {
  dockerManifestListSchema,
  dockerManifestSchema,
  imageIndexSchema,
  imageManifestSchema,
  type Descriptor,
} from './schemas.js';

/** 4 MiB: the limit the distribution spec lets registries impose on manifests, and what distribution uses. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** What the registry needs to know about a manifest, independent of its format. */
export interface ParsedManifest {
  readonly mediaType: string;
  /** `artifactType`, else the config's media type (image manifests); what the referrers API reports. */
  readonly artifactType: string | undefined;
  readonly subject: Descriptor | undefined;
  readonly config: Descriptor | undefined;
  /** Blobs this manifest references (config and layers); they must exist before it is stored. */
  readonly blobs: readonly Descriptor[];
  /** Manifests this index references; they must exist before it is stored. */
  readonly manifests: readonly Descriptor[];
  readonly annotations: Readonly<Record<string, string>> | undefined;
}

const SCHEMAS = {
  [MediaType.ociManifest]: imageManifestSchema,
  [MediaType.ociIndex]: imageIndexSchema,
  [MediaType.dockerManifest]: dockerManifestSchema,
  [MediaType.dockerManifestList]: dockerManifestListSchema,
} as const;

/** Strips parameters (`; charset=utf-8`) and case from a Content-Type. */
export const bareMediaType = (contentType: string | undefined): string =>
  (contentType ?? '').split(';')[0]!.trim().toLowerCase();

/**
 * Validates manifest bytes against the schema its media type names.
 * The media type comes from the body's `mediaType` field when present (it must then
 * agree with Content-Type, image spec "mediaType"), else from Content-Type.
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined): ParsedManifest {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) throw err('TOO_LARGE', `manifest exceeds ${MAX_MANIFEST_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    throw err('MANIFEST_INVALID', `manifest is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw err('MANIFEST_INVALID', 'manifest must be a JSON object');
  const declared = (json as { mediaType?: unknown }).mediaType;
  const header = bareMediaType(contentType);
  if (declared !== undefined && typeof declared !== 'string') throw err('MANIFEST_INVALID', 'mediaType must be a string');
  if (declared === MediaType.dockerSchema1 || declared === MediaType.dockerSchema1Signed || header === MediaType.dockerSchema1Signed || header === MediaType.dockerSchema1) {
    throw err('UNSUPPORTED', 'Docker schema 1 manifests are not supported');
  }
  const mediaType = declared ?? header;
  if (declared !== undefined && header !== '' && MANIFEST_MEDIA_TYPES.includes(header) && header !== declared) {
    throw err('MANIFEST_INVALID', `Content-Type ${header} does not match the manifest's mediaType ${declared}`);
  }
  if (!MANIFEST_MEDIA_TYPES.includes(mediaType)) {
    throw err('MANIFEST_INVALID', `unsupported manifest media type: ${JSON.stringify(mediaType || '(none)')}`);
  }
  const schema = SCHEMAS[mediaType as keyof typeof SCHEMAS];
  const result = (schema as z.ZodType).safeParse(json);
  if (!result.success) throw err('MANIFEST_INVALID', `invalid ${mediaType}: ${z.prettifyError(result.error)}`);
  const m = result.data as {
    artifactType?: string;
    subject?: Descriptor;
    config?: Descriptor;
    layers?: Descriptor[];
    manifests?: Descriptor[];
    annotations?: Record<string, string>;
  };
  if (isIndexMediaType(mediaType)) {
    return { mediaType, artifactType: m.artifactType, subject: m.subject, config: undefined, blobs: [], manifests: m.manifests ?? [], annotations: m.annotations };
  }
  // Image manifest: the config's media type stands in for a missing artifactType (spec, "Listing Referrers").
  const artifactType = m.artifactType ?? m.config?.mediaType;
  const blobs = [m.config!, ...(m.layers ?? [])].filter((d) => !(d.urls && d.urls.length > 0 && isForeignLayer(d.mediaType)));
  return { mediaType, artifactType, subject: m.subject, config: m.config, blobs, manifests: [], annotations: m.annotations };
}

/** Non-distributable ("foreign") layers live elsewhere (their `urls`); a registry does not require them. */
const isForeignLayer = (mt: string): boolean => mt.includes('nondistributable') || mt.includes('foreign');
