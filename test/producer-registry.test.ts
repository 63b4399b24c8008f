import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attach } from '../src/artifacts/attach.js';
import { RegistryClient } from '../src/artifacts/client.js';
import { ModelPack, SbomMediaType, Sigstore } from '../src/artifacts/media-types.js';
import { buildModelManifest, type PackedFile } from '../src/artifacts/modelpack.js';
import { pull } from '../src/artifacts/pull.js';
import { pushDataset } from '../src/artifacts/push.js';
import { cosignSignStatement, loadSigningKey, ociSubject, signStatement } from '../src/artifacts/sign.js';
import { register } from '../src/cli/producer/index.js';
import { MediaType, digestOf, isRegistryError, type Digest } from '../src/oci/index.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { startDockerRegistry, writeKeyPair, type DockerRegistry } from './producer-fixtures.js';

/**
 * The producer client against two real registries: customs itself (referrers API) and
 * Debian's docker-registry (distribution 2.8, no referrers API: the tag fallback is used).
 */
const VECTORS = new URL('../../shared/vectors/', import.meta.url);

interface Target {
  readonly name: string;
  start(): Promise<{ url: string; token: string | undefined; close(): Promise<void> }>;
}
const targets: Target[] = [
  {
    name: 'customs',
    async start() {
      const s: TestServer = await startTestServer();
      return { url: s.url, token: s.token, close: () => s.close() };
    },
  },
  {
    name: 'docker-registry',
    async start() {
      const r: DockerRegistry = await startDockerRegistry();
      return { url: r.url, token: undefined, close: () => r.close() };
    },
  },
];

describe.each(targets)('producer client against $name', (target) => {
  let reg: Awaited<ReturnType<Target['start']>>;
  let work: string;
  let client: RegistryClient;

  beforeAll(async () => {
    reg = await target.start();
    work = await mkdtemp(join(tmpdir(), 'customs-producer-'));
    // Small thresholds so that the chunked path (POST, PATCH with Content-Range, PUT) is what runs.
    client = new RegistryClient({ url: reg.url, token: reg.token, monolithicMax: 1000, chunkSize: 4096 });
  });
  afterAll(async () => {
    await reg?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function dataset(name: string, files: Record<string, Buffer | string>): Promise<string> {
    const dir = join(work, name);
    for (const [p, content] of Object.entries(files)) {
      await mkdir(join(dir, p, '..'), { recursive: true });
      await writeFile(join(dir, p), content);
    }
    return dir;
  }

  it('pushes a dataset in chunks and pulls it back byte for byte', async () => {
    const big = randomBytes(50_000);
    const dir = await dataset('ds1', { 'train.csv': big, 'meta/schema.json': '{"cols":3}' });
    const r = await pushDataset(client, { path: dir, target: { repository: 'data/tx', tag: 'v1' }, created: '2025-01-01T00:00:00Z' });
    expect(r.files.map((f) => [f.relPath, f.mediaType])).toEqual([
      ['meta/schema.json', ModelPack.datasetRaw],
      ['train.csv', ModelPack.datasetRaw],
    ]);
    const m = await client.getManifest('data/tx', 'v1');
    expect(m.digest).toBe(r.digest);
    const out = join(work, 'out1');
    const p = await pull(client, 'data/tx:v1', out);
    expect(p.digest).toBe(r.digest);
    expect(Buffer.compare(await readFile(join(out, 'train.csv')), big)).toBe(0);
    expect(await readFile(join(out, 'meta/schema.json'), 'utf8')).toBe('{"cols":3}');
    // Pulling again leaves verified files alone.
    const again = await pull(client, `data/tx@${r.digest}`, out);
    expect(again.files.every((f) => f.skipped)).toBe(true);
  });

  it('resumes an interrupted download from <file>.partial with Range, and discards a corrupt partial', async () => {
    const content = randomBytes(30_000);
    const dir = await dataset('ds2', { 'big.bin': content });
    await pushDataset(client, { path: dir, target: { repository: 'data/resume', tag: 'v1' } });
    const out = join(work, 'out2');
    await mkdir(out);
    await writeFile(join(out, 'big.bin.partial'), content.subarray(0, 12_345));
    const p = await pull(client, 'data/resume:v1', out);
    expect(p.files[0]!.resumedFrom).toBe(12_345);
    expect(Buffer.compare(await readFile(join(out, 'big.bin')), content)).toBe(0);
    expect(await readdir(out)).toEqual(['big.bin']);

    const out3 = join(work, 'out3');
    await mkdir(out3);
    const corrupt = Buffer.from(content.subarray(0, 1000));
    corrupt[10] = corrupt[10]! ^ 0xff;
    await writeFile(join(out3, 'big.bin.partial'), corrupt);
    await expect(pull(client, 'data/resume:v1', out3)).rejects.toThrow(/expected sha256:/);
    await expect(stat(join(out3, 'big.bin.partial'))).rejects.toThrow(); // removed, so the next attempt starts clean
    const retry = await pull(client, 'data/resume:v1', out3);
    expect(retry.files[0]!.resumedFrom).toBe(0);
    expect(Buffer.compare(await readFile(join(out3, 'big.bin')), content)).toBe(0);
  });

  /** Pushes a hand-made manifest whose layer claims `filepath`. */
  async function hostile(repo: string, filepath: string): Promise<void> {
    const data = Buffer.from('pwned');
    await client.pushBlob(repo, { kind: 'bytes', data });
    const config = Buffer.from('{}');
    await client.pushBlob(repo, { kind: 'bytes', data: config });
    const f: PackedFile = { path: '', relPath: filepath, size: data.byteLength, digest: digestOf(data), mediaType: ModelPack.weightRaw };
    const m = buildModelManifest(config, [f], 'model', '2025-01-01T00:00:00Z');
    await client.putManifest(repo, 'v1', m.bytes, MediaType.ociManifest);
  }

  it('refuses layer paths that are absolute, climb out with .., or go through a symlink', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'customs-outside-'));
    const out = join(work, 'hostile');
    await mkdir(out);
    await symlink(outside, join(out, 'link'));
    for (const [repo, p, msg] of [
      ['evil/abs', '/tmp/customs-pwned', /absolute/],
      ['evil/dotdot', '../../customs-pwned', /'\.\.'/],
      ['evil/link', 'link/pwned', /symlink/],
    ] as const) {
      await hostile(repo, p);
      await expect(pull(client, `${repo}:v1`, out)).rejects.toThrow(msg);
    }
    expect(await readdir(outside)).toEqual([]);
    await expect(stat('/tmp/customs-pwned')).rejects.toThrow();
    await rm(outside, { recursive: true });
  });

  it('lists referrers (API or tag fallback) and attaches external SBOMs and signatures', async () => {
    const dir = await dataset('ds3', { 'x.csv': 'a,b\n1,2\n' });
    const { keyPath } = await writeKeyPair(work);
    const key = await loadSigningKey(keyPath);
    const r = await pushDataset(client, { path: dir, target: { repository: 'data/att', tag: 'v1' }, signingKey: key });
    expect(r.referrers.map((x) => x.predicateType)).toEqual([Sigstore.cosignSignPredicate]);

    const cdx = new URL('cyclonedx/cosign-bom-go-mod.cyclonedx.json', VECTORS).pathname;
    const spdx = new URL('spdx/syftbom.spdx.json', VECTORS).pathname;
    const a1 = await attach(client, 'data/att:v1', 'sbom', cdx);
    const a2 = await attach(client, 'data/att:v1', 'sbom', spdx);
    expect([a1.artifactType, a2.artifactType]).toEqual([SbomMediaType.cyclonedx, SbomMediaType.spdx]);
    const bundleFile = join(work, 'sig.json');
    await writeFile(bundleFile, JSON.stringify(signStatement(cosignSignStatement(ociSubject('x', r.digest)), key)));
    const a3 = await attach(client, `data/att@${r.digest}`, 'signature', bundleFile);
    expect(a3.predicateType).toBe(Sigstore.cosignSignPredicate);

    // A statement about another artifact is refused.
    const wrong = join(work, 'wrong.json');
    await writeFile(wrong, JSON.stringify(cosignSignStatement(ociSubject('x', digestOf('other')))));
    await expect(attach(client, 'data/att:v1', 'provenance', wrong)).rejects.toThrow(/not sha256:/);
    await expect(attach(client, 'data/att:v1', 'sbom', bundleFile)).rejects.toThrow(/not an SBOM/);

    const idx = await client.listReferrers('data/att', r.digest);
    const types = idx.manifests.map((d) => d.artifactType);
    expect(types.filter((t) => t === Sigstore.bundleV03)).toHaveLength(2); // pushed with the dataset + attached
    expect(types).toContain(SbomMediaType.cyclonedx);
    expect(types).toContain(SbomMediaType.spdx);
    expect((await client.listReferrers('data/att', r.digest, SbomMediaType.spdx)).manifests).toHaveLength(1);
  });

  it('surfaces the registry error code and message', async () => {
    const e = await pull(client, 'data/none:v9', join(work, 'none')).catch((x: unknown) => x);
    expect(isRegistryError(e)).toBe(true);
    expect((e as Error).message).toMatch(/HTTP 404/);
    expect((e as { code: string }).code).toMatch(/MANIFEST_UNKNOWN|NAME_UNKNOWN/);
  });

  it('runs through the commander program (push dataset, pull)', async () => {
    const dir = await dataset('ds4', { 'a.csv': '1\n' });
    const program = new Command().exitOverride();
    register(program);
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    const token = process.env.CUSTOMS_TOKEN;
    try {
      if (reg.token) process.env.CUSTOMS_TOKEN = reg.token;
      await program.parseAsync(['node', 'customs', 'push', 'dataset', dir, '--to', 'data/cli:v1', '--url', reg.url]);
      await program.parseAsync(['node', 'customs', 'pull', 'data/cli:v1', join(work, 'cliout'), '--url', reg.url]);
    } finally {
      process.stdout.write = write;
      if (token === undefined) delete process.env.CUSTOMS_TOKEN;
      else process.env.CUSTOMS_TOKEN = token;
    }
    expect(process.exitCode ?? 0).toBe(0);
    const digest = lines[0]!.trim().split('@')[1] as Digest;
    expect(lines[0]!.trim()).toMatch(/^data\/cli@sha256:[0-9a-f]{64}$/);
    expect(lines[1]!.trim()).toBe(`data/cli@${digest}`);
    expect(await readFile(join(work, 'cliout', 'a.csv'), 'utf8')).toBe('1\n');
  });
});
