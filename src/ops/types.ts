import { createHash } from 'node:crypto';
import { err, isRegistryError, type Digest } from '../oci/index.js';
import type { BlobFetcher } from '../storage/index.js';

/**
 * Shapes src/ops shares with src/registry. Ops sits below registry in the layer
 * order, so it cannot import `ReadGate` from there; these are structurally the
 * same, and the composition root checks that they fit.
 */
export interface GateDecision {
  readonly auditFindings?: readonly string[];
}

export interface ReadGateLike {
  manifest(repository: string, digest: Digest): Promise<GateDecision>;
  blob(repository: string, digest: Digest): Promise<GateDecision>;
  invalidate(subject: Digest): void;
}

export interface Verdict {
  readonly allowed: boolean;
  /** Why not (or, in audit mode, what was found). */
  readonly findings: readonly string[];
}

/** Would the gate serve this manifest in this repository? */
export type Judge = (repository: string, digest: Digest) => Promise<Verdict>;

/** A judge from a ReadGate: DENIED means not allowed; any other failure propagates. */
export function judgeFromGate(gate: Pick<ReadGateLike, 'manifest'>): Judge {
  return async (repository, digest) => {
    try {
      const d = await gate.manifest(repository, digest);
      return { allowed: true, findings: d.auditFindings ?? [] };
    } catch (e) {
      if (isRegistryError(e) && e.code === 'DENIED') return { allowed: false, findings: findingsOf(e.detail, e.message) };
      throw e;
    }
  };
}

function findingsOf(detail: unknown, message: string): string[] {
  if (Array.isArray(detail)) return detail.map((d) => (typeof d === 'string' ? d : JSON.stringify(d)));
  if (detail && typeof detail === 'object' && Array.isArray((detail as { findings?: unknown }).findings)) {
    return ((detail as { findings: unknown[] }).findings).map((d) => (typeof d === 'string' ? d : JSON.stringify(d)));
  }
  return [message];
}

/** Minimal logger (pino's shape). */
export interface OpsLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** Reads a small blob (attestations, SBOMs) into memory, refusing more than `max` bytes. */
export async function readSmall(blobs: BlobFetcher, digest: Digest, max: number): Promise<Buffer | undefined> {
  const stream = await blobs.get(digest);
  if (!stream) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    size += c.byteLength;
    if (size > max) {
      stream.destroy();
      throw err('TOO_LARGE', `blob ${digest} exceeds ${max} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks, size);
}

/** Re-hashes a stored blob by streaming it: its digest as computed now, or undefined when absent. */
export async function rehash(blobs: BlobFetcher, digest: Digest): Promise<{ digest: Digest; size: number } | undefined> {
  const alg = digest.slice(0, digest.indexOf(':'));
  const stream = await blobs.get(digest);
  if (!stream) return undefined;
  const h = createHash(alg === 'sha512' ? 'sha512' : 'sha256');
  let size = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    h.update(c);
    size += c.byteLength;
  }
  return { digest: `${alg}:${h.digest('hex')}`, size };
}
