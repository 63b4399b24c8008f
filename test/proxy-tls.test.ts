import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../src/oci/index.js';
import { FaultUpstream, generatedBlob } from './helpers/fault-upstream.js';
import { spawnServer, type ServerProcess } from './helpers/process.js';

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';

/**
 * Real upstreams are HTTPS. customs as a process, its upstream served over TLS
 * with a certificate from a private CA that only NODE_EXTRA_CA_CERTS makes
 * trusted: manifests go through node:https, blobs through bulk-get's TLS socket.
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

  async function customs(name: string, env: NodeJS.ProcessEnv) {
    const p = await spawnServer(['--data', join(dir, name), '--gate', 'off', '--upstream', `up=${up.url}`], env);
    procs.push(p);
    const token = (await readFile(join(dir, name, 'admin-token'), 'utf8')).trim();
    return { url: p.url, headers: { authorization: `Bearer ${token}` } };
  }

  it('pulls a manifest and a multi-MiB blob, byte-exact, when the upstream certificate is trusted', async () => {
    expect(up.url).toMatch(/^https:\/\/localhost:\d+$/);
    const img = up.addImage('tls/model', ['v1'], [await generatedBlob(9 * 1024 * 1024 + 5, 'tls')]);
    const c = await customs('trusted', { NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') });
    const m = await fetch(`${c.url}/v2/up/tls/model/manifests/v1`, { headers: { ...c.headers, accept: ACCEPT } });
    expect(m.status).toBe(200);
    expect(m.headers.get('docker-content-digest')).toBe(img.digest);
    const layer = img.layers[0]!;
    const b = await fetch(`${c.url}/v2/up/tls/model/blobs/${layer.digest}`, { headers: c.headers });
    expect(b.status).toBe(200);
    expect(digestOf(Buffer.from(await b.arrayBuffer()))).toBe(layer.digest);
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
});
