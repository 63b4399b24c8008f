import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface KeyPairFiles {
  privateKeyPath: string;
  publicKeyPath: string;
}

/** Generates an ECDSA P-256 pair (what cosign uses): PKCS#8 private key, SPKI public key, both PEM. */
export function generateKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/**
 * `customs keygen`: writes the pair; the private key is created with mode 0600 (never
 * world-readable, not even for an instant) and the call fails rather than overwrite one.
 */
export function writeKeyPair(files: KeyPairFiles): { publicKeyPem: string } {
  const { privateKeyPem, publicKeyPem } = generateKeyPair();
  mkdirSync(dirname(files.privateKeyPath), { recursive: true, mode: 0o700 });
  mkdirSync(dirname(files.publicKeyPath), { recursive: true });
  writeFileSync(files.privateKeyPath, privateKeyPem, { mode: 0o600, flag: 'wx' });
  writeFileSync(files.publicKeyPath, publicKeyPem, { mode: 0o644, flag: 'wx' });
  return { publicKeyPem };
}
