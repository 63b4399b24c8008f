import type { Digest } from './oci/index.js';
import type { ManifestWriteHooks, ReadGate } from './registry/index.js';
import type { CacheEvent, Notifier } from './storage/notifier.js';

/**
 * Composition-root glue between the storage notifier (cross-replica cache events)
 * and the caches of the services: the manifest service's tag and manifest caches
 * and the gate's verdicts. Writers publish through `publishingGate` and
 * `publishingHooks`; every replica (the writer included, before publish returns)
 * applies events through `applyCacheEvents`.
 */
export interface CacheTargets {
  /** The gate whose cached verdicts events drop (the inner one: not `publishingGate`). */
  readonly gate: Pick<ReadGate, 'invalidate'> & { clear?(): void };
  /** The serving rule's per-manifest facts, dropped when a manifest is deleted (optional: a gate without such caches). */
  readonly rule?: { forget(repository: string, digest: Digest): void };
  readonly manifests: {
    invalidateTags(repository?: string): void;
    /** Drop one cached manifest record (deleted elsewhere); optional until ManifestService has it. */
    invalidateManifest?(repository: string, digest: Digest): void;
    /** Drop every cached manifest record. */
    clear?(): void;
  };
}

export function applyCacheEvents(notifier: Notifier, t: CacheTargets): () => void {
  const dropVerdicts = (): void => {
    t.gate.clear?.();
  };
  return notifier.subscribe((e: CacheEvent) => {
    switch (e.kind) {
      case 'tags':
        return t.manifests.invalidateTags(e.repository);
      case 'manifest':
        t.manifests.invalidateManifest?.(e.repository, e.digest);
        t.rule?.forget(e.repository, e.digest);
        t.manifests.invalidateTags(e.repository);
        return t.gate.invalidate(e.digest);
      case 'referrers':
        return t.gate.invalidate(e.subject);
      case 'quarantine':
        // Quarantine is read per request (ops' QuarantineGate); verdicts may name the digest as subject.
        return t.gate.invalidate(e.digest);
      case 'policy':
        return dropVerdicts();
      case 'reset':
        t.manifests.invalidateTags();
        t.manifests.clear?.();
        return dropVerdicts();
    }
  });
}

const warnOnFailure = (what: string, log: { warn(obj: object, msg: string): void }) => (e: Error) =>
  log.warn({ err: e.message }, `could not notify other replicas of ${what}; their caches drop it when their notification connection resets`);

/** A gate whose `invalidate` is published to every replica (the local caches included). */
export function publishingGate<G extends ReadGate>(gate: G, notifier: Notifier, log: { warn(obj: object, msg: string): void }): G {
  // Bound methods are made once: the gate is asked on every pull, and a fresh bind per call shows in profiles.
  const bound = new Map<PropertyKey, unknown>();
  const invalidate = (subject: Digest) => void notifier.publish({ kind: 'referrers', subject }).catch(warnOnFailure('a referrer change', log));
  return new Proxy(gate, {
    get(target, prop, receiver) {
      if (prop === 'invalidate') return invalidate;
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      let b = bound.get(prop);
      if (!b) bound.set(prop, (b = (v as (...a: unknown[]) => unknown).bind(target)));
      return b;
    },
  });
}

/** Manifest write hooks that also tell every replica which tags and manifests changed. */
export function publishingHooks(hooks: ManifestWriteHooks, notifier: Notifier, log: { warn(obj: object, msg: string): void }): ManifestWriteHooks {
  return {
    beforeTagPush: hooks.beforeTagPush?.bind(hooks),
    afterPut: async (record, move, by) => {
      if (move) await notifier.publish({ kind: 'tags', repository: record.repository }).catch(warnOnFailure('a tag move', log));
      await hooks.afterPut?.(record, move, by);
    },
    afterDelete: async (repository, digest, untagged, by) => {
      await notifier.publish({ kind: 'manifest', repository, digest }).catch(warnOnFailure('a delete', log));
      await hooks.afterDelete?.(repository, digest, untagged, by);
    },
  };
}
