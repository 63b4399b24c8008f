import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { opsCommands as cli } from '../src/cli/ops/index.js';
import { digestOf, EMPTY_JSON_DIGEST, type Digest } from '../src/oci/index.js';
import { FaultUpstream } from './helpers/fault-upstream.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { capture, probe, Pusher, type Pushed } from './ops-fixtures.js';

/**
 * Garbage collection over the real HTTP API and the filesystem store: what a deleted model leaves
 * behind goes, what any manifest still references stays, and a push racing it is refused cleanly.
 */
const MODEL = 'application/vnd.cncf.model.manifest.v1+json';

describe('garbage collection (customs gc)', () => {
  let srv: TestServer;
  let p: Pusher;
  let a: Pushed;
  let loose: { digest: Digest; size: number };
  const admin = () => ({ url: srv.url, token: srv.token! });
  const blobFile = (d: Digest) => join(srv.dataDir, 'blobs', 'sha256', d.slice(7, 9), d.slice(7));
  const configSize = () => JSON.parse(a.bytes.toString()).config.size as number;

  beforeAll(async () => {
    srv = await startTestServer();
    p = new Pusher(srv.url, srv.auth());
    a = await p.artifact('gc/a', MODEL, 'a', 'v1');
    // gc/b shares a's layer (a cross-repository mount) under a manifest of its own.
    const mount = await fetch(`${srv.url}/v2/gc/b/blobs/uploads/?mount=${a.layer}&from=gc/a`, { method: 'POST', headers: srv.auth() });
    expect(mount.status).toBe(201);
    const bConfig = Buffer.from('{"b":1}');
    await p.blob('gc/b', bConfig);
    const layerSize = JSON.parse(a.bytes.toString()).layers[0].size as number;
    const b = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: MODEL,
        config: { mediaType: 'application/vnd.cncf.model.config.v1+json', digest: digestOf(bConfig), size: bConfig.length },
        layers: [{ mediaType: 'application/vnd.cncf.model.weight.v1.raw', digest: a.layer, size: layerSize }],
      }),
    );
    expect((await p.putManifest('gc/b', 'v1', b)).status).toBe(201);
    // An upload no manifest ever named (an abandoned push).
    const bytes = randomBytes(3000);
    loose = { digest: await p.blob('gc/a', bytes), size: bytes.length };
    const del = await fetch(`${srv.url}/v2/gc/a/manifests/${a.digest}`, { method: 'DELETE', headers: srv.auth() });
    expect(del.status).toBe(202);
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('reports in a dry run what would go, and keeps everything', async () => {
    const out = capture();
    const r = await cli.gc(admin(), out.io, { dryRun: true, grace: 0 });
    expect(r).toMatchObject({ dryRun: true, links: 3, blobs: 2, orphans: 0, bytes: configSize() + loose.size });
    expect(r.sample.map((l) => `${l.repository}@${l.digest}`).sort()).toEqual([a.config, a.layer, loose.digest].map((d) => `gc/a@${d}`).sort());
    expect(out.out[0]).toMatch(/^would remove 3 unreferenced blob link\(s\) .*; 2 blob\(s\).* would be deleted/);
    for (const d of [a.config, a.layer, loose.digest]) {
      expect(existsSync(blobFile(d))).toBe(true);
      expect((await probe(`${srv.url}/v2/gc/a/blobs/${d}`, srv.auth())).status).toBe(200);
    }
  });

  it('keeps links younger than the grace period (a day by default)', async () => {
    const r = await cli.gc(admin(), capture().io, {});
    expect(r).toMatchObject({ dryRun: false, graceSeconds: 86_400, links: 0, blobs: 0, bytes: 0 });
    expect(existsSync(blobFile(loose.digest))).toBe(true);
  });

  it('removes unreferenced links, deletes the bytes no repository links, keeps shared and referenced blobs, and audits the run', async () => {
    const r = await cli.gc(admin(), capture().io, { grace: 0, reason: 'disk space after deleting model a' });
    expect(r).toMatchObject({ dryRun: false, links: 3, blobs: 2, bytes: configSize() + loose.size });
    for (const d of [a.config, a.layer, loose.digest]) expect(await probe(`${srv.url}/v2/gc/a/blobs/${d}`, srv.auth())).toMatchObject({ status: 404, code: 'BLOB_UNKNOWN' });
    expect(existsSync(blobFile(a.config))).toBe(false);
    expect(existsSync(blobFile(loose.digest))).toBe(false);
    // The layer is gc/b's too: still there, still served whole.
    expect(existsSync(blobFile(a.layer))).toBe(true);
    const layer = await fetch(`${srv.url}/v2/gc/b/blobs/${a.layer}`, { headers: srv.auth() });
    expect(layer.status).toBe(200);
    expect(digestOf(Buffer.from(await layer.arrayBuffer()))).toBe(a.layer);
    expect((await probe(`${srv.url}/v2/gc/b/manifests/v1`, srv.auth())).status).toBe(200);
    // A second run finds nothing.
    expect(await cli.gc(admin(), capture().io, { grace: 0 })).toMatchObject({ links: 0, blobs: 0 });
    const { entries } = await cli.auditList(admin(), capture().io, {});
    const runs = entries.filter((e) => e.action === 'gc');
    expect(runs).toHaveLength(3); // the dry run is not recorded
    expect(runs[1]).toMatchObject({ actor: 'admin', reason: 'disk space after deleting model a', detail: { links: 3, blobs: 2, graceSeconds: 0 } });
  });

  it('refuses a manifest that names a collected blob (MANIFEST_BLOB_UNKNOWN) until the blob is pushed again', async () => {
    const res = await p.putManifest('gc/a', 'v1', a.bytes);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('MANIFEST_BLOB_UNKNOWN');
    expect((await probe(`${srv.url}/v2/gc/a/manifests/v1`, srv.auth())).status).toBe(404);
  });

  it('deletes bytes that no repository ever linked (a crash between commit and link), and nothing else in blobs/', async () => {
    const bytes = randomBytes(2048);
    const orphan = digestOf(bytes);
    const junk = join(srv.dataDir, 'blobs', 'sha256', 'ab', 'not-a-digest');
    await mkdir(dirname(blobFile(orphan)), { recursive: true });
    await mkdir(dirname(junk), { recursive: true });
    await writeFile(blobFile(orphan), bytes);
    await writeFile(junk, 'x');
    const young = await cli.gc(admin(), capture().io, { dryRun: true, grace: 60 });
    expect(young).toMatchObject({ orphans: 0 }); // just written: within the grace period
    const hourAgo = new Date(Date.now() - 3600_000);
    await utimes(blobFile(orphan), hourAgo, hourAgo);
    expect(await cli.gc(admin(), capture().io, { dryRun: true, grace: 60 })).toMatchObject({ links: 0, blobs: 1, orphans: 1, bytes: 2048 });
    expect(existsSync(blobFile(orphan))).toBe(true);
    expect(await cli.gc(admin(), capture().io, { grace: 60 })).toMatchObject({ links: 0, blobs: 1, orphans: 1, bytes: 2048 });
    expect(existsSync(blobFile(orphan))).toBe(false);
    expect(existsSync(junk)).toBe(true);
    expect(existsSync(blobFile(a.layer))).toBe(true);
  });

  it('refuses bad input with the spec error body', async () => {
    const res = await fetch(`${srv.url}/admin/gc`, { method: 'POST', headers: { ...srv.auth(), 'content-type': 'application/json' }, body: JSON.stringify({ graceSeconds: -1 }) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: { code: string; message: string }[] }).errors[0]).toMatchObject({ code: 'NAME_INVALID', message: expect.stringMatching(/graceSeconds/) });
  });
});

describe('scheduled garbage collection (gc.intervalSeconds)', () => {
  let srv: TestServer;
  afterAll(async () => {
    await srv?.close();
  });

  it('runs on its own as system:gc and removes an abandoned upload', async () => {
    // A grace of a few seconds: the artifact below must get its manifest before a run sees its blobs.
    srv = await startTestServer({ config: { gc: { intervalSeconds: 1, graceSeconds: 4 } } });
    const p = new Pusher(srv.url, srv.auth());
    const kept = await p.artifact('gc/s', MODEL, 'kept', 'v1');
    const loose = await p.blob('gc/s', randomBytes(1000));
    const deadline = Date.now() + 20_000;
    while ((await probe(`${srv.url}/v2/gc/s/blobs/${loose}`, srv.auth())).status !== 404) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const d of [kept.config, kept.layer]) expect((await probe(`${srv.url}/v2/gc/s/blobs/${d}`, srv.auth())).status).toBe(200);
    const { entries } = await cli.auditList({ url: srv.url, token: srv.token! }, capture().io, {});
    expect(entries.find((e) => e.action === 'gc' && (e.detail as { links?: number }).links === 1)).toMatchObject({ actor: 'system:gc' });
    // An operator's run without --grace takes the configured grace period too.
    expect(await cli.gc({ url: srv.url, token: srv.token! }, capture().io, { dryRun: true })).toMatchObject({ graceSeconds: 4 });
  });
});

describe('retention of untagged manifests (customs gc --untagged)', () => {
  let srv: TestServer;
  let up: FaultUpstream;
  let p: Pusher;
  let v1: Pushed;
  let v2: Pushed;
  let sig: Digest;
  let proxied: Digest;
  let leftBehind: Digest;
  let current: Digest;
  const admin = () => ({ url: srv.url, token: srv.token! });

  beforeAll(async () => {
    up = await FaultUpstream.start();
    srv = await startTestServer({ config: { upstreams: [{ name: 'up', url: up.url, tagFreshness: 0 }] } });
    p = new Pusher(srv.url, srv.auth());
    v1 = await p.artifact('ret/model', MODEL, 'v1', 'prod');
    v2 = await p.artifact('ret/model', MODEL, 'v2', 'prod'); // prod leaves v1
    sig = await p.referrer('ret/model', v1, 'application/vnd.example.signature', { signed: v1.digest });
    // A pull-through repository's manifest pulled by digest is untagged here; its tags are the upstream's.
    proxied = up.addImage('library/base', [], [randomBytes(500)]).digest;
    expect((await probe(`${srv.url}/v2/up/library/base/manifests/${proxied}`, srv.auth())).status).toBe(200);
    // A tag the upstream moves: the local tag follows on the next pull and leaves the old manifest behind.
    leftBehind = up.addImage('library/app', ['3.20'], [randomBytes(500)]).digest;
    expect(await probe(`${srv.url}/v2/up/library/app/manifests/3.20`, srv.auth())).toMatchObject({ status: 200, digest: leftBehind });
    current = up.addImage('library/app', ['3.20'], [randomBytes(500)]).digest;
    expect(await probe(`${srv.url}/v2/up/library/app/manifests/3.20`, srv.auth())).toMatchObject({ status: 200, digest: current });
  });
  afterAll(async () => {
    await srv?.close();
    await up?.stop();
  });

  it('keeps untagged manifests unless asked, and those untagged more recently than asked', async () => {
    expect(await cli.gc(admin(), capture().io, { dryRun: true, grace: 0 })).toMatchObject({ untaggedAfterSeconds: null, manifests: 0, links: 0 });
    expect(await cli.gc(admin(), capture().io, { grace: 0, untagged: 3600 })).toMatchObject({ manifests: 0, links: 0 });
    expect((await probe(`${srv.url}/v2/ret/model/manifests/${v1.digest}`, srv.auth())).status).toBe(200);
  });

  it('deletes an old version and then its referrers, and their blobs, and what an upstream tag left behind; the tagged version, a copy pulled by digest and the history stay', async () => {
    const dry = capture();
    const first = [`ret/model@${v1.digest}`, `up/library/app@${leftBehind}`].sort();
    const key = (m: { repository: string; digest: string }) => `${m.repository}@${m.digest}`;
    const dryRun = await cli.gc(admin(), dry.io, { dryRun: true, grace: 0, untagged: 0 });
    expect(dryRun).toMatchObject({ manifests: 2 });
    expect(dryRun.manifestSample.map(key).sort()).toEqual(first);
    expect(dry.out[0]).toMatch(/^would delete 2 untagged manifest/);
    const r = await cli.gc(admin(), capture().io, { grace: 0, untagged: 0, reason: 'retention' });
    // v1 and the proxied manifest the tag left in the first pass, v1's signature (whose subject is then gone)
    // in the second; then v1's config and layer, and the signature's layer and empty config `{}` (which v2
    // does not use). The proxied images' blobs were never pulled.
    expect(r.manifestSample.map(key).sort()).toEqual([...first, `ret/model@${sig}`].sort());
    expect(r).toMatchObject({ manifests: 3, links: 4, blobs: 4 });
    expect(r.sample.map((l) => l.digest)).toEqual(expect.arrayContaining([v1.config, v1.layer, EMPTY_JSON_DIGEST]));
    expect((await probe(`${srv.url}/v2/up/library/app/manifests/3.20`, srv.auth())).digest).toBe(current);
    expect(await probe(`${srv.url}/v2/ret/model/manifests/${v1.digest}`, srv.auth())).toMatchObject({ status: 404, code: 'MANIFEST_UNKNOWN' });
    expect(await probe(`${srv.url}/v2/ret/model/blobs/${v1.layer}`, srv.auth())).toMatchObject({ status: 404, code: 'BLOB_UNKNOWN' });
    expect(await probe(`${srv.url}/v2/ret/model/manifests/prod`, srv.auth())).toMatchObject({ status: 200, digest: v2.digest });
    expect((await probe(`${srv.url}/v2/ret/model/blobs/${v2.layer}`, srv.auth())).status).toBe(200);
    const referrers = (await (await fetch(`${srv.url}/v2/ret/model/referrers/${v1.digest}`, { headers: srv.auth() })).json()) as { manifests: unknown[] };
    expect(referrers.manifests).toEqual([]);
    const base = /library\/base\/manifests/;
    expect(up.count('GET', base)).toBe(1);
    expect((await probe(`${srv.url}/v2/up/library/base/manifests/${proxied}`, srv.auth())).status).toBe(200);
    expect(up.count('GET', base)).toBe(1); // pulled by digest only: served from the copy retention kept
    const history = await cli.history(admin(), capture().io, 'ret/model:prod', {});
    expect(history.history.map((h) => h.from)).toContain(v1.digest);
    const { entries } = await cli.auditList(admin(), capture().io, {});
    expect(entries.filter((e) => e.action === 'delete').map((e) => e.target).sort()).toEqual([...first, `ret/model@${sig}`].sort());
  });
});

describe('eviction of cached manifests nobody pulls (upstreams[].evictAfterSeconds)', () => {
  let srv: TestServer;
  let up: FaultUpstream;
  afterAll(async () => {
    await srv?.close();
    await up?.stop();
  });

  it('deletes with its tag what nobody pulled within the window, keeps what was pulled, and the next pull fetches it again', async () => {
    up = await FaultUpstream.start();
    const a = up.addImage('library/a', ['1'], [randomBytes(700)]);
    const b = up.addImage('library/b', ['1'], [randomBytes(700)]);
    srv = await startTestServer({ config: { upstreams: [{ name: 'up', url: up.url, tagFreshness: 3600, evictAfterSeconds: 1 }] } });
    const pull = async (repo: string, layer: string) => {
      expect((await probe(`${srv.url}/v2/up/${repo}/manifests/1`, srv.auth())).status).toBe(200);
      expect((await probe(`${srv.url}/v2/up/${repo}/blobs/${layer}`, srv.auth())).status).toBe(200);
    };
    await pull('library/a', a.layers[0]!.digest);
    await pull('library/b', b.layers[0]!.digest);
    await new Promise((r) => setTimeout(r, 1500));
    await pull('library/a', a.layers[0]!.digest); // recorded in memory; the run flushes it first
    const r = await cli.gc({ url: srv.url, token: srv.token! }, capture().io, { grace: 0 });
    expect(r).toMatchObject({ evicted: 1, manifestSample: [{ repository: 'up/library/b', digest: b.digest }], links: 1, blobs: 1 });
    const manifestGets = () => up.count('GET', /library\/b\/manifests/);
    const before = manifestGets();
    expect(await probe(`${srv.url}/v2/up/library/a/manifests/1`, srv.auth())).toMatchObject({ status: 200, digest: a.digest });
    const again = await probe(`${srv.url}/v2/up/library/b/manifests/1`, srv.auth());
    expect(again).toMatchObject({ status: 200, digest: b.digest });
    expect(manifestGets()).toBe(before + 1); // fetched again from the upstream
    const history = await cli.history({ url: srv.url, token: srv.token! }, capture().io, 'up/library/b:1', {});
    expect(history.history.map((h) => [h.from, h.to, h.actor])).toContainEqual([b.digest, undefined, 'admin']);
  });
});
