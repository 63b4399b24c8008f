// Start nginx (sendfile), Debian's docker-registry (CNCF distribution 2.8) and
// customs on loopback free ports, each with its own temp dir.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, makeTempDir, run, spawnServer, tail, waitFor } from './proc.mjs';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

async function httpOk(url, headers = {}) {
  const res = await fetch(url, { headers });
  await res.arrayBuffer();
  return res.status < 500;
}

/**
 * nginx serving `root` with sendfile, as root (the temp dir is 0700), with a
 * generated config in its own prefix dir. Returns { url, stop }.
 */
export async function startNginx(root) {
  const prefix = makeTempDir('nginx');
  const port = await freePort();
  const conf = join(prefix, 'nginx.conf');
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(prefix, d));
  writeFileSync(
    conf,
    `daemon off;
master_process on;
user root;
worker_processes auto;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  types { application/vnd.oci.image.manifest.v1+json json; }
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / { }
  }
}
`,
  );
  const logFile = join(prefix, 'stderr.log');
  const srv = spawnServer('nginx', ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log')], { logFile });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor('nginx', () => httpOk(`${url}/`), { exited: srv.exited });
  } catch (e) {
    throw new Error(`${e.message}\n${tail(logFile)}\n${tail(join(prefix, 'error.log'))}`);
  }
  return { name: 'nginx', url, pid: srv.pid, stop: () => srv.stop() };
}

/**
 * A bare node:http server doing only what no registry can skip (bench/lib/bare-node.mjs):
 * the platform's baseline for customs's PUT and manifest GET, measured in the same run.
 */
export async function startBareNode() {
  const dir = makeTempDir('bare-node');
  const port = await freePort();
  const logFile = join(dir, 'bare-node.log');
  const srv = spawnServer(process.execPath, [join(repoRoot, 'bench', 'lib', 'bare-node.mjs'), String(port), dir], { logFile });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor('bare node:http', () => httpOk(`${url}/v2/`), { exited: srv.exited });
  } catch (e) {
    throw new Error(`${e.message}\n${tail(logFile)}`);
  }
  return { name: 'bare node:http', url, pid: srv.pid, headers: {}, stop: () => srv.stop() };
}

/** Debian's docker-registry with filesystem storage in a temp dir. */
export async function startDistribution({ quiet = false, proxyTo } = {}) {
  const dir = makeTempDir('distribution');
  const port = await freePort();
  const cfg = join(dir, 'config.yml');
  // Same shape as Debian's /etc/docker/registry/config.yml, minus auth; with
  // `proxyTo`, a pull-through cache of that registry (distribution's proxy mode). By
  // default it logs as shipped (info + access log, like customs's per-request
  // line); `quiet` turns request logging off (pair it with customs's quiet).
  writeFileSync(
    cfg,
    `version: 0.1
log:
  level: ${quiet ? 'error' : 'info'}
  accesslog:
    disabled: ${quiet}
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: ${join(dir, 'storage')}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
${proxyTo ? `proxy:\n  remoteurl: ${proxyTo}\n` : ''}`,
  );
  const logFile = join(dir, 'registry.log');
  const srv = spawnServer('/usr/bin/docker-registry', ['serve', cfg], { logFile });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor('docker-registry', () => httpOk(`${url}/v2/`), { exited: srv.exited });
  } catch (e) {
    throw new Error(`${e.message}\n${tail(logFile)}`);
  }
  return { name: 'docker-registry', url, pid: srv.pid, headers: {}, logFile, stop: () => srv.stop() };
}

function newestMtime(dir) {
  let max = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) max = Math.max(max, newestMtime(p));
    else if (/\.(ts|js|mjs|cjs)$/.test(e.name)) max = Math.max(max, statSync(p).mtimeMs);
  }
  return max;
}

// The customs entry point the benches start: bin/customs.js (which runs dist/),
// or, after a private build, an entry next to that build.
let customsEntry = join(repoRoot, 'bin', 'customs.js');
const privateBuild = join(repoRoot, 'node_modules', '.cache', 'customs-bench');

/** Path of a compiled module (e.g. 'verify/index.js') of the build the servers run: the private one after --build, else dist/. */
export function builtModule(rel) {
  return customsEntry === join(repoRoot, 'bin', 'customs.js') ? join(repoRoot, 'dist', rel) : join(privateBuild, 'dist', rel);
}

/**
 * Default: use dist/ (`npm run build` when it is missing) and warn when src/ is
 * newer. `force`: compile the current src/ into node_modules/.cache/customs-bench
 * instead, so the shared dist/ (used by other people's running tests) is not
 * rewritten under them; bare imports still resolve to the repo's node_modules.
 */
export async function ensureBuilt({ force = false } = {}) {
  const dist = join(repoRoot, 'dist');
  if (force) {
    process.stderr.write(`building customs from src/ into ${privateBuild}...\n`);
    rmSync(privateBuild, { recursive: true, force: true });
    const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = await run(process.execPath, [tsc, '-p', join(repoRoot, 'tsconfig.build.json'), '--outDir', join(privateBuild, 'dist')]);
    if (!existsSync(join(privateBuild, 'dist', 'cli', 'main.js'))) throw new Error(`tsc failed:\n${r.stdout}\n${r.stderr}`);
    if (r.code !== 0) process.stderr.write(`warning: tsc reported errors (output emitted anyway):\n${r.stdout.slice(0, 2000)}\n`);
    customsEntry = join(privateBuild, 'customs.mjs');
    writeFileSync(customsEntry, "import { main } from './dist/cli/main.js';\nawait main(process.argv);\n");
    return;
  }
  if (!existsSync(dist) || newestMtime(dist) === 0) {
    process.stderr.write('building customs (npm run build)...\n');
    const r = await run('npm', ['run', 'build', '--prefix', repoRoot]);
    if (r.code !== 0) throw new Error(`npm run build failed:\n${r.stdout}\n${r.stderr}`);
  } else if (newestMtime(join(repoRoot, 'src')) > newestMtime(dist)) {
    process.stderr.write('warning: src/ is newer than dist/; --build compiles the current src/ (privately) before measuring\n');
  }
}

/**
 * customs as a separate process: `node bin/customs.js serve --listen 127.0.0.1:0
 * --data DIR --gate MODE [extra...]`. The URL comes from its "listening" JSON
 * log line; the admin token, if one was written, from <data>/admin-token.
 * `quiet` adds --log-level warn (the "listening" line is still read: see below).
 * `nodeArgs` go to node itself (e.g. --cpu-prof --cpu-prof-dir=DIR: written at exit).
 * `prepare(dataDir)` runs before start (e.g. to drop trust keys in place). `env` is added to the environment.
 */
export async function startCustoms({ gate = 'off', extraArgs = [], nodeArgs = [], prepare, label = 'customs', quiet = false, dataDir: existingData, env } = {}) {
  const dir = makeTempDir(label);
  // An existing data dir: a restart of a server on what it stored before.
  const dataDir = existingData ?? join(dir, 'data');
  if (!existingData) mkdirSync(dataDir);
  if (prepare) await prepare(dataDir);
  const logFile = join(dir, 'customs.log');
  // Quiet (--log-level warn) also hides the "listening" line, so then we pick
  // the port ourselves and wait for /v2/ to answer.
  const port = quiet ? await freePort() : 0;
  const args = [...nodeArgs, customsEntry, 'serve', '--listen', `127.0.0.1:${port}`, '--data', dataDir];
  if (gate) args.push('--gate', gate);
  if (quiet) args.push('--log-level', 'warn'); // no per-request log line
  args.push(...extraArgs);
  const srv = spawnServer(process.execPath, args, { logFile, cwd: repoRoot, env: env ? { ...process.env, ...env } : undefined });
  let url;
  try {
    url = await waitFor(
      label,
      async () => {
        if (quiet) return (await httpOk(`http://127.0.0.1:${port}/v2/`)) && `http://127.0.0.1:${port}`;
        for (const line of readFileSync(logFile, 'utf8').split('\n')) {
          if (!line.startsWith('{')) continue;
          try {
            const j = JSON.parse(line);
            if (j.msg === 'listening' && j.url) return j.url;
          } catch {
            /* partial line */
          }
        }
        return undefined;
      },
      // Startup compiles the SBOM schemas (seconds of CPU on a busy machine).
      { exited: srv.exited, timeoutMs: 120000 },
    );
    url = url.replace(/\/$/, '');
  } catch (e) {
    await srv.stop(1000);
    throw new Error(`${e.message}\n${tail(logFile)}`);
  }
  const headers = {};
  const tokenFile = join(dataDir, 'admin-token');
  if (existsSync(tokenFile)) headers.authorization = `Bearer ${readFileSync(tokenFile, 'utf8').trim()}`;
  return { name: label, url, pid: srv.pid, headers, dataDir, logFile, stop: () => srv.stop() };
}
