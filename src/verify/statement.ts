import { z } from 'zod';
import type { ImageManifest } from '../oci/schemas.js';
import { createHash } from 'node:crypto';

/** in-toto Statement v0.1 and v1 (https://github.com/in-toto/attestation/tree/main/spec). */
export const statementSchema = z.looseObject({
  _type: z.enum(['https://in-toto.io/Statement/v0.1', 'https://in-toto.io/Statement/v1']),
  subject: z
    .array(z.looseObject({ name: z.string().optional(), digest: z.record(z.string(), z.string()) }))
    .min(1, 'statement has no subject'),
  predicateType: z.string().min(1),
  predicate: z.unknown().optional(),
});
export type Statement = z.infer<typeof statementSchema>;

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
const MODEL_SIGNING_PREFIXES = ['https://model_signing/signature/', 'https://model_signing/Digests/'];

export const isModelSigning = (predicateType: string): boolean => MODEL_SIGNING_PREFIXES.some((p) => predicateType.startsWith(p));
export const isSignaturePredicate = (t: string): boolean => t === COSIGN_SIGN_PREDICATE || isModelSigning(t);

export function parseStatement(payloadType: string, payload: Buffer): Statement {
  if (payloadType !== IN_TOTO_PAYLOAD_TYPE) throw new Error(`DSSE payloadType ${JSON.stringify(payloadType)} is not ${IN_TOTO_PAYLOAD_TYPE}`);
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new Error('DSSE payload is not JSON');
  }
  const r = statementSchema.safeParse(json);
  if (!r.success) throw new Error(`not an in-toto statement: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

/**
 * The check @sigstore/verify leaves to its caller: the statement must be about the
 * manifest being served. Returns undefined when bound, else the reason it is not.
 * Model-signing statements name files, so they are bound through the manifest's layers.
 */
export function subjectMismatch(st: Statement, digest: string, manifest: ImageManifest | undefined): string | undefined {
  if (isModelSigning(st.predicateType)) return modelSigningMismatch(st, manifest);
  const [alg, hex] = digest.split(':') as [string, string];
  if (st.subject.some((s) => s.digest[alg]?.toLowerCase() === hex)) return undefined;
  const named = st.subject.map((s) => Object.entries(s.digest).map(([a, h]) => `${a}:${h}`).join(',')).join(' ');
  return `statement subject ${named.slice(0, 160)} does not match the served manifest ${digest}`;
}

const resourceSchema = z.array(z.looseObject({ name: z.string(), digest: z.string(), algorithm: z.string().default('sha256') })).min(1);
const FILE_PATH_ANNOTATIONS = ['org.cncf.model.filepath', 'org.opencontainers.image.title'];

export const layerPath = (annotations: Record<string, string> | undefined): string | undefined => {
  for (const k of FILE_PATH_ANNOTATIONS) if (annotations?.[k]) return annotations[k];
  return undefined;
};

/**
 * OpenSSF model signing: the subject digest is sha256 over the concatenated resource
 * digests, and every resource must be a layer of the served manifest (same file, same
 * sha256) and every file layer a resource: nothing signed is missing, nothing unsigned rides along.
 */
function modelSigningMismatch(st: Statement, manifest: ImageManifest | undefined): string | undefined {
  if (!manifest) return 'model-signing statement, but the served content is not an image manifest';
  const pred = (st.predicate ?? {}) as { resources?: unknown };
  const parsed = resourceSchema.safeParse(pred.resources);
  if (!parsed.success) return 'model-signing predicate has no valid resources';
  const resources = parsed.data;
  if (resources.some((r) => r.algorithm !== 'sha256')) return 'model-signing resources must use sha256 to bind to layers';
  const concat = createHash('sha256');
  for (const r of resources) concat.update(Buffer.from(r.digest, 'hex'));
  const expected = concat.digest('hex');
  if (!st.subject.some((s) => s.digest['sha256'] === expected)) return 'model-signing subject digest does not cover its resources';
  const fileLayers = manifest.layers.filter((l) => l.digest.startsWith('sha256:'));
  const layerByDigest = new Map(fileLayers.map((l) => [l.digest.slice(7), l]));
  for (const r of resources) {
    const layer = layerByDigest.get(r.digest);
    if (!layer) return `model-signing resource ${r.name} (sha256:${r.digest.slice(0, 12)}...) is not a layer of the served manifest`;
    const path = layerPath(layer.annotations);
    if (path !== undefined && r.name !== '.' && path !== r.name) return `model-signing resource ${r.name} is layer ${path} in the manifest`;
  }
  const signed = new Set(resources.map((r) => r.digest));
  const unsigned = fileLayers.filter((l) => layerPath(l.annotations) !== undefined && !signed.has(l.digest.slice(7)));
  if (unsigned.length > 0) return `layer ${layerPath(unsigned[0]!.annotations)} is not covered by the model signature`;
  return undefined;
}
