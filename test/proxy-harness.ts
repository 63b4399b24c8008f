import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { isRegistryError, type Digest } from '../src/oci/index.js';
import type { UpstreamBlob } from '../src/proxy/pull-through.js';
import { bodyStream, type ByteRange } from '../src/storage/index.js';
import { parseUpstreams, type UpstreamInput } from '../src/proxy/config.js';
import type { ProxyLogger } from '../src/proxy/logger.js';
import { PullThroughService, type PullThroughOptions } from '../src/proxy/pull-through-service.js';
import { FsBlobStore } from '../src/storage/fs/fs-blob-store.js';
import { SqliteMetadataStore } from '../src/storage/sqlite/sqlite-metadata-store.js';
import { FaultUpstream } from './helpers/fault-upstream.js';

/**
 * The pull-through service over the real storage implementations (filesystem
 * blobs, SQLite metadata) in a temporary directory, with a logger that records.
 */
export interface LogEntry {
  readonly level: 'info' | 'warn' | 'error';
  readonly obj: Record<string, unknown>;
  readonly msg: string | undefined;
}

export interface ProxyHarness {
  readonly service: PullThroughService;
  readonly blobs: FsBlobStore;
  readonly metadata: SqliteMetadataStore;
  readonly logs: LogEntry[];
  readonly dir: string;
  /** Files left in the fill's temporary directory. */
  tempFiles(): Promise<string[]>;
  close(): Promise<void>;
}

export async function startProxy(upstreams: UpstreamInput[], extra: Partial<PullThroughOptions> = {}): Promise<ProxyHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'customs-proxy-'));
  const blobs = new FsBlobStore(join(dir, 'blobs'));
  await blobs.init();
  const metadata = new SqliteMetadataStore(join(dir, 'meta.db'));
  const logs: LogEntry[] = [];
  const rec = (level: LogEntry['level']) => (obj: object, msg?: string) => void logs.push({ level, obj: obj as Record<string, unknown>, msg });
  const logger: ProxyLogger = { info: rec('info'), warn: rec('warn'), error: rec('error') };
  const tempDir = join(dir, 'proxy-tmp');
  const service = new PullThroughService({ blobs, metadata, upstreams: parseUpstreams(upstreams), logger, tempDir, ...extra });
  await service.init();
  return {
    service,
    blobs,
    metadata,
    logs,
    dir,
    tempFiles: () => readdir(tempDir),
    async close() {
      service.close();
      await metadata.close();
      // A fill whose client already has every byte may still be committing (fsync, rename into blobs/).
      await rm(dir, { recursive: true, force: true, maxRetries: 5 });
    },
  };
}

/** Reads a stream to its end, hashing: never holds the bytes. */
/** The bytes of a pull-through blob (or `range` of them) as a stream, as the HTTP layer would send them. */
export async function opened(blob: UpstreamBlob | undefined, range?: ByteRange): Promise<Readable> {
  if (!blob) throw new Error('no such blob');
  return bodyStream(await blob.open(range), range?.start ?? 0, range?.end ?? blob.size - 1);
}

export async function drain(stream: Readable): Promise<{ digest: Digest; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of stream) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
}

/** Reads a small stream into memory. */
export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Resolves with the error a stream ends with (fails the test if it ends cleanly). */
export async function streamError(stream: Readable): Promise<Error> {
  try {
    for await (const _ of stream) void _;
  } catch (e) {
    return e as Error;
  }
  throw new Error('stream ended without an error');
}

// --- a real upstream: Debian's docker-registry (CNCF distribution 2.8) ---

export interface Distribution {
  readonly url: string;
  readonly host: string;
  /** Its storage root (`docker/registry/v2/...`): tests tamper with blobs there. */
  readonly root: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts /usr/bin/docker-registry on a free loopback port with a temporary root directory. */
export async function startDistribution(): Promise<Distribution> {
  const { spawn } = await import('node:child_process');
  const { writeFile } = await import('node:fs/promises');
  const dir = await mkdtemp(join(tmpdir(), 'customs-distribution-'));
  const port = await freePort();
  const cfg = join(dir, 'config.yml');
  await writeFile(
    cfg,
    [
      'version: 0.1',
      'log: { level: error }',
      'storage:',
      `  filesystem: { rootdirectory: ${join(dir, 'root')} }`,
      '  delete: { enabled: true }',
      `http: { addr: "127.0.0.1:${port}" }`,
      '',
    ].join('\n'),
  );
  const child = spawn('/usr/bin/docker-registry', ['serve', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await fetch(`${url}/v2/`).then((r) => r.ok, () => false);
    if (ok) break;
    if (child.exitCode !== null || i > 200) throw new Error(`docker-registry did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    host: `127.0.0.1:${port}`,
    root: join(dir, 'root'),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface LayoutManifest {
  /** Reference names in index.json (`org.opencontainers.image.ref.name`). */
  readonly refs: string[];
  readonly mediaType: string;
  readonly bytes: Buffer;
}

/** Writes an OCI image layout: blobs (manifests included) and index.json naming `manifests`. */
export async function writeOciLayout(dir: string, blobs: Buffer[], manifests: LayoutManifest[], children: Buffer[] = []): Promise<void> {
  const { mkdir, writeFile } = await import('node:fs/promises');
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  for (const b of [...blobs, ...children, ...manifests.map((m) => m.bytes)]) {
    await writeFile(join(dir, 'blobs', 'sha256', createHash('sha256').update(b).digest('hex')), b);
  }
  const index = {
    schemaVersion: 2,
    manifests: manifests.flatMap((m) =>
      m.refs.map((ref) => ({
        mediaType: m.mediaType,
        digest: `sha256:${createHash('sha256').update(m.bytes).digest('hex')}`,
        size: m.bytes.length,
        annotations: { 'org.opencontainers.image.ref.name': ref },
      })),
    ),
  };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
}

/** Runs skopeo, failing with its stderr. */
export async function skopeo(args: string[]): Promise<string> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) =>
    execFile('skopeo', args, { maxBuffer: 64 * 1024 * 1024 }, (e, stdout, stderr) => (e ? reject(new Error(`skopeo ${args.join(' ')}: ${stderr}`)) : resolve(stdout))),
  );
}

/**
 * A fault-injecting upstream named `up` and a proxy in front of it, both closed by
 * `cleanups` (run after each test). Timeouts are generous (a loaded machine must
 * not trip them); tests that need their own pass them in `upstream`.
 */
export async function faultProxy(
  cleanups: Array<() => Promise<void>>,
  opts: Parameters<typeof FaultUpstream.start>[0] = {},
  upstream: Record<string, unknown> = {},
  extra: Partial<PullThroughOptions> = {},
): Promise<{ up: FaultUpstream; px: ProxyHarness }> {
  const up = await FaultUpstream.start(opts);
  const px = await startProxy([{ name: 'up', url: up.url, timeouts: { header: 10, idle: 30, overall: 120 }, ...upstream } as UpstreamInput], extra);
  cleanups.push(async () => {
    await px.close();
    await up.stop().catch(() => undefined);
  });
  return { up, px };
}

export const tagRef = (t: string) => ({ kind: 'tag' as const, tag: t });
export const digestRef = (d: Digest) => ({ kind: 'digest' as const, digest: d });
/** The registry error code of `e`, or its text. */
export const code = (e: unknown): string => (isRegistryError(e) ? e.code : String(e));
