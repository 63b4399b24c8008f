import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startProcessServer, type ProcessServer } from '../../conformance/helpers/process-server.js';
import { digestOf, type Digest } from '../../src/oci/index.js';
import { Pusher } from '../ops-fixtures.js';
import { consistency } from './consistency.js';

/**
 * kill -9 in the middle of a garbage collection run: a link is removed before its bytes, so a crash
 * can leave bytes nobody links (the next run deletes them) but never a link, or a manifest, whose
 * bytes are gone.
 */
const N = 400;

describe('kill -9 during garbage collection', () => {
  let dataDir: string;
  let server: ProcessServer | undefined;
  afterAll(async () => {
    await server?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('leaves every linked blob readable, and the next run removes what the killed one left', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'customs-gc-crash-'));
    server = await startProcessServer(dataDir);
    const p = new Pusher(server.url, server.auth());
    const kept = await p.artifact('gc/crash', 'application/vnd.example.model', 'kept', 'v1');
    const loose: Digest[] = [];
    for (let i = 0; i < N; i += 50) {
      loose.push(...(await Promise.all(Array.from({ length: 50 }, () => p.blob('gc/crash', randomBytes(64))))));
    }
    loose.sort(); // a run goes through links in (repository, digest) order
    const file = (d: Digest) => join(dataDir, 'blobs', 'sha256', d.slice(7, 9), d.slice(7));
    const run = fetch(`${server.url}/admin/gc`, { method: 'POST', headers: { ...server.auth(), 'content-type': 'application/json' }, body: JSON.stringify({ graceSeconds: 0 }) }).catch(() => undefined);
    const deadline = Date.now() + 30_000;
    while (existsSync(file(loose[0]!))) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 1));
    }
    await server.kill9();
    await run;
    const remaining = loose.filter((d) => existsSync(file(d))).length;
    expect(remaining).toBeGreaterThan(0); // killed mid-run, not after it
    expect(remaining).toBeLessThan(N);

    // Straight after the crash, before anything repairs it: consistent (bytes nobody links are garbage, not damage).
    const crashed = await consistency(dataDir);
    expect(crashed.problems).toEqual([]);

    server = await startProcessServer(dataDir);
    const get = (path: string) => fetch(`${server!.url}${path}`, { headers: server!.auth() });
    // Every blob is either still linked and whole, or unlinked; never linked with its bytes gone.
    let linked = 0;
    for (const d of loose) {
      const res = await get(`/v2/gc/crash/blobs/${d}`);
      expect([200, 404]).toContain(res.status);
      if (res.status === 200) {
        expect(digestOf(Buffer.from(await res.arrayBuffer()))).toBe(d);
        linked++;
      } else await res.arrayBuffer();
    }
    // At most the one blob between its unlink and its delete is left as bytes nobody links.
    expect(remaining - linked).toBeGreaterThanOrEqual(0);
    expect(remaining - linked).toBeLessThanOrEqual(1);
    const m = await get('/v2/gc/crash/manifests/v1');
    expect(m.status).toBe(200);
    for (const d of [kept.config, kept.layer]) expect((await get(`/v2/gc/crash/blobs/${d}`)).status).toBe(200);

    const again = await fetch(`${server.url}/admin/gc`, { method: 'POST', headers: { ...server.auth(), 'content-type': 'application/json' }, body: JSON.stringify({ graceSeconds: 0 }) });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ links: linked, orphans: remaining - linked });
    expect(loose.filter((d) => existsSync(file(d)))).toEqual([]);
    expect(existsSync(file(kept.layer))).toBe(true);
    await server.close();
    server = undefined;
    const after = await consistency(dataDir);
    expect(after.problems).toEqual([]);
    expect(after.notes.filter((n) => n.includes('no repository links'))).toEqual([]);
  });
});
