import type { Digest } from '../oci/index.js';

/**
 * What the registry asks before serving content. The verification gate
 * (src/verify) and quarantine (src/ops) implement it; the default allows all.
 * A denial is thrown as RegistryError('DENIED', ..., findings).
 */
export interface ReadDecision {
  /** Findings served anyway (audit mode); surfaced as a response header. */
  readonly auditFindings?: readonly string[];
}

export interface ReadGate {
  /** May the manifest `digest` in `repository` be served? Throws DENIED when not. */
  manifest(repository: string, digest: Digest): Promise<ReadDecision>;
  /** Optional: the same answer at once when it is "allowed" and everything it rests on is cached; else undefined (ask `manifest`). */
  manifestCached?(repository: string, digest: Digest): ReadDecision | undefined;
  /** May the blob be served in `repository` (it must belong to an allowed manifest or its referrers)? */
  blob(repository: string, digest: Digest): Promise<ReadDecision>;
  /** Content arrived or left for `subject` (a referrer pushed/deleted): drop cached verdicts. */
  invalidate(subject: Digest): void;
}

export const ALLOW_ALL: ReadGate = {
  manifest: async () => ({}),
  blob: async () => ({}),
  invalidate: () => undefined,
};
