import { generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { signingKeyFromPem, type SigningKey } from '../artifacts/sign.js';

/** Where customs keeps the key it signs verification summaries with, unless `vsa.keyFile` says otherwise. */
export const defaultVerifierKeyFile = (dataDir: string): string => join(dataDir, 'trust', 'verifier.key');

/**
 * Loads customs' verifier key, generating it on first use: an ECDSA P-256 key written 0600 beside its
 * public key (`verifier.pub`, which is not in `trust/keys/`: the key vouches for summaries, not for
 * content). Two processes starting at once both end with the one that was renamed into place first.
 */
export async function loadVerifierKey(file: string): Promise<SigningKey> {
  const existing = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw new Error(`cannot read the verifier key ${file}: ${e.code ?? e.message}`);
  });
  if (existing !== undefined) return asKey(existing, file);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  await rename(tmp, file);
  const key = asKey(await readFile(file, 'utf8'), file);
  // From the file that won the rename, so the two always match.
  await writeFile(publicKeyFile(file), publicKeyPem(key), { mode: 0o644 });
  return key;
}

export const publicKeyFile = (keyFile: string): string => keyFile.replace(/\.key$/, '') + '.pub';
export const publicKeyPem = (key: SigningKey): string => key.publicKey.export({ type: 'spki', format: 'pem' }).toString();

function asKey(pem: string, file: string): SigningKey {
  try {
    return signingKeyFromPem(pem);
  } catch (e) {
    throw new Error(`the verifier key ${file} is unusable: ${(e as Error).message}`);
  }
}
