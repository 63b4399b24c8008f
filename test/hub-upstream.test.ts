import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Writable } from 'node:stream';
import { safetensorsOf } from './helpers/safetensors.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePickles } from './helpers/verify.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { hf, newCache } from './helpers/hf-client.js';
import { TestHub } from './helpers/hub-server.js';
import { writeKeyPair } from './producer-fixtures.js';
import { signCommand } from '../src/cli/producer/index.js';
import type { Output } from '../src/cli/producer/common.js';

/**
 * Issue 20, "What it must show": pull-through from a Hub. The upstream is TestHub (test/helpers/
 * hub-server.ts): git files from the Hub host, LFS files redirected to a second host like
 * huggingface.co's CDN. The client is the real huggingface_hub with HF_ENDPOINT at customs.
 * Each fault test says what the client gets and checks that nothing bad was stored.
 */
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const gitOid = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const quiet: Output = { out() {}, err() {} };
const HUB_TOKEN = 'hf_upstreamSecretToken1234567890';

/** The tree of a huggingface_hub cache (symlinks as their targets), to compare two caches. */
async function cacheTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const rel = relative(dir, p);
      if (rel.startsWith('.locks') || rel.includes('/.no_exist') || rel.includes('/trees') || e.name === 'CACHEDIR.TAG') continue;
      if (e.isSymbolicLink()) out[rel] = `-> ${await readlink(p)}`;
      else if (e.isDirectory()) await walk(p);
      else out[rel] = sha256(await readFile(p));
    }
  };
  await walk(dir);
  return out;
}

describe('pull-through from a Hugging Face Hub', () => {
  let hub: TestHub;
  let s: TestServer;
  let data: string;
  let work: string;
  let keyPath: string;
  let endpoint: string;
  const logs: string[] = [];
  const weights = safetensorsOf(randomBytes(3 * 1024 * 1024 + 5));
  const config = Buffer.from(JSON.stringify({ model_type: 'bert', hidden_size: 8 }));
  const readme = Buffer.from('---\nlicense: apache-2.0\n---\n# tiny\n');
  let tinyCommit: string;
  let pickles: Record<string, Buffer>;
  const savedToken = process.env.CUSTOMS_TOKEN;

  beforeAll(async () => {
    pickles = makePickles();
    hub = await TestHub.start();
    tinyCommit = await hub.commit('acme/tiny-bert', [
      { path: 'config.json', content: config },
      { path: 'README.md', content: readme },
      { path: 'model.safetensors', content: weights },
    ], { license: 'apache-2.0' });
    await hub.commit('acme/evil', [
      { path: 'config.json', content: config },
      { path: 'pytorch_model.bin', content: pickles['torch-evil.pt']! },
    ], { license: 'apache-2.0' });
    await hub.commit('acme/private', [{ path: 'config.json', content: config }, { path: 'model.safetensors', content: safetensorsOf(randomBytes(100_000)) }], { license: 'mit', token: HUB_TOKEN });
    await hub.commit('acme/gpl', [{ path: 'model.safetensors', content: safetensorsOf(randomBytes(1000)) }], { license: 'gpl-3.0' });
    await hub.commit('acme/needs-sig', [{ path: 'model.safetensors', content: safetensorsOf(randomBytes(2000)) }], { license: 'mit' });
    await hub.commit('acme/strict', [{ path: 'model.safetensors', content: safetensorsOf(randomBytes(3000)) }], { license: 'mit' });
    await hub.commit('other/model', [{ path: 'model.safetensors', content: safetensorsOf(randomBytes(1000)) }], { license: 'mit' });
    data = await mkdtemp(join(tmpdir(), 'customs-hub-up-'));
    work = await mkdtemp(join(tmpdir(), 'customs-hub-up-work-'));
    const key = await writeKeyPair(work);
    keyPath = key.keyPath;
    await mkdir(join(data, 'trust', 'keys'), { recursive: true });
    await writeFile(join(data, 'trust', 'keys', 'release.pub'), key.publicPem);
    process.env.TEST_HUB_TOKEN = HUB_TOKEN;
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        logs.push(chunk.toString());
        cb();
      },
    });
    s = await startTestServer({
      dataDir: data,
      gate: undefined,
      logLevel: 'info',
      logDestination: sink,
      config: {
        hub: {
          defaultUpstream: 'hf.co',
          upstreams: [{ name: 'hf.co', url: hub.url, token: { env: 'TEST_HUB_TOKEN' }, revisionFreshness: 0, timeouts: { header: 2, idle: 5, overall: 120 }, retries: { attempts: 2, baseMs: 10 } }],
        },
        policy: {
          default: 'deny',
          rules: [
            { name: 'hub', match: 'hf.co/**', model: { pickleScan: true, allowLicenses: ['apache-2.0', 'mit'], allowFormats: ['safetensors'] }, hub: { allow: ['acme/*'] } },
            { name: 'hub-datasets', match: 'hf.co/datasets/**', hub: { allow: ['acme/*'] } },
            { name: 'hub-signed', match: 'hf.co/acme/needs-sig', signatures: { authorities: [{ trustedKeys: true }] }, hub: { allow: ['acme/*'] } },
            { name: 'hub-pinned', match: 'hf.co/acme/strict', hub: { requireRevisionPin: true } },
          ],
        },
      },
    });
    process.env.CUSTOMS_TOKEN = s.token;
    endpoint = `${s.url}/hf/hf.co`;
  }, 120_000);

  afterAll(async () => {
    process.env.CUSTOMS_TOKEN = savedToken;
    await s?.close();
    await hub?.close();
    await rm(data, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  const storedBlob = (hex: string) => existsSync(join(data, 'blobs', 'sha256', hex.slice(0, 2), hex));

  it('snapshot_download through customs gives the cache a download straight from the Hub gives, and stores a ModelPack artifact', async () => {
    const viaCustoms = await newCache();
    const direct = await newCache();
    const r = await hf<string>(endpoint, 'snapshot_download', { repo_id: 'acme/tiny-bert' }, { cache: viaCustoms });
    expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
    const d = await hf<string>(hub.url, 'snapshot_download', { repo_id: 'acme/tiny-bert' }, { cache: direct, token: HUB_TOKEN });
    expect(d, JSON.stringify(d)).toMatchObject({ ok: true });
    // Same refs, same commit, same blob names (sha256 for LFS files, git blob ids for git files), same bytes.
    const tree = await cacheTree(viaCustoms);
    expect(tree).toEqual(await cacheTree(direct));
    expect(tree['models--acme--tiny-bert/refs/main']).toBe(sha256(Buffer.from(tinyCommit)));
    expect(tree[`models--acme--tiny-bert/blobs/${sha256(weights)}`]).toBe(sha256(weights));
    expect(tree[`models--acme--tiny-bert/blobs/${gitOid(config)}`]).toBe(sha256(config));
    expect((await lstat(join(viaCustoms, 'models--acme--tiny-bert', 'snapshots', tinyCommit, 'model.safetensors'))).isSymbolicLink()).toBe(true);

    // Stored as hf.co/acme/tiny-bert, tagged with the commit and the branch, and pullable over OCI.
    const tags = (await (await fetch(`${s.url}/v2/hf.co/acme/tiny-bert/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags.sort()).toEqual([tinyCommit, 'main'].sort());
    const m = await fetch(`${s.url}/v2/hf.co/acme/tiny-bert/manifests/main`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(m.status).toBe(200);
    const manifest = (await m.json()) as { artifactType: string; config: { digest: string }; layers: { digest: string; annotations: Record<string, string> }[]; annotations: Record<string, string> };
    expect(manifest.artifactType).toBe('application/vnd.cncf.model.manifest.v1+json');
    expect(manifest.annotations['dev.customs.hub.commit']).toBe(tinyCommit);
    const layer = manifest.layers.find((l) => l.annotations['org.cncf.model.filepath'] === 'model.safetensors')!;
    expect(layer.digest).toBe(`sha256:${sha256(weights)}`);
    const blob = await fetch(`${s.url}/v2/hf.co/acme/tiny-bert/blobs/${layer.digest}`);
    expect(sha256(Buffer.from(await blob.arrayBuffer()))).toBe(sha256(weights));
    const cfg = (await (await fetch(`${s.url}/v2/hf.co/acme/tiny-bert/blobs/${manifest.config.digest}`)).json()) as { descriptor: { licenses: string[]; revision: string }; config: { format: string } };
    expect(cfg.descriptor).toMatchObject({ licenses: ['apache-2.0'], revision: tinyCommit });
    expect(cfg.config.format).toBe('safetensors');
    // Each LFS file was fetched from the CDN once (the direct download above is the second).
    expect(hub.count('cdn', 'GET', new RegExp(sha256(weights)))).toBe(2);
  });

  it('the upstream token goes to the Hub host only: never to the CDN, never logged; the client\'s token never goes upstream', async () => {
    const r = await hf<string>(endpoint, 'snapshot_download', { repo_id: 'acme/private' }, { token: s.token! });
    expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
    const fromCustoms = hub.requests.filter((x) => x.authorization !== `Bearer ${HUB_TOKEN}` || x.host === 'cdn');
    expect(hub.requests.filter((x) => x.host === 'hub' && x.path.includes('acme/private')).every((x) => x.authorization === `Bearer ${HUB_TOKEN}`)).toBe(true);
    expect(hub.requests.filter((x) => x.host === 'cdn').every((x) => x.authorization === undefined)).toBe(true);
    expect(fromCustoms.some((x) => x.authorization?.includes(s.token!))).toBe(false);
    expect(logs.join('')).not.toContain(HUB_TOKEN);
    expect(logs.join('')).not.toContain(s.token!);
  });

  it('plain <org>/<model> under /hf goes through the default upstream', async () => {
    const r = await hf<string>(`${s.url}/hf`, 'hf_hub_download', { repo_id: 'acme/tiny-bert', filename: 'config.json' });
    expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
    if (r.ok) expect(await readFile(r.value)).toEqual(config);
  });

  it('datasets come through too, and an OCI client can pull a revision no Hub client asked for', async () => {
    const rows = Buffer.from('a,b\n1,2\n');
    await hub.commit('acme/rows', [{ path: 'data/rows.csv', content: rows }, { path: 'data/big.parquet', content: randomBytes(200_000), lfs: true }], { type: 'dataset', license: 'mit' });
    const r = await hf<string>(endpoint, 'hf_hub_download', { repo_id: 'acme/rows', filename: 'data/rows.csv', repo_type: 'dataset' });
    expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
    if (r.ok) expect(await readFile(r.value)).toEqual(rows);
    const parquet = await hf<string>(endpoint, 'hf_hub_download', { repo_id: 'acme/rows', filename: 'data/big.parquet', repo_type: 'dataset' });
    expect(parquet, JSON.stringify(parquet)).toMatchObject({ ok: true });
    const w = safetensorsOf(randomBytes(300_000));
    await hub.commit('acme/oci-first', [{ path: 'model.safetensors', content: w }], { license: 'mit' });
    const m = await fetch(`${s.url}/v2/hf.co/acme/oci-first/manifests/main`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(m.status).toBe(200);
    const layer = ((await m.json()) as { layers: { digest: string }[] }).layers[0]!;
    const b = await fetch(`${s.url}/v2/hf.co/acme/oci-first/blobs/${layer.digest}`);
    expect(b.status).toBe(200);
    expect(sha256(Buffer.from(await b.arrayBuffer()))).toBe(sha256(w));
  });

  it('a model with a malicious pickle: the client raises with the scan finding; over OCI the same; not one byte is served', async () => {
    const cache = await newCache();
    const r = await hf(endpoint, 'snapshot_download', { repo_id: 'acme/evil' }, { cache });
    expect(r).toMatchObject({ ok: false, error: { type: 'GatedRepoError', status: 403 } });
    if (!r.ok) expect(r.error.message).toMatch(/hub\/model: .*model format pytorch is not allowed.*pytorch_model\.bin.*(posix|os)\.system/);
    expect(await readdir(join(cache, 'models--acme--evil', 'blobs')).catch(() => [])).toEqual([]);
    const oci = await fetch(`${s.url}/v2/hf.co/acme/evil/manifests/main`);
    expect(oci.status).toBe(403);
    const evilLayer = `sha256:${sha256(pickles['torch-evil.pt']!)}`;
    expect((await fetch(`${s.url}/v2/hf.co/acme/evil/blobs/${evilLayer}`)).status).toBe(403);
    expect((await fetch(`${endpoint}/acme/evil/resolve/main/pytorch_model.bin`)).status).toBe(403);
  });

  it('a license the policy does not allow (from the model card) is refused', async () => {
    const r = await hf(endpoint, 'hf_hub_download', { repo_id: 'acme/gpl', filename: 'model.safetensors' });
    expect(r).toMatchObject({ ok: false, error: { type: 'GatedRepoError' } });
    if (!r.ok) expect(r.error.message).toMatch(/model license gpl-3.0 is not allowed/);
  });

  it('hub.allow: a repository outside the list is refused before the upstream is asked', async () => {
    const before = hub.requests.length;
    const r = await hf(endpoint, 'hf_hub_download', { repo_id: 'other/model', filename: 'model.safetensors' });
    expect(r).toMatchObject({ ok: false, error: { type: 'GatedRepoError', status: 403 } });
    if (!r.ok) expect(r.error.message).toMatch(/other\/model is not in hub\.allow/);
    expect(hub.requests.length).toBe(before);
  });

  it('hub.requireRevisionPin: a branch name is refused, the full commit is served', async () => {
    const byBranch = await hf(endpoint, 'snapshot_download', { repo_id: 'acme/strict', revision: 'main' });
    expect(byBranch).toMatchObject({ ok: false, error: { type: 'GatedRepoError' } });
    if (!byBranch.ok) expect(byBranch.error.message).toMatch(/requireRevisionPin/);
    const info = (await (await fetch(`${hub.url}/api/models/acme/strict/revision/main`)).json()) as { sha: string };
    const byCommit = await hf<string>(endpoint, 'snapshot_download', { repo_id: 'acme/strict', revision: info.sha });
    expect(byCommit, JSON.stringify(byCommit)).toMatchObject({ ok: true });
  });

  it('a signatures rule refuses an imported revision until an operator signs it with `customs sign`', async () => {
    const before = await hf(endpoint, 'hf_hub_download', { repo_id: 'acme/needs-sig', filename: 'model.safetensors' });
    expect(before).toMatchObject({ ok: false, error: { type: 'GatedRepoError' } });
    if (!before.ok) expect(before.error.message).toMatch(/hub-signed\/signatures: no signature found/);
    await signCommand('hf.co/acme/needs-sig:main', { url: s.url, key: keyPath }, quiet);
    const after = await hf<string>(endpoint, 'hf_hub_download', { repo_id: 'acme/needs-sig', filename: 'model.safetensors' });
    expect(after, JSON.stringify(after)).toMatchObject({ ok: true });
  });

  it('a branch that moves upstream moves the local tag (recorded in its history)', async () => {
    const next = await hub.commit('acme/tiny-bert', [
      { path: 'config.json', content: Buffer.from('{"model_type":"bert","hidden_size":16}') },
      { path: 'README.md', content: readme },
      { path: 'model.safetensors', content: weights },
    ], { license: 'apache-2.0' });
    const r = await hf<{ sha: string }>(endpoint, 'model_info', { repo_id: 'acme/tiny-bert' });
    expect(r).toMatchObject({ ok: true, value: { sha: next } });
    const history = (await (await fetch(`${s.url}/admin/history?repository=hf.co/acme/tiny-bert&tag=main`, { headers: s.auth() })).json()) as { history: { actor: string }[] };
    expect(history.history).toHaveLength(2);
    expect(history.history[0]!.actor).toBe('upstream:hf.co');
    // The unchanged files were not fetched again (the second fetch of each was the direct download in the first test).
    expect(hub.count('cdn', 'GET', new RegExp(sha256(weights)))).toBe(2);
    expect(hub.count('hub', 'GET', /^\/acme\/tiny-bert\/resolve\/[0-9a-f]{40}\/README\.md$/)).toBe(2);
    expect(hub.count('hub', 'GET', new RegExp(`^/acme/tiny-bert/resolve/${next}/config\\.json$`))).toBe(1);
  });

  it('faults: an LFS file with wrong bytes is never stored; every waiting client gets an error, not a file', async () => {
    const bad = safetensorsOf(randomBytes(2 * 1024 * 1024));
    await hub.commit('acme/wrong', [{ path: 'model.safetensors', content: bad }], { license: 'mit' });
    hub.fault('cdn', new RegExp(sha256(bad)), { kind: 'wrong-bytes' });
    const caches = [await newCache(), await newCache(), await newCache()];
    const r = await hf<{ ok: boolean; error?: { status: number | null; message: string } }[]>(endpoint, 'parallel', caches.map((cache_dir) => ({ repo_id: 'acme/wrong', filename: 'model.safetensors', cache_dir })));
    hub.clearFaults();
    expect(r.ok, JSON.stringify(r)).toBe(true);
    // The gate reads the whole file before it serves a byte (the model scan): the upstream's wrong bytes fail
    // that read, so each client's first request (the HEAD or the GET) gets 502, and no client gets a file.
    for (const x of r.ok ? r.value : []) {
      expect(x.ok).toBe(false);
      expect(JSON.stringify(x.error)).toMatch(/502/);
    }
    expect(storedBlob(sha256(bad))).toBe(false);
    for (const c of caches) expect(await readdir(join(c, 'models--acme--wrong', 'blobs')).then((f) => f.filter((x) => !x.endsWith('.incomplete')), () => [])).toEqual([]);
  });

  it('faults: a git file with wrong bytes fails the import; nothing of the revision is stored', async () => {
    const cfg = Buffer.from('{"model_type":"tampered"}');
    const commit = await hub.commit('acme/tampered', [{ path: 'config.json', content: cfg }, { path: 'model.safetensors', content: safetensorsOf(randomBytes(1000)) }], { license: 'mit' });
    hub.fault('hub', /^\/acme\/tampered\/resolve\/.*\/config\.json$/, { kind: 'wrong-bytes' });
    const r = await hf(endpoint, 'snapshot_download', { repo_id: 'acme/tampered' });
    hub.clearFaults();
    expect(r).toMatchObject({ ok: false, error: { type: 'LocalEntryNotFoundError' } });
    if (!r.ok) expect(r.error.message).toMatch(/502.*upstream hf\.co sent config\.json of acme\/tampered@[0-9a-f]{40} with bytes that do not match its git blob id/s);
    // No manifest, no tag, no bytes: the repository does not even exist.
    expect((await fetch(`${s.url}/v2/hf.co/acme/tampered/tags/list`)).status).toBe(404);
    expect(storedBlob(sha256(cfg))).toBe(false);
    // With the upstream fixed, the next request imports the revision.
    expect((await fetch(`${s.url}/v2/hf.co/acme/tampered/manifests/${commit}`)).status).toBe(200);
    expect(storedBlob(sha256(cfg))).toBe(true);
  });

  it('faults: a 503 from the Hub is retried (idempotent requests), the client never sees it', async () => {
    await hub.commit('acme/flaky', [{ path: 'config.json', content: config }, { path: 'model.safetensors', content: safetensorsOf(randomBytes(100)) }], { license: 'mit' });
    hub.fault('hub', /^\/api\/models\/acme\/flaky\//, { kind: 'status', status: 503 }, { times: 1 });
    const r = await hf<string>(endpoint, 'hf_hub_download', { repo_id: 'acme/flaky', filename: 'config.json' });
    expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
    // The HEAD's resolution (503, then its retry) and the GET's (revisionFreshness 0 revalidates each request).
    expect(hub.count('hub', 'GET', /^\/api\/models\/acme\/flaky\//)).toBe(3);
  });

  it('faults: a reset mid-file; the client resumes and gets the right bytes, stored once verified', async () => {
    const big = safetensorsOf(randomBytes(4 * 1024 * 1024));
    await hub.commit('acme/reset', [{ path: 'model.safetensors', content: big }], { license: 'mit' });
    hub.fault('cdn', new RegExp(sha256(big)), { kind: 'reset', afterBytes: 1024 * 1024 }, { times: 1 });
    const r = await hf<string>(endpoint, 'hf_hub_download', { repo_id: 'acme/reset', filename: 'model.safetensors' });
    expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
    if (r.ok) expect(sha256(await readFile(r.value))).toBe(sha256(big));
    expect(storedBlob(sha256(big))).toBe(true);
    expect(hub.count('cdn', 'GET', new RegExp(sha256(big)))).toBe(2);
  });

  it('faults: a 429 is passed on with its Retry-After; the client waits and retries', async () => {
    await hub.commit('acme/limited', [{ path: 'config.json', content: config }, { path: 'model.safetensors', content: safetensorsOf(randomBytes(100)) }], { license: 'mit' });
    hub.fault('hub', /^\/api\/models\/acme\/limited\//, { kind: 'status', status: 429, headers: { 'retry-after': '1' } }, { times: 1 });
    const raw = await fetch(`${endpoint}/acme/limited/resolve/main/config.json`, { method: 'HEAD' });
    expect(raw.status).toBe(429);
    expect(raw.headers.get('retry-after')).toBe('1');
    hub.fault('hub', /^\/api\/models\/acme\/limited\//, { kind: 'status', status: 429, headers: { 'retry-after': '1' } }, { times: 1 });
    const r = await hf<string>(endpoint, 'hf_hub_download', { repo_id: 'acme/limited', filename: 'config.json' });
    expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
  });

  it('faults: a slow first byte past the header timeout is a 502, not a hang; a branch resolved before is served stale', async () => {
    const slow = safetensorsOf(randomBytes(500_000));
    await hub.commit('acme/slow', [{ path: 'model.safetensors', content: slow }], { license: 'mit' });
    hub.fault('cdn', new RegExp(sha256(slow)), { kind: 'delay', ms: 4000 }, { times: 1 });
    const raw = await fetch(`${endpoint}/acme/slow/resolve/main/model.safetensors`);
    expect(raw.status).toBe(502);
    expect(((await raw.json()) as { error: string }).error).toMatch(/no headers .* in time/);
    expect(storedBlob(sha256(slow))).toBe(false);
    // Within the timeout it is only slow.
    hub.fault('cdn', new RegExp(sha256(slow)), { kind: 'delay', ms: 500 }, { times: 1 });
    const ok = await hf<string>(endpoint, 'hf_hub_download', { repo_id: 'acme/slow', filename: 'model.safetensors' });
    expect(ok, JSON.stringify(ok)).toMatchObject({ ok: true });
    // The Hub's API is slow now: `main` was resolved before, so it is served stale, with a warning.
    hub.fault('hub', /^\/api\/models\/acme\/slow\//, { kind: 'delay', ms: 4000 });
    const stale = await fetch(`${endpoint}/acme/slow/resolve/main/model.safetensors`, { method: 'HEAD' });
    hub.clearFaults();
    expect(stale.status).toBe(200);
    expect(stale.headers.get('x-hf-warning')).toMatch(/upstream Hub is unavailable/);
  });
});
