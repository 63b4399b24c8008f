import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SubjectContext } from './evidence.js';
import { authorities, sha256, subjectContext, VECTORS } from '../../test/helpers/verify.js';
import type { AuthorityInput } from './policy.js';
import { verifySigstoreBundle } from './sigstore.js';
import type { ResolvedAuthority } from './trust.js';

const read = (p: string): Buffer => readFileSync(join(VECTORS, p));
const sha = sha256;
const ctxFor = subjectContext;

describe('synthetic sigstore bundles (vectors/synthetic, expected.json)', () => {
  const manifest = read('synthetic/modelpack-manifest.json');
  const key1 = authorities([{ key: 'synthetic/key1.pub.pem' }]);
  const key2 = authorities([{ key: 'synthetic/key2-other.pub.pem' }]);
  it('accepts the message signature over the manifest bytes', () => {
    const out = verifySigstoreBundle(read('synthetic/msg-valid.sigstore.json'), ctxFor(manifest, key1));
    expect(out.map((o) => o.ok)).toEqual([true]);
  });
  it('rejects the message signature for other bytes and for an unknown key', () => {
    const other = Buffer.concat([manifest, Buffer.from(' ')]);
    expect(verifySigstoreBundle(read('synthetic/msg-valid.sigstore.json'), ctxFor(other, key1))[0]).toMatchObject({ ok: false, reason: expect.stringMatching(/digest does not match/) });
    expect(verifySigstoreBundle(read('synthetic/msg-valid.sigstore.json'), ctxFor(manifest, key2))[0]!.ok).toBe(false);
  });
  it('accepts the valid DSSE SLSA statement bound to the manifest', () => {
    const [o] = verifySigstoreBundle(read('synthetic/dsse-slsa-training-valid.sigstore.json'), ctxFor(manifest, key1));
    expect(o).toMatchObject({ ok: true });
    expect(o!.ok && o!.statement?.predicateType).toBe('https://slsa.dev/provenance/v1');
  });
  for (const f of ['tampered-payload', 'payloadtype-swapped', 'signed-by-other-key']) {
    it(`rejects ${f}`, () => {
      const out = verifySigstoreBundle(read(`synthetic/dsse-slsa-training-${f}.sigstore.json`), ctxFor(manifest, key1));
      expect(out.every((o) => !o.ok)).toBe(true);
    });
  }
  it('rejects wrong-subject although its signature is valid', () => {
    const [o] = verifySigstoreBundle(read('synthetic/dsse-slsa-training-wrong-subject.sigstore.json'), ctxFor(manifest, key1));
    expect(o).toMatchObject({ ok: false, reason: expect.stringMatching(/does not match the served manifest/) });
  });
  it('the referrer blob verifies for the subject its referrer manifest names', () => {
    const ref = JSON.parse(read('synthetic/referrer-manifest.json').toString());
    expect(ref.subject.digest).toBe(sha(manifest));
    const blob = read('synthetic/referrer-bundle-blob.json');
    expect(sha(blob)).toBe(ref.layers[0].digest);
    expect(verifySigstoreBundle(blob, ctxFor(manifest, key1))[0]!.ok).toBe(true);
  });
});

describe('cosign bundle (keyless, public-good root)', () => {
  const bundle = read('cosign-bundle/oci-attestation.sigstore.json');
  const payload = JSON.parse(Buffer.from(JSON.parse(bundle.toString()).dsseEnvelope.payload, 'base64').toString());
  const subject = `sha256:${payload.subject[0].digest.sha256}`;
  const ctx = (auth: ResolvedAuthority[], digest = subject): SubjectContext => ({ digest, bytes: Buffer.alloc(0), authorities: auth, now: new Date() });
  const keyless = (subjectSpec: object): ResolvedAuthority[] =>
    authorities([{ keyless: { issuer: 'https://github.com/login/oauth', ...subjectSpec }, trustedRoot: 'cosign-bundle/trusted_root_pgi.json' } as AuthorityInput]);
  it('accepts the exact identity', () => {
    expect(verifySigstoreBundle(bundle, ctx(keyless({ subject: 'cody@soyland.com' })))[0]).toMatchObject({ ok: true });
  });
  it('anchors identity regexes', () => {
    expect(verifySigstoreBundle(bundle, ctx(keyless({ subjectRegex: '.*@soyland\\.com' })))[0]!.ok).toBe(true);
    expect(verifySigstoreBundle(bundle, ctx(keyless({ subjectRegex: 'cody@soyland' })))[0]!.ok).toBe(false);
    expect(verifySigstoreBundle(bundle, ctx(keyless({ subjectRegex: 'soyland\\.com' })))[0]!.ok).toBe(false);
  });
  it('rejects another identity, another issuer, another subject digest', () => {
    expect(verifySigstoreBundle(bundle, ctx(keyless({ subject: 'someone@else.com' })))[0]!.ok).toBe(false);
    const otherIssuer = authorities([{ keyless: { issuer: 'https://accounts.google.com', subject: 'cody@soyland.com' }, trustedRoot: 'cosign-bundle/trusted_root_pgi.json' }]);
    expect(verifySigstoreBundle(bundle, ctx(otherIssuer))[0]!.ok).toBe(false);
    expect(verifySigstoreBundle(bundle, ctx(keyless({ subject: 'cody@soyland.com' }), `sha256:${'0'.repeat(64)}`))[0]!.ok).toBe(false);
  });
  it('a threshold of two tlog entries is not met by the same entry twice', () => {
    const j = JSON.parse(bundle.toString());
    j.verificationMaterial.tlogEntries.push(j.verificationMaterial.tlogEntries[0]);
    const auth = authorities([{ keyless: { issuer: 'https://github.com/login/oauth', subject: 'cody@soyland.com' }, trustedRoot: 'cosign-bundle/trusted_root_pgi.json', tlogThreshold: 2 }]);
    const [o] = verifySigstoreBundle(Buffer.from(JSON.stringify(j)), ctx(auth));
    expect(o).toMatchObject({ ok: false, reason: expect.stringMatching(/tlog/) });
  });
});

describe('bundles built here with node:crypto', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 }, layers: [] }));
  const msgBundle = (bytes: Buffer): Buffer =>
    Buffer.from(JSON.stringify({
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      verificationMaterial: { publicKey: { hint: '' }, tlogEntries: [] },
      messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(bytes).digest('base64') }, signature: sign('sha256', bytes, privateKey).toString('base64') },
    }));
  it('accepts a fresh message signature and rejects it under an unrelated key', () => {
    expect(verifySigstoreBundle(msgBundle(manifest), ctxFor(manifest, authorities([{ key: pem }])))[0]!.ok).toBe(true);
    expect(verifySigstoreBundle(msgBundle(manifest), ctxFor(manifest, authorities([{ key: 'synthetic/key1.pub.pem' }])))[0]!.ok).toBe(false);
  });
  it('never throws on garbage', () => {
    for (const g of ['', '{}', 'null', '{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}', '[1]']) {
      expect(verifySigstoreBundle(Buffer.from(g), ctxFor(manifest, authorities([{ key: pem }])))[0]!.ok).toBe(false);
    }
  });
});
