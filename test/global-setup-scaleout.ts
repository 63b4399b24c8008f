import type { TestProject } from 'vitest/node';
import { startCephRgw, type CephRgw } from './helpers/ceph.js';
import { startPostgres, type PostgresServer } from './helpers/postgres.js';

/**
 * Starts PostgreSQL and Ceph RGW once per test run for the scale-out tests (Ceph
 * takes ~16 s to start; per file it would take that twice). Skipped when the run
 * was given file filters that name no scale-out test: then a scale-out file that
 * runs anyway starts its own (test/helpers/scaleout.ts).
 */
const SCALEOUT_FILES = /storage-s3-postgres|replicas|scrub-s3/;
/** Options of `vitest` that take a value (that value is not a file filter). */
const WITH_VALUE = new Set(['-c', '--config', '-t', '--testNamePattern', '--project', '--reporter', '--root', '-r', '--dir', '--pool', '--maxWorkers', '--shard', '--outputFile']);

/** The file filters of this vitest run (positional arguments after `run`). */
function fileFilters(argv: readonly string[]): string[] {
  const out: string[] = [];
  const args = argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (WITH_VALUE.has(a)) i++;
    else if (!a.startsWith('-') && !['run', 'watch', 'dev', 'related'].includes(a) && !/vitest(\.mjs)?$/.test(a)) out.push(a);
  }
  return out;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // CUSTOMS_SCALEOUT=1 starts the servers whatever the filters; =0 never (scale-out files then start their own).
  const forced = process.env.CUSTOMS_SCALEOUT;
  const filters = fileFilters(process.argv);
  const wanted = forced ? forced === '1' : filters.length === 0 || filters.some((f) => SCALEOUT_FILES.test(f));
  if (!wanted) {
    project.provide('scaleout', null);
    return async () => undefined;
  }
  const [pgR, cephR] = await Promise.allSettled([startPostgres(), startCephRgw()]);
  if (pgR.status === 'rejected' || cephR.status === 'rejected') {
    if (pgR.status === 'fulfilled') await pgR.value.stop();
    if (cephR.status === 'fulfilled') await cephR.value.stop();
    throw pgR.status === 'rejected' ? pgR.reason : (cephR as PromiseRejectedResult).reason;
  }
  const pg: PostgresServer = pgR.value;
  const ceph: CephRgw = cephR.value;
  const { stop: _s, stopGateway: _g, startGateway: _h, ...s3 } = ceph;
  project.provide('scaleout', { pgPort: pg.port, s3 });
  return async () => {
    await Promise.all([pg.stop(), ceph.stop()]);
  };
}
