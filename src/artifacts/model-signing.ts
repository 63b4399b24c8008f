import { createHash, sign as cryptoSign } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { basename, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import { err, parseDigest, type Digest } from '../oci/index.js';
import type { RegistryClient } from './client.js';
import { InToto, Sigstore } from './media-types.js';
import type { PackedFile } from './modelpack.js';
import { pae, type SigningKey, type SigstoreBundle, type Statement } from './sign.js';

/**
 * OpenSSF model signing (the `model_signing` reference implementation, v1.0 predicate):
 * a sigstore bundle v0.3 whose DSSE envelope holds an in-toto statement naming every file of
 * the model directory with its sha256 (`predicate.resources`), the subject digest being sha256
 * over those digests in order. customs reads such a signature to push it beside the model,
 * and writes one (with `--sign`) that `model_signing verify key` accepts on a pulled directory.
 */
export const MODEL_SIGNING_PREDICATE = 'https://model_signing/signature/v1.0';
const MAX_SIGNATURE_BYTES = 64 * 1024 * 1024;

const resourceSchema = z.object({ name: z.string().min(1), digest: z.string().regex(/^[0-9a-f]+$/), algorithm: z.string() });
const statementSchema = z.looseObject({
  _type: z.literal(InToto.statementV1),
  subject: z.array(z.looseObject({ name: z.string().optional(), digest: z.record(z.string(), z.string()) })).length(1),
  predicateType: z.string(),
  predicate: z.looseObject({
    resources: z.array(resourceSchema),
    serialization: z.looseObject({ method: z.string(), hash_type: z.string().optional(), ignore_paths: z.array(z.string()).optional() }),
  }),
});
const bundleSchema = z.looseObject({
  mediaType: z.string().startsWith('application/vnd.dev.sigstore.bundle'),
  dsseEnvelope: z.looseObject({ payload: z.string(), payloadType: z.literal(InToto.payloadType), signatures: z.array(z.looseObject({ sig: z.string() })).min(1) }),
});

export interface ModelSignature {
  /** The bundle as read, pushed unchanged (its signature covers the payload, not the JSON around it). */
  readonly bundle: Record<string, unknown>;
  readonly statement: z.infer<typeof statementSchema>;
  readonly resources: readonly { readonly name: string; readonly digest: string }[];
  /** Paths (relative to the model root) the signer left out: `.git`, the signature itself, `--ignore-paths`. */
  readonly ignorePaths: readonly string[];
}

/** Reads and checks the shape of a `model_signing` signature file (not its cryptography: the gate does that). */
export async function readModelSignature(path: string): Promise<ModelSignature> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) throw err('NAME_UNKNOWN', `no such model signature: ${path}`);
  if (st.size > MAX_SIGNATURE_BYTES) throw err('TOO_LARGE', `${path} is larger than ${MAX_SIGNATURE_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw err('MANIFEST_INVALID', `${path} is not JSON: ${(e as Error).message}`);
  }
  const b = bundleSchema.safeParse(json);
  if (!b.success) throw err('MANIFEST_INVALID', `${path} is not a sigstore bundle with a DSSE envelope over an in-toto statement (model_signing writes one)`);
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(b.data.dsseEnvelope.payload, 'base64').toString('utf8'));
  } catch {
    throw err('MANIFEST_INVALID', `${path}: the DSSE payload is not JSON`);
  }
  const s = statementSchema.safeParse(payload);
  if (!s.success) throw err('MANIFEST_INVALID', `${path} is not a model_signing v1.0 signature: ${s.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const stmt = s.data;
  if (stmt.predicateType !== MODEL_SIGNING_PREDICATE) throw err('MANIFEST_INVALID', `${path} has predicate ${stmt.predicateType}; customs binds ${MODEL_SIGNING_PREDICATE} signatures to layers`);
  if (stmt.predicate.serialization.method !== 'files') {
    throw err('UNSUPPORTED', `${path} was made with the "${stmt.predicate.serialization.method}" serialization; only "files" (one digest per file) can be bound to OCI layers`);
  }
  const bad = stmt.predicate.resources.find((r) => r.algorithm !== 'sha256');
  if (bad) throw err('UNSUPPORTED', `${path} hashes ${bad.name} with ${bad.algorithm}; OCI layers are named by sha256`);
  return {
    bundle: json as Record<string, unknown>,
    statement: stmt,
    resources: stmt.predicate.resources.map((r) => ({ name: r.name, digest: r.digest })),
    ignorePaths: stmt.predicate.serialization.ignore_paths ?? [],
  };
}

/**
 * Files of `root` the signature does not cover on purpose: its ignore paths (as model_signing
 * matches them: the path itself or anything under it) and the signature file when it sits inside.
 */
export function ignoredBySignature(sig: ModelSignature, root: string, signaturePath: string): (relPath: string) => boolean {
  const rel = relative(resolve(root), resolve(signaturePath));
  const inside = rel !== '' && !rel.startsWith('..') && !rel.startsWith(sep);
  const paths = [...sig.ignorePaths.map((p) => p.replace(/^\.\//, '').replace(/\/$/, '')), ...(inside ? [rel.split(sep).join('/')] : [])];
  return (relPath) => paths.some((p) => relPath === p || relPath.startsWith(`${p}/`));
}

/** Every signed file is a packed file with the same sha256, and every packed file is signed; else names the first file that differs. */
export function signatureMismatch(sig: ModelSignature, files: readonly PackedFile[]): string | undefined {
  const byPath = new Map(files.map((f) => [f.relPath, parseDigest(f.digest).hex]));
  for (const r of sig.resources) {
    const d = byPath.get(r.name);
    if (d === undefined) return `${r.name} is signed but missing from the model directory`;
    if (d !== r.digest) return `${r.name} changed after signing (sha256 ${d.slice(0, 12)}..., signed ${r.digest.slice(0, 12)}...)`;
  }
  const signed = new Set(sig.resources.map((r) => r.name));
  const extra = files.find((f) => !signed.has(f.relPath));
  return extra ? `${extra.relPath} was added after signing: the signature does not cover it` : undefined;
}

/** model_signing orders resources as pathlib.PurePosixPath does: by path components. */
function byComponents(a: string, b: string): number {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  return x.length - y.length;
}

/** The v1.0 statement for these files, as `model_signing sign` builds it for a directory named `modelName`. */
export function modelSigningStatement(modelName: string, files: readonly { relPath: string; digest: Digest }[]): Statement {
  const resources = [...files]
    .sort((a, b) => byComponents(a.relPath, b.relPath))
    .map((f) => ({ name: f.relPath, algorithm: 'sha256', digest: parseDigest(f.digest).hex }));
  const root = createHash('sha256');
  for (const r of resources) root.update(Buffer.from(r.digest, 'hex'));
  return {
    _type: InToto.statementV1,
    subject: [{ name: modelName, digest: { sha256: root.digest('hex') } }],
    predicateType: MODEL_SIGNING_PREDICATE,
    // Nothing is ignored: the pulled directory holds exactly the signed layers.
    predicate: { serialization: { method: 'files', hash_type: 'sha256', allow_symlinks: false, ignore_paths: [] }, resources },
  };
}

/**
 * Signs the statement as `model_signing sign key` does: ECDSA with the curve's hash over the DSSE
 * PAE, and `publicKey.hint` = hex sha256 of the public key's PEM (model_signing refuses a bundle
 * whose hint names another key).
 */
export function signModelSigning(st: Statement, key: SigningKey): SigstoreBundle {
  const payload = Buffer.from(JSON.stringify(st));
  const curve = key.publicKey.asymmetricKeyDetails?.namedCurve;
  const hash = curve === 'secp384r1' ? 'sha384' : curve === 'secp521r1' ? 'sha512' : 'sha256';
  const sig = cryptoSign(hash, pae(InToto.payloadType, payload), key.privateKey);
  const pem = key.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return {
    mediaType: Sigstore.bundleV03,
    verificationMaterial: { publicKey: { hint: createHash('sha256').update(pem).digest('hex') }, tlogEntries: [] },
    dsseEnvelope: { payload: payload.toString('base64'), payloadType: InToto.payloadType, signatures: [{ sig: sig.toString('base64'), keyid: '' }] },
  };
}

export const modelNameOf = (dir: string): string => basename(resolve(dir));

/**
 * The newest model_signing signature among the referrers of `repo@digest`, as the gate serves it
 * (a referrer is served only when it verifies as evidence for its subject). Bundles attached by
 * other tools carry no predicate annotation, so each bundle's statement is read to tell.
 */
export async function fetchModelSignature(client: RegistryClient, repo: string, digest: Digest): Promise<Buffer | undefined> {
  const index = await client.listReferrers(repo, digest, Sigstore.bundleV03);
  const created = (a: { annotations?: Record<string, string> | undefined }): string => a.annotations?.['org.opencontainers.image.created'] ?? '';
  const candidates = index.manifests
    .filter((m) => (m.annotations?.[Sigstore.predicateTypeAnnotation] ?? 'https://model_signing/').startsWith('https://model_signing/'))
    .sort((a, b) => created(b).localeCompare(created(a)));
  for (const c of candidates) {
    const m = await client.getManifest(repo, c.digest);
    const layer = (JSON.parse(m.bytes.toString('utf8')) as { layers?: { digest: Digest; size: number }[] }).layers?.[0];
    if (!layer || layer.size > MAX_SIGNATURE_BYTES) continue;
    const bytes = await readBlob(client, repo, layer.digest);
    try {
      const env = (JSON.parse(bytes.toString('utf8')) as { dsseEnvelope?: { payload?: string } }).dsseEnvelope;
      const st = JSON.parse(Buffer.from(env?.payload ?? '', 'base64').toString('utf8')) as { predicateType?: string };
      if (st.predicateType?.startsWith('https://model_signing/')) return bytes;
    } catch {
      // not a DSSE bundle: a cosign message signature
    }
  }
  return undefined;
}

async function readBlob(client: RegistryClient, repo: string, digest: Digest): Promise<Buffer> {
  const { body } = await client.getBlob(repo, digest);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of body as unknown as AsyncIterable<Uint8Array>) {
    size += c.byteLength;
    if (size > MAX_SIGNATURE_BYTES) throw err('TOO_LARGE', `model signature ${digest} is larger than ${MAX_SIGNATURE_BYTES} bytes`);
    chunks.push(Buffer.from(c));
  }
  const bytes = Buffer.concat(chunks);
  if (`sha256:${createHash('sha256').update(bytes).digest('hex')}` !== digest) throw err('DIGEST_INVALID', `model signature blob does not match ${digest}`);
  return bytes;
}
