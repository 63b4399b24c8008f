import { createPublicKey, sign, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VECTORS } from '../../test/helpers/verify.js';
import { writeKeyPair } from './keygen.js';
import { defaultPolicy } from './policy.js';
import { loadTrust, parseSigstoreRoot, trustKeysDir } from './trust.js';

describe('keygen and trust material', () => {
  it('writes a P-256 pair, private key 0600, refuses to overwrite', () => {
    const dir = mkdtempSync(join(tmpdir(), 'customs-keys-'));
    const files = { privateKeyPath: join(dir, 'private', 'customs.key'), publicKeyPath: join(dir, 'trust', 'keys', 'customs.pub') };
    writeKeyPair(files);
    expect(statSync(files.privateKeyPath).mode & 0o777).toBe(0o600);
    const pub = createPublicKey(readFileSync(files.publicKeyPath, 'utf8'));
    expect(pub.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const sig = sign('sha256', Buffer.from('x'), readFileSync(files.privateKeyPath, 'utf8'));
    expect(verify('sha256', Buffer.from('x'), pub, sig)).toBe(true);
    expect(() => writeKeyPair(files)).toThrow(/EEXIST/);
  });
  it('the trust hash changes when a key is added to <data>/trust/keys', () => {
    const data = mkdtempSync(join(tmpdir(), 'customs-data-'));
    const empty = loadTrust(defaultPolicy(), { dataDir: data });
    mkdirSync(trustKeysDir(data), { recursive: true });
    writeFileSync(join(trustKeysDir(data), 'a.pub'), readFileSync(join(VECTORS, 'synthetic/key1.pub.pem')));
    const one = loadTrust(defaultPolicy(), { dataDir: data });
    expect(one.hash).not.toBe(empty.hash);
    const a = one.authority(defaultPolicy().rules[0]!.signatures!.authorities[0]!);
    expect(a.kind === 'keys' && a.keys.length).toBe(1);
  });
  it('validates the shape of trusted_root.json', () => {
    expect(() => parseSigstoreRoot(readFileSync(join(VECTORS, 'cosign-bundle/trusted_root_pgi.json')))).not.toThrow();
    expect(() => parseSigstoreRoot('{"mediaType":"x"}', 'root.json')).toThrow(/root\.json: mediaType/);
    expect(() => parseSigstoreRoot(JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [{ baseUrl: 'x' }] }))).toThrow(/tlogs\.0/);
  });
});
