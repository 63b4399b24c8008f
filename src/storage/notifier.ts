import { z } from 'zod';
import { digestSchema, type Digest } from '../oci/index.js';

/**
 * Cross-replica cache coherence. Replicas cache tag resolutions, manifests and
 * gate verdicts in memory; whoever changes the state those caches derive from
 * publishes an event, and every replica (the publisher included) drops what the
 * event names. One process: `LocalNotifier`. Several replicas: `PgNotifier`
 * (PostgreSQL LISTEN/NOTIFY), which also publishes `reset` locally whenever it may
 * have missed events (connection lost), so a partitioned replica stops trusting
 * its caches instead of serving stale verdicts.
 */
export type CacheEvent =
  /** A tag moved, was deleted, pinned, unpinned or rolled back in `repository`. */
  | { readonly kind: 'tags'; readonly repository: string }
  /** A manifest was deleted (records by digest are otherwise immutable). */
  | { readonly kind: 'manifest'; readonly repository: string; readonly digest: Digest }
  /** A referrer of `subject` arrived or left: its verdicts are stale. */
  | { readonly kind: 'referrers'; readonly subject: Digest }
  /** `digest` was quarantined or released. */
  | { readonly kind: 'quarantine'; readonly digest: Digest }
  /** The verification policy changed: every verdict is stale. */
  | { readonly kind: 'policy' }
  /** This replica may have missed events: drop every cache. */
  | { readonly kind: 'reset' };

/** A cache event as it travels between processes (PostgreSQL NOTIFY, the SQLite events table): checked on arrival. */
export const cacheEventSchema: z.ZodType<CacheEvent, unknown> = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('tags'), repository: z.string() }),
  z.object({ kind: z.literal('manifest'), repository: z.string(), digest: digestSchema }),
  z.object({ kind: z.literal('referrers'), subject: digestSchema }),
  z.object({ kind: z.literal('quarantine'), digest: digestSchema }),
  z.object({ kind: z.literal('policy') }),
  z.object({ kind: z.literal('reset') }),
]);

export type CacheListener = (event: CacheEvent) => void;

export interface Notifier {
  /**
   * Delivers `event` to this replica's listeners before returning (so the caller's
   * own caches are coherent at once) and to every other replica's soon after.
   */
  publish(event: CacheEvent): Promise<void>;
  /** Returns the unsubscribe function. */
  subscribe(listener: CacheListener): () => void;
  close(): Promise<void>;
}

/** Listener bookkeeping shared by the implementations; a throwing listener does not stop the others. */
export class Listeners {
  private readonly set = new Set<CacheListener>();
  add(l: CacheListener): () => void {
    this.set.add(l);
    return () => void this.set.delete(l);
  }
  emit(e: CacheEvent): void {
    for (const l of this.set) {
      try {
        l(e);
      } catch {
        // A cache that cannot drop an entry must not keep the others from doing so.
      }
    }
  }
}

/** One process: events go to this process's listeners only. */
export class LocalNotifier implements Notifier {
  private readonly listeners = new Listeners();
  async publish(event: CacheEvent): Promise<void> {
    this.listeners.emit(event);
  }
  subscribe(listener: CacheListener): () => void {
    return this.listeners.add(listener);
  }
  async close(): Promise<void> {}
}
