import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/index.js';
import { customsCli } from './helpers/cli.js';
import { getBlob, getManifest, pushImage, type Image } from './helpers/registry-client.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * `customs backup` (a separate process, while the server takes a push load) and `customs restore`
 * into a fresh directory: the restored store serves every tag and blob, every digest verifies, the
 * audit chain verifies, and `customs fsck` finds it consistent. Needs dist/ (npm test builds it).
 */
describe('backup during a push load, restore into a fresh directory', () => {
  let work: string;
  let server: TestServer;
  let restored: TestServer | undefined;
  const pushed: Image[] = [];
  let stop = false;
  let load: Promise<void>;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'customs-backup-'));
    server = await startTestServer();
    // Three pushers, each pushing small images one after another until told to stop.
    load = Promise.all(
      [0, 1, 2].map(async (w) => {
        for (let i = 0; !stop; i++) pushed.push(await pushImage(server.url, `load/w${w}`, `t${i}`, [4096 + i, 2048], server.auth()));
      }),
    ).then(() => undefined);
    while (pushed.length < 12) await new Promise((r) => setTimeout(r, 20));
  });
  afterAll(async () => {
    stop = true;
    await load?.catch(() => undefined);
    await restored?.close({ keepData: true });
    await server?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('backs up while pushes go on, then again incrementally; restores; the restored store serves and verifies everything', async () => {
    const before = [...pushed];
    const to = join(work, 'backup');
    const first = await customsCli(['backup', '--data', server.dataDir, '--to', to, '--json']);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const r1 = JSON.parse(first.stdout) as { blobs: number; copied: number; skipped: number; auditHead: { seq: number } };
    expect(r1.copied).toBe(r1.blobs);
    expect(r1.skipped).toBe(0);
    while (pushed.length < before.length + 6) await new Promise((r) => setTimeout(r, 20));
    const second = await customsCli(['backup', '--data', server.dataDir, '--to', to, '--json']);
    expect(second.code).toBe(0);
    const r2 = JSON.parse(second.stdout) as { blobs: number; copied: number; skipped: number };
    // Incremental: what the first one copied is not copied again.
    expect(r2.skipped).toBeGreaterThanOrEqual(r1.blobs);
    expect(r2.copied).toBe(r2.blobs - r2.skipped);
    expect(r2.copied).toBeGreaterThan(0);
    stop = true;
    await load;
    expect((await readFile(join(to, 'blobs.txt'), 'utf8')).trim().split('\n')).toHaveLength(r2.blobs);

    const data = join(work, 'restored');
    const res = await customsCli(['restore', '--from', to, '--data', data]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/audit log intact/);
    expect(res.stdout).toMatch(/consistent/);
    expect(await customsCli(['restore', '--from', to, '--data', data])).toMatchObject({ code: 1, stderr: expect.stringMatching(/not empty/) });

    restored = await startTestServer({ dataDir: data });
    const auth = restored.auth();
    expect(restored.token).toBe(server.token); // secrets come along: clients keep working
    // Everything pushed before the first backup is there, byte for byte.
    for (const img of before) {
      const m = await getManifest(restored.url, img.repository, img.tag, auth);
      expect(m.status).toBe(200);
      expect(m.digest).toBe(img.digest);
    }
    // Every tag the restored store has resolves; every blob it references verifies.
    const { repositories } = (await (await fetch(`${restored.url}/v2/_catalog`, { headers: auth })).json()) as { repositories: string[] };
    let tags = 0;
    for (const repo of repositories) {
      const list = (await (await fetch(`${restored.url}/v2/${repo}/tags/list`, { headers: auth })).json()) as { tags: string[] };
      for (const tag of list.tags) {
        tags++;
        const m = await getManifest(restored.url, repo, tag, auth);
        expect(m.status).toBe(200);
        const body = JSON.parse(m.bytes.toString()) as { config: { digest: Digest }; layers: { digest: Digest }[] };
        for (const d of [body.config.digest, ...body.layers.map((l) => l.digest)]) expect(await getBlob(restored.url, repo, d, auth)).toMatchObject({ status: 200, ok: true });
      }
    }
    expect(tags).toBeGreaterThanOrEqual(before.length);

    const verify = await customsCli(['audit', 'verify', '--url', restored.url], { CUSTOMS_TOKEN: restored.token });
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/audit log intact/);
    const audit = (await (await fetch(`${restored.url}/admin/audit?limit=10000`, { headers: auth })).json()) as { entries: { action: string; actor: string; seq: number }[] };
    expect(audit.entries.at(-1)).toMatchObject({ action: 'restore', actor: 'system:restore' });
    expect(audit.entries.at(-1)!.seq).toBeGreaterThan(r1.auditHead.seq);
    await restored.close({ keepData: true });
    restored = undefined;

    const check = await customsCli(['fsck', '--data', data, '--leftover-grace', '0']);
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/consistent/);
  });

  it('fsck names what is wrong: a tag to a missing manifest, a corrupt blob, a leftover upload', async () => {
    const data = join(work, 'restored');
    expect(existsSync(join(data, 'metadata.sqlite'))).toBe(true);
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(join(data, 'metadata.sqlite'));
    const row = db.prepare("SELECT repository, tag, digest FROM tags ORDER BY repository, tag LIMIT 1").get() as { repository: string; tag: string; digest: string };
    db.prepare('DELETE FROM manifests WHERE repository = ? AND digest = ?').run(row.repository, row.digest);
    const link = db.prepare("SELECT digest FROM blob_links WHERE repository <> ? ORDER BY digest LIMIT 1").get(row.repository) as { digest: string };
    db.close();
    const file = join(data, 'blobs', 'sha256', link.digest.slice(7, 9), link.digest.slice(7));
    const bytes = await readFile(file);
    bytes[0]! ^= 0xff;
    await writeFile(file, bytes);
    await writeFile(join(data, 'ingest', 'abandoned'), 'partial');
    const check = await customsCli(['fsck', '--data', data, '--leftover-grace', '0']);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain(`PROBLEM tag ${row.repository} ${row.tag}: points at ${row.digest}, which is not stored`);
    expect(check.stdout).toMatch(new RegExp(`PROBLEM blob \\S+ ${link.digest}: stored bytes hash to sha256:`));
    expect(check.stdout).toContain('PROBLEM upload ingest/abandoned');
    expect(check.stderr).toMatch(/not consistent/);
  });
});
