import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/**
 * A real PostgreSQL 15 (Debian's `postgresql` package) on 127.0.0.1, initdb'd into
 * a temporary directory. PostgreSQL refuses to run as root, so when the tests run
 * as root the server runs as `nobody`; trust authentication, loopback only.
 */
export interface PostgresServer {
  readonly port: number;
  /** postgres://postgres@127.0.0.1:PORT/DB */
  url(database: string): string;
  /** Creates a fresh database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** The server process (tests kill it to see what customs does without a database). */
  readonly process: ChildProcess;
  /**
   * Stops the server (`fast`: SIGINT, sessions terminated and transactions rolled back; `immediate`:
   * SIGQUIT, as a crash) and starts it again on the same port and data; `downMs` is how long it stays down.
   */
  restart(o?: { mode?: 'fast' | 'immediate'; downMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

const BIN = process.env.CUSTOMS_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const NOBODY = 65534;

export async function startPostgres(): Promise<PostgresServer> {
  if (!existsSync(join(BIN, 'postgres'))) throw new Error(`PostgreSQL 15 is not installed (${BIN}): apt-get install -y postgresql (as .ci/run does)`);
  const dir = await mkdtemp(join(tmpdir(), 'customs-pg-'));
  const dataDir = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot ? { uid: NOBODY, gid: NOBODY } : {};
  if (asRoot) await chown(dir, NOBODY, NOBODY);
  await chmod(dir, 0o700);
  await run(join(BIN, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], { ...ids, cwd: dir });
  const port = await freePort();
  const args = ['-D', dataDir, '-k', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200'];
  let log = '';
  const launch = (): ChildProcess => {
    const p = spawn(join(BIN, 'postgres'), args, { ...ids, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr!.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
    return p;
  };
  let proc = launch();
  const killOnExit = (): void => void (proc.exitCode === null && proc.kill('SIGKILL'));
  process.once('exit', killOnExit); // a dying test worker must not leave a server behind
  const url = (db: string) => `postgres://postgres@127.0.0.1:${port}/${db}`;
  try {
    await waitReady(url('postgres'), proc, () => log);
  } catch (e) {
    proc.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  let stopped: Promise<void> | undefined;
  return {
    port,
    url,
    get process() {
      return proc;
    },
    async restart(o = {}) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill(o.mode === 'immediate' ? 'SIGQUIT' : 'SIGINT');
      await exited;
      if (o.downMs) await new Promise((r) => setTimeout(r, o.downMs));
      proc = launch();
      await waitReady(url('postgres'), proc, () => log);
    },
    async createDatabase(name) {
      const c = new pg.Client({ connectionString: url('postgres') });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
      } finally {
        await c.end();
      }
      return url(name);
    },
    stop: () =>
      (stopped ??= (async () => {
        process.off('exit', killOnExit);
        if (proc.exitCode === null && proc.signalCode === null) {
          const exited = new Promise((r) => proc.once('exit', r));
          proc.kill('SIGINT'); // fast shutdown: disconnects clients, no waiting for them
          await exited;
        }
        await rm(dir, { recursive: true, force: true });
      })()),
  };
}

async function waitReady(url: string, proc: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`postgres exited with ${proc.exitCode}: ${log()}`);
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
      return;
    } catch (e) {
      await c.end().catch(() => undefined);
      if (Date.now() > deadline) throw new Error(`postgres did not start: ${(e as Error).message}\n${log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export function run(cmd: string, args: string[], opts: { uid?: number; gid?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${out.slice(-2000)}`))));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
