import type { Digest, Reference } from '../oci/index.js';
import type { DeepReport } from '../ops/index.js';
import type { ConsoleDeps } from './deps.js';
import { requirePermission, type Viewer } from './viewer.js';

/**
 * The console's state-changing actions: each asks the permission the matching /admin/ or
 * /v2/ route asks, then calls the same service, with the signed-in principal as the actor
 * (the store writes the audit entry in the change's own transaction).
 */
export async function pin(d: ConsoleDeps, v: Viewer, repository: string, tag: string, digest: Digest | undefined, reason: string): Promise<string> {
  requirePermission(v, repository, 'admin');
  const r = await d.ops.tags.pin(repository, tag, digest, { actor: v.actor, reason });
  return `Pinned ${repository}:${tag} to ${r.pin.digest}.`;
}

export async function unpin(d: ConsoleDeps, v: Viewer, repository: string, tag: string, reason: string): Promise<string> {
  requirePermission(v, repository, 'admin');
  await d.ops.tags.unpin(repository, tag, { actor: v.actor, reason });
  return `Unpinned ${repository}:${tag}.`;
}

export async function quarantine(d: ConsoleDeps, v: Viewer, digest: Digest, reason: string): Promise<string> {
  requirePermission(v, undefined, 'admin'); // as POST /admin/quarantine: quarantine is global
  const added = await d.ops.quarantine.quarantine(digest, { actor: v.actor, reason });
  return added ? `Quarantined ${digest}: no repository serves it now.` : `${digest} was already quarantined.`;
}

export async function release(d: ConsoleDeps, v: Viewer, digest: Digest, reason: string): Promise<string> {
  requirePermission(v, undefined, 'admin');
  await d.ops.quarantine.release(digest, { actor: v.actor, reason });
  return `Released ${digest} from quarantine.`;
}

export async function rollback(d: ConsoleDeps, v: Viewer, repository: string, tag: string, to: Digest, reason: string): Promise<string> {
  requirePermission(v, repository, 'admin');
  const r = await d.ops.tags.rollback(repository, tag, { to, pin: true }, { actor: v.actor, reason });
  return `Rolled ${repository}:${tag} back to ${r.to}${r.pinned ? ' and pinned it there' : ''}.`;
}

/** DELETE of a manifest by digest, as the Distribution API does it (needs `delete`, not `admin`). */
export async function remove(d: ConsoleDeps, v: Viewer, repository: string, digest: Digest, reason: string): Promise<string> {
  requirePermission(v, repository, 'delete');
  const reference: Reference = { kind: 'digest', digest };
  await d.deleteManifest(repository, reference, { actor: v.actor, reason });
  return `Deleted ${repository}@${digest} and every tag that pointed at it.`;
}

/** `customs verify --deep`: re-hashes from storage and re-runs the gate; recorded like POST /admin/verify/deep. */
export async function deepVerify(d: ConsoleDeps, v: Viewer, repository: string, reference: Reference): Promise<DeepReport> {
  requirePermission(v, repository, 'admin');
  const report = await d.ops.deep.verify(repository, reference);
  await d.ops.audit.record({
    actor: v.actor,
    action: 'verify.deep',
    repository,
    target: `${repository}@${report.digest}`,
    detail: { ok: report.ok, failed: report.checks.filter((x) => !x.ok).map((x) => `${x.kind} ${x.digest}: ${x.detail}`).slice(0, 50) },
  });
  return report;
}
