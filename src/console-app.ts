import type { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import type { Config } from './config/schema.js';
import type { TokenAccess } from './http/auth.js';
import { uiApp } from './http/ui.js';
import { ConsoleSessions } from './http/ui-session.js';
import { isRegistryError, type Digest } from './oci/index.js';
import type { Ops } from './ops/index.js';
import type { PullThroughService } from './proxy/pull-through-service.js';
import type { ManifestService, VerdictSource } from './registry/index.js';
import { hasInventory, type BlobFetcher, type MetadataStore } from './storage/index.js';
import type { SwappableVerdicts } from './swappable-verdicts.js';
import { Console } from './ui/index.js';

/**
 * Composition of the operator console (/ui/): the services /v2/ and /admin/ use, handed to
 * src/ui, behind the HTTP app that owns sessions and CSRF. Kept out of server.ts so that
 * file only mounts it.
 */
export interface ConsoleWiring {
  readonly config: Config['ui'];
  readonly sessionKey: Buffer;
  readonly access: TokenAccess;
  readonly ops: Ops;
  readonly metadata: MetadataStore;
  readonly blobs: BlobFetcher;
  /** The current gate (policy and trust as loaded; swapped on reload). */
  readonly verdicts: SwappableVerdicts;
  /** Verdicts as the read path sees them (upstream freshness applied). */
  readonly judged: VerdictSource;
  /** The whole read rule, quarantine included: what /v2/ serves. */
  readonly gate: { manifest(repository: string, digest: Digest): Promise<unknown> };
  readonly manifests: ManifestService;
  readonly pullThrough: PullThroughService | undefined;
  readonly onDenied: (actor: string, target: string, reason: string) => void;
}

export function consoleApp(w: ConsoleWiring): Hono<{ Bindings: HttpBindings }> {
  if (!hasInventory(w.metadata)) throw new Error('the operator console needs a metadata store with the inventory queries (SQLite and PostgreSQL have them)');
  const console = new Console({
    metadata: w.metadata,
    inventory: w.metadata.inventory,
    blobs: w.blobs,
    ops: w.ops,
    verdict: (repository, digest) => w.judged.check(repository, digest),
    served: async (repository, digest) => {
      try {
        await w.gate.manifest(repository, digest);
        return { served: true };
      } catch (e) {
        if (isRegistryError(e) && e.code === 'DENIED') return { served: false, reason: e.message };
        throw e;
      }
    },
    policy: () => {
      const g = w.verdicts.gate;
      return { policy: g.policy, trust: g.trust, policyHash: g.policyHash, trustHash: g.trustHash };
    },
    upstreams: () => w.pullThrough?.health() ?? [],
    deleteManifest: (repository, reference, by) => w.manifests.delete(repository, reference, by),
  });
  const app = uiApp({
    console,
    auth: w.access,
    sessions: new ConsoleSessions(w.sessionKey, w.config.sessionTtlSeconds),
    audit: (e) => w.ops.audit.record(e),
    onDenied: w.onDenied,
    secureCookie: w.config.secureCookie,
  });
  return app as unknown as Hono<{ Bindings: HttpBindings }>;
}
