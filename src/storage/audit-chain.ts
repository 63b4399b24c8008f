import { createHash } from 'node:crypto';
import type { AuditEntry, AuditInput } from './ops-store.js';

/**
 * The audit log's hash chain, shared by every backend so they hash alike.
 * Each entry's hash covers its own fields and the previous entry's hash, so an
 * edited entry changes its hash, and a removed or reordered one breaks the
 * `prevHash` link or the gap-free sequence of the entry after it.
 */
export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every level and undefined members dropped (RFC 8785-like; values here are strings, numbers, booleans). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const keys = Object.keys(value as Record<string, unknown>)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

export function auditHash(e: Omit<AuditEntry, 'hash'>): string {
  const fields = {
    seq: e.seq,
    at: e.at,
    actor: e.actor,
    action: e.action,
    repository: e.repository,
    target: e.target,
    reason: e.reason,
    detail: e.detail,
    prevHash: e.prevHash,
  };
  return createHash('sha256').update(canonicalJson(fields)).digest('hex');
}

/** Builds the next entry of the chain after `prev` (undefined: the first entry). */
export function chainEntry(prev: Pick<AuditEntry, 'seq' | 'hash'> | undefined, input: AuditInput, at: number): AuditEntry {
  const base = {
    seq: (prev?.seq ?? 0) + 1,
    at,
    actor: input.actor,
    action: input.action,
    repository: input.repository,
    target: input.target,
    reason: input.reason,
    detail: input.detail && Object.keys(input.detail).length > 0 ? input.detail : undefined,
    prevHash: prev?.hash ?? GENESIS_HASH,
  };
  return { ...base, hash: auditHash(base) };
}

export interface ChainProblem {
  readonly seq: number;
  readonly problem: string;
}

export interface ChainReport {
  readonly ok: boolean;
  readonly checked: number;
  /** The last entry's sequence number and hash: record it elsewhere to detect truncation later. */
  readonly head: { readonly seq: number; readonly hash: string } | undefined;
  readonly problems: readonly ChainProblem[];
}

/**
 * Checks a chain read oldest first. `start` is the entry before the first one
 * given (when verifying a suffix). Names each entry whose content was edited,
 * and the entry after a removal or reordering. Truncation of the newest entries
 * is visible only against a head recorded earlier (`expectHead`).
 */
export function verifyAuditChain(
  entries: Iterable<AuditEntry>,
  opts: { start?: Pick<AuditEntry, 'seq' | 'hash'>; expectHead?: { seq: number; hash: string } } = {},
): ChainReport {
  const problems: ChainProblem[] = [];
  let prev = opts.start;
  let checked = 0;
  let expectedSeen = false;
  for (const e of entries) {
    checked++;
    const wantSeq = (prev?.seq ?? 0) + 1;
    if (e.seq > wantSeq) problems.push({ seq: e.seq, problem: `sequence ${e.seq} follows ${prev?.seq ?? 0}: entries ${wantSeq}..${e.seq - 1} were removed or moved` });
    else if (e.seq !== wantSeq) problems.push({ seq: e.seq, problem: `sequence ${e.seq} follows ${prev?.seq ?? 0}: entries were reordered` });
    if (auditHash(e) !== e.hash) problems.push({ seq: e.seq, problem: 'content does not match its hash: the entry was edited' });
    else if (e.prevHash !== (prev?.hash ?? GENESIS_HASH)) problems.push({ seq: e.seq, problem: 'previous-hash link broken: the entry before it was edited, removed or reordered' });
    if (opts.expectHead && e.seq === opts.expectHead.seq) {
      expectedSeen = true;
      if (e.hash !== opts.expectHead.hash) problems.push({ seq: e.seq, problem: `hash differs from the recorded head ${opts.expectHead.hash}` });
    }
    prev = e;
  }
  if (opts.expectHead && !expectedSeen) problems.push({ seq: opts.expectHead.seq, problem: 'the recorded head entry is missing: the log was truncated' });
  return { ok: problems.length === 0, checked, head: prev ? { seq: prev.seq, hash: prev.hash } : undefined, problems };
}
