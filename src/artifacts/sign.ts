import { createHash, createPrivateKey, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { err, parseDigest, type Digest } from '../oci/index.js';
import { InToto, Sigstore } from './media-types.js';

/**
 * Key-based signing in the sigstore bundle v0.3 format (no Fulcio, no Rekor), which is what
 * `cosign sign --key --tlog-upload=false --new-bundle-format` produces: a DSSE envelope over
 * an in-toto Statement v1, and `verificationMaterial.publicKey.hint` naming the key.
 */
export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** base64(sha256(DER SubjectPublicKeyInfo)), the hint convention of sigstore-go and cosign. */
  readonly hint: string;
}

export const keyHint = (publicKey: KeyObject): string =>
  createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('base64');

/** Loads a PKCS8 PEM ECDSA P-256 private key (what `customs keygen` writes); checks `<key>.pub` when present. */
export async function loadSigningKey(path: string): Promise<SigningKey> {
  const pem = await readFile(path, 'utf8').catch((e: Error) => {
    throw err('NAME_UNKNOWN', `cannot read signing key ${path}: ${e.message}`);
  });
  return signingKeyFromPem(pem, await readFile(`${path}.pub`, 'utf8').catch(() => undefined));
}

export function signingKeyFromPem(privatePem: string, publicPem?: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: privatePem, format: 'pem' });
  } catch (e) {
    throw err('UNSUPPORTED', `not a PEM private key: ${(e as Error).message}`);
  }
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw err('UNSUPPORTED', 'signing key must be ECDSA P-256 (customs keygen writes one)');
  }
  const publicKey = createPublicKey(privateKey);
  if (publicPem !== undefined) {
    const declared = createPublicKey(publicPem);
    if (keyHint(declared) !== keyHint(publicKey)) throw err('UNSUPPORTED', 'the .pub file beside the key is not its public key');
  }
  return { privateKey, publicKey, hint: keyHint(publicKey) };
}

export interface Subject {
  readonly name: string;
  readonly digest: Record<string, string>;
}

export interface Statement {
  readonly _type: typeof InToto.statementV1;
  readonly subject: readonly Subject[];
  readonly predicateType: string;
  readonly predicate: unknown;
}

/** An in-toto subject for an OCI manifest: its name and `sha256` digest. */
export function ociSubject(name: string, digest: Digest): Subject {
  const p = parseDigest(digest);
  return { name, digest: { [p.algorithm]: p.hex } };
}

export function statement(subject: Subject, predicateType: string, predicate: unknown): Statement {
  return { _type: InToto.statementV1, subject: [subject], predicateType, predicate };
}

/** DSSE pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body. */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.byteLength} `), type, Buffer.from(` ${payload.byteLength} `), payload]);
}

export interface DsseEnvelope {
  readonly payload: string;
  readonly payloadType: string;
  readonly signatures: readonly { readonly sig: string; readonly keyid: string }[];
}

export function signDsse(payload: Buffer, payloadType: string, key: SigningKey): DsseEnvelope {
  // ECDSA over SHA-256, DER-encoded signature: what sigstore verifiers expect for P-256.
  const sig = cryptoSign('sha256', pae(payloadType, payload), key.privateKey);
  return { payload: payload.toString('base64'), payloadType, signatures: [{ sig: sig.toString('base64'), keyid: '' }] };
}

export interface SigstoreBundle {
  readonly mediaType: typeof Sigstore.bundleV03;
  readonly verificationMaterial: { readonly publicKey: { readonly hint: string }; readonly tlogEntries: readonly unknown[] };
  readonly dsseEnvelope: DsseEnvelope;
}

/** Signs a statement and wraps it in a sigstore bundle v0.3. */
export function signStatement(st: Statement, key: SigningKey): SigstoreBundle {
  const envelope = signDsse(Buffer.from(JSON.stringify(st)), InToto.payloadType, key);
  return {
    mediaType: Sigstore.bundleV03,
    verificationMaterial: { publicKey: { hint: key.hint }, tlogEntries: [] },
    dsseEnvelope: envelope,
  };
}

/** The statement cosign v3 signs for an image or artifact: predicate `{}` over the manifest digest. */
export const cosignSignStatement = (subject: Subject): Statement => statement(subject, Sigstore.cosignSignPredicate, {});
