import { execFileSync } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../src/oci/index.js';
import { startDockerRegistry, type DockerRegistry } from '../../conformance/helpers/docker-registry.js';
import { getBlob, getManifest, pushImage, type Image } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { consistency, logLines } from './consistency.js';

/**
 * A full disk, for real: the data directory is a 48 MiB tmpfs (the tests run as root, here and in
 * CI), filled to the last byte. An upload and a pull-through fill each fail with a clear error
 * (507, "storage is full"), the partial file is gone, reads keep working, and once space is back
 * the same requests succeed without a restart.
 */
const MiB = 1024 * 1024;

/** Writes `file` until the filesystem is full; returns how many bytes went in. */
function fill(file: string): number {
  const fd = openSync(file, 'w');
  let n = 0;
  try {
    for (const size of [MiB, 64 * 1024, 4096, 512, 1]) {
      const chunk = Buffer.alloc(size, 1);
      try {
        for (;;) n += writeSync(fd, chunk);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
  return n;
}

describe('ENOSPC: the data directory fills up during an upload and a pull-through fill', () => {
  let work: string;
  let data: string;
  let upstream: DockerRegistry;
  let server: TestServer;
  let base: Image;
  let remote: Image;
  const logs = logLines();
  const config = () => ({ upstreams: [{ name: 'up', url: upstream.url }] });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'customs-enospc-'));
    data = join(work, 'data');
    await mkdir(data);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m,mode=0700', 'tmpfs', data]);
    upstream = await startDockerRegistry();
    remote = await pushImage(upstream.url, 'lib/app', 'v1', [8 * MiB]);
    server = await startTestServer({ dataDir: data, config: config(), logLevel: 'info', logDestination: logs.stream });
    base = await pushImage(server.url, 'local/base', 'v1', [MiB], server.auth());
    expect((await getManifest(server.url, 'up/lib/app', 'v1', server.auth())).status).toBe(200);
  });
  afterAll(async () => {
    await server?.close();
    await upstream?.close();
    if (data) execFileSync('umount', [data]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('refuses the upload and the fill with 507, keeps nothing partial, serves reads, and recovers when space returns', async () => {
    const blob = Buffer.alloc(4 * MiB, 7);
    const digest = digestOf(blob);
    const post = () =>
      fetch(`${server.url}/v2/local/new/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { ...server.auth(), 'content-length': String(blob.length) }, body: blob });
    const session = new URL((await fetch(`${server.url}/v2/local/new/blobs/uploads/`, { method: 'POST', headers: server.auth() })).headers.get('location')!, server.url);
    const patch = () =>
      fetch(session, { method: 'PATCH', headers: { ...server.auth(), 'content-range': `0-${blob.length - 1}`, 'content-length': String(blob.length) }, body: blob });

    const filler = join(data, 'filler');
    expect(fill(filler)).toBeGreaterThan(20 * MiB);

    // A monolithic upload: a clear answer, not a reset connection; the ingest file is gone.
    const refused = await post();
    expect(refused.status).toBe(507);
    expect(await refused.json()).toMatchObject({ errors: [{ code: 'UNKNOWN', message: expect.stringMatching(/storage is full/) }] });
    expect(await readdir(join(data, 'ingest'))).toEqual([]);
    // A chunk of a session: refused, and taken back whole (the session is as it was).
    const chunk = await patch();
    expect(chunk.status).toBe(507);
    const status = await fetch(session, { headers: server.auth() });
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-0');
    // A pull-through fill: refused with the same error, its temporary file removed.
    const fillRefused = await getBlob(server.url, 'up/lib/app', remote.blobs[1]!.digest, server.auth());
    expect(fillRefused).toMatchObject({ status: 507, code: 'UNKNOWN' });
    expect(fillRefused.message).toMatch(/storage is full/);
    // Removed as the fill winds up, right after the client's answer.
    for (const deadline = Date.now() + 10_000; (await readdir(join(data, 'proxy-fill'))).length > 0; ) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 20));
    }
    // Reads go on.
    expect((await getManifest(server.url, 'local/base', 'v1', server.auth())).status).toBe(200);
    for (const b of base.blobs) expect(await getBlob(server.url, 'local/base', b.digest, server.auth())).toMatchObject({ status: 200, ok: true });
    expect((await fetch(`${server.url}/v2/local/base/tags/list`, { headers: server.auth() })).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);

    // Space returns: the same requests succeed, no restart.
    await unlink(filler);
    expect((await patch()).status).toBe(202);
    const done = new URL(session);
    done.searchParams.set('digest', digest);
    expect((await fetch(done, { method: 'PUT', headers: server.auth() })).status).toBe(201);
    expect(await getBlob(server.url, 'local/new', digest, server.auth())).toMatchObject({ status: 200, ok: true });
    expect((await post()).status).toBe(201);
    expect(await getBlob(server.url, 'up/lib/app', remote.blobs[1]!.digest, server.auth())).toMatchObject({ status: 200, ok: true });
    const again = await pushImage(server.url, 'local/after', 'v1', [2 * MiB], server.auth());
    expect((await getManifest(server.url, 'local/after', 'v1', server.auth())).digest).toBe(again.digest);

    // The operator was told, once per failed request, without a stack; nothing looked like a bug.
    const errors = logs.lines.filter((l) => (l.level as number) >= 50);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((l) => JSON.stringify(l).includes('storage is full'))).toBe(true);
    expect(errors.some((l) => l.msg === 'internal error' || JSON.stringify(l).includes('"stack"'))).toBe(false);

    await server.close();
    const report = await consistency(data, config(), { proxied: ['up'] });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    server = await startTestServer({ dataDir: data, config: config() });
  });
});
