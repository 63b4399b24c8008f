import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../src/oci/index.js';
import { FaultUpstream, generatedBlob } from './helpers/fault-upstream.js';
import { spawnServer, type ServerProcess } from './helpers/process.js';

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';

/**
 * Real upstreams are HTTPS. customs as a process, its upstream served over TLS
 * with a certificate from a private CA that only NODE_EXTRA_CA_CERTS (for the
 * whole process) or the upstream's `tls.caFile` makes trusted: manifests go
 * through node:https, blobs through bulk-get's TLS socket.
 */
describe('pull-through from an HTTPS upstream', () => {
  let dir: string;
  let up: FaultUpstream;
  const procs: ServerProcess[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'customs-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { stdio: 'ignore' });
    up = await FaultUpstream.start({ tls: { key: await readFile(join(dir, 'key.pem'), 'utf8'), cert: await readFile(join(dir, 'cert.pem'), 'utf8') } });
  });
  afterAll(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await up.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function customs(name: string, env: NodeJS.ProcessEnv, args = ['--upstream', `up=${up.url}`]) {
    const p = await spawnServer(['--data', join(dir, name), '--gate', 'off', ...args], env);
    procs.push(p);
    const token = (await readFile(join(dir, name, 'admin-token'), 'utf8')).trim();
    return { url: p.url, headers: { authorization: `Bearer ${token}` } };
  }

  type Customs = Awaited<ReturnType<typeof customs>>;
  type Image = ReturnType<FaultUpstream['addImage']>;

  /** Pulls `repo:v1` and its one layer through customs: manifest digest and blob bytes as the upstream has them. */
  async function expectPulled(c: Customs, repo: string, img: Image): Promise<void> {
    const m = await fetch(`${c.url}/v2/up/${repo}/manifests/v1`, { headers: { ...c.headers, accept: ACCEPT } });
    expect(m.status).toBe(200);
    expect(m.headers.get('docker-content-digest')).toBe(img.digest);
    const layer = img.layers[0]!;
    const b = await fetch(`${c.url}/v2/up/${repo}/blobs/${layer.digest}`, { headers: c.headers });
    expect(b.status).toBe(200);
    expect(digestOf(Buffer.from(await b.arrayBuffer()))).toBe(layer.digest);
  }

  it('pulls a manifest and a multi-MiB blob, byte-exact, when the upstream certificate is trusted', async () => {
    expect(up.url).toMatch(/^https:\/\/localhost:\d+$/);
    const img = up.addImage('tls/model', ['v1'], [await generatedBlob(9 * 1024 * 1024 + 5, 'tls')]);
    const c = await customs('trusted', { NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') });
    await expectPulled(c, 'tls/model', img);
    expect(up.count('GET', /\/blobs\//)).toBe(1);
  });

  it('refuses an upstream whose certificate it cannot verify, with an error that says so', async () => {
    up.addImage('tls/other', ['v1'], [Buffer.from('x'.repeat(1000))]);
    const c = await customs('untrusted', { NODE_EXTRA_CA_CERTS: '' });
    const m = await fetch(`${c.url}/v2/up/tls/other/manifests/v1`, { headers: { ...c.headers, accept: ACCEPT } });
    expect(m.status).toBe(502);
    // The spec has no upstream code: UNKNOWN, with the reason in the message.
    const error = ((await m.json()) as { errors: { code: string; message: string }[] }).errors[0]!;
    expect(error.code).toBe('UNKNOWN');
    expect(error.message).toMatch(/upstream connection failed: DEPTH_ZERO_SELF_SIGNED_CERT/);
  });

  /** A config file whose only upstream is `up`, trusting the CA in `caFile` (relative to the config file). */
  async function configWithCa(name: string, caFile: string): Promise<string> {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, `upstreams:\n  - name: up\n    url: ${up.url}\n    tls: { caFile: ${caFile} }\n`);
    return file;
  }

  it("trusts a private CA for one upstream through its tls.caFile, not through the process's CA store", async () => {
    const img = up.addImage('tls/corp', ['v1'], [await generatedBlob(3 * 1024 * 1024 + 1, 'corp')]);
    const c = await customs('own-ca', { NODE_EXTRA_CA_CERTS: '' }, ['--config', await configWithCa('own-ca', 'cert.pem')]);
    await expectPulled(c, 'tls/corp', img);
  });

  it("keeps NODE_EXTRA_CA_CERTS's CAs trusted for an upstream that also has a tls.caFile of its own", async () => {
    // The upstream's own CA file names some other CA; the process-wide one is the upstream's.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'other-key.pem'), '-out', join(dir, 'other.pem'), '-days', '1', '-subj', '/CN=other'], { stdio: 'ignore' });
    const img = up.addImage('tls/both', ['v1'], [await generatedBlob(2 * 1024 * 1024 + 3, 'both')]);
    const c = await customs('both', { NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') }, ['--config', await configWithCa('both', 'other.pem')]);
    await expectPulled(c, 'tls/both', img);
  });

  it('will not start with a tls.caFile that is missing or holds no certificate, and says which', async () => {
    await writeFile(join(dir, 'not-a-cert.pem'), 'hello\n');
    for (const [caFile, message] of [
      ['missing.pem', /upstream up: cannot read tls\.caFile .*missing\.pem: ENOENT/],
      ['not-a-cert.pem', /upstream up: tls\.caFile .*not-a-cert\.pem holds no PEM certificate/],
    ] as const) {
      const started = customs(`bad-${caFile}`, {}, ['--config', await configWithCa(`bad-${caFile}`, caFile)]);
      await expect(started).rejects.toThrow(message);
    }
  });
});
