import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatedBlob } from './helpers/fault-upstream.js';
import { safetensorsBlob } from './helpers/safetensors.js';
import { hf, newCache } from './helpers/hf-client.js';
import { TestHub } from './helpers/hub-server.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * Issue 20, "What it must show": 16 concurrent `hf_hub_download`s of one uncached 256 MiB file
 * (16 threads of one huggingface_hub process, each with its own cache, so each really asks
 * customs) make one upstream GET, and every client gets every byte.
 */
const SIZE = 256 * 1024 * 1024;

async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1024 * 1024 })) h.update(c as Buffer);
  return h.digest('hex');
}

describe('16 concurrent Hub downloads of one uncached file', () => {
  let hub: TestHub;
  let s: TestServer;
  let data: string;
  const caches: string[] = [];

  beforeAll(async () => {
    hub = await TestHub.start();
    data = await mkdtemp(join(tmpdir(), 'customs-hub-conc-'));
    s = await startTestServer({
      dataDir: data,
      gate: undefined,
      config: {
        hub: { upstreams: [{ name: 'hf.co', url: hub.url }] },
        policy: { default: 'deny', rules: [{ name: 'hub', match: 'hf.co/**', model: { pickleScan: true }, hub: { allow: ['acme/*'] } }] },
      },
    });
  }, 120_000);

  afterAll(async () => {
    await s?.close();
    await hub?.close();
    await rm(data, { recursive: true, force: true });
    for (const c of caches) await rm(c, { recursive: true, force: true });
  });

  it('make one upstream GET, and every client gets the whole file', async () => {
    const big = await safetensorsBlob(await generatedBlob(SIZE, 'hub-concurrency'));
    await hub.commit('acme/big', [{ path: 'config.json', content: Buffer.from('{}') }, { path: 'model.safetensors', content: big }], { license: 'mit' });
    for (let i = 0; i < 16; i++) caches.push(await newCache());
    const r = await hf<{ ok: boolean; value?: string; error?: unknown }[]>(
      `${s.url}/hf/hf.co`,
      'parallel',
      caches.map((cache_dir) => ({ repo_id: 'acme/big', filename: 'model.safetensors', cache_dir })),
    );
    expect(r.ok, JSON.stringify(r).slice(0, 2000)).toBe(true);
    if (!r.ok) return;
    expect(r.value.filter((x) => !x.ok), JSON.stringify(r.value.filter((x) => !x.ok)).slice(0, 2000)).toEqual([]);
    expect(hub.count('cdn', 'GET', new RegExp(big.digest.slice(7)))).toBe(1);
    const want = big.digest.slice(7);
    for (const x of r.value) {
      expect((await stat(x.value!)).size).toBe(big.size);
      expect(await fileSha256(x.value!)).toBe(want);
    }
  });
});
