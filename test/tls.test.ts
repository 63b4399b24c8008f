import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer, type ServerProcess } from './helpers/process.js';
import { makeTestCa, pem, type TestCa } from './helpers/test-ca.js';

/**
 * customs serving HTTPS as a process: TLS 1.2+, the pair re-read on SIGHUP while clients keep
 * requesting (no request fails, open keep-alive connections stay up), refusal to start with a key
 * that is not the certificate's or a missing file, and client certificates as principals.
 */
interface Reply {
  status: number;
  fingerprint: string;
  localPort: number;
}

function get(url: string, ca: string, agent: Agent | false, extra: { cert?: string; key?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const r = request(url, { ca, agent, ...extra }, (res) => {
      const socket = res.socket as TLSSocket;
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      const localPort = socket.localPort ?? 0;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, fingerprint, localPort }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end();
  });
}

const fingerprintOf = (certPath: string): string => new X509Certificate(pem(certPath)).fingerprint256;

describe('customs serve over TLS', () => {
  let dir: string;
  let ca: TestCa;
  const procs: ServerProcess[] = [];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'customs-tls-serve-'));
    ca = makeTestCa(dir);
    ca.issue('server', { cn: 'customs', dns: ['localhost'], ips: ['127.0.0.1'] });
    ca.issue('renewed', { cn: 'customs', dns: ['localhost'], ips: ['127.0.0.1'] });
    ca.issue('other', { cn: 'other', dns: ['localhost'] });
    ca.issue('node-1', { cn: 'node-1', client: true });
    const rogue = makeTestCa(dir, 'rogue-ca');
    rogue.issue('rogue-node', { cn: 'node-1', client: true });
  });
  afterAll(() => {
    for (const p of procs) p.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  async function serve(name: string, args: string[]): Promise<ServerProcess> {
    const p = await spawnServer(['--data', join(dir, name), '--gate', 'off', ...args]);
    procs.push(p);
    return p;
  }

  it('reloads a renewed certificate on SIGHUP under load: no request fails, open connections stay up', async () => {
    copyFileSync(join(dir, 'server.pem'), join(dir, 'live.pem'));
    copyFileSync(join(dir, 'server-key.pem'), join(dir, 'live-key.pem'));
    const p = await serve('reload', ['--tls-cert', join(dir, 'live.pem'), '--tls-key', join(dir, 'live-key.pem')]);
    expect(p.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const caPem = pem(ca.caCert);
    const oldFp = fingerprintOf(join(dir, 'server.pem'));
    const newFp = fingerprintOf(join(dir, 'renewed.pem'));

    // Load: two workers on one kept-alive connection each, two opening a new connection per request.
    const failures: string[] = [];
    const seen = new Set<string>();
    let stop = false;
    const kept = [new Agent({ keepAlive: true, maxSockets: 1 }), new Agent({ keepAlive: true, maxSockets: 1 })];
    const keptReplies: Reply[][] = [[], []];
    const worker = async (agent: Agent | false, log?: Reply[]): Promise<void> => {
      // Bounded in count and time: the loop ends by itself even if the test is stuck.
      const deadline = Date.now() + 90_000;
      for (let i = 0; i < 20_000 && !stop && Date.now() < deadline; i++) {
        try {
          const r = await get(`${p.url}/healthz`, caPem, agent);
          if (r.status !== 200) failures.push(`status ${r.status}`);
          seen.add(r.fingerprint);
          log?.push(r);
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
    };
    const load = [worker(kept[0]!, keptReplies[0]), worker(kept[1]!, keptReplies[1]), worker(false), worker(false)];
    while (keptReplies[0]!.length < 20 || keptReplies[1]!.length < 20) await new Promise((r) => setTimeout(r, 20));

    // Renew: the files are replaced atomically, as cert-manager or certbot do, then SIGHUP.
    copyFileSync(join(dir, 'renewed.pem'), join(dir, 'next.pem'));
    copyFileSync(join(dir, 'renewed-key.pem'), join(dir, 'next-key.pem'));
    renameSync(join(dir, 'next-key.pem'), join(dir, 'live-key.pem'));
    renameSync(join(dir, 'next.pem'), join(dir, 'live.pem'));
    p.child.kill('SIGHUP');
    let fresh = '';
    for (let i = 0; i < 200 && fresh !== newFp; i++) {
      fresh = (await get(`${p.url}/healthz`, caPem, false)).fingerprint;
      if (fresh !== newFp) await new Promise((r) => setTimeout(r, 25));
    }
    expect(fresh).toBe(newFp);
    const after = keptReplies.map((l) => l.length);
    while (keptReplies.some((l, i) => l.length < after[i]! + 20)) await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await Promise.all(load);
    for (const a of kept) a.destroy();

    expect(failures).toEqual([]);
    expect(seen).toContain(oldFp);
    expect(seen).toContain(newFp);
    // The kept-alive connections were opened before the reload and served requests after it, on the same socket.
    for (const l of keptReplies) {
      expect(new Set(l.map((r) => r.localPort)).size).toBe(1);
      expect(l.at(-1)!.fingerprint).toBe(oldFp);
    }
    expect(p.lines.some((l) => l.includes('TLS certificate and key reloaded'))).toBe(true);
  });

  it('keeps the previous certificate when the renewed pair does not match, and says why', async () => {
    copyFileSync(join(dir, 'server.pem'), join(dir, 'half.pem'));
    copyFileSync(join(dir, 'server-key.pem'), join(dir, 'half-key.pem'));
    const p = await serve('half', ['--tls-cert', join(dir, 'half.pem'), '--tls-key', join(dir, 'half-key.pem')]);
    copyFileSync(join(dir, 'renewed.pem'), join(dir, 'half.pem')); // the key was not renewed with it
    p.child.kill('SIGHUP');
    // Log lines are written in batches: requests meanwhile make them flush.
    for (let i = 0; i < 400 && !p.lines.some((l) => l.includes('reload failed')); i++) {
      await get(`${p.url}/healthz`, pem(ca.caCert), false);
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(p.lines.find((l) => l.includes('reload failed'))).toMatch(/TLS reload failed, keeping the previous certificate: tls\.key .* is not the private key of tls\.cert/);
    const r = await get(`${p.url}/healthz`, pem(ca.caCert), false);
    expect(r.status).toBe(200);
    expect(r.fingerprint).toBe(fingerprintOf(join(dir, 'server.pem')));
  });

  it('picks up a pair renewed on disk without a signal (tls.watchSeconds), as a Kubernetes Secret is renewed', async () => {
    copyFileSync(join(dir, 'server.pem'), join(dir, 'watched.pem'));
    copyFileSync(join(dir, 'server-key.pem'), join(dir, 'watched-key.pem'));
    writeFileSync(join(dir, 'watch.yaml'), 'tls:\n  cert: watched.pem\n  key: watched-key.pem\n  watchSeconds: 1\n');
    const p = await serve('watch', ['--config', join(dir, 'watch.yaml')]);
    const caPem = pem(ca.caCert);
    expect((await get(`${p.url}/healthz`, caPem, false)).fingerprint).toBe(fingerprintOf(join(dir, 'server.pem')));
    copyFileSync(join(dir, 'renewed-key.pem'), join(dir, 'watched-key.pem'));
    copyFileSync(join(dir, 'renewed.pem'), join(dir, 'watched.pem'));
    const want = fingerprintOf(join(dir, 'renewed.pem'));
    let seen = '';
    for (let i = 0; i < 300 && seen !== want; i++) {
      seen = (await get(`${p.url}/healthz`, caPem, false)).fingerprint;
      if (seen !== want) await new Promise((r) => setTimeout(r, 50));
    }
    expect(seen).toBe(want);
    expect(p.lines.some((l) => l.includes('TLS certificate and key changed on disk; reloaded'))).toBe(true);
  });

  it('refuses to start with a key that is not the certificate\'s, or a missing file, with the reason', async () => {
    await expect(serve('wrong-key', ['--tls-cert', join(dir, 'server.pem'), '--tls-key', join(dir, 'other-key.pem')])).rejects.toThrow(
      /customs: tls\.key .*other-key\.pem is not the private key of tls\.cert .*server\.pem \(CN=customs\): the pair does not match/,
    );
    await expect(serve('missing', ['--tls-cert', join(dir, 'nope.pem'), '--tls-key', join(dir, 'server-key.pem')])).rejects.toThrow(/customs: cannot read tls\.cert .*nope\.pem: ENOENT/);
    await expect(serve('alone', ['--tls-cert', join(dir, 'server.pem')])).rejects.toThrow(/--tls-cert and --tls-key go together/);
    writeFileSync(join(dir, 'tls-config.yaml'), 'tls:\n  cert: server.pem\n  key: other-key.pem\n');
    await expect(serve('wrong-key-config', ['--config', join(dir, 'tls-config.yaml')])).rejects.toThrow(/the pair does not match/);
  });

  it('speaks TLS 1.2 and 1.3 and refuses older versions', async () => {
    const p = await serve('versions', ['--tls-cert', join(dir, 'server.pem'), '--tls-key', join(dir, 'server-key.pem')]);
    const port = Number(new URL(p.url).port);
    const handshake = (opts: { minVersion?: 'TLSv1' | 'TLSv1.2' | 'TLSv1.3'; maxVersion?: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3' }) =>
      new Promise<string>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port, ca: pem(ca.caCert), ALPNProtocols: ['h2', 'http/1.1'], ...opts }, () => {
          const v = `${s.getProtocol()} ${s.alpnProtocol}`;
          s.end();
          resolve(v);
        });
        s.on('error', reject);
      });
    expect(await handshake({ maxVersion: 'TLSv1.2' })).toBe('TLSv1.2 http/1.1');
    expect(await handshake({ minVersion: 'TLSv1.3' })).toBe('TLSv1.3 http/1.1');
    await expect(handshake({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1' })).rejects.toThrow();
  });

  it('authenticates a client certificate from tls.clientCA as cert:<CN>, and no other', async () => {
    writeFileSync(
      join(dir, 'mtls.yaml'),
      [
        'auth: { anonymous: { pull: never } }',
        'tls:',
        '  cert: server.pem',
        '  key: server-key.pem',
        '  clientCA: ca.pem',
        '  clientPermissions: [{ repositories: ["models/**"], actions: [pull] }]',
        '',
      ].join('\n'),
    );
    const p = await serve('mtls', ['--config', join(dir, 'mtls.yaml')]);
    const caPem = pem(ca.caCert);
    const node = { cert: pem(join(dir, 'node-1.pem')), key: pem(join(dir, 'node-1-key.pem')) };
    const rogue = { cert: pem(join(dir, 'rogue-node.pem')), key: pem(join(dir, 'rogue-node-key.pem')) };
    // A pull of a repository the certificate may read: authenticated (404 for a missing manifest, not 401).
    expect((await get(`${p.url}/v2/models/x/manifests/v1`, caPem, false, node)).status).toBe(404);
    expect((await get(`${p.url}/v2/models/x/manifests/v1`, caPem, false)).status).toBe(401);
    // The same CN from another CA is nobody.
    expect((await get(`${p.url}/v2/models/x/manifests/v1`, caPem, false, rogue)).status).toBe(401);
    // Permissions are the configured ones: no pull outside models/**.
    expect((await get(`${p.url}/v2/other/x/manifests/v1`, caPem, false, node)).status).toBe(403);
    // Access lines go out in batches (at most 100 ms later): wait for the first request's.
    const actors = () => p.lines.map((l) => JSON.parse(l) as { msg?: string; actor?: string; path?: string }).filter((l) => l.msg === 'request' && l.path === '/v2/models/x/manifests/v1').map((l) => l.actor);
    for (let i = 0; i < 100 && !actors().includes('cert:node-1'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(actors()).toContain('cert:node-1');
  });
});
