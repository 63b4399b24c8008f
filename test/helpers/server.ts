import type { KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer, type ServeOptions } from '../../src/server.js';

/** A customs server on 127.0.0.1:0 with a temporary data directory, in this process. */
export interface TestServer {
  readonly url: string; // http://127.0.0.1:PORT
  readonly host: string; // 127.0.0.1:PORT (for skopeo/podman references)
  readonly dataDir: string;
  /** The admin token written to <data>/admin-token on first start, if any. */
  readonly token: string | undefined;
  readonly server: RunningServer;
  /** The --config file written from `config` (rewrite it and call server.reload() to change the policy). */
  readonly configFile: string | undefined;
  /** Authorization header for the admin token (empty object when there is none). */
  auth(): Record<string, string>;
  /** Trusts a public key (`<data>/trust/keys/<name>.pub`, what `customs keygen --data` does) and reloads. */
  trustKey(publicKey: KeyObject, name?: string): Promise<void>;
  close(opts?: { keepData?: boolean }): Promise<void>;
}

export interface TestServerOptions extends Partial<Omit<ServeOptions, 'dataDir' | 'configFile'>> {
  dataDir?: string;
  /** Configuration written to a YAML/JSON file and passed as --config. */
  config?: Record<string, unknown>;
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'customs-test-')));
  let configFile: string | undefined;
  if (opts.config) {
    configFile = join(dataDir, '..', `${dataDir.split('/').pop()}-config.json`);
    await writeFile(configFile, JSON.stringify(opts.config));
  }
  const { config: _c, dataDir: _d, ...rest } = opts;
  const server = await startServer({ listen: '127.0.0.1:0', logLevel: 'silent', gate: 'off', ...rest, dataDir, configFile });
  const token = await readFile(join(dataDir, 'admin-token'), 'utf8').then((t) => t.trim(), () => undefined);
  const url = server.url;
  return {
    url,
    host: url.replace(/^https?:\/\//, ''),
    dataDir,
    token,
    server,
    configFile,
    auth: (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {}),
    async trustKey(publicKey, name = `key-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`) {
      const dir = join(dataDir, 'trust', 'keys');
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, `${name}.pub`), publicKey.export({ type: 'spki', format: 'pem' }));
      await server.reload();
    },
    async close(o = {}) {
      await server.close();
      if (!o.keepData && !opts.dataDir) await rm(dataDir, { recursive: true, force: true, maxRetries: 5 }); // a refused upload's last write may still land after close
      if (configFile) await rm(configFile, { force: true });
    },
  };
}
