import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../src/oci/index.js';
import { FaultUpstream, generatedBlob } from './helpers/fault-upstream.js';

/**
 * `customs serve --workers 2`: two processes behind one port, sharing the data directory. The
 * guarantees of one process hold across them: one upstream GET per digest, a quarantine (or a tag
 * move) through one worker is seen by the other on its next request, and a worker killed mid-upload
 * leaves the store consistent and is restarted by the primary.
 */
interface Cluster {
  readonly url: string;
  readonly child: ChildProcess;
  readonly lines: Record<string, unknown>[];
  readonly dataDir: string;
  readonly token: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startCluster(dataDir: string, args: string[] = []): Promise<Cluster> {
  const child = spawn(process.execPath, ['bin/customs.js', 'serve', '--listen', '127.0.0.1:0', '--data', dataDir, '--workers', '2', ...args], {
    cwd: new URL('..', import.meta.url).pathname,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const j = JSON.parse(line) as Record<string, unknown>;
        lines.push(j);
        if (j.role === 'primary' && j.msg === 'listening') resolve(j.url as string);
      } catch {
        /* not JSON */
      }
    });
    void exited.then(({ code }) => reject(new Error(`customs exited (${code}) before listening: ${stderr}`)));
  });
  const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
  return { url, child, lines, dataDir, token, exited };
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTP exchange; `agent` pins a keep-alive connection (and so a worker). */
function http(url: string, o: { method?: string; headers?: Record<string, string>; body?: Buffer | string; agent?: Agent | false } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: o.method ?? 'GET', headers: o.headers, agent: o.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

const poll = async <T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms = 60_000): Promise<T> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

/** Which worker answered the request with this id (from its access line, written within ~100 ms). */
const servedBy = (c: Cluster, reqId: string): Promise<number> => poll(`the access line of ${reqId}`, () => c.lines.find((l) => l.reqId === reqId && l.msg === 'request')?.worker as number | undefined);

/** Two keep-alive connections, each held by a different worker. */
async function agentsOnBothWorkers(c: Cluster): Promise<Map<number, Agent>> {
  const byWorker = new Map<number, Agent>();
  for (let i = 0; i < 20 && byWorker.size < 2; i++) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const id = `probe-${i}-${randomBytes(4).toString('hex')}`;
    await http(`${c.url}/v2/`, { agent, headers: { authorization: `Bearer ${c.token}`, 'x-request-id': id } });
    const w = await servedBy(c, id);
    if (byWorker.has(w)) agent.destroy();
    else byWorker.set(w, agent);
  }
  if (byWorker.size < 2) throw new Error('could not reach both workers');
  return byWorker;
}

async function pushBlob(c: Cluster, repo: string, bytes: Buffer, agent?: Agent): Promise<string> {
  const auth = { authorization: `Bearer ${c.token}` };
  const digest = digestOf(bytes);
  const r = await http(`${c.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: bytes, agent });
  expect(r.status).toBe(201);
  return digest;
}

async function pushImage(c: Cluster, repo: string, tag: string, layer: Buffer, agent?: Agent): Promise<string> {
  const config = await pushBlob(c, repo, Buffer.from('{}'), agent);
  const l = await pushBlob(c, repo, layer, agent);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: config, size: 2 },
      layers: [{ mediaType: 'application/octet-stream', digest: l, size: layer.length }],
    }),
  );
  const r = await http(`${c.url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest, agent });
  expect(r.status).toBe(201);
  return digestOf(manifest);
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('serve --workers 2', () => {
  let dir: string;
  const stops: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'customs-workers-'));
  });
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
  });
  afterAll(() => rm(dir, { recursive: true, force: true, maxRetries: 5 }));

  const start = async (name: string, args: string[] = []): Promise<Cluster> => {
    const c = await startCluster(join(dir, name), args);
    stops.push(async () => {
      c.child.kill('SIGTERM');
      await c.exited;
    });
    return c;
  };

  it('16 concurrent cold pulls of one blob through both workers: one upstream GET, identical verified bytes', async () => {
    const up = await FaultUpstream.start();
    stops.push(() => up.stop());
    const blob = up.addBlob('big/model', await generatedBlob(48 * 1024 * 1024, 'workers'));
    // The upstream sends its first MiB, then waits: every client asks while the fill is in progress.
    let release!: () => void;
    up.fault(/\/blobs\//, { kind: 'stall', afterBytes: 1024 * 1024, until: new Promise<void>((r) => (release = r)) }, { method: 'GET' });
    const c = await start('pulls', ['--gate', 'off', '--upstream', `up=${up.url}`]);
    const ids = Array.from({ length: 16 }, (_, i) => `pull-${i}`);
    const pulls = ids.map((id) => http(`${c.url}/v2/up/big/model/blobs/${blob.digest}`, { headers: { authorization: `Bearer ${c.token}`, 'x-request-id': id } }));
    await poll('the upstream GET', () => up.count('GET', /\/blobs\//) >= 1);
    await new Promise((r) => setTimeout(r, 1000)); // the other requests reach their workers
    release();
    const replies = await Promise.all(pulls);
    for (const r of replies) {
      expect(r.status).toBe(200);
      expect(sha(r.body)).toBe(blob.digest);
    }
    expect(up.count('GET', /\/blobs\//)).toBe(1);
    const workers = new Set(await Promise.all(ids.map((id) => servedBy(c, id))));
    expect(workers).toEqual(new Set([1, 2]));
    // Later pulls, on either worker, come from the store.
    const again = await http(`${c.url}/v2/up/big/model/blobs/${blob.digest}`, { headers: { authorization: `Bearer ${c.token}` } });
    expect(sha(again.body)).toBe(blob.digest);
    expect(up.count('GET', /\/blobs\//)).toBe(1);
  }, 300_000);

  it('a quarantine, a release and a tag move through one worker are in force on the other at its next request', async () => {
    const c = await start('coherence', ['--gate', 'off']);
    const agents = await agentsOnBothWorkers(c);
    const [a, b] = [agents.get(1)!, agents.get(2)!];
    stops.push(async () => {
      a.destroy();
      b.destroy();
    });
    const auth = { authorization: `Bearer ${c.token}`, accept: 'application/vnd.oci.image.manifest.v1+json' };
    const layer = randomBytes(4096);
    const v1 = await pushImage(c, 'team/model', 'v1', layer, a);
    // Both workers have the tag, the manifest and its verdict cached.
    for (const agent of [a, b]) {
      for (let i = 0; i < 3; i++) expect((await http(`${c.url}/v2/team/model/manifests/v1`, { agent, headers: auth })).headers['docker-content-digest']).toBe(v1);
    }
    const quarantine = await http(`${c.url}/admin/quarantine`, { method: 'POST', agent: a, headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ digest: v1, reason: 'workers test' }) });
    expect(quarantine.status).toBe(200);
    expect((await http(`${c.url}/v2/team/model/manifests/v1`, { agent: b, headers: auth })).status).toBe(403);
    expect((await http(`${c.url}/v2/team/model/blobs/${digestOf(layer)}`, { agent: b, headers: auth })).status).toBe(403);
    const release = await http(`${c.url}/admin/release`, { method: 'POST', agent: a, headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ digest: v1, reason: 'workers test' }) });
    expect(release.status).toBe(200);
    expect((await http(`${c.url}/v2/team/model/manifests/v1`, { agent: b, headers: auth })).status).toBe(200);
    // A push through one worker moves the tag on the other.
    const v2 = await pushImage(c, 'team/model', 'v1', randomBytes(4096), a);
    expect((await http(`${c.url}/v2/team/model/manifests/v1`, { agent: b, headers: auth })).headers['docker-content-digest']).toBe(v2);
    // A pin through one worker refuses a push through the other.
    const pin = await http(`${c.url}/admin/pin`, { method: 'POST', agent: a, headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ repository: 'team/model', tag: 'v1', reason: 'workers test' }) });
    expect(pin.status).toBe(200);
    const manifest3 = await pushImage(c, 'team/model', 'v3', randomBytes(64), b);
    const moved = await http(`${c.url}/v2/team/model/manifests/v1`, {
      method: 'PUT',
      agent: b,
      headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: (await http(`${c.url}/v2/team/model/manifests/${manifest3}`, { agent: b, headers: auth })).body,
    });
    expect(moved.status).toBe(403);
    expect((await http(`${c.url}/v2/team/model/manifests/v1`, { agent: b, headers: auth })).headers['docker-content-digest']).toBe(v2);
  }, 120_000);

  it('kill -9 of a worker during an upload: the primary restarts it, nothing partial is in the store, uploads work', async () => {
    const c = await start('crash', ['--gate', 'off']);
    const agents = await agentsOnBothWorkers(c);
    stops.push(async () => agents.forEach((a) => a.destroy()));
    const victim = 2;
    const pid = c.lines.find((l) => l.worker === victim && l.msg === 'listening')!.pid as number;
    const before = await pushBlob(c, 'team/crash', randomBytes(100_000), agents.get(victim));
    const blob = randomBytes(8 * 1024 * 1024);
    const digest = digestOf(blob);
    // A monolithic upload whose body is half sent when the worker dies.
    const sent = new Promise<void>((resolve, reject) => {
      const req = request(`${c.url}/v2/team/crash/blobs/uploads/?digest=${digest}`, {
        method: 'POST',
        agent: agents.get(victim),
        headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/octet-stream', 'content-length': blob.length },
      });
      req.on('error', () => resolve()); // the connection dies with the worker
      req.on('response', (res) => reject(new Error(`the upload was answered (${res.statusCode}) by a worker that was killed`)));
      req.write(blob.subarray(0, 4 * 1024 * 1024), () => {
        setTimeout(() => process.kill(pid, 'SIGKILL'), 200);
      });
    });
    await sent;
    const restarted = await poll('the restarted worker', () => c.lines.find((l) => l.worker === victim && l.msg === 'listening' && l.pid !== pid));
    expect(c.lines.some((l) => l.role === 'primary' && l.msg === 'worker exited; restarting it' && l.worker === victim && l.signal === 'SIGKILL')).toBe(true);
    expect(restarted.pid).not.toBe(pid);
    // Nothing of the interrupted upload is a blob, and the dead worker's ingest files are gone.
    const blobsDir = join(c.dataDir, 'blobs', 'sha256');
    const files = (await readdir(blobsDir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
    for (const f of files) expect(sha(await readFile(join(f.parentPath, f.name)))).toBe(`sha256:${f.name}`);
    expect(files.some((f) => f.name === digest.slice(7))).toBe(false);
    expect(files.some((f) => f.name === before.slice(7))).toBe(true);
    expect(await readdir(join(c.dataDir, 'ingest', `w${victim}`)).catch(() => [])).toEqual([]);
    const head = await http(`${c.url}/v2/team/crash/blobs/${digest}`, { method: 'HEAD', headers: { authorization: `Bearer ${c.token}` } });
    expect(head.status).toBe(404);
    // The same upload again, on whichever worker: it commits, and both workers serve it.
    await pushBlob(c, 'team/crash', blob);
    for (let i = 0; i < 4; i++) {
      const r = await http(`${c.url}/v2/team/crash/blobs/${digest}`, { headers: { authorization: `Bearer ${c.token}` } });
      expect(r.status).toBe(200);
      expect(sha(r.body)).toBe(digest);
    }
  }, 120_000);
});
