import { createHash } from 'node:crypto';
import { ZodError } from 'zod';
import type { ImageManifest } from '../oci/schemas.js';
import type { ResolvedAuthority } from './trust.js';
import type { Statement } from './statement.js';

/**
 * What each format verifier returns: per referrer, either one `Signed` per authority
 * that verified it (already bound to the served manifest), or a `Rejected` saying why not.
 * The rule evaluation (evaluate.ts) turns these into findings and counts thresholds.
 */
export interface Signed {
  readonly ok: true;
  readonly format: string;
  readonly authority: string; // ResolvedAuthority.id
  readonly signer: string; // key fingerprint or certificate identity, for findings
  /** Distinct evidence: the same signature seen twice (two referrers, two tags) counts once. */
  readonly evidence: string;
  /** For DSSE/in-toto payloads: the statement, whose subject is bound to the served digest. */
  readonly statement?: Statement;
}

export interface Rejected {
  readonly ok: false;
  readonly format: string;
  readonly reason: string;
}

export type Outcome = Signed | Rejected;

/** What every verifier knows about the content being served. */
export interface SubjectContext {
  /** The digest being served, e.g. `sha256:...`. */
  readonly digest: string;
  readonly bytes: Buffer;
  /** Parsed image manifest when it is one (model-signing binds to its layers). */
  readonly manifest?: ImageManifest;
  readonly authorities: readonly ResolvedAuthority[];
  readonly now: Date;
}

export const evidenceId = (sig: Uint8Array | string): string => createHash('sha256').update(sig).digest('hex');

export const rejected = (format: string, reason: string): Rejected => ({ ok: false, format, reason });

/** Runs a verifier body; anything thrown becomes a rejection (fail closed). */
export function guarded(format: string, fn: () => Outcome[]): Outcome[] {
  try {
    const out = fn();
    return out.length > 0 ? out : [rejected(format, 'no signature verified')];
  } catch (e) {
    return [rejected(format, errorText(e))];
  }
}

export function errorText(e: unknown): string {
  if (e instanceof ZodError) return e.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}

/**
 * Why a signature by a predicate-restricted authority (customs' verifier key) does not count here:
 * it vouches only for statements of its predicate type. Undefined when it counts.
 */
export function outsideRestriction(a: ResolvedAuthority, statement: Statement | undefined): string | undefined {
  if (a.kind !== 'keys' || a.onlyPredicateType === undefined) return undefined;
  if (statement?.predicateType === a.onlyPredicateType) return undefined;
  return `${a.label} signs only ${a.onlyPredicateType} statements, not ${statement ? statement.predicateType : 'plain signatures'}`;
}

/** Joins per-authority failures into one reason, e.g. "key a: signature invalid; key b: ...". */
export function combine(format: string, failures: string[]): Rejected {
  const uniq = [...new Set(failures)];
  return rejected(format, uniq.length === 0 ? 'no authority of the rule applies to this signature' : uniq.join('; '));
}
