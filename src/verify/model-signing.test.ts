import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ImageManifest } from '../oci/schemas.js';
import type { SubjectContext } from './evidence.js';
import type { AuthorityInput } from './policy.js';
import { authorities, publicGoodRoot } from '../../test/helpers/verify.js';
import { verifySigstoreBundle } from './sigstore.js';

/**
 * OpenSSF model-signing bundles (vectors/model-signing): the files of each set become the
 * layers of a ModelPack-style manifest; the signature must verify AND cover exactly those layers.
 */
const V = '/work/shared/vectors/model-signing';
const hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function manifestFor(set: string, files: string[]): { ctx: (a: AuthorityInput[]) => SubjectContext; manifest: ImageManifest } {
  const layers = files.map((f) => {
    const b = readFileSync(join(V, set, f));
    return { mediaType: 'application/vnd.cncf.model.weight.v1.raw', digest: `sha256:${hex(b)}` as `${string}:${string}`, size: b.length, annotations: { 'org.cncf.model.filepath': f } };
  });
  const manifest = { schemaVersion: 2 as const, mediaType: 'application/vnd.oci.image.manifest.v1+json' as const, config: { mediaType: 'application/vnd.cncf.model.config.v1+json', digest: `sha256:${'1'.repeat(64)}` as `${string}:${string}`, size: 2 }, layers };
  const bytes = Buffer.from(JSON.stringify(manifest));
  return { manifest, ctx: (a) => ({ digest: `sha256:${hex(bytes)}`, bytes, manifest, authorities: authorities(a, '/nonexistent'), now: new Date() }) };
}

const filesOf = (set: string): string[] => ['signme-1', 'signme-2'].filter((f) => existsSync(join(V, set, f)));
const sig = (set: string): Buffer => readFileSync(join(V, set, 'model.sig'));
const KEY: AuthorityInput = { key: join(V, 'keys/certificate/signing-key-pub.pem') };
const CA: AuthorityInput = { x509: { roots: join(V, 'keys/certificate/ca-cert.pem') } };
const IBM: AuthorityInput = { keyless: { issuer: 'https://sigstore.verify.ibm.com/oauth2', subject: 'stefanb@us.ibm.com' }, trustedRoot: publicGoodRoot() };

describe('model-signing', () => {
  for (const set of ['v0.3.1-elliptic-key', 'v1.0.0-elliptic-key', 'v1.1.0-elliptic-key']) {
    it(`${set}: P-384 key verifies with SHA-384 and binds to the layers`, () => {
      const { ctx } = manifestFor(set, filesOf(set));
      const out = verifySigstoreBundle(sig(set), ctx([KEY]));
      expect(out[0]).toMatchObject({ ok: true });
    });
  }
  for (const set of ['v1.0.0-certificate', 'v1.1.0-certificate']) {
    it(`${set}: chains to the CA trust store`, () => {
      const { ctx } = manifestFor(set, filesOf(set));
      expect(verifySigstoreBundle(sig(set), ctx([CA]))[0]).toMatchObject({ ok: true });
    });
  }
  for (const set of ['v1.0.0-sigstore', 'v1.1.0-sigstore']) {
    it(`${set}: keyless identity on the public-good instance`, () => {
      const { ctx } = manifestFor(set, filesOf(set));
      const o = verifySigstoreBundle(sig(set), ctx([IBM]))[0]!;
      expect(o.ok ? 'ok' : o.reason).toBe('ok');
    });
  }
  it('denies a manifest with an extra unsigned layer', () => {
    const set = 'v1.1.0-elliptic-key';
    const { ctx } = manifestFor(set, [...filesOf(set), 'ignore-me']);
    expect(verifySigstoreBundle(sig(set), ctx([KEY]))[0]).toMatchObject({ ok: false, reason: expect.stringMatching(/ignore-me is not covered/) });
  });
  it('denies a manifest missing a signed layer', () => {
    const set = 'v1.1.0-elliptic-key';
    const { ctx } = manifestFor(set, ['signme-1']);
    expect(verifySigstoreBundle(sig(set), ctx([KEY]))[0]!.ok).toBe(false);
  });
  it('denies the key sets under an unknown key and the certificate sets under another root', () => {
    const set = 'v1.1.0-elliptic-key';
    expect(verifySigstoreBundle(sig(set), manifestFor(set, filesOf(set)).ctx([{ key: '/work/shared/vectors/synthetic/key1.pub.pem' }]))[0]!.ok).toBe(false);
    const c = 'v1.1.0-certificate';
    expect(verifySigstoreBundle(sig(c), manifestFor(c, filesOf(c)).ctx([{ x509: { roots: '/work/shared/vectors/notation/truststore/NotationTestRoot.pem' } }]))[0]!.ok).toBe(false);
  });
});
