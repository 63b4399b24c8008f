import { randomBytes } from 'node:crypto';
import { startDockerRegistry } from './docker-registry.js';

/**
 * The registry under test. By default a customs server in this process
 * (test/helpers/server.ts, gate off). For checking the tests themselves:
 *   CONFORMANCE_TARGET=docker-registry  starts Debian's distribution 2.8 on loopback
 *   CONFORMANCE_URL=http://127.0.0.1:PORT [CONFORMANCE_TOKEN=...]  any running registry
 */
export interface Target {
  readonly kind: 'customs' | 'docker-registry' | 'external';
  readonly url: string; // http://HOST:PORT
  readonly host: string; // HOST:PORT
  readonly token: string | undefined;
  /** Headers to send on every request (authorisation, when the registry has a token). */
  auth(): Record<string, string>;
  close(): Promise<void>;
}

export async function openTarget(): Promise<Target> {
  const url = process.env.CONFORMANCE_URL;
  if (url) {
    const token = process.env.CONFORMANCE_TOKEN || undefined;
    return {
      kind: 'external',
      url: url.replace(/\/+$/, ''),
      host: url.replace(/^https?:\/\//, '').replace(/\/+$/, ''),
      token,
      auth: (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {}),
      close: async () => {},
    };
  }
  if (process.env.CONFORMANCE_TARGET === 'docker-registry') {
    const r = await startDockerRegistry();
    return {
      kind: 'docker-registry',
      url: r.url,
      host: r.url.replace(/^http:\/\//, ''),
      token: undefined,
      auth: () => ({}),
      close: () => r.close(),
    };
  }
  // Imported lazily so that the suite can run against another registry while
  // customs' server module is not importable.
  const { startTestServer } = await import('../../test/helpers/server.js');
  const s = await startTestServer({ gate: 'off' });
  return { kind: 'customs', url: s.url, host: s.host, token: s.token, auth: () => s.auth(), close: () => s.close() };
}

/** A repository name of its own for each test, so tests never see each other's content. */
export function repoName(prefix = 'conf'): string {
  return `${prefix}/r${randomBytes(5).toString('hex')}`;
}
