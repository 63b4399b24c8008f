import { err, type Digest } from '../oci/index.js';
import { hasBlobQuarantineCheck, type ManifestIndex, type QuarantineStore } from '../storage/index.js';
import type { GateDecision, ReadGateLike } from './types.js';

/**
 * A ReadGate decorator that denies quarantined content before the inner gate
 * (the verification gate) is asked. It reads the quarantine table on every
 * request, with no cache of its own, so a quarantine written by any replica
 * takes effect on the next request everywhere.
 *
 * Manifests: a quarantined digest is denied in every repository, by tag and by
 * digest (a tag resolves to a digest before the gate is asked).
 *
 * Blobs: denied when the blob's own digest is quarantined, or when every
 * manifest in that repository that references it is quarantined. A blob that a
 * non-quarantined manifest also references (the empty config `{}`, a shared base
 * layer) stays readable through that manifest, and the inner gate decides whether
 * that manifest is allowed; otherwise quarantining one model would break every
 * artifact sharing a layer with it. To stop a shared layer everywhere, quarantine
 * the layer's digest itself. A blob no manifest references (an upload not yet
 * committed by a manifest) is left to the inner gate.
 */
export class QuarantineGate implements ReadGateLike {
  constructor(
    private readonly inner: ReadGateLike,
    private readonly store: QuarantineStore & Pick<ManifestIndex, 'manifestsReferencing'>,
  ) {}

  async manifest(repository: string, digest: Digest): Promise<GateDecision> {
    if ((await this.store.quarantinedAmong([digest])).length > 0) throw denied(digest, 'manifest');
    return this.inner.manifest(repository, digest);
  }

  async blob(repository: string, digest: Digest): Promise<GateDecision> {
    if (hasBlobQuarantineCheck(this.store)) {
      const s = await this.store.blobQuarantine(repository, digest);
      if (s.self) throw denied(digest, 'blob');
      if (s.anyOwner && !s.cleanOwner) throw denied(digest, 'blob', []);
      return this.inner.blob(repository, digest);
    }
    const owners = await this.store.manifestsReferencing(repository, digest);
    const q = await this.store.quarantinedAmong([digest, ...owners]);
    if (q.includes(digest)) throw denied(digest, 'blob');
    if (owners.length > 0 && q.length === owners.length) throw denied(digest, 'blob', q);
    return this.inner.blob(repository, digest);
  }

  invalidate(subject: Digest): void {
    this.inner.invalidate(subject);
  }
}

function denied(digest: Digest, what: 'manifest' | 'blob', via?: Digest[]): Error {
  const msg = via
    ? `blob ${digest} belongs only to quarantined manifests${via.length ? ` (${via.join(', ')})` : ''}; it is not served`
    : `${what} ${digest} is quarantined; it is not served`;
  return err('DENIED', msg, { quarantined: via?.length ? via : [digest] });
}
