/**
 * Optional capability: verdicts persisted next to the metadata, so a restart (or
 * another replica) does not re-verify everything. Verdicts are opaque JSON here;
 * the key names the repository, digest, policy hash and trust hash, so a policy
 * or key change simply stops matching old rows.
 */
export interface VerdictStore {
  loadVerdict(key: string): Promise<string | undefined>;
  saveVerdict(key: string, digest: string, json: string): Promise<void>;
  /** Drops every verdict about `digest` (a referrer arrived or left, a quarantine changed). */
  deleteVerdicts(digest: string): Promise<void>;
  deleteAllVerdicts(): Promise<void>;
}

export const hasVerdictStore = (s: object): s is VerdictStore =>
  typeof (s as Partial<VerdictStore>).loadVerdict === 'function' && typeof (s as Partial<VerdictStore>).saveVerdict === 'function';
