import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultUpstream, generatedBlob, type BlobSource } from './helpers/fault-upstream.js';
import { drain, opened, startProxy, type ProxyHarness } from './proxy-harness.js';

/**
 * Single flight under load: 32 clients ask for the same uncached 256 MiB blob at
 * once. The upstream must see exactly one GET and every client must receive the
 * same bytes (compared by digest; the blob is generated and hashed as a stream,
 * never held in memory).
 */
const SIZE = 256 * 1024 * 1024;
const CLIENTS = 32;

describe('32 concurrent cold pulls of one 256 MiB blob', () => {
  let up: FaultUpstream;
  let px: ProxyHarness;
  let blob: BlobSource;
  beforeAll(async () => {
    up = await FaultUpstream.start();
    blob = up.addBlob('big/model', await generatedBlob(SIZE, 'concurrency'));
    px = await startProxy([{ name: 'up', url: up.url, timeouts: { header: 10, idle: 30, overall: 600 } }]);
  });
  afterAll(async () => {
    await px?.close();
    await up?.stop();
  });

  it('one upstream GET; all clients get identical, verified bytes; the blob is committed once', async () => {
    const results = await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        const b = await px.service.blob('up/big/model', blob.digest);
        expect(b?.size).toBe(SIZE);
        return drain(await opened(b));
      }),
    );
    expect(up.count('GET', /\/blobs\//)).toBe(1);
    expect(new Set(results.map((r) => r.digest))).toEqual(new Set([blob.digest]));
    expect(results.every((r) => r.size === SIZE)).toBe(true);
    // Clients get their last byte once the digest verified; the commit and link follow.
    await expect.poll(() => px.metadata.linkedBlob('up/big/model', blob.digest), { timeout: 60_000 }).toEqual({ digest: blob.digest, size: SIZE });
    expect(await px.blobs.stat(blob.digest)).toEqual({ digest: blob.digest, size: SIZE });
    await expect.poll(() => px.tempFiles()).toEqual([]);
    // Later clients are served from the store: still one upstream GET.
    expect((await drain(await opened(await px.service.blob('up/big/model', blob.digest)))).digest).toBe(blob.digest);
    expect(up.count('GET', /\/blobs\//)).toBe(1);
  }, 600_000); // 8 GiB hashed by the test itself on a shared two-core machine
});
