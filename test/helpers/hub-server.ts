import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { bytesBlob, sendBlobWithFaults, type BlobSource, type Fault, type RecordedRequest } from './fault-upstream.js';

/**
 * A Hugging Face Hub for the tests: the calls huggingface_hub and customs make
 * (`/api/<type>s/<id>/revision/<rev>?blobs=true`, `/<id>/resolve/<rev>/<path>`), with
 * git-tracked files served by the Hub host itself and LFS files redirected (302) to a
 * second host, a CDN with a signed URL, as huggingface.co does. Repositories may
 * require a token. Every request to either host is recorded (with its Authorization),
 * and faults can be injected per path: a status with headers (429 + Retry-After),
 * a delay before the headers, a reset mid-body, wrong bytes.
 */
export interface HubFileSpec {
  readonly path: string;
  readonly content: Buffer | BlobSource;
  /** Stored with git-lfs (default: files over 1 MiB, and weights). */
  readonly lfs?: boolean;
}

interface StoredFile {
  readonly path: string;
  readonly blob: BlobSource;
  readonly lfs: boolean;
  /** git object id: of the file, or of its LFS pointer. */
  readonly oid: string;
  readonly sha256: string;
}

interface Commit {
  readonly sha: string;
  readonly files: Map<string, StoredFile>;
  readonly lastModified: string;
  readonly license: string | undefined;
}

interface Repo {
  readonly branches: Map<string, string>;
  readonly commits: Map<string, Commit>;
  readonly token: string | undefined;
}

interface HubFault {
  readonly host: 'hub' | 'cdn';
  readonly method: string | undefined;
  readonly path: RegExp;
  readonly fault: Fault;
  remaining: number;
}

export interface HubRecordedRequest extends RecordedRequest {
  readonly host: 'hub' | 'cdn';
}

const gitBlobOid = (bytes: Buffer): string => createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
const lfsPointer = (sha256: string, size: number): Buffer => Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`);
const isWeight = (p: string): boolean => /\.(safetensors|bin|pt|pth|ckpt|gguf|onnx|h5|msgpack)$/.test(p);

export class TestHub {
  readonly requests: HubRecordedRequest[] = [];
  private readonly repos = new Map<string, Repo>(); // `<type>:<id>`
  private readonly faults: HubFault[] = [];
  private readonly sockets = new Set<Socket>();
  private hub!: Server;
  private cdn!: Server;
  url = '';
  cdnUrl = '';

  static async start(): Promise<TestHub> {
    const h = new TestHub();
    h.hub = createServer((req, res) => void h.handle(req, res).catch(() => res.destroy()));
    h.cdn = createServer((req, res) => void h.handleCdn(req, res).catch(() => res.destroy()));
    for (const s of [h.hub, h.cdn]) {
      s.on('connection', (sock) => {
        h.sockets.add(sock);
        sock.on('close', () => h.sockets.delete(sock));
      });
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    }
    h.url = `http://127.0.0.1:${(h.hub.address() as { port: number }).port}`;
    // Another origin (localhost, not 127.0.0.1): credentials must never go there.
    h.cdnUrl = `http://localhost:${(h.cdn.address() as { port: number }).port}`;
    return h;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all([this.hub, this.cdn].map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  /** Adds a commit to `branch` (default main) of a repo; returns its sha. */
  async commit(id: string, files: HubFileSpec[], opts: { branch?: string; type?: 'model' | 'dataset'; license?: string; token?: string; lastModified?: string } = {}): Promise<string> {
    const key = `${opts.type ?? 'model'}:${id}`;
    let repo = this.repos.get(key);
    if (!repo) this.repos.set(key, (repo = { branches: new Map(), commits: new Map(), token: opts.token }));
    const stored = new Map<string, StoredFile>();
    for (const f of files) {
      const blob = Buffer.isBuffer(f.content) ? bytesBlob(f.content) : f.content;
      const sha256 = blob.digest.slice(7);
      const lfs = f.lfs ?? (blob.size > 1024 * 1024 || isWeight(f.path));
      let oid: string;
      if (lfs) oid = gitBlobOid(lfsPointer(sha256, blob.size));
      else {
        const chunks: Buffer[] = [];
        for await (const c of blob.open(0)) chunks.push(c as Buffer);
        oid = gitBlobOid(Buffer.concat(chunks));
      }
      stored.set(f.path, { path: f.path, blob, lfs, oid, sha256 });
    }
    const sha = randomBytes(20).toString('hex');
    repo.commits.set(sha, { sha, files: stored, lastModified: opts.lastModified ?? '2026-03-01T12:00:00.000Z', license: opts.license });
    repo.branches.set(opts.branch ?? 'main', sha);
    return sha;
  }

  fault(host: 'hub' | 'cdn', path: RegExp, fault: Fault, opts: { method?: string; times?: number } = {}): void {
    this.faults.push({ host, method: opts.method, path, fault, remaining: opts.times ?? Infinity });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  count(host: 'hub' | 'cdn', method: string, path: RegExp): number {
    return this.requests.filter((r) => r.host === host && r.method === method && path.test(r.path)).length;
  }

  private takeFaults(host: 'hub' | 'cdn', method: string, path: string): Fault[] {
    const rules = this.faults.filter((f) => f.host === host && f.remaining > 0 && (!f.method || f.method === method) && f.path.test(path));
    for (const r of rules) r.remaining--;
    return rules.map((r) => r.fault);
  }

  /** Applies status, drop, hang and delay faults; true when the request is answered. */
  private async preFaults(faults: Fault[], req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const f = faults[0];
    if (f?.kind === 'hang') return true;
    if (f?.kind === 'drop') {
      req.socket.resetAndDestroy();
      return true;
    }
    if (f?.kind === 'delay') await new Promise((r) => setTimeout(r, f.ms));
    if (f?.kind === 'status') {
      this.error(res, f.status, undefined, 'injected fault', f.headers);
      return true;
    }
    return false;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    this.requests.push({ host: 'hub', method, path: url.pathname, authorization: req.headers.authorization });
    const faults = this.takeFaults('hub', method, url.pathname);
    if (await this.preFaults(faults, req, res)) return;
    const segs = url.pathname.split('/').slice(1).map(decodeURIComponent);
    if (segs[0] === 'api') {
      const type = segs[1] === 'datasets' ? 'dataset' : 'model';
      const t = segs.indexOf('tree');
      if (t > 0) return this.tree(req, res, type, segs.slice(2, t).join('/'), segs[t + 1]!);
      const i = segs.indexOf('revision');
      const id = (i > 0 ? segs.slice(2, i) : segs.slice(2)).join('/');
      return this.info(req, res, type, id, i > 0 ? segs[i + 1]! : 'main');
    }
    const type = segs[0] === 'datasets' ? 'dataset' : 'model';
    const rest = type === 'dataset' ? segs.slice(1) : segs;
    const r = rest.indexOf('resolve');
    if (r < 1) return this.error(res, 404, undefined, 'no route');
    return this.resolve(req, res, method, type, rest.slice(0, r).join('/'), rest[r + 1]!, rest.slice(r + 2).join('/'), faults);
  }

  /** The repo and commit a request names, or an error answered the way the Hub answers it. */
  private lookup(req: IncomingMessage, res: ServerResponse, type: string, id: string, rev: string): Commit | undefined {
    const repo = this.repos.get(`${type}:${id}`);
    if (!repo || (repo.token && req.headers.authorization !== `Bearer ${repo.token}`)) {
      // The Hub's answer to a missing or private repository.
      this.error(res, 401, 'RepoNotFound', 'Repository not found');
      return undefined;
    }
    const sha = repo.branches.get(rev) ?? (repo.commits.has(rev) ? rev : undefined);
    if (!sha) {
      this.error(res, 404, 'RevisionNotFound', 'Invalid rev id');
      return undefined;
    }
    return repo.commits.get(sha)!;
  }

  private info(req: IncomingMessage, res: ServerResponse, type: string, id: string, rev: string): void {
    const c = this.lookup(req, res, type, id, rev);
    if (!c) return;
    const siblings = [...c.files.values()].map((f) => ({
      rfilename: f.path,
      size: f.blob.size,
      blobId: f.oid,
      ...(f.lfs ? { lfs: { sha256: f.sha256, size: f.blob.size, pointerSize: lfsPointer(f.sha256, f.blob.size).length } } : {}),
    }));
    const body = JSON.stringify({ _id: 'x', id, sha: c.sha, lastModified: c.lastModified, private: false, gated: false, ...(c.license ? { cardData: { license: c.license } } : {}), siblings });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  /** `list_repo_tree(recursive=True)`, which snapshot_download asks for: files only (the test repos are flat or nearly). */
  private tree(req: IncomingMessage, res: ServerResponse, type: string, id: string, rev: string): void {
    const c = this.lookup(req, res, type, id, rev);
    if (!c) return;
    const entries = [...c.files.values()].map((f) => ({
      type: 'file',
      oid: f.oid,
      size: f.blob.size,
      path: f.path,
      ...(f.lfs ? { lfs: { oid: f.sha256, size: f.blob.size, pointerSize: lfsPointer(f.sha256, f.blob.size).length } } : {}),
    }));
    const body = JSON.stringify(entries);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  private async resolve(req: IncomingMessage, res: ServerResponse, method: string, type: string, id: string, rev: string, path: string, faults: Fault[]): Promise<void> {
    const c = this.lookup(req, res, type, id, rev);
    if (!c) return;
    const f = c.files.get(path);
    if (!f) return this.error(res, 404, 'EntryNotFound', 'Entry not found', { 'x-repo-commit': c.sha });
    if (f.lfs) {
      // A signed CDN URL: what must never see the Hub token.
      res.writeHead(302, {
        location: `${this.cdnUrl}/lfs/${f.sha256}?X-Amz-Signature=${randomBytes(8).toString('hex')}`,
        'x-repo-commit': c.sha,
        'x-linked-etag': `"${f.sha256}"`,
        'x-linked-size': String(f.blob.size),
        etag: `"${f.oid}"`,
        'content-length': 0,
      });
      return void res.end();
    }
    res.writeHead(200, { 'x-repo-commit': c.sha, etag: `"${f.oid}"`, 'content-length': f.blob.size, 'content-type': 'application/octet-stream' });
    if (method === 'HEAD') return void res.end();
    await sendBlobWithFaults(res, f.blob, 0, faults);
  }

  private async handleCdn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.cdnUrl);
    const method = req.method ?? 'GET';
    this.requests.push({ host: 'cdn', method, path: url.pathname, authorization: req.headers.authorization });
    const faults = this.takeFaults('cdn', method, url.pathname);
    if (await this.preFaults(faults, req, res)) return;
    const sha = /^\/lfs\/([0-9a-f]{64})$/.exec(url.pathname)?.[1];
    const file = sha && [...this.repos.values()].flatMap((r) => [...r.commits.values()]).flatMap((c) => [...c.files.values()]).find((f) => f.sha256 === sha);
    if (!file) return this.error(res, 404, undefined, 'NoSuchKey');
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    res.writeHead(range ? 206 : 200, {
      'content-type': 'application/octet-stream',
      'content-length': file.blob.size - start,
      ...(range ? { 'content-range': `bytes ${start}-${file.blob.size - 1}/${file.blob.size}` } : {}),
    });
    if (method === 'HEAD') return void res.end();
    await sendBlobWithFaults(res, file.blob, start, faults);
  }

  private error(res: ServerResponse, status: number, code: string | undefined, message: string, headers: Record<string, string> = {}): void {
    const body = JSON.stringify({ error: message });
    res.writeHead(status, { ...headers, ...(code ? { 'x-error-code': code } : {}), 'x-error-message': message, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}
