import { setTimeout as sleep } from 'node:timers/promises';
import { err, type Digest } from '../oci/index.js';
import { hasBlobIntegrity, hasBlobList, hasContentScan, scanAll, type Actor, type AuditLog, type BlobStore, type ContentScan } from '../storage/index.js';
import { manifestDigest, type ContentIntegrity, type IntegrityLog } from './integrity.js';

export interface ScrubOptions {
  /** Bytes read per second at most (0 = as fast as the store goes): a scrub must never starve serving. */
  readonly maxBytesPerSecond: number;
  /** Stops the run (server shutdown); what was found stays found. */
  readonly signal?: AbortSignal | undefined;
}

export interface ScrubFinding {
  readonly kind: 'blob' | 'manifest';
  readonly digest: Digest;
  readonly repository?: string | undefined;
  readonly detail: string;
}

export interface ScrubReport {
  readonly startedAt: string;
  readonly seconds: number;
  /** Blobs and manifests re-hashed, and the bytes read. */
  readonly blobs: number;
  readonly manifests: number;
  readonly bytes: number;
  /** Found corrupt by this run (blobs are set aside at once). */
  readonly corrupt: readonly ScrubFinding[];
  /** Corrupt blobs fetched again from their upstream and verified, by this run. */
  readonly repaired: readonly ScrubFinding[];
  /** Blobs set aside as corrupt (by this run or an earlier one) that a repository still links and nothing has replaced. */
  readonly unrepaired: readonly ScrubFinding[];
  /** Stopped before the end (shutdown). */
  readonly aborted: boolean;
}

/** Counters for /metrics. */
export interface ScrubMetrics {
  checked(kind: 'blob' | 'manifest', bytes: number): void;
  finished(report: ScrubReport): void;
}

export interface ScrubberDeps {
  readonly blobs: BlobStore;
  readonly metadata: Pick<AuditLog, 'appendAudit'> & Partial<ContentScan>;
  readonly integrity: ContentIntegrity;
  /** Repositories served through an upstream. */
  readonly isProxied: (repository: string) => boolean;
  /** Fetches the blob from the upstream of `repository` again; true once verified and stored. */
  readonly refetch?: ((repository: string, digest: Digest) => Promise<boolean>) | undefined;
  readonly metrics?: ScrubMetrics | undefined;
  readonly log: IntegrityLog & { warn(obj: object, msg: string): void };
}

/**
 * The scrub: re-hashes every stored blob (every blob store has the integrity capability) and
 * every manifest, paced to a byte rate. A blob that no longer hashes to its digest is set aside
 * at once, so nothing serves it again, and recorded (audit log, metrics, report); when a
 * pull-through repository links it, it is fetched again from that upstream and verified. One
 * run at a time; `schedule` runs it every `scrub.intervalSeconds`.
 */
export class Scrubber {
  private running: Promise<ScrubReport> | undefined;

  constructor(private readonly deps: ScrubberDeps) {}

  /** Runs a scrub; TOOMANYREQUESTS while another one runs. */
  run(o: ScrubOptions, by: Actor): Promise<ScrubReport> {
    if (this.running) return Promise.reject(err('TOOMANYREQUESTS', 'a scrub is already running; wait for it to finish'));
    const run = this.scrub(o, by).finally(() => {
      this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private async scrub(o: ScrubOptions, by: Actor): Promise<ScrubReport> {
    const { blobs, metadata, integrity, metrics } = this.deps;
    if (!hasBlobList(blobs) || !hasBlobIntegrity(blobs) || !hasContentScan(metadata)) throw err('UNSUPPORTED', 'this storage cannot be scrubbed (it cannot list or re-read its content)');
    const started = Date.now();
    const pace = pacer(o.maxBytesPerSecond, o.signal);
    const corrupt: ScrubFinding[] = [];
    const repaired: ScrubFinding[] = [];
    const unrepaired: ScrubFinding[] = [];
    let nBlobs = 0;
    let nManifests = 0;
    let bytes = 0;
    let aborted = false;
    try {
      for await (const b of blobs.list()) {
        if (o.signal?.aborted) break;
        const found = await blobs.check(b.digest, pace);
        if (found.state === 'missing') continue; // deleted since it was listed
        nBlobs++;
        bytes += found.size;
        metrics?.checked('blob', found.size);
        if (found.state === 'ok') continue;
        // Moved only if they are still the bytes read: good bytes a fill committed meanwhile stay.
        if (!(await blobs.setAside(b.digest, found.identity))) continue;
        const finding: ScrubFinding = { kind: 'blob', digest: b.digest, detail: `stored bytes hash to ${found.actual} (${found.size} bytes)` };
        corrupt.push(finding);
        await integrity.corrupt({ ...finding, foundBy: 'scrub' });
      }
      for await (const m of scanAll(metadata.manifestPage.bind(metadata), (m) => ({ repository: m.repository, digest: m.digest }))) {
        if (o.signal?.aborted) break;
        await pace?.(m.bytes.byteLength);
        nManifests++;
        bytes += m.bytes.byteLength;
        metrics?.checked('manifest', m.bytes.byteLength);
        const actual = manifestDigest(m);
        if (actual === m.digest) continue;
        const finding: ScrubFinding = { kind: 'manifest', digest: m.digest, repository: m.repository, detail: `stored bytes hash to ${actual}` };
        corrupt.push(finding);
        await integrity.corrupt({ ...finding, foundBy: 'scrub' });
      }
      // Every blob set aside and not replaced since, this run's and earlier ones': fetched again where a proxy can.
      for await (const aside of blobs.listSetAside()) {
        if (o.signal?.aborted) break;
        if (await blobs.stat(aside.digest)) continue;
        const linkedBy = await metadata.linkingRepositories(aside.digest);
        if (linkedBy.length === 0) continue; // nobody needs it any more
        const fixedIn = await this.repair(aside.digest, linkedBy);
        if (fixedIn) repaired.push({ kind: 'blob', digest: aside.digest, repository: fixedIn, detail: `fetched again from the upstream of ${fixedIn} and verified` });
        else unrepaired.push({ kind: 'blob', digest: aside.digest, detail: `linked by ${linkedBy.slice(0, 5).join(', ')}${linkedBy.length > 5 ? ', ...' : ''}: push it again or restore it from a backup` });
      }
    } catch (e) {
      if (!o.signal?.aborted) throw e;
    }
    aborted = o.signal?.aborted ?? false;
    const report: ScrubReport = {
      startedAt: new Date(started).toISOString(),
      seconds: Math.round((Date.now() - started) / 100) / 10,
      blobs: nBlobs,
      manifests: nManifests,
      bytes,
      corrupt,
      repaired,
      unrepaired,
      aborted,
    };
    metrics?.finished(report);
    await metadata.appendAudit({
      actor: by.actor,
      action: 'scrub',
      reason: by.reason,
      detail: {
        blobs: nBlobs,
        manifests: nManifests,
        bytes,
        aborted,
        corrupt: corrupt.slice(0, 100).map((f) => f.digest),
        repaired: repaired.slice(0, 100).map((f) => f.digest),
        unrepaired: unrepaired.slice(0, 100).map((f) => f.digest),
      },
    });
    return report;
  }

  /** Fetches the blob again through the first pull-through repository that links it; the repository, once verified. */
  private async repair(digest: Digest, linkedBy: readonly string[]): Promise<string | undefined> {
    const { refetch, blobs, integrity, log } = this.deps;
    if (!refetch || !hasBlobIntegrity(blobs)) return undefined;
    for (const repository of linkedBy.filter(this.deps.isProxied)) {
      try {
        if (!(await refetch(repository, digest))) continue;
        // The fill verified the digest while streaming; read what was stored once more.
        if ((await blobs.check(digest)).state !== 'ok') continue;
        await integrity.repaired(digest, repository, 'fetched again from the upstream');
        return repository;
      } catch (e) {
        log.warn({ digest, repository, err: (e as Error).message }, 'could not fetch a corrupt blob again from its upstream');
      }
    }
    return undefined;
  }

  /** Runs every `intervalSeconds` (0 = never), skipping a tick while a run is going on; `stop` waits for a run in progress. */
  schedule(intervalSeconds: number, options: ScrubOptions): { stop(): Promise<void> } {
    const tick = (): void => {
      if (this.running) return;
      this.run(options, { actor: 'system:scrub', reason: 'scheduled (scrub.intervalSeconds)' }).then(
        (r) => this.deps.log.info({ blobs: r.blobs, manifests: r.manifests, bytes: r.bytes, corrupt: r.corrupt.length, repaired: r.repaired.length, unrepaired: r.unrepaired.length, seconds: r.seconds }, 'scrub'),
        (e: Error) => this.deps.log.warn({ err: e.message }, 'scrub failed'),
      );
    };
    const timer = intervalSeconds > 0 ? setInterval(tick, intervalSeconds * 1000) : undefined;
    timer?.unref();
    return {
      stop: async () => {
        clearInterval(timer);
        await this.running?.catch(() => undefined);
      },
    };
  }
}

/** Awaited after every chunk read: sleeps whenever the run is ahead of `bytesPerSecond`. */
function pacer(bytesPerSecond: number, signal: AbortSignal | undefined): ((n: number) => Promise<void>) | undefined {
  if (!(bytesPerSecond > 0)) return signal ? async () => signal.throwIfAborted() : undefined;
  const start = Date.now();
  let total = 0;
  return async (n) => {
    signal?.throwIfAborted();
    total += n;
    const ahead = start + (total * 1000) / bytesPerSecond - Date.now();
    if (ahead > 1) await sleep(ahead, undefined, signal ? { signal } : undefined);
  };
}
