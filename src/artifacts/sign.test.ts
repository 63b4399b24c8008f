import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleFromJSON } from '@sigstore/bundle';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { describe, expect, it } from 'vitest';
import { digestOf } from '../oci/index.js';
import { InToto, Sigstore } from './media-types.js';
import { buildModelManifest } from './modelpack.js';
import { buildProvenance } from './provenance.js';
import { cosignSignStatement, keyHint, loadSigningKey, ociSubject, pae, signStatement, signingKeyFromPem, type SigningKey } from './sign.js';

function newKey(): { key: SigningKey; privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { key: signingKeyFromPem(privatePem, publicPem), privatePem, publicPem };
}

/** Verifies a bundle the way a consumer does: @sigstore/verify with the public key as the only trust material. */
function verify(bundleJson: unknown, publicPem: string): void {
  const bundle = bundleFromJSON(bundleJson);
  const pub = createPublicKey(publicPem);
  const hint = keyHint(pub);
  const trust = toTrustMaterial(
    { mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] },
    (h: string) => {
      if (h !== hint) throw new Error(`unknown key hint ${h}`);
      return { publicKey: pub, validFor: () => true };
    },
  );
  new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(bundle));
}

const payloadOf = (b: { dsseEnvelope: { payload: string } }): Record<string, any> => JSON.parse(Buffer.from(b.dsseEnvelope.payload, 'base64').toString('utf8'));

describe('signing', () => {
  const manifest = buildModelManifest(Buffer.from('{}'), [], 'model', '2025-01-01T00:00:00Z');

  it('produces a cosign v3 style bundle that @sigstore/verify accepts, over the manifest digest', () => {
    const { key, publicPem } = newKey();
    const bundle = signStatement(cosignSignStatement(ociSubject('127.0.0.1:5000/models/fraud', manifest.digest)), key);
    expect(bundle.mediaType).toBe(Sigstore.bundleV03);
    expect(bundle.verificationMaterial.publicKey.hint).toBe(key.hint);
    expect(bundle.dsseEnvelope.payloadType).toBe(InToto.payloadType);
    verify(JSON.parse(JSON.stringify(bundle)), publicPem);
    const st = payloadOf(bundle);
    expect(st._type).toBe('https://in-toto.io/Statement/v1');
    expect(st.predicateType).toBe('https://sigstore.dev/cosign/sign/v1');
    // The library does not bind the subject; this is what a verifier must check itself.
    expect(`sha256:${st.subject[0].digest.sha256}`).toBe(manifest.digest);
  });

  it('signs provenance as a DSSE attestation that verifies', () => {
    const { key, publicPem } = newKey();
    const prov = buildProvenance({ subject: ociSubject('x/m', manifest.digest), builderId: 'https://ci.example/b', parameters: { lr: '0.1' }, datasets: [], baseModels: [], finishedOn: '2025-01-01T00:00:00Z' });
    const bundle = signStatement(prov, key);
    verify(JSON.parse(JSON.stringify(bundle)), publicPem);
    expect(payloadOf(bundle).predicateType).toBe('https://slsa.dev/provenance/v1');
  });

  it('fails verification for a tampered payload, a swapped payload type and another key', () => {
    const { key, publicPem } = newKey();
    const bundle = JSON.parse(JSON.stringify(signStatement(cosignSignStatement(ociSubject('x/m', manifest.digest)), key)));
    const st = payloadOf(bundle);
    st.subject[0].digest.sha256 = '0'.repeat(64);
    const tampered = { ...bundle, dsseEnvelope: { ...bundle.dsseEnvelope, payload: Buffer.from(JSON.stringify(st)).toString('base64') } };
    expect(() => verify(tampered, publicPem)).toThrow();
    const swapped = { ...bundle, dsseEnvelope: { ...bundle.dsseEnvelope, payloadType: 'application/json' } };
    expect(() => verify(swapped, publicPem)).toThrow();
    const other = newKey();
    const byOther = JSON.parse(JSON.stringify(signStatement(cosignSignStatement(ociSubject('x/m', manifest.digest)), other.key)));
    byOther.verificationMaterial.publicKey.hint = key.hint; // claims to be our key
    expect(() => verify(byOther, publicPem)).toThrow();
  });

  it('uses the DSSE v1 pre-authentication encoding', () => {
    expect(pae('t', Buffer.from('hello')).toString()).toBe('DSSEv1 1 t 5 hello');
  });

  it('loads a PKCS8 key and checks the .pub beside it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'customs-sign-'));
    const a = newKey();
    const b = newKey();
    await writeFile(join(dir, 'k'), a.privatePem);
    await writeFile(join(dir, 'k.pub'), a.publicPem);
    expect((await loadSigningKey(join(dir, 'k'))).hint).toBe(a.key.hint);
    await writeFile(join(dir, 'k.pub'), b.publicPem);
    await expect(loadSigningKey(join(dir, 'k'))).rejects.toThrow(/not its public key/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(() => signingKeyFromPem(rsa)).toThrow(/P-256/);
    expect(await readFile(join(dir, 'k'), 'utf8')).toContain('BEGIN PRIVATE KEY');
    expect(digestOf('')).toMatch(/^sha256:/);
  });
});
