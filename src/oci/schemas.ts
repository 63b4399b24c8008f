import { z } from 'zod';
import { isDigest, type Digest } from './digest.js';
import { MediaType } from './media-types.js';

/**
 * zod schemas for every wire format customs reads; types are inferred from them.
 * Unknown fields are allowed (the image spec says implementations MUST ignore them)
 * because manifests are stored and served byte-exact; we validate, never rewrite.
 */
export const digestSchema = z.string().refine(isDigest, 'invalid digest').transform((d) => d as Digest);
const mediaTypeSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/, 'invalid media type');
const annotationsSchema = z.record(z.string(), z.string());

export const platformSchema = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
});

export const descriptorSchema = z.looseObject({
  mediaType: mediaTypeSchema,
  digest: digestSchema,
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  urls: z.array(z.string()).optional(),
  annotations: annotationsSchema.optional(),
  data: z.string().optional(),
  artifactType: mediaTypeSchema.optional(),
  platform: platformSchema.optional(),
});
export type Descriptor = z.infer<typeof descriptorSchema>;

export const imageManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.literal(MediaType.ociManifest).optional(),
  artifactType: mediaTypeSchema.optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotationsSchema.optional(),
});
export type ImageManifest = z.infer<typeof imageManifestSchema>;

export const imageIndexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.literal(MediaType.ociIndex).optional(),
  artifactType: mediaTypeSchema.optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotationsSchema.optional(),
});
export type ImageIndex = z.infer<typeof imageIndexSchema>;

export const dockerManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.literal(MediaType.dockerManifest),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
});
export type DockerManifest = z.infer<typeof dockerManifestSchema>;

export const dockerManifestListSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.literal(MediaType.dockerManifestList),
  manifests: z.array(descriptorSchema),
});
export type DockerManifestList = z.infer<typeof dockerManifestListSchema>;

/** The referrers API response and the `sha256-<hex>` fallback tag: an OCI index. */
export const referrersIndexSchema = imageIndexSchema;

/** The spec's error body: `{"errors":[{"code","message","detail"}]}`. */
export const errorBodySchema = z.object({
  errors: z.array(z.object({ code: z.string(), message: z.string().optional(), detail: z.unknown().optional() })),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;

/** Tag list (`GET /v2/<name>/tags/list`) and catalog (`GET /v2/_catalog`) bodies. */
export const tagListSchema = z.object({ name: z.string(), tags: z.array(z.string()) });
export const catalogSchema = z.object({ repositories: z.array(z.string()) });

/** OCI image config, loosely: only the fields customs reads. */
export const imageConfigSchema = z.looseObject({
  rootfs: z.looseObject({ type: z.string(), diff_ids: z.array(z.string()) }).optional(),
});
