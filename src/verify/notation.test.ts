import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { authorities, subjectContext, VECTORS } from '../../test/helpers/verify.js';
import type { SubjectContext } from './evidence.js';
import { verifyNotationJws } from './notation.js';

const N = join(VECTORS, 'notation');
const ROOT = { x509: { roots: join(N, 'truststore/NotationTestRoot.pem') } };
const ALPINE = { x509: { roots: join(N, 'truststore/alpine-selfsigned-from-jws-x5c.pem') } };

/** The mock envelopes sign a 528-byte docker manifest not in the vectors: only its digest and size matter here. */
const mockTarget = (auth: typeof ROOT): SubjectContext & { mediaType: string } => ({
  digest: 'sha256:60043cf45eaebc4c0867fea485a039b598f52fd09fd5b07b0b2d2f88fad9d74e',
  bytes: Buffer.alloc(528),
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  authorities: authorities([auth]),
  now: new Date(),
});

describe('notation JWS (vectors/notation, CHECK-RESULTS.txt)', () => {
  const manifest = readFileSync(join(N, 'oci-layout/blobs/sha256/19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0'));
  it('jws_signature.sig verifies against its self-signed signer as trust store', () => {
    const ctx = { ...subjectContext(manifest, authorities([ALPINE])), mediaType: 'application/vnd.oci.image.manifest.v1+json' };
    expect(createHash('sha256').update(manifest).digest('hex')).toBe('19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0');
    const o = verifyNotationJws(readFileSync(join(N, 'jws_signature.sig')), ctx)[0]!;
    expect(o.ok ? 'ok' : o.reason).toBe('ok');
  });
  it('jws_signature.sig is denied under an unrelated trust store (unknown key)', () => {
    const ctx = subjectContext(manifest, authorities([ROOT]));
    expect(verifyNotationJws(readFileSync(join(N, 'jws_signature.sig')), ctx)[0]!.ok).toBe(false);
  });
  it('jws_signature.sig is denied for another manifest (wrong subject)', () => {
    const ctx = subjectContext(Buffer.concat([manifest, Buffer.from('\n')]), authorities([ALPINE]));
    expect(verifyNotationJws(readFileSync(join(N, 'jws_signature.sig')), ctx)[0]).toMatchObject({ ok: false, reason: expect.stringMatching(/does not match/) });
  });
  for (const scheme of ['ca', 'sa']) {
    it(`${scheme}_valid: accepted through NotationTestRoot`, () => {
      const o = verifyNotationJws(readFileSync(join(N, `mock-envelopes/${scheme}_valid_sig_env.json`)), mockTarget(ROOT))[0]!;
      expect(o.ok ? 'ok' : o.reason).toBe('ok');
    });
    it(`${scheme}_invalid: tampered signature denied`, () => {
      expect(verifyNotationJws(readFileSync(join(N, `mock-envelopes/${scheme}_invalid_sig_env.json`)), mockTarget(ROOT))[0]).toMatchObject({ ok: false, reason: expect.stringMatching(/signature/) });
    });
    it(`${scheme}_expired: denied, io.cncf.notary.expiry is past`, () => {
      expect(verifyNotationJws(readFileSync(join(N, `mock-envelopes/${scheme}_expired_sig_env.json`)), mockTarget(ROOT))[0]).toMatchObject({ ok: false, reason: expect.stringMatching(/expired/) });
    });
    it(`${scheme}_valid: denied with another trust store`, () => {
      expect(verifyNotationJws(readFileSync(join(N, `mock-envelopes/${scheme}_valid_sig_env.json`)), mockTarget(ALPINE))[0]!.ok).toBe(false);
    });
  }
  it('a COSE envelope is not a JWS', () => {
    expect(verifyNotationJws(readFileSync(join(N, 'cose_signature.sig')), mockTarget(ROOT))[0]!.ok).toBe(false);
  });
});
