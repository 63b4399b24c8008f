import { LRUCache } from 'lru-cache';
import type { RegistryError } from '../oci/index.js';

/**
 * A short memory of "the upstream has no such thing" (a 404, or Docker Hub's
 * insufficient_scope for a repository that does not exist), so a client looping
 * on a missing tag does not cost an upstream round trip (and a Docker Hub rate
 * limit unit) every time. Keyed by upstream, remote repository and reference:
 * what the upstream said holds whichever local name (prefix or `ns`) asked.
 *
 * Consulted only for what is not local: callers look in storage first, so a blob
 * or referrer pushed here meanwhile is never hidden. Entries expire on the
 * injected clock (the service's), bounded in number by the LRU.
 */
interface Entry {
  readonly expiresAt: number;
  /** The error to answer with again; undefined for a plain 404. */
  readonly error: RegistryError | undefined;
}

export type NotFound = { readonly error: RegistryError | undefined } | undefined;

export class NotFoundCache {
  private readonly entries: LRUCache<string, Entry>;

  constructor(
    private readonly clock: () => number,
    max = 10_000,
  ) {
    this.entries = new LRUCache({ max });
  }

  static key(upstream: string, remote: string, kind: 'manifest' | 'blob', reference: string): string {
    return `${upstream}\0${remote}\0${kind}\0${reference}`;
  }

  /** The remembered answer, if still within its window. */
  get(key: string): NotFound {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= this.clock()) {
      this.entries.delete(key);
      return undefined;
    }
    return { error: e.error };
  }

  /** Remembers a miss for `ttlSeconds` (0: not at all). */
  set(key: string, ttlSeconds: number, error?: RegistryError): void {
    if (ttlSeconds <= 0) return;
    this.entries.set(key, { expiresAt: this.clock() + ttlSeconds * 1000, error });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
