import { signArtifact, type SignedArtifact } from '../../artifacts/sign-artifact.js';
import { loadSigningKey } from '../../artifacts/sign.js';
import { isRegistryError, type Descriptor } from '../../oci/index.js';
import { adminGet, targetFrom } from '../ops/client.js';
import { clientFor, stdio, type ConnectionOptions, type Output } from './common.js';

export interface SignCliOptions extends ConnectionOptions {
  readonly key: string;
  readonly created?: string;
  readonly json?: boolean;
}

/**
 * `customs sign <ref> --key <file>`; prints the signature's digest. The subject is found with
 * a HEAD; content the gate denies (the usual reason to sign it) answers 403 there, so the
 * descriptor then comes from `GET /admin/resolve`, which needs the admin permission.
 */
export async function signCommand(ref: string, opts: SignCliOptions, io: Output = stdio): Promise<SignedArtifact> {
  const key = await loadSigningKey(opts.key);
  const client = clientFor(opts);
  const resolve = async (repository: string, reference: string): Promise<Descriptor> => {
    try {
      return await client.resolve(repository, reference);
    } catch (e) {
      if (!isRegistryError(e) || e.code !== 'DENIED') throw e;
      return adminGet<Descriptor>(targetFrom(opts), '/resolve', { repository, reference });
    }
  };
  const r = await signArtifact(client, ref, key, { resolve, ...(opts.created ? { created: opts.created } : {}) });
  if (opts.json) io.out(JSON.stringify({ repository: r.repository, subject: r.subject.digest, signature: r.referrer.digest }, null, 2));
  else {
    io.err(`signed ${r.repository}@${r.subject.digest} with key ${key.hint}`);
    io.out(r.referrer.digest);
  }
  return r;
}
