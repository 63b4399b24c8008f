import { digestOf, type Descriptor, type Digest } from '../oci/index.js';
import type { RegistryClient } from './client.js';
import { CREATED_ANNOTATION, Sigstore } from './media-types.js';
import { buildReferrerManifest } from './modelpack.js';
import type { SigstoreBundle } from './sign.js';

/**
 * Pushing material about an artifact as OCI 1.1 referrers: one manifest per item, its
 * `subject` the artifact's manifest, its config the OCI empty descriptor, one layer.
 */
export interface PushedReferrer {
  readonly digest: Digest;
  readonly artifactType: string;
  readonly predicateType?: string | undefined;
}

/** Pushes a small JSON/bytes blob and a referrer manifest carrying it. */
export async function pushReferrerBlob(
  client: RegistryClient,
  repo: string,
  subject: Descriptor,
  opts: { artifactType: string; layerMediaType: string; data: Uint8Array; annotations?: Record<string, string>; created: string },
): Promise<PushedReferrer> {
  const layerDigest = digestOf(opts.data);
  await client.pushBlob(repo, { kind: 'bytes', data: opts.data, digest: layerDigest });
  await client.pushBlob(repo, { kind: 'bytes', data: Buffer.from('{}') });
  const annotations = { ...(opts.annotations ?? {}), [CREATED_ANNOTATION]: opts.created };
  const m = buildReferrerManifest({
    subject,
    artifactType: opts.artifactType,
    layer: { mediaType: opts.layerMediaType, digest: layerDigest, size: opts.data.byteLength },
    annotations,
  });
  const digest = await client.pushReferrer(repo, m.bytes, subject, opts.artifactType, annotations);
  return { digest, artifactType: opts.artifactType, predicateType: opts.annotations?.[Sigstore.predicateTypeAnnotation] };
}

/** A sigstore bundle as cosign lays it out (`WriteAttestationNewBundleFormat`). */
export async function pushBundle(client: RegistryClient, repo: string, subject: Descriptor, bundle: SigstoreBundle | Record<string, unknown>, predicateType: string | undefined, created: string): Promise<PushedReferrer> {
  const isDsse = 'dsseEnvelope' in bundle;
  const annotations: Record<string, string> = { [Sigstore.contentAnnotation]: isDsse ? 'dsse-envelope' : 'message-signature' };
  if (predicateType) annotations[Sigstore.predicateTypeAnnotation] = predicateType;
  return pushReferrerBlob(client, repo, subject, {
    artifactType: Sigstore.bundleV03,
    layerMediaType: Sigstore.bundleV03,
    data: Buffer.from(JSON.stringify(bundle)),
    annotations,
    created,
  });
}
