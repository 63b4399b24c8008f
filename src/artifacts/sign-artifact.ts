import { parseRepoReference, referenceString, type Descriptor } from '../oci/index.js';
import type { RegistryClient } from './client.js';
import { creationTime } from './push.js';
import { pushBundle, type PushedReferrer } from './referrers.js';
import { cosignSignStatement, ociSubject, signStatement, type SigningKey } from './sign.js';

/**
 * `customs sign <ref> --key`: an operator's signature on content already in the registry (an
 * imported Hub revision, a model someone else pushed), in the layout `push --sign` and
 * `cosign sign --key` (v3, new bundle format) write: a sigstore bundle over the cosign sign
 * statement, pushed as an OCI 1.1 referrer of the manifest. The gate drops the subject's
 * cached verdict when it arrives, so a `signatures` rule accepts it on the next read.
 */
export interface SignedArtifact {
  readonly repository: string;
  readonly subject: Descriptor;
  readonly referrer: PushedReferrer;
}

/** `resolve` finds the subject's descriptor; by default a HEAD, which the gate refuses for content it denies. */
export async function signArtifact(client: RegistryClient, ref: string, key: SigningKey, opts: { created?: string; resolve?: (repository: string, reference: string) => Promise<Descriptor> } = {}): Promise<SignedArtifact> {
  const { repository, reference } = parseRepoReference(ref);
  const subject = await (opts.resolve ?? ((r, x) => client.resolve(r, x)))(repository, referenceString(reference));
  const st = cosignSignStatement(ociSubject(`${client.host}/${repository}`, subject.digest));
  const referrer = await pushBundle(client, repository, subject, signStatement(st, key), st.predicateType, creationTime(opts.created));
  return { repository, subject, referrer };
}
