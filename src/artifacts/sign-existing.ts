import { parseRepoReference, referenceString } from '../oci/index.js';
import type { RegistryClient } from './client.js';
import { creationTime } from './push.js';
import { pushBundle, type PushedReferrer } from './referrers.js';
import { cosignSignStatement, ociSubject, signStatement, type SigningKey } from './sign.js';

export interface SignedArtifact extends PushedReferrer {
  readonly repository: string;
  readonly subject: string;
}

/**
 * Signs what `ref` names in the registry, as `cosign sign --key` (v3, bundle format) does, and pushes
 * the signature as a referrer. The digest comes from the metadata route (src/artifacts/client.ts,
 * resolveName), not from reading the manifest: content the gate does not serve yet, because it is not
 * signed yet, can be signed (cosign GETs the manifest, which the gate refuses).
 */
export async function signArtifact(client: RegistryClient, ref: string, key: SigningKey, created?: string): Promise<SignedArtifact> {
  const { repository, reference } = parseRepoReference(ref);
  const subject = await client.resolveName(repository, referenceString(reference));
  const st = cosignSignStatement(ociSubject(`${client.host}/${repository}`, subject.digest));
  const pushed = await pushBundle(client, repository, subject, signStatement(st, key), st.predicateType, creationTime(created));
  return { ...pushed, repository, subject: subject.digest };
}
