// Process and temp-dir bookkeeping shared by the bench scripts.
// Every server is spawned in its own process group (detached) so that one
// kill(-pgid) also takes nginx's workers; clean-up runs on normal exit, on
// errors and on Ctrl-C / SIGTERM.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, closeSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const groups = new Set(); // pids of detached long-running servers
const clients = new Set(); // short-lived clients (curl, wrk)
const tempDirs = new Set();
let keepTemp = false;

/** Keep temporary directories (for debugging: --keep). */
export function setKeepTemp(v) {
  keepTemp = v;
}

function cleanupSync() {
  for (const c of clients) safeKill(c.pid, 'SIGKILL');
  for (const pid of groups) safeKill(-pid, 'SIGKILL');
  groups.clear();
  clients.clear();
  if (!keepTemp) for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

function safeKill(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

let installed = false;
/** Install exit/signal handlers once. */
export function installCleanup() {
  if (installed) return;
  installed = true;
  process.on('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: stopping servers, removing temp files\n`);
      cleanupSync();
      process.exit(130);
    });
  }
  process.on('uncaughtException', (e) => {
    process.stderr.write(`bench failed: ${e?.stack ?? e}\n`);
    cleanupSync();
    process.exit(1);
  });
  process.on('unhandledRejection', (e) => {
    process.stderr.write(`bench failed: ${e?.stack ?? e}\n`);
    cleanupSync();
    process.exit(1);
  });
}

/** A temp dir removed on exit. Under /tmp by default; BENCH_TMPDIR overrides. */
export function makeTempDir(prefix) {
  const d = mkdtempSync(join(process.env.BENCH_TMPDIR ?? tmpdir(), `customs-bench-${prefix}-`));
  tempDirs.add(d);
  return d;
}

export function removeTempDir(d) {
  tempDirs.delete(d);
  if (!keepTemp) rmSync(d, { recursive: true, force: true });
}

/** A free TCP port on 127.0.0.1 (bind to 0, read it, release it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Start a long-running server with stdout+stderr written to logFile (not piped
 * through this process: draining a chatty server's pipe would cost bench CPU).
 */
export function spawnServer(cmd, args, { logFile, cwd, env } = {}) {
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { cwd, env: env ?? process.env, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  groups.add(child.pid);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.on('error', () => {});
  let stopped = false;
  return {
    pid: child.pid,
    child,
    exited,
    logFile,
    /** SIGTERM the group, then SIGKILL after a grace period. */
    async stop(graceMs = 5000) {
      if (stopped) return;
      stopped = true;
      safeKill(-child.pid, 'SIGTERM');
      const t = sleep(graceMs).then(() => 'timeout');
      if ((await Promise.race([exited, t])) === 'timeout') safeKill(-child.pid, 'SIGKILL');
      await exited;
      safeKill(-child.pid, 'SIGKILL'); // stragglers in the group (nginx workers)
      groups.delete(child.pid);
    },
  };
}

/** Run a client to completion, collecting stdout/stderr. */
export function run(cmd, args, { input, timeoutMs = 0 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    clients.add(child);
    let out = '';
    let errOut = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (errOut += d));
    let timer;
    if (timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clients.delete(child);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clients.delete(child);
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout: out, stderr: errOut });
    });
    if (input !== undefined) child.stdin.end(input);
  });
}

/** Poll fn until it returns a truthy value or the deadline passes. */
export async function waitFor(what, fn, { timeoutMs = 30000, intervalMs = 50, exited } = {}) {
  const deadline = Date.now() + timeoutMs;
  let dead = null;
  exited?.then((r) => (dead = r));
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (dead) throw new Error(`${what}: process exited (${JSON.stringify(dead)}) before it was ready`);
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}

/** Last lines of a log file, for error messages. */
export function tail(file, n = 20) {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}

/** pid plus all its descendants (via /proc/<pid>/task/<tid>/children). */
export function processTree(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks = [];
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${out[i]}/task/${t}/children`, 'utf8').trim().split(/\s+/)) {
          if (c) out.push(Number(c));
        }
      } catch {
        /* task gone */
      }
    }
  }
  return out;
}

/** VmRSS in bytes of one process (0 if gone). */
export function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** VmRSS split as the kernel reports it (MB): anon (heap, buffers), file (mapped code), shmem. */
export function rssDetail(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(st)?.[1] ?? 0);
    const mb = (k) => +((kb(k) * 1024) / 1e6).toFixed(1);
    return { rssMB: mb('VmRSS'), anonMB: mb('RssAnon'), fileMB: mb('RssFile'), hwmMB: mb('VmHWM') };
  } catch {
    return null;
  }
}

/**
 * CPU seconds (user + system) used so far by pid and its descendants. On a
 * shared, busy machine this is steadier than wall time: it counts what the
 * server spent, not how long it waited for a CPU.
 */
export function cpuSeconds(pid) {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      // Fields after the ")" of comm: state is 3rd; utime and stime are the 14th and 15th overall.
      const st = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      /* gone */
    }
  }
  return ticks / 100; // USER_HZ is 100 on Linux
}

/** Run fn and return [its result, CPU seconds pid's tree used meanwhile]. */
export async function withCpu(pid, fn) {
  const before = cpuSeconds(pid);
  const result = await fn();
  return [result, cpuSeconds(pid) - before];
}

/**
 * Waits until pid's tree stops using CPU (less than `idleCpuSecs` over `intervalMs`, or `maxMs`
 * passed): work a server goes on doing after its client is done (docker-registry's proxy stores
 * its second copy of a blob; customs commits its fill) belongs to the same pull.
 */
export async function waitCpuQuiet(pid, { intervalMs = 300, idleCpuSecs = 0.02, maxMs = 120000 } = {}) {
  const t0 = Date.now();
  let last = cpuSeconds(pid);
  for (;;) {
    await sleep(intervalMs);
    const now = cpuSeconds(pid);
    if (now - last < idleCpuSecs || Date.now() - t0 > maxMs) return (Date.now() - t0) / 1000;
    last = now;
  }
}
