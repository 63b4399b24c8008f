// Crash safety: kill -9 the registry in the middle of a 1 GiB upload and in the middle of
// manifest pushes; after a restart over the same data directory no partial blob is
// visible, no tag points to a manifest that cannot be read, and the upload completes.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MT, buildImage, expectBytes, getManifest, putManifest } from './helpers/content.js';
import { req, rawReq } from './helpers/http.js';
import { startProcessServer, type ProcessServer } from './helpers/process-server.js';
import { repoName } from './helpers/target.js';

const MiB = 1024 * 1024;
const TOTAL = 1024 * MiB;
const KILL_AFTER = 256 * MiB;

/** Deterministic 1 GiB: a random 1 MiB block with the chunk number stamped in, generated on the fly. */
const base = randomBytes(MiB);
function chunk(i: number): Buffer {
  const b = Buffer.allocUnsafe(MiB);
  base.copy(b);
  b.writeUInt32BE(i, 0);
  return b;
}
/** Bytes [from, TOTAL) as a stream; `onSent(n)` may pause the stream by returning a promise. */
function bytesFrom(from: number, onSent?: (sent: number) => Promise<void> | void): Readable {
  return Readable.from(
    (async function* () {
      let sent = 0;
      for (let i = Math.floor(from / MiB); i < TOTAL / MiB; i++) {
        const c = i === Math.floor(from / MiB) ? chunk(i).subarray(from % MiB) : chunk(i);
        yield c;
        sent += c.length;
        if (onSent) await onSent(sent);
      }
    })(),
    { objectMode: false, highWaterMark: 4 * MiB },
  );
}
const fullDigest = (() => {
  const h = createHash('sha256');
  for (let i = 0; i < TOTAL / MiB; i++) h.update(chunk(i));
  return `sha256:${h.digest('hex')}`;
})();

let dataDir: string;
let server: ProcessServer | undefined;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'conf-crash-'));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
  await rm(`${dataDir}.yml`, { force: true });
});

describe('kill -9 during a 1 GiB upload', () => {
  it('leaves no visible partial blob; after restart the upload can be finished', async () => {
    const repo = repoName('crash');
    server = await startProcessServer(dataDir);
    const s1 = server;
    const post = await req(s1, 'POST', `/v2/${repo}/blobs/uploads/`);
    expect(post.status).toBe(202);
    const uploadPath = new URL(post.header('location')!, s1.url);

    // Stream the bytes in one PATCH and kill the server once KILL_AFTER bytes are out.
    let killed: Promise<void> | undefined;
    const patch = req(s1, 'PATCH', uploadPath.pathname + uploadPath.search, {
      headers: { 'content-type': 'application/octet-stream' },
      body: bytesFrom(0, (sent) => {
        if (sent >= KILL_AFTER && !killed) killed = s1.kill9();
        return killed?.then(() => new Promise(() => {})); // stop producing once killed
      }),
    }).then(
      (r) => r,
      (e: Error) => e,
    );
    await new Promise<void>((ok) => {
      const iv = setInterval(() => killed && (clearInterval(iv), ok()), 20);
    });
    await killed;
    const outcome = await patch;
    expect(outcome instanceof Error || (outcome as { truncated?: boolean }).truncated || (outcome as { status: number }).status >= 400).toBe(true);

    server = await startProcessServer(dataDir);
    const s2 = server;
    expect((await req(s2, 'GET', '/v2/')).status).toBe(200);
    // Nothing of the interrupted upload is visible as a blob.
    expect((await req(s2, 'HEAD', `/v2/${repo}/blobs/${fullDigest}`)).status).toBe(404);

    // The session either survived (204 + Range: resume from there) or is gone (404: start over).
    const status = await rawReq(s2, 'GET', uploadPath.pathname + uploadPath.search);
    expect([204, 404]).toContain(status.status);
    if (process.env.CONFORMANCE_DEBUG) console.log(`session after restart: ${status.status} ${status.header("range") ?? ""}`);
    let location: string;
    let offset = 0;
    if (status.status === 204) {
      const m = /^0-(\d+)$/.exec(status.header('range') ?? '');
      expect(m, `Range ${status.header('range')}`).not.toBeNull();
      offset = Number(m![1]) + 1;
      expect(offset).toBeLessThanOrEqual(KILL_AFTER + 64 * MiB);
      location = status.header('location')!;
    } else {
      const again = await req(s2, 'POST', `/v2/${repo}/blobs/uploads/`);
      expect(again.status).toBe(202);
      location = again.header('location')!;
    }
    const rest = await req(s2, 'PATCH', location, {
      headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${TOTAL - 1}`, 'content-length': String(TOTAL - offset) },
      body: bytesFrom(offset),
    });
    expect(rest.status, rest.text()).toBe(202);
    const put = await req(s2, 'PUT', rest.header('location')!, { query: { digest: fullDigest } });
    expect(put.status, put.text()).toBe(201);
    const head = await req(s2, 'HEAD', `/v2/${repo}/blobs/${fullDigest}`);
    expect(head.status).toBe(200);
    expect(head.header('content-length')).toBe(String(TOTAL));
  }, 90_000);
});

describe('kill -9 during manifest pushes', () => {
  it('leaves no dangling tag: every listed tag resolves to a complete manifest', async () => {
    const repo = repoName('crash');
    server = await startProcessServer(dataDir);
    const s1 = server;
    // Blobs first (complete before the crash), then many manifest PUTs in flight at once.
    const images = [];
    for (let i = 0; i < 24; i++) images.push(await buildImage(s1, repo));
    const pushed = new Map(images.map((img, i) => [`t${i}`, img]));
    // One PUT whose body stops half way: the server holds an incomplete manifest when it dies.
    const half = images[0]!.manifest.subarray(0, images[0]!.manifest.length >> 1);
    const stalled = rawReq(s1, 'PUT', `/v2/${repo}/manifests/stalled`, {
      headers: { 'content-type': MT.ociManifest, 'content-length': String(images[0]!.manifest.length) },
      body: Readable.from((async function* () { yield half; await new Promise(() => {}); })()),
    }).catch((e: Error) => e);
    const puts = [...pushed].map(([tag, img]) => putManifest(s1, repo, tag, img.manifest, MT.ociManifest).catch((e: Error) => e));
    await Promise.race(puts); // at least one landed, others are in flight
    await s1.kill9();
    await Promise.all([...puts, stalled]);

    server = await startProcessServer(dataDir);
    const s2 = server;
    const list = await req(s2, 'GET', `/v2/${repo}/tags/list`);
    const tags: string[] = list.status === 404 ? [] : (list.json().tags ?? []);
    expect(tags).not.toContain('stalled');
    for (const tag of tags) {
      const img = pushed.get(tag);
      expect(img, `unexpected tag ${tag}`).toBeDefined();
      const res = await getManifest(s2, repo, tag);
      expect(res.status, `tag ${tag} is listed but its manifest is not readable`).toBe(200);
      expectBytes(res.body, img!.manifest);
      expect(res.header('docker-content-digest')).toBe(img!.digest);
    }
    // A manifest readable by digest is complete.
    for (const img of images) {
      const res = await getManifest(s2, repo, img.digest);
      expect([200, 404]).toContain(res.status);
      if (res.status === 200) expectBytes(res.body, img.manifest);
    }
    // And pushes work again: the interrupted ones can be redone.
    for (const [tag, img] of pushed) expect((await putManifest(s2, repo, tag, img.manifest, MT.ociManifest)).status).toBe(201);
    expect((await req(s2, 'GET', `/v2/${repo}/tags/list`)).json().tags.length).toBe(pushed.size);
  }, 60_000);
});
