import { createHash, type Hash } from 'node:crypto';
import { err } from './errors.js';

/**
 * Digests as the image spec defines them: `algorithm ":" encoded`.
 * sha256 and sha512 are the registered algorithms; anything else that is well-formed
 * is `UNSUPPORTED`, anything malformed is `DIGEST_INVALID`.
 */
export type Digest = `${string}:${string}`;
export type Algorithm = 'sha256' | 'sha512';

const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const ENCODED: Record<Algorithm, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

export interface ParsedDigest {
  readonly digest: Digest;
  readonly algorithm: Algorithm;
  readonly hex: string;
}

/** Parses and validates a digest, throwing DIGEST_INVALID or UNSUPPORTED. */
export function parseDigest(value: string): ParsedDigest {
  if (!DIGEST_GRAMMAR.test(value)) throw err('DIGEST_INVALID', `invalid digest: ${truncate(value)}`);
  const i = value.indexOf(':');
  const algorithm = value.slice(0, i);
  const hex = value.slice(i + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw err('UNSUPPORTED', `unsupported digest algorithm: ${truncate(algorithm)}`);
  }
  if (!ENCODED[algorithm].test(hex)) throw err('DIGEST_INVALID', `invalid ${algorithm} digest: ${truncate(value)}`);
  return { digest: value as Digest, algorithm, hex };
}

export function isDigest(value: string): boolean {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

export function digestOf(data: Uint8Array | string, algorithm: Algorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** An incremental hasher; the digest string is produced once at the end. */
export class Digester {
  readonly algorithm: Algorithm;
  private readonly hash: Hash;
  size = 0;
  constructor(algorithm: Algorithm = 'sha256') {
    this.algorithm = algorithm;
    this.hash = createHash(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.size += chunk.byteLength;
  }
  digest(): Digest {
    return `${this.algorithm}:${this.hash.digest('hex')}`;
  }
}

/** `sha256-<hex>`: the tag schema used for the referrers fallback and cosign's legacy tags. */
export const digestTag = (digest: string): string => digest.replace(':', '-');

const truncate = (s: string): string => (s.length > 80 ? `${s.slice(0, 80)}...` : s);
