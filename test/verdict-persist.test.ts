import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../src/oci/index.js';
import { startTestServer } from './helpers/server.js';

const MT = 'application/vnd.oci.image.manifest.v1+json';

describe('verdicts persisted in metadata', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'customs-verdicts-'));
  });
  afterAll(() => rm(dataDir, { recursive: true, force: true }));

  const rows = (digest: string) => {
    const db = new Database(join(dataDir, 'metadata.sqlite'), { readonly: true });
    try {
      return db.prepare('SELECT json FROM verdicts WHERE digest = ?').all(digest) as { json: string }[];
    } finally {
      db.close();
    }
  };

  it('are stored, reused after a restart, and dropped when a referrer arrives', async () => {
    let s = await startTestServer({ dataDir, gate: 'enforce' });
    const h = s.auth();
    const config = Buffer.from('{}');
    await fetch(`${s.url}/v2/p/m/blobs/uploads/?digest=${digestOf(config)}`, { method: 'POST', body: config, headers: h });
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: MT, config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(config), size: 2 }, layers: [] });
    const digest = digestOf(manifest);
    expect((await fetch(`${s.url}/v2/p/m/manifests/v1`, { method: 'PUT', body: manifest, headers: { ...h, 'content-type': MT } })).status).toBe(201);
    expect((await fetch(`${s.url}/v2/p/m/manifests/v1`)).status).toBe(403);
    await new Promise((r) => setTimeout(r, 50));
    const saved = rows(digest);
    expect(saved).toHaveLength(1);
    const first = JSON.parse(saved[0]!.json) as { checkedAt: string; allowed: boolean };
    expect(first.allowed).toBe(false);
    await s.close({ keepData: true });

    s = await startTestServer({ dataDir, gate: 'enforce' });
    const v = (await (await fetch(`${s.url}/admin/verify`, { method: 'POST', headers: { ...s.auth(), 'content-type': 'application/json' }, body: JSON.stringify({ repository: 'p/m', reference: 'v1' }) })).json()) as { checkedAt: string };
    expect(v.checkedAt).toBe(first.checkedAt); // the persisted verdict, not a new evaluation

    const referrer = JSON.stringify({ schemaVersion: 2, mediaType: MT, artifactType: 'application/example', config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(config), size: 2 }, layers: [], subject: { mediaType: MT, digest, size: manifest.length } });
    expect((await fetch(`${s.url}/v2/p/m/manifests/${digestOf(referrer)}`, { method: 'PUT', body: referrer, headers: { ...s.auth(), 'content-type': MT } })).status).toBe(201);
    await new Promise((r) => setTimeout(r, 50));
    expect(rows(digest)).toHaveLength(0);
    await s.close({ keepData: true });
  });
});
