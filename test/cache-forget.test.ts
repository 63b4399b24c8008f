import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBlob, getManifest, pushImage, type Image } from './helpers/registry-client.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * A registry that pushes a version and deletes an old one all day (the soak's pushers) must not keep
 * what it knew about the deleted ones: the 30-minute soak found the heap growing until the caches'
 * bounds, held by facts and blob hints of manifests long gone. Read through customs_cache_entries.
 */
async function cacheEntries(srv: TestServer): Promise<Record<string, number>> {
  const text = await (await fetch(`${srv.url}/metrics`, { headers: srv.auth() })).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^customs_cache_entries\{cache="([a-z_]+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

describe('deleting a manifest drops what the caches hold about it', () => {
  let srv: TestServer;
  const images: Image[] = [];

  beforeAll(async () => {
    srv = await startTestServer();
    for (let i = 0; i < 12; i++) images.push(await pushImage(srv.url, 'churn/app', `v${i}`, [100, 200], srv.auth()));
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('facts, blob hints and records of deleted manifests go; those of live ones stay', async () => {
    const before = await cacheEntries(srv);
    expect(Object.keys(before).sort()).toEqual(['manifest_records', 'manifest_tags', 'serving_blob_hints', 'serving_facts']);
    // Pull everything: each manifest's facts and record are cached, each blob remembers the manifest it was served through.
    for (const img of images) {
      expect((await getManifest(srv.url, img.repository, img.tag, srv.auth())).status).toBe(200);
      for (const b of img.blobs) expect((await getBlob(srv.url, img.repository, b.digest, srv.auth())).ok).toBe(true);
    }
    const full = await cacheEntries(srv);
    expect(full.serving_facts! - before.serving_facts!).toBeGreaterThanOrEqual(12);
    expect(full.serving_blob_hints! - before.serving_blob_hints!).toBeGreaterThanOrEqual(36);
    expect(full.manifest_records!).toBeGreaterThanOrEqual(12);

    // Delete all but the last two versions, by digest.
    for (const img of images.slice(0, 10)) {
      const res = await fetch(`${srv.url}/v2/${img.repository}/manifests/${img.digest}`, { method: 'DELETE', headers: srv.auth() });
      expect(res.status).toBe(202);
    }
    const after = await cacheEntries(srv);
    expect(full.serving_facts! - after.serving_facts!).toBe(10);
    expect(full.serving_blob_hints! - after.serving_blob_hints!).toBe(30);
    expect(full.manifest_records! - after.manifest_records!).toBe(10);

    // The live ones are still served from the caches, and correctly.
    for (const img of images.slice(10)) expect((await getManifest(srv.url, img.repository, img.tag, srv.auth())).digest).toBe(img.digest);
    expect((await getManifest(srv.url, 'churn/app', images[0]!.digest, srv.auth())).status).toBe(404);
  });
});
