import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Debian's containerd (1.6) with its own root, state and sockets under a temporary directory, and
 * `ctr` talking to it. The CRI plugin is off (no kubelet here); pulls need no privileges beyond the
 * snapshotter's, and `ctr content fetch` none.
 */
export interface Containerd {
  readonly address: string;
  /** Runs `ctr --address ... <args>`; resolves with stdout, rejects with stderr. */
  ctr(args: string[]): Promise<{ stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

export async function startContainerd(dir: string): Promise<Containerd> {
  if (!existsSync('/usr/bin/containerd')) throw new Error('containerd is not installed: bash scripts/test-deps.sh (apt-get install containerd)');
  await mkdir(dir, { recursive: true });
  const address = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  await writeFile(
    config,
    [
      'version = 2',
      `root = "${join(dir, 'root')}"`,
      `state = "${join(dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${address}"`,
      '[ttrpc]',
      `  address = "${address}.ttrpc"`,
      '[debug]',
      `  address = "${join(dir, 'debug.sock')}"`,
      '[metrics]',
      '  address = ""',
      '',
    ].join('\n'),
  );
  const child = spawn('/usr/bin/containerd', ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d: Buffer) => {
    if (log.length < 200_000) log += d.toString();
  });
  const ctr = (args: string[]) =>
    new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
      execFile('/usr/bin/ctr', ['--address', address, ...args], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (e, stdout, stderr) =>
        e ? reject(Object.assign(new Error(`ctr ${args.join(' ')}: ${stderr || e.message}`), { stdout, stderr })) : resolve({ stdout, stderr }),
      ),
    );
  for (let i = 0; ; i++) {
    const up = await ctr(['version']).then(() => true, () => false);
    if (up) break;
    if (child.exitCode !== null || i > 200) throw new Error(`containerd did not start: ${log.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    address,
    ctr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
}

/**
 * containerd's hosts.toml for one registry name, mirrored by customs over TLS, in the form
 * docs/kubernetes.md gives: customs is the `server` too, so a refusal never falls back to the registry.
 * With `client`, the node presents that certificate (mTLS).
 */
export async function writeMirrorHosts(hostsDir: string, registry: string, mirror: string, caFile: string, client?: { cert: string; key: string }): Promise<void> {
  await mkdir(join(hostsDir, registry), { recursive: true });
  const tls = [`ca = "${caFile}"`, ...(client ? [`client = [["${client.cert}", "${client.key}"]]`] : [])];
  await writeFile(
    join(hostsDir, registry, 'hosts.toml'),
    [`server = "${mirror}"`, ...tls, '', `[host."${mirror}"]`, '  capabilities = ["pull", "resolve"]', ...tls.map((l) => `  ${l}`), ''].join('\n'),
  );
}
