import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer, type TestServerOptions } from '../../test/helpers/server.js';
import { goTool } from '../../test/helpers/tools.js';

/**
 * The real Go clients (oras, crane, regctl, cosign, notation; built by scripts/deps/go-tools.sh)
 * run as a user runs them, each test file with a HOME of its own: credentials, cosign keys and
 * notation's trust store never leak between files or into the machine's config.
 */
export interface ToolResult {
  readonly stdout: string;
  readonly stderr: string;
}

export class Clients {
  private constructor(readonly home: string) {}

  static async create(): Promise<Clients> {
    const home = await mkdtemp(join(tmpdir(), 'customs-clients-'));
    await mkdir(join(home, '.docker'), { recursive: true });
    return new Clients(home);
  }

  private env(extra: Record<string, string>): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: this.home,
      XDG_CONFIG_HOME: join(this.home, '.config'),
      DOCKER_CONFIG: join(this.home, '.docker'),
      // cosign's generated keys are not encrypted; it asks for no password then.
      COSIGN_PASSWORD: '',
      // Nothing here may reach the network: no TUF refresh, no update checks.
      SIGSTORE_NO_CACHE: '1',
      TUF_ROOT: join(this.home, '.sigstore'),
      ...extra,
    };
  }

  /** Runs `tool args`; rejects with its stderr when it exits non-zero. */
  run(tool: string, args: readonly string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<ToolResult> {
    return new Promise((resolve, reject) =>
      execFile(goTool(tool), args, { env: this.env(opts.env ?? {}), cwd: opts.cwd ?? this.home, timeout: 180_000, maxBuffer: 64 << 20 }, (e, stdout, stderr) => {
        if (e) reject(Object.assign(new Error(`${tool} ${args.join(' ')} failed (${e.code ?? e.signal}):\n${stderr}\n${stdout}`), { stdout, stderr }));
        else resolve({ stdout, stderr });
      }),
    );
  }

  /** Runs `tool args` expecting it to fail; resolves with stderr+stdout (rejects if it succeeded). */
  async refuses(tool: string, args: readonly string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<string> {
    const r = await this.run(tool, args, opts).then(
      (ok) => ({ ok: true as const, out: `${ok.stderr}\n${ok.stdout}` }),
      (e: { stderr?: string; stdout?: string; message: string }) => ({ ok: false as const, out: `${e.stderr ?? e.message}\n${e.stdout ?? ''}` }),
    );
    if (r.ok) throw new Error(`${tool} ${args.join(' ')} succeeded, expected a refusal:\n${r.out}`);
    return r.out;
  }

  /** `oras push` of one small file `data.txt` holding `text` to `host/ref`; returns the manifest digest. */
  async pushFile(host: string, authArgs: readonly string[], ref: string, text: string): Promise<string> {
    const dir = `push-${createHash('sha256').update(`${host}/${ref}`).digest('hex').slice(0, 12)}`;
    await this.file(`${dir}/data.txt`, text);
    const out = await this.run('oras', ['push', ...authArgs, '--format', 'json', `${host}/${ref}`, 'data.txt'], { cwd: join(this.home, dir) });
    return (JSON.parse(out.stdout) as { digest: string }).digest;
  }

  async file(name: string, content: string | Buffer): Promise<string> {
    const p = join(this.home, name);
    await mkdir(join(p, '..'), { recursive: true });
    await writeFile(p, content);
    return p;
  }

  close(): Promise<void> {
    return rm(this.home, { recursive: true, force: true });
  }
}

/**
 * customs in this process with a data directory the test owns, so that trust material can be put
 * in <data>/trust/keys/ before it starts and the policy rewritten later (`setPolicy` + reload).
 */
export interface Customs {
  readonly s: TestServer;
  readonly host: string;
  readonly dataDir: string;
  /** Rewrites the config file's policy and reloads it (SIGHUP does the same for `customs serve`). */
  setPolicy(policy: unknown): Promise<void>;
  close(): Promise<void>;
}

export async function startCustoms(opts: { policy?: unknown; trustedKeys?: Record<string, string>; gate?: TestServerOptions['gate']; upstreams?: Record<string, string> } = {}): Promise<Customs> {
  const dataDir = await mkdtemp(join(tmpdir(), 'customs-clients-data-'));
  await mkdir(join(dataDir, 'trust', 'keys'), { recursive: true });
  for (const [name, pem] of Object.entries(opts.trustedKeys ?? {})) await writeFile(join(dataDir, 'trust', 'keys', name), pem);
  const config: Record<string, unknown> = opts.policy === undefined ? {} : { policy: opts.policy };
  const s = await startTestServer({ dataDir, gate: opts.gate, config, ...(opts.upstreams ? { upstreams: opts.upstreams } : {}) });
  return {
    s,
    host: s.host,
    dataDir,
    async setPolicy(policy) {
      await writeFile(s.configFile!, JSON.stringify({ ...config, policy }));
      await s.server.reload();
    },
    async close() {
      await s.close();
      await rm(dataDir, { recursive: true, force: true, maxRetries: 5 });
    },
  };
}

/** `--plain-http -u x -p TOKEN`: how oras is given customs' admin token (as skopeo and podman are). */
export const orasAuth = (c: Customs): string[] => ['--plain-http', '-u', 'ci', '-p', c.s.token ?? ''];
