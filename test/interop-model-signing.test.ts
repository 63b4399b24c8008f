import { execFile } from 'node:child_process';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Output } from '../src/cli/producer/common.js';
import { attachCommand, pullCommand, pushModelCommand } from '../src/cli/producer/index.js';
import { ACCEPT } from './gate-fixtures.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { goTool, venvTool } from './helpers/tools.js';

/**
 * OpenSSF model signing (model_signing 1.1.1, the reference implementation) against customs, both ways:
 * - model_signing signs a directory with a P-256 or P-384 key; customs (`push model --model-signature`)
 *   or oras (push of the files + attach of the signature, no customs CLI) uploads it; the gate, trusting
 *   that public key, serves it only while every signed file is a layer and every layer is signed;
 * - customs `push model --sign` writes a model signature that `model_signing verify key` accepts on the
 *   directory `customs pull --model-signature` produces.
 */
const run = promisify(execFile);
const quiet: Output = { out() {}, err() {} };
const MS = venvTool('model_signing');
const ORAS = goTool('oras');

let s: TestServer;
let work: string;
const saved = process.env.CUSTOMS_TOKEN;

interface Key {
  readonly priv: string;
  readonly pub: string;
}

async function ecKey(name: string, curve: 'P-256' | 'P-384'): Promise<Key> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  const priv = join(work, `${name}.pem`);
  const pub = join(work, `${name}.pub`);
  await writeFile(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await writeFile(pub, publicKey.export({ type: 'spki', format: 'pem' }));
  return { priv, pub };
}

/** A small model directory: weights in a subdirectory, a config, a README. */
async function modelDir(name: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(join(dir, 'weights'), { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify({ architecture: 'tiny', name }));
  await writeFile(join(dir, 'weights', 'model.safetensors'), Buffer.alloc(4096, name.length));
  await writeFile(join(dir, 'README.md'), `# ${name}\n`);
  return dir;
}

async function msSign(dir: string, key: Key, sig: string): Promise<void> {
  await run(MS, ['sign', 'key', '--private_key', key.priv, '--signature', sig, dir]);
}

async function get(repo: string, ref: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`${s.url}/v2/${repo}/manifests/${ref}`, { headers: { accept: ACCEPT, ...s.auth() } });
  return { status: r.status, body: await r.text() };
}

/** `oras push` of a directory's files, as a producer without customs' CLI does it (run inside the directory: titles are relative paths). */
async function orasPushDir(dir: string, ref: string, files: string[]): Promise<void> {
  await run(ORAS, ['push', '--plain-http', '-u', 'ci', '-p', s.token ?? '', '--artifact-type', 'application/vnd.cncf.model.manifest.v1+json', `${s.host}/${ref}`, ...files], { cwd: dir });
}

/** `oras attach` of the signature file (oras refuses absolute paths: run beside it). */
async function orasAttachSig(ref: string, sig: string): Promise<void> {
  await run(ORAS, ['attach', '--plain-http', '-u', 'ci', '-p', s.token ?? '', '--artifact-type', 'application/vnd.dev.sigstore.bundle.v0.3+json', `${s.host}/${ref}`, `${basename(sig)}:application/vnd.dev.sigstore.bundle.v0.3+json`], {
    cwd: dirname(sig),
  });
}

describe('OpenSSF model signing interop (model_signing 1.1.1, oras 1.3.6)', () => {
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'customs-ms-'));
    // Anonymous pulls refused: oras then gets a 401 challenge and sends its credentials (it never sends them unasked).
    s = await startTestServer({ gate: 'enforce', config: { auth: { anonymous: { pull: 'never' } } } });
    process.env.CUSTOMS_TOKEN = s.token ?? '';
  });
  afterAll(async () => {
    process.env.CUSTOMS_TOKEN = saved;
    await s?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const curve of ['P-256', 'P-384'] as const) {
    it(`model_signing sign key (${curve}) + customs push --model-signature: served under a policy trusting that key`, async () => {
      const key = await ecKey(`ms-${curve}`, curve);
      await s.trustKey(createPublicKey(await readFile(key.pub)), `ms-${curve}`);
      const dir = await modelDir(`m-${curve}`);
      const sig = join(work, `m-${curve}.sig`);
      await msSign(dir, key, sig);
      const r = await pushModelCommand(dir, { url: s.url, to: `models/ms-${curve.toLowerCase()}:v1`, modelSignature: sig }, quiet);
      expect(r.referrers.some((x) => x.predicateType === 'https://model_signing/signature/v1.0')).toBe(true);
      expect((await get(`models/ms-${curve.toLowerCase()}`, 'v1')).status).toBe(200);
      const out = join(work, `pulled-${curve}`);
      const pulled = await pullCommand(`models/ms-${curve.toLowerCase()}:v1`, out, { url: s.url, modelSignature: join(work, `pulled-${curve}.sig`) }, quiet);
      expect(pulled.files.map((f) => f.path).sort()).toHaveLength(3);
      // What came back verifies with the reference implementation, with the signer's own signature.
      await run(MS, ['verify', 'key', '--public_key', key.pub, '--signature', join(work, `pulled-${curve}.sig`), out]);
    });
  }

  it('a signature in the model directory itself (model_signing ignores it) is not packed as a layer', async () => {
    const key = await ecKey('inside', 'P-256');
    await s.trustKey(createPublicKey(await readFile(key.pub)), 'inside');
    const dir = await modelDir('m-inside');
    await msSign(dir, key, join(dir, 'model.sig'));
    const r = await pushModelCommand(dir, { url: s.url, to: 'models/inside:v1', modelSignature: join(dir, 'model.sig') }, quiet);
    expect(r.files.map((f) => f.relPath)).not.toContain('model.sig');
    expect((await get('models/inside', 'v1')).status).toBe(200);
  });

  it('customs push refuses a directory changed after signing, naming the file (changed, added, removed)', async () => {
    const key = await ecKey('tamper', 'P-384');
    const dir = await modelDir('m-tamper');
    const sig = join(work, 'm-tamper.sig');
    await msSign(dir, key, sig);
    const push = (tag: string) => pushModelCommand(dir, { url: s.url, to: `models/tamper:${tag}`, modelSignature: sig }, quiet);
    await appendFile(join(dir, 'weights', 'model.safetensors'), 'x');
    await expect(push('changed')).rejects.toThrow(/weights\/model\.safetensors changed after signing/);
    await writeFile(join(dir, 'weights', 'model.safetensors'), Buffer.alloc(4096, 'm-tamper'.length));
    await writeFile(join(dir, 'extra.bin'), 'smuggled');
    await expect(push('added')).rejects.toThrow(/extra\.bin was added after signing/);
    await rm(join(dir, 'extra.bin'));
    await rm(join(dir, 'README.md'));
    await expect(push('removed')).rejects.toThrow(/README\.md is signed but missing/);
  });

  it('oras push + oras attach of a model_signing signature: allowed as signed; a file changed, added or removed after signing is denied, naming the file', async () => {
    const key = await ecKey('oras', 'P-384');
    await s.trustKey(createPublicKey(await readFile(key.pub)), 'oras');
    const dir = await modelDir('m-oras');
    const sig = join(work, 'm-oras.sig');
    await msSign(dir, key, sig);
    const files = ['README.md', 'config.json', 'weights/model.safetensors'];

    await orasPushDir(dir, 'models/oras:good', files);
    expect((await get('models/oras', 'good')).status).toBe(403); // unsigned so far
    await orasAttachSig('models/oras:good', sig);
    expect((await get('models/oras', 'good')).status).toBe(200);

    // customs attach takes the same signature (it names files, not the manifest: the gate binds it).
    await orasPushDir(dir, 'models/oras:attached', files);
    await attachCommand('models/oras:attached', { url: s.url, signature: sig }, quiet);
    expect((await get('models/oras', 'attached')).status).toBe(200);

    // Changed after signing: the signed digest of the weights is no layer of the served manifest.
    await appendFile(join(dir, 'weights', 'model.safetensors'), 'poison');
    await orasPushDir(dir, 'models/oras:changed', files);
    await orasAttachSig('models/oras:changed', sig);
    const changed = await get('models/oras', 'changed');
    expect(changed.status).toBe(403);
    expect(changed.body).toMatch(/weights\/model\.safetensors/);
    await writeFile(join(dir, 'weights', 'model.safetensors'), Buffer.alloc(4096, 'm-oras'.length));

    // Added: a layer the signature does not cover.
    await writeFile(join(dir, 'extra.pkl'), 'smuggled');
    await orasPushDir(dir, 'models/oras:added', [...files, 'extra.pkl']);
    await orasAttachSig('models/oras:added', sig);
    const added = await get('models/oras', 'added');
    expect(added.status).toBe(403);
    expect(added.body).toMatch(/extra\.pkl is not covered by the model signature/);

    // Removed: a signed file is no layer.
    await orasPushDir(dir, 'models/oras:removed', files.slice(1));
    await orasAttachSig('models/oras:removed', sig);
    const removed = await get('models/oras', 'removed');
    expect(removed.status).toBe(403);
    expect(removed.body).toMatch(/README\.md/);
  });

  it('a model_signing signature by a key the policy does not trust is denied', async () => {
    const key = await ecKey('stranger', 'P-384');
    const dir = await modelDir('m-stranger');
    const sig = join(work, 'm-stranger.sig');
    await msSign(dir, key, sig);
    await pushModelCommand(dir, { url: s.url, to: 'models/stranger:v1', modelSignature: sig }, quiet);
    expect((await get('models/stranger', 'v1')).status).toBe(403);
  });

  it('customs push --sign writes a model signature model_signing verify key accepts on the pulled directory; a tampered file fails it', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyPath = join(work, 'customs.key');
    await writeFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await writeFile(`${keyPath}.pub`, publicKey.export({ type: 'spki', format: 'pem' }));
    await s.trustKey(publicKey, 'customs');
    const dir = await modelDir('m-customs');
    await pushModelCommand(dir, { url: s.url, to: 'models/customs-signed:v1', sign: keyPath }, quiet);
    const out = join(work, 'pulled-customs');
    const sig = join(work, 'pulled-customs.sig');
    await pullCommand('models/customs-signed:v1', out, { url: s.url, modelSignature: sig }, quiet);
    const ok = await run(MS, ['verify', 'key', '--public_key', `${keyPath}.pub`, '--signature', sig, out]);
    expect(ok.stdout).toMatch(/Verification succeeded/);
    await appendFile(join(out, 'config.json'), ' ');
    const bad = await run(MS, ['verify', 'key', '--public_key', `${keyPath}.pub`, '--signature', sig, out]).then(
      (r) => r.stdout + r.stderr,
      (e: { stdout: string; stderr: string }) => `FAILED ${e.stdout}${e.stderr}`,
    );
    expect(bad).toMatch(/config\.json/);
    expect(bad).not.toMatch(/Verification succeeded/);
  });
});
