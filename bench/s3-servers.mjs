// PostgreSQL 15 and Ceph RGW (Debian packages) on loopback for bench/s3.mjs: the
// same recipe as test/helpers/postgres.ts and test/helpers/ceph.ts (see those for
// the why of each setting), in plain JS because benches run without a TS loader.
// The Ceph configuration itself is one file for both: test/helpers/ceph.conf.in.
import { randomUUID } from 'node:crypto';
import { chownSync, chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, makeTempDir, run, spawnServer, tail, waitFor } from './lib/proc.mjs';
import { repoRoot } from './lib/servers.mjs';

const PG_BIN = process.env.CUSTOMS_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const NOBODY = 65534;

async function must(cmd, args, what) {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${what}: ${cmd} exited ${r.code}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** PostgreSQL in a temp dir; as `nobody` when running as root (postgres refuses root). */
export async function startPostgres() {
  const dir = makeTempDir('pg');
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chownSync(dir, NOBODY, NOBODY);
  chmodSync(dir, 0o700);
  const sudo = (cmd, args) => (asRoot ? ['setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', cmd, ...args]] : [cmd, args]);
  await must(...sudo(join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']), 'initdb');
  const port = await freePort();
  const [cmd, args] = sudo(join(PG_BIN, 'postgres'), ['-D', data, '-k', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200']);
  const logFile = join(dir, 'postgres.log');
  if (asRoot) {
    writeFileSync(logFile, '');
    chownSync(logFile, NOBODY, NOBODY);
  }
  const srv = spawnServer(cmd, args, { logFile, cwd: dir });
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const { default: pg } = await import('pg');
  await waitFor(
    'postgres',
    async () => {
      const c = new pg.Client({ connectionString: url });
      try {
        await c.connect();
        await c.end();
        return true;
      } catch {
        await c.end().catch(() => {});
        return false;
      }
    },
    { exited: srv.exited },
  ).catch((e) => {
    throw new Error(`${e.message}\n${tail(logFile)}`);
  });
  return { url, pid: srv.pid, stop: () => srv.stop() };
}

/** One mon, one bluestore OSD on a sparse file, one RGW; cephx off; pool size 1. */
export async function startCephRgw() {
  const dir = makeTempDir('ceph');
  const [monPort, rgwPort] = [await freePort(), await freePort()];
  const fsid = randomUUID();
  const conf = join(dir, 'ceph.conf');
  for (const d of ['run', 'log', 'mon/ceph-a', 'osd/ceph-0', 'rgw']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(
    conf,
    readFileSync(join(repoRoot, 'test', 'helpers', 'ceph.conf.in'), 'utf8')
      .replaceAll('@DIR@', dir)
      .replaceAll('@FSID@', fsid)
      .replaceAll('@MON_PORT@', String(monPort))
      .replaceAll('@RGW_PORT@', String(rgwPort)),
  );
  const servers = [];
  const stop = async () => {
    for (const s of servers.reverse()) await s.stop(2000);
  };
  try {
    await must('ceph-authtool', ['--create-keyring', join(dir, 'keyring'), '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'], 'keyring');
    await must('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, join(dir, 'monmap')], 'monmap');
    await must('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap'), '--keyring', join(dir, 'keyring')], 'mon mkfs');
    servers.push(spawnServer('ceph-mon', ['-f', '-c', conf, '-i', 'a'], { logFile: join(dir, 'mon.out') }));
    const osdUuid = randomUUID();
    const id = (await must('ceph', ['-c', conf, '--connect-timeout', '20', 'osd', 'new', osdUuid], 'osd new')).trim();
    await must('ceph-osd', ['-c', conf, '-i', id, '--mkfs', '--osd-uuid', osdUuid], 'osd mkfs');
    servers.push(spawnServer('ceph-osd', ['-f', '-c', conf, '-i', id], { logFile: join(dir, 'osd.out') }));
    await waitFor('the OSD', async () => /1 up/.test((await run('ceph', ['-c', conf, 'osd', 'stat'])).stdout), { timeoutMs: 60000, intervalMs: 200 });
    servers.push(spawnServer('radosgw', ['-f', '-c', conf, '-n', 'client.rgw.a'], { logFile: join(dir, 'rgw.out') }));
    const accessKeyId = 'CUSTOMSBENCHKEY00001';
    const secretAccessKey = 'customs-bench-secret-key-000000000000000';
    await must('radosgw-admin', ['-c', conf, 'user', 'create', '--uid=bench', '--display-name=bench', `--access-key=${accessKeyId}`, `--secret=${secretAccessKey}`], 'user create');
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await waitFor('the gateway', async () => (await fetch(endpoint).then((r) => r.status, () => 0)) > 0, { timeoutMs: 60000, intervalMs: 200 });
    return { endpoint, region: 'us-east-1', accessKeyId, secretAccessKey, pids: servers.map((s) => s.pid), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
