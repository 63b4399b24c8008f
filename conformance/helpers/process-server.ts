import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from './docker-registry.js';
import type { Target } from './target.js';

/**
 * A registry in a child process over a data directory, so that a test can kill -9 it
 * and start another over the same directory. customs runs from the built CLI
 * (`node bin/customs.js serve`, `npm test` builds dist first); with
 * CONFORMANCE_TARGET=docker-registry the same test runs against distribution 2.8.
 */
export interface ProcessServer extends Target {
  readonly pid: number;
  kill9(): Promise<void>;
}

const ROOT = resolve(import.meta.dirname, '..', '..');

export async function startProcessServer(dataDir: string): Promise<ProcessServer> {
  return process.env.CONFORMANCE_TARGET === 'docker-registry' ? startDistribution(dataDir) : startCustoms(dataDir);
}

async function startCustoms(dataDir: string): Promise<ProcessServer> {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'customs.js'), 'serve', '--listen', '127.0.0.1:0', '--data', dataDir, '--gate', 'off'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`customs did not print "listening" in 20 s: ${stderr}`)), 20_000);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const rec = JSON.parse(line);
        if (rec.msg === 'listening' && typeof rec.url === 'string') {
          clearTimeout(timer);
          ok(rec.url);
        }
      } catch {
        /* not a JSON log line */
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`customs exited with ${code}: ${stderr}`));
    });
  });
  child.stdout!.resume();
  const token = await readFile(join(dataDir, 'admin-token'), 'utf8').then((s) => s.trim(), () => undefined);
  return wrap('customs', url, token, child);
}

async function startDistribution(dataDir: string): Promise<ProcessServer> {
  const port = await freePort();
  const cfg = join(dataDir, '..', `${dataDir.split('/').pop()}.yml`);
  await writeFile(
    cfg,
    `version: 0.1\nlog: { level: error }\nstorage:\n  filesystem: { rootdirectory: ${dataDir} }\n  delete: { enabled: true }\nhttp: { addr: "127.0.0.1:${port}" }\n`,
  );
  const child = spawn('/usr/bin/docker-registry', ['serve', cfg], { stdio: ['ignore', 'ignore', 'ignore'] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/v2/`)).status === 200) break;
    } catch {
      /* starting */
    }
    if (i > 200 || child.exitCode !== null) throw new Error('docker-registry did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return wrap('docker-registry', url, undefined, child);
}

function wrap(kind: 'customs' | 'docker-registry', url: string, token: string | undefined, child: ChildProcess): ProcessServer {
  const exited = new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
  return {
    kind,
    url,
    host: url.replace(/^http:\/\//, ''),
    token,
    pid: child.pid!,
    auth: (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {}),
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async close() {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}
