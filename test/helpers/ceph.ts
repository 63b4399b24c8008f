import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, run } from './postgres.js';

/**
 * A real S3 server: Debian's Ceph RADOS Gateway on 127.0.0.1, on a throwaway
 * cluster of one monitor and one bluestore OSD backed by a sparse file (no mgr,
 * cephx off, pool size 1). Starts from nothing in ~16 s.
 *
 * Traps (see ../../../shared/STACK.md): the gateway retries authentication forever
 * unless its section says `ms mon client mode = crc` and `auth client required =
 * none`; the first bucket/put takes ~2 s while the gateway creates its pools; with
 * the Pacific default of 32 PGs per pool the gateway's ~7 pools exceed
 * `mon max pg per osd`, so pools here start with 8.
 */
export interface CephRgw {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  /** Kills the gateway (SIGKILL; the cluster stays up): S3 goes away mid-request. */
  stopGateway?(): Promise<void>;
  /** Starts the gateway again and waits until it answers. */
  startGateway?(): Promise<void>;
  stop(): Promise<void>;
}

export async function startCephRgw(): Promise<CephRgw> {
  if (!existsSync('/usr/bin/radosgw') || !existsSync('/usr/bin/ceph-osd')) {
    throw new Error('Ceph is not installed: apt-get install -y radosgw ceph-mon ceph-osd ceph-common (as .ci/run does)');
  }
  const dir = await mkdtemp(join(tmpdir(), 'customs-ceph-'));
  const [monPort, rgwPort] = [await freePort(), await freePort()];
  const fsid = randomUUID();
  const conf = join(dir, 'ceph.conf');
  for (const d of ['run', 'log', 'mon/ceph-a', 'osd/ceph-0', 'rgw']) await mkdir(join(dir, d), { recursive: true });
  await writeFile(conf, cephConf(dir, fsid, monPort, rgwPort));
  const env = { ...process.env, CEPH_CONF: conf };
  const procs: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const p of procs.reverse()) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  const daemon = (cmd: string, args: string[]): ChildProcess => {
    const p = spawn(cmd, ['-f', '-c', conf, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let tail = '';
    p.stderr!.on('data', (c: Buffer) => (tail = (tail + c.toString()).slice(-2000)));
    p.once('exit', (code, sig) => {
      if (!stopping && !(cmd === 'radosgw' && gatewayStopped)) console.error(`${cmd} exited (${code ?? sig}): ${tail}`);
    });
    procs.push(p);
    return p;
  };
  let stopping = false;
  let gatewayStopped = false;
  let gateway: ChildProcess | undefined;
  // A test worker that dies (timeout, crash) must not leave a Ceph cluster running.
  const killAll = (): void => procs.forEach((p) => p.exitCode === null && p.kill('SIGKILL'));
  process.once('exit', killAll);
  try {
    await run('ceph-authtool', ['--create-keyring', join(dir, 'keyring'), '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'], { env });
    await run('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, join(dir, 'monmap')], { env });
    await run('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap'), '--keyring', join(dir, 'keyring')], { env });
    daemon('ceph-mon', ['-i', 'a']);
    const ceph = (...args: string[]) => run('ceph', ['-c', conf, '--connect-timeout', '20', ...args], { env });
    await ceph('osd', 'set-require-min-compat-client', 'luminous').catch(() => undefined);
    const osdUuid = randomUUID();
    const id = (await ceph('osd', 'new', osdUuid)).trim();
    await run('ceph-osd', ['-c', conf, '-i', id, '--mkfs', '--osd-uuid', osdUuid], { env });
    daemon('ceph-osd', ['-i', id]);
    // Wait for the OSD to come up before the gateway creates its pools.
    await waitFor(async () => /1 up/.test(await ceph('osd', 'stat')), 30_000, 'the OSD to come up');
    gateway = daemon('radosgw', ['-n', 'client.rgw.a']);
    const accessKeyId = 'CUSTOMSTESTKEY000001';
    const secretAccessKey = 'customs-test-secret-key-0000000000000000';
    await run('radosgw-admin', ['-c', conf, 'user', 'create', '--uid=customs', '--display-name=customs', `--access-key=${accessKeyId}`, `--secret=${secretAccessKey}`], { env });
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await waitFor(async () => (await fetch(endpoint).then((r) => r.status, () => 0)) > 0, 30_000, 'the gateway to listen');
    return {
      endpoint,
      accessKeyId,
      secretAccessKey,
      region: 'us-east-1',
      stopGateway: async () => {
        gatewayStopped = true;
        const g = gateway!;
        if (g.exitCode === null && g.signalCode === null) {
          const exited = new Promise((r) => g.once('exit', r));
          g.kill('SIGKILL');
          await exited;
        }
      },
      startGateway: async () => {
        gateway = daemon('radosgw', ['-n', 'client.rgw.a']);
        gatewayStopped = false;
        await waitFor(async () => (await fetch(endpoint).then((r) => r.status, () => 0)) > 0, 60_000, 'the gateway to listen again');
      },
      stop: () => {
        stopping = true;
        process.off('exit', killAll);
        return stop();
      },
    };
  } catch (e) {
    stopping = true;
    await stop();
    throw e;
  }
}

/** test/helpers/ceph.conf.in with this cluster's directory, id and ports (bench/s3-servers.mjs reads it too). */
export function cephConf(dir: string, fsid: string, monPort: number, rgwPort: number): string {
  return readFileSync(new URL('ceph.conf.in', import.meta.url), 'utf8')
    .replaceAll('@DIR@', dir)
    .replaceAll('@FSID@', fsid)
    .replaceAll('@MON_PORT@', String(monPort))
    .replaceAll('@RGW_PORT@', String(rgwPort));
}

async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Where the shared PostgreSQL and RGW of this test run listen (see test/global-setup-scaleout.ts). */
export interface ScaleoutInfo {
  readonly pgPort: number;
  readonly s3: Omit<CephRgw, 'stop'>;
}
