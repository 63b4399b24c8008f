import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { safetensorsOf } from './helpers/safetensors.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Output } from '../src/cli/producer/common.js';
import { pushDatasetCommand, pushModelCommand } from '../src/cli/producer/index.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { hf, newCache } from './helpers/hf-client.js';
import { writeKeyPair } from './producer-fixtures.js';

/**
 * Issue 20, "What it must show" (first part): the real huggingface_hub client (2.4.0, the
 * test venv) with HF_ENDPOINT=<customs>/hf downloads a model pushed with `customs push model`:
 * the bytes are the pushed files, the client's cache has the layout and commit hash a Hub
 * gives it, and a model the gate denies makes the client raise with customs' reasons.
 * Under an enforcing policy: models must be signed by a key in <data>/trust/keys/.
 */
const quiet: Output = { out() {}, err() {} };
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('Hugging Face clients over customs-pushed artifacts', () => {
  let s: TestServer;
  let data: string;
  let work: string;
  let endpoint: string;
  let token: string;
  const files: Record<string, Buffer> = {
    'config.json': Buffer.from(JSON.stringify({ architectures: ['BertModel'], hidden_size: 8 })),
    'model.safetensors': safetensorsOf(randomBytes(3 * 1024 * 1024 + 17)),
    'tokenizer/vocab.txt': Buffer.from('[PAD]\n[UNK]\nhello\nworld\n'),
  };
  let signed: string; // digest of models/fraud:v1
  let unsigned: string;
  const savedToken = process.env.CUSTOMS_TOKEN;

  beforeAll(async () => {
    data = await mkdtemp(join(tmpdir(), 'customs-hub-local-'));
    work = await mkdtemp(join(tmpdir(), 'customs-hub-work-'));
    const { keyPath, publicPem } = await writeKeyPair(work);
    await mkdir(join(data, 'trust', 'keys'), { recursive: true });
    await writeFile(join(data, 'trust', 'keys', 'release.pub'), publicPem);
    // The default policy (every repository: a signature by a key in <data>/trust/keys/); nobody pulls anonymously.
    s = await startTestServer({ dataDir: data, gate: undefined, config: { auth: { anonymous: { pull: 'never' } } } });
    token = s.token!;
    process.env.CUSTOMS_TOKEN = token;
    endpoint = `${s.url}/hf`;
    const dir = join(work, 'model');
    for (const [p, b] of Object.entries(files)) {
      await mkdir(join(dir, p, '..'), { recursive: true });
      await writeFile(join(dir, p), b);
    }
    signed = (await pushModelCommand(dir, { url: s.url, to: 'models/fraud:v1', sign: keyPath, license: ['Apache-2.0'], format: 'safetensors' }, quiet)).digest;
    unsigned = (await pushModelCommand(dir, { url: s.url, to: 'models/unsigned:v1', name: 'unsigned', version: 'other' }, quiet)).digest;
    const ds = join(work, 'data');
    await mkdir(ds);
    await writeFile(join(ds, 'rows.csv'), 'a,b\n1,2\n');
    await pushDatasetCommand(ds, { url: s.url, to: 'datasets/rows:v1', sign: keyPath }, quiet);
  }, 120_000);

  afterAll(async () => {
    process.env.CUSTOMS_TOKEN = savedToken;
    await s?.close();
    await rm(data, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it('snapshot_download: the pushed bytes, the cache layout and commit a Hub gives', async () => {
    const cache = await newCache();
    const r = await hf<string>(endpoint, 'snapshot_download', { repo_id: 'models/fraud', revision: 'v1' }, { token, cache });
    expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
    const commit = signed.slice(7, 47);
    const repoDir = join(cache, 'models--models--fraud');
    expect((r as { value: string }).value).toBe(join(repoDir, 'snapshots', commit));
    expect(await readFile(join(repoDir, 'refs', 'v1'), 'utf8')).toBe(commit);
    for (const [p, bytes] of Object.entries(files)) {
      const inSnapshot = join(repoDir, 'snapshots', commit, p);
      expect((await lstat(inSnapshot)).isSymbolicLink(), p).toBe(true);
      // Every file is content-addressed by its sha256, as the Hub does for LFS files.
      expect(await realpath(inSnapshot)).toBe(join(await realpath(repoDir), 'blobs', sha256(bytes)));
      expect((await readlink(inSnapshot)).startsWith('../')).toBe(true);
      expect(sha256(await readFile(inSnapshot)), p).toBe(sha256(bytes));
    }
    expect((await readdir(join(repoDir, 'blobs'))).sort()).toEqual(Object.values(files).map(sha256).sort());
  });

  it('hf_hub_download by tag, by commit and by manifest digest; model_info and list_repo_files', async () => {
    const cache = await newCache();
    const commit = signed.slice(7, 47);
    for (const revision of ['v1', commit, signed]) {
      const r = await hf<string>(endpoint, 'hf_hub_download', { repo_id: 'models/fraud', filename: 'tokenizer/vocab.txt', revision }, { token, cache });
      expect(r, `${revision}: ${JSON.stringify(r)}`).toMatchObject({ ok: true, value: join(cache, 'models--models--fraud', 'snapshots', commit, 'tokenizer', 'vocab.txt') });
      expect(await readFile((r as { value: string }).value)).toEqual(files['tokenizer/vocab.txt']);
    }
    const info = await hf<{ sha: string; siblings: { rfilename: string; size: number; lfs: { sha256: string; size: number } | null }[] }>(endpoint, 'model_info', { repo_id: 'models/fraud', revision: 'v1', files_metadata: true }, { token });
    expect(info.ok, JSON.stringify(info)).toBe(true);
    if (!info.ok) return;
    expect(info.value.sha).toBe(commit);
    expect(info.value.siblings.map((x) => [x.rfilename, x.size, x.lfs?.sha256]).sort()).toEqual(Object.entries(files).map(([p, b]) => [p, b.length, sha256(b)]).sort());
    const list = await hf<string[]>(endpoint, 'list_repo_files', { repo_id: 'models/fraud', revision: 'v1' }, { token });
    expect(list.ok && [...list.value].sort()).toEqual(Object.keys(files).sort());
  });

  it('HEAD and GET of /resolve answer with the headers huggingface_hub reads, and ranges', async () => {
    const url = `${endpoint}/models/fraud/resolve/v1/model.safetensors`;
    const auth = { authorization: `Bearer ${token}` };
    const head = await fetch(url, { method: 'HEAD', headers: auth });
    expect(head.status).toBe(200);
    const bytes = files['model.safetensors']!;
    expect(head.headers.get('x-repo-commit')).toBe(signed.slice(7, 47));
    expect(head.headers.get('etag')).toBe(`"${sha256(bytes)}"`);
    expect(head.headers.get('x-linked-etag')).toBe(`"${sha256(bytes)}"`);
    expect(head.headers.get('x-linked-size')).toBe(String(bytes.length));
    expect(head.headers.get('content-length')).toBe(String(bytes.length));
    const part = await fetch(url, { headers: { ...auth, range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${bytes.length}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(bytes.subarray(100, 200));
    const anonymous = await fetch(url, { method: 'HEAD' });
    expect(anonymous.status).toBe(401);
  });

  it('a denied model: the client raises GatedRepoError with the failed rules, and caches nothing', async () => {
    const cache = await newCache();
    const snap = await hf(endpoint, 'snapshot_download', { repo_id: 'models/unsigned', revision: 'v1' }, { token, cache });
    expect(snap).toMatchObject({ ok: false, error: { type: 'GatedRepoError', status: 403 } });
    if (!snap.ok) expect(snap.error.message).toMatch(/denied by policy: default\/signatures: 0 of 1 required signature\(s\) verified/);
    const one = await hf(endpoint, 'hf_hub_download', { repo_id: 'models/unsigned', filename: 'model.safetensors', revision: 'v1' }, { token, cache });
    expect(one).toMatchObject({ ok: false, error: { type: 'GatedRepoError', status: 403 } });
    if (!one.ok) expect(one.error.message).toMatch(/0 of 1 required signature/);
    const blobs = await readdir(join(cache, 'models--models--unsigned', 'blobs')).catch(() => []);
    expect(blobs).toEqual([]);
    // Recorded in the audit log as every refusal is.
    const audit = (await (await fetch(`${s.url}/admin/audit?limit=1000`, { headers: { authorization: `Bearer ${token}` } })).json()) as { entries: { action: string; target?: string; reason?: string }[] };
    expect(audit.entries.some((e) => e.action === 'deny' && e.target?.startsWith('/hf/') && /0 of 1 required signature/.test(e.reason ?? ''))).toBe(true);
    // The same reasons as over OCI.
    const oci = await fetch(`${s.url}/v2/models/unsigned/manifests/${unsigned}`, { headers: { authorization: `Bearer ${token}` } });
    expect(oci.status).toBe(403);
    expect(((await oci.json()) as { errors: { message: string }[] }).errors[0]!.message).toMatch(/default\/signatures: 0 of 1 required signature/);
  });

  it('unknown repository, revision and file: RepositoryNotFound, RevisionNotFound, EntryNotFound', async () => {
    const repo = await hf(endpoint, 'hf_hub_download', { repo_id: 'models/nothing', filename: 'config.json', revision: 'v1' }, { token });
    expect(repo).toMatchObject({ ok: false, error: { type: 'RepositoryNotFoundError' } });
    const rev = await hf(endpoint, 'hf_hub_download', { repo_id: 'models/fraud', filename: 'config.json', revision: 'v9' }, { token });
    expect(rev).toMatchObject({ ok: false, error: { type: 'RevisionNotFoundError' } });
    const entry = await hf(endpoint, 'hf_hub_download', { repo_id: 'models/fraud', filename: 'nope.bin', revision: 'v1' }, { token });
    expect(entry).toMatchObject({ ok: false, error: { type: 'RemoteEntryNotFoundError' } });
    const asDataset = await hf(endpoint, 'hf_hub_download', { repo_id: 'models/fraud', filename: 'config.json', revision: 'v1', repo_type: 'dataset' }, { token });
    expect(asDataset).toMatchObject({ ok: false, error: { type: 'RepositoryNotFoundError' } });
  });

  it('datasets under /datasets/', async () => {
    const r = await hf<string>(endpoint, 'hf_hub_download', { repo_id: 'datasets/rows', filename: 'rows.csv', revision: 'v1', repo_type: 'dataset' }, { token });
    expect(r, JSON.stringify(r)).toMatchObject({ ok: true });
    if (r.ok) expect(await readFile(r.value, 'utf8')).toBe('a,b\n1,2\n');
  });

  it('a quarantined model is refused to Hub clients too', async () => {
    const q = await fetch(`${s.url}/admin/quarantine`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ digest: signed, reason: 'test' }) });
    expect(q.status).toBe(200);
    const r = await hf(endpoint, 'hf_hub_download', { repo_id: 'models/fraud', filename: 'config.json', revision: 'v1' }, { token });
    expect(r).toMatchObject({ ok: false, error: { type: 'GatedRepoError', status: 403 } });
    if (!r.ok) expect(r.error.message).toMatch(/quarantined/);
    await fetch(`${s.url}/admin/release`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ digest: signed, reason: 'test' }) });
  });
});
