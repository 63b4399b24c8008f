import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { safetensorsOf } from './helpers/safetensors.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestHub } from './helpers/hub-server.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { writeKeyPair } from './producer-fixtures.js';

/**
 * Issue 20, item 4 and item 3's signing: `customs hub import <org>/<model>[@rev] --to <repo>:<tag>`
 * (the built CLI, as an operator runs it) fetches a revision through the server's pull-through,
 * prints progress and the verdict; `customs sign` then makes a signatures rule accept it.
 */
const ROOT = new URL('..', import.meta.url).pathname;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function customs(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/customs.js', ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 300_000 }, (e, stdout, stderr) => {
      resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('customs hub import and customs sign', () => {
  let hub: TestHub;
  let s: TestServer;
  let data: string;
  let work: string;
  let keyPath: string;
  let env: Record<string, string>;
  const weights = safetensorsOf(randomBytes(20 * 1024 * 1024));
  const config = Buffer.from('{"model_type":"bert"}');
  let commit: string;

  beforeAll(async () => {
    await new Promise<void>((resolve, reject) => execFile('npm', ['run', 'build'], { cwd: ROOT }, (e) => (e ? reject(e) : resolve())));
    hub = await TestHub.start();
    commit = await hub.commit('acme/bert', [{ path: 'config.json', content: config }, { path: 'model.safetensors', content: weights }], { license: 'apache-2.0' });
    data = await mkdtemp(join(tmpdir(), 'customs-hub-cli-'));
    work = await mkdtemp(join(tmpdir(), 'customs-hub-cli-work-'));
    const key = await writeKeyPair(work);
    keyPath = key.keyPath;
    await mkdir(join(data, 'trust', 'keys'), { recursive: true });
    await writeFile(join(data, 'trust', 'keys', 'ops.pub'), key.publicPem);
    s = await startTestServer({
      dataDir: data,
      gate: undefined,
      config: {
        hub: { upstreams: [{ name: 'hf.co', url: hub.url }] },
        policy: {
          default: 'deny',
          rules: [
            { name: 'hub', match: 'hf.co/**', hub: { allow: ['acme/*'] } },
            { name: 'models', match: 'models/**', signatures: { authorities: [{ trustedKeys: true }] }, model: { allowLicenses: ['apache-2.0'], allowFormats: ['safetensors'] } },
          ],
        },
      },
    });
    env = { CUSTOMS_TOKEN: s.token!, CUSTOMS_URL: s.url };
  }, 300_000);

  afterAll(async () => {
    await s?.close();
    await hub?.close();
    await rm(data, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it('imports a revision, tags it, and reports the verdict (denied: unsigned, exit 3); signed, it is allowed', async () => {
    const r = await customs(['hub', 'import', 'acme/bert@main', '--to', 'models/bert:v1'], env);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain(`hf.co/acme/bert@${commit}: 2 file(s)`);
    expect(r.stderr).toMatch(/fetched model\.safetensors \(20\.0 MiB\)/);
    expect(r.stderr).toMatch(/tagged models\/bert:v1 -> sha256:[0-9a-f]{64}/);
    expect(r.stdout).toMatch(/^models\/bert@sha256:[0-9a-f]{64}: DENIED\n {2}FAIL {2}models signatures: no signature found/);
    expect(hub.count('cdn', 'GET', new RegExp(sha256(weights)))).toBe(1);

    const signed = await customs(['sign', 'models/bert:v1', '--key', keyPath], env);
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    const verified = await customs(['verify', 'models/bert:v1'], env);
    expect(verified.code, verified.stdout).toBe(0);
    expect(verified.stdout).toMatch(/ALLOWED/);

    // Pulled over OCI, the files are the Hub's bytes.
    const out = join(work, 'pulled');
    const pulled = await customs(['pull', 'models/bert:v1', out], env);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(sha256(await readFile(join(out, 'model.safetensors')))).toBe(sha256(weights));
    expect(await readFile(join(out, 'config.json'))).toEqual(config);

    // Again, by commit: nothing is fetched twice, and the verdict is now ALLOWED.
    const again = await customs(['hub', 'import', `acme/bert@${commit}`, '--to', 'models/bert:v2', '--json'], env);
    expect(again.code, again.stderr).toBe(0);
    const events = again.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; fetched?: boolean; allowed?: boolean });
    expect(events.filter((e) => e.event === 'file').every((e) => e.fetched === false)).toBe(true);
    expect(events.find((e) => e.event === 'verdict')).toMatchObject({ allowed: true });
    expect(hub.count('cdn', 'GET', new RegExp(sha256(weights)))).toBe(1);
  });

  it('refuses a repository outside hub.allow, and an import without push on the target', async () => {
    await hub.commit('evil/model', [{ path: 'model.safetensors', content: safetensorsOf(randomBytes(10)) }]);
    const r = await customs(['hub', 'import', 'evil/model', '--to', 'models/evil:v1'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/evil\/model is not in hub\.allow/);
    const anon = await customs(['hub', 'import', 'acme/bert', '--to', 'models/bert:v3'], { CUSTOMS_TOKEN: '', CUSTOMS_URL: s.url });
    expect(anon.code).toBe(1);
    expect(anon.stderr).toMatch(/UNAUTHORIZED|authentication required/);
  });
});
