import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { authorities, subjectContext, VECTORS } from '../../test/helpers/verify.js';
import { pae } from './crypto.js';
import { verifyCosignAttestationLayer, verifyCosignSignatureLayer, type LegacyLayer } from './cosign-legacy.js';
import type { AuthorityInput } from './policy.js';

const D = join(VECTORS, 'cosign-legacy');
const PGI = join(VECTORS, 'cosign-bundle/trusted_root_pgi.json');

/** containers/image "dir" signature files: `\0sigstore-json\n` + {mimeType, payload, annotations}. */
function layerOf(file: string): LegacyLayer {
  const raw = readFileSync(file);
  const prefix = '\0sigstore-json\n';
  expect(raw.subarray(0, prefix.length).toString()).toBe(prefix);
  const j = JSON.parse(raw.subarray(prefix.length).toString()) as { mimeType: string; payload: string; annotations: Record<string, string> };
  return { mediaType: j.mimeType, annotations: j.annotations, blob: Buffer.from(j.payload, 'base64') };
}
const manifest = (dir: string): Buffer => readFileSync(join(D, dir, 'manifest.json'));
const check = (dir: string, sig: string, auth: AuthorityInput[]) => verifyCosignSignatureLayer(layerOf(join(D, dir, sig)), subjectContext(manifest(dir), authorities(auth)));
const COSIGN: AuthorityInput = { key: join(D, 'cosign.pub') };

describe('cosign legacy .sig (vectors/cosign-legacy, containers/image expectations)', () => {
  it('dir-img-cosign-valid: accepted with cosign.pub', () => {
    expect(check('dir-img-cosign-valid', 'signature-1', [COSIGN])[0]).toMatchObject({ ok: true });
  });
  it('dir-img-cosign-valid-2: both signatures accepted', () => {
    for (const s of ['signature-1', 'signature-2']) expect(check('dir-img-cosign-valid-2', s, [COSIGN])[0]!.ok).toBe(true);
  });
  it('dir-img-cosign-valid-with-tag: accepted', () => {
    expect(check('dir-img-cosign-valid-with-tag', 'signature-1', [COSIGN])[0]!.ok).toBe(true);
  });
  it('dir-img-cosign-key-rekor-valid: accepted with cosign2.pub and a verified Rekor SET', () => {
    expect(check('dir-img-cosign-key-rekor-valid', 'signature-1', [{ key: join(D, 'cosign2.pub'), trustedRoot: PGI, tlogThreshold: 1 }])[0]!.ok).toBe(true);
    expect(check('dir-img-cosign-key-rekor-valid', 'signature-1', [{ key: join(D, 'cosign.pub'), trustedRoot: PGI, tlogThreshold: 1 }])[0]!.ok).toBe(false);
  });
  it('dir-img-cosign-fulcio-rekor-valid: accepted for mitr@redhat.com, rejected for anyone else', () => {
    const keyless = (subject: string): AuthorityInput[] => [{ keyless: { issuer: 'https://github.com/login/oauth', subject }, trustedRoot: PGI }];
    const o = check('dir-img-cosign-fulcio-rekor-valid', 'signature-1', keyless('mitr@redhat.com'))[0]!;
    expect(o.ok ? 'ok' : o.reason).toBe('ok');
    expect(check('dir-img-cosign-fulcio-rekor-valid', 'signature-1', keyless('someone@redhat.com'))[0]!.ok).toBe(false);
  });
  it('dir-img-cosign-pki-valid: accepted through the PKI roots for qiwan@redhat.com', () => {
    const pki = (subject: string): AuthorityInput[] => [{ x509: { roots: join(D, 'pki_root_crts.pem'), subject } }];
    expect(check('dir-img-cosign-pki-valid', 'signature-1', pki('qiwan@redhat.com'))[0]).toMatchObject({ ok: true });
    expect(check('dir-img-cosign-pki-valid', 'signature-1', pki('mitr@redhat.com'))[0]!.ok).toBe(false);
    expect(check('dir-img-cosign-pki-valid', 'signature-1', [{ x509: { roots: join(D, 'fulcio_v1.crt.pem') } }])[0]!.ok).toBe(false);
  });
  for (const dir of ['dir-img-cosign-modified-manifest', 'dir-img-cosign-manifest-digest-error']) {
    it(`${dir}: rejected, the signed digest is not the manifest's`, () => {
      expect(check(dir, 'signature-1', [COSIGN])[0]).toMatchObject({ ok: false, reason: expect.stringMatching(/does not match the served manifest/) });
    });
  }
  it('dir-img-cosign-other-attachment: rejected, text/plain is not a signature', () => {
    expect(check('dir-img-cosign-other-attachment', 'signature-1', [COSIGN])[0]).toMatchObject({ ok: false, reason: expect.stringMatching(/text\/plain/) });
  });
  it('unknown-cosign-key.signature: rejected', () => {
    const l = layerOf(join(D, 'unknown-cosign-key.signature'));
    const out = verifyCosignSignatureLayer(l, subjectContext(manifest('dir-img-cosign-valid'), authorities([COSIGN])));
    expect(out[0]!.ok).toBe(false);
  });
  it('rejects a payload with a duplicate docker-manifest-digest key, even when correctly signed', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const m = manifest('dir-img-cosign-valid');
    const digest = JSON.parse(readFileSync(join(D, 'dir-img-cosign-valid/derived-signature-1.payload'), 'utf8')).critical.image['docker-manifest-digest'];
    const payload = `{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"sha256:${'0'.repeat(64)}","docker-manifest-digest":"${digest}"},"type":"cosign container image signature"},"optional":null}`;
    const layer = (p: string): LegacyLayer => ({ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', blob: Buffer.from(p), annotations: { 'dev.cosignproject.cosign/signature': sign('sha256', Buffer.from(p), privateKey).toString('base64') } });
    const auth = authorities([{ key: publicKey.export({ type: 'spki', format: 'pem' }).toString() }]);
    expect(verifyCosignSignatureLayer(layer(payload), subjectContext(m, auth))[0]).toMatchObject({ ok: false, reason: expect.stringMatching(/duplicate key/) });
    const single = payload.replace(`"docker-manifest-digest":"sha256:${'0'.repeat(64)}",`, '');
    expect(verifyCosignSignatureLayer(layer(single), subjectContext(m, auth))[0]!.ok).toBe(true);
    // Exact match: an upper-cased digest is another string.
    expect(verifyCosignSignatureLayer(layer(single.replace(digest, digest.toUpperCase())), subjectContext(m, auth))[0]!.ok).toBe(false);
  });
});

describe('cosign legacy .att DSSE layers', () => {
  it('parses the upstream envelopes and rejects them (no key, and their subject is another image)', () => {
    for (const f of readdirSync(join(D, 'att-layer-dsse'))) {
      const layer: LegacyLayer = { mediaType: 'application/vnd.dsse.envelope.v1+json', annotations: {}, blob: readFileSync(join(D, 'att-layer-dsse', f)) };
      const out = verifyCosignAttestationLayer(layer, subjectContext(manifest('dir-img-cosign-valid'), authorities([COSIGN])));
      expect(out[0]!.ok).toBe(false);
    }
  });
  it('accepts an envelope signed here for the served manifest, rejects it for another', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const m = manifest('dir-img-cosign-valid');
    const hex = createHash('sha256').update(m).digest('hex');
    const st = Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v0.1', subject: [{ name: 'x', digest: { sha256: hex } }], predicateType: 'https://example.com/p/v1', predicate: {} }));
    const env = { payloadType: 'application/vnd.in-toto+json', payload: st.toString('base64'), signatures: [{ keyid: '', sig: sign('sha256', pae('application/vnd.in-toto+json', st), privateKey).toString('base64') }] };
    const layer: LegacyLayer = { mediaType: 'application/vnd.dsse.envelope.v1+json', annotations: {}, blob: Buffer.from(JSON.stringify(env)) };
    const auth = authorities([{ key: publicKey.export({ type: 'spki', format: 'pem' }).toString() }]);
    const [o] = verifyCosignAttestationLayer(layer, subjectContext(m, auth));
    expect(o).toMatchObject({ ok: true });
    expect(verifyCosignAttestationLayer(layer, subjectContext(manifest('dir-img-cosign-pki-valid'), auth))[0]!.ok).toBe(false);
  });
});
