import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { digestOf, type Digest } from '../../src/oci/index.js';

/**
 * A small registry upstream that misbehaves on request: a real HTTP server on
 * 127.0.0.1 serving manifests and blobs from memory (or generated on the fly),
 * with an optional bearer-token flow and injectable faults. It records every
 * request so tests can count upstream GETs and inspect what was sent.
 */
export interface BlobSource {
  readonly digest: Digest;
  readonly size: number;
  open(start: number): Readable;
}

export const bytesBlob = (bytes: Buffer): BlobSource => ({
  digest: digestOf(bytes),
  size: bytes.length,
  open: (start) => Readable.from([bytes.subarray(start)]),
});

const BLOCK = 1024 * 1024;

/**
 * A large deterministic blob produced block by block (never held in memory): a
 * seeded 1 MiB pattern whose first 8 bytes carry the block index.
 */
export async function generatedBlob(size: number, seed = 'customs'): Promise<BlobSource> {
  const pattern = Buffer.alloc(BLOCK);
  let h = createHash('sha256').update(seed).digest();
  for (let o = 0; o < BLOCK; o += 32) {
    h.copy(pattern, o);
    h = createHash('sha256').update(h).digest();
  }
  const block = (i: number): Buffer => {
    const b = Buffer.from(pattern);
    b.writeBigUInt64BE(BigInt(i), 0);
    return b;
  };
  const open = (start: number): Readable => {
    let pos = start;
    return new Readable({
      highWaterMark: BLOCK,
      read() {
        if (pos >= size) return void this.push(null);
        const i = Math.floor(pos / BLOCK);
        const b = block(i).subarray(pos - i * BLOCK, Math.min(BLOCK, size - i * BLOCK));
        pos += b.length;
        this.push(b);
      },
    });
  };
  const hash = createHash('sha256');
  for await (const chunk of open(0)) hash.update(chunk as Buffer);
  return { digest: `sha256:${hash.digest('hex')}`, size, open };
}

export type Fault =
  /** Answers `status` (with extra `headers`, e.g. Retry-After) and a spec error body. */
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  /** Resets the connection before any response (ECONNRESET at the client). */
  | { kind: 'drop' }
  /** Accepts the request and never answers. */
  | { kind: 'hang' }
  /** Answers normally after a pause before the headers. */
  | { kind: 'delay'; ms: number }
  /** Sends headers and `afterBytes` of the body, then resets the connection. */
  | { kind: 'reset'; afterBytes: number }
  /** Sends the body `bytes` at a time every `everyMs`. */
  | { kind: 'trickle'; bytes: number; everyMs: number }
  /** Sends a body of the right length whose bytes differ (one flipped byte). */
  | { kind: 'wrong-bytes' }
  /** Sends `afterBytes`, then waits for `until` before sending the rest. */
  | { kind: 'stall'; afterBytes: number; until: Promise<void> };

interface FaultRule {
  readonly method: string | undefined;
  readonly path: RegExp;
  readonly fault: Fault;
  remaining: number;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  readonly accept?: string | undefined;
}

export interface FaultUpstreamOptions {
  /** Require bearer tokens from /token (docker token flow); `basic` = credentials the token endpoint demands. */
  readonly auth?: {
    readonly expiresIn?: number;
    readonly basic?: { username: string; password: string };
    /**
     * Docker Hub's way with repositories that do not exist: the token endpoint grants
     * a token anyway (without their scope), and the registry then answers 401 with
     * `error="insufficient_scope"`.
     */
    readonly hubStyleMissing?: boolean;
  };
  /** Serve the referrers API (distribution 2.8 does not: 404). */
  readonly referrersApi?: boolean;
  /** Answer blob GETs with a 307 to a second server (another origin), like a CDN. */
  readonly blobRedirect?: boolean;
  /** Serve HTTPS with this key and certificate (PEM), as https://localhost:<port>. */
  readonly tls?: { readonly key: string; readonly cert: string };
}

interface StoredManifest {
  readonly bytes: Buffer;
  readonly mediaType: string;
  readonly digest: Digest;
  readonly subject: Digest | undefined;
  readonly artifactType: string | undefined;
}

export class FaultUpstream {
  readonly requests: RecordedRequest[] = [];
  readonly tokenRequests: { scopes: string[]; service: string | null; authorization: string | undefined }[] = [];
  readonly cdnRequests: RecordedRequest[] = [];
  private readonly manifests = new Map<string, Map<string, StoredManifest>>(); // repo -> ref -> manifest
  private readonly blobs = new Map<string, Map<Digest, BlobSource>>();
  private readonly faults: FaultRule[] = [];
  private readonly tokens = new Map<string, { scopes: string[]; expiresAt: number }>();
  private readonly sockets = new Set<Socket>();
  private server!: Server;
  private cdn: Server | undefined;
  url = '';
  private cdnUrl = '';

  private constructor(readonly opts: FaultUpstreamOptions) {}

  static async start(opts: FaultUpstreamOptions = {}, port = 0): Promise<FaultUpstream> {
    const u = new FaultUpstream(opts);
    await u.listen(port);
    return u;
  }

  private async listen(port: number): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res).catch(() => res.destroy());
    this.server = this.opts.tls ? createHttpsServer({ key: this.opts.tls.key, cert: this.opts.tls.cert }, handler) : createServer(handler);
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', r));
    const bound = (this.server.address() as { port: number }).port;
    this.url = this.opts.tls ? `https://localhost:${bound}` : `http://127.0.0.1:${bound}`;
    if (this.opts.blobRedirect && !this.cdn) {
      this.cdn = createServer((req, res) => void this.handleCdn(req, res).catch(() => res.destroy()));
      this.cdn.on('connection', (s) => {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
      });
      await new Promise<void>((r) => this.cdn!.listen(0, '127.0.0.1', r));
      this.cdnUrl = `http://127.0.0.1:${(this.cdn.address() as { port: number }).port}`;
    }
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  /** Stops answering (connections are cut); `restart` brings it back on the same port. */
  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    if (this.cdn) await new Promise<void>((r) => this.cdn!.close(() => r()));
    this.cdn = undefined;
  }

  async restart(): Promise<void> {
    await this.listen(this.port);
  }

  // --- content ---

  addBlob(repo: string, blob: BlobSource | Buffer): BlobSource {
    const src = Buffer.isBuffer(blob) ? bytesBlob(blob) : blob;
    if (!this.blobs.has(repo)) this.blobs.set(repo, new Map());
    this.blobs.get(repo)!.set(src.digest, src);
    return src;
  }

  /** Stores manifest bytes under its digest and the given tags; returns the digest. */
  addManifest(repo: string, bytes: Buffer, mediaType: string, tags: string[] = []): Digest {
    const json = JSON.parse(bytes.toString('utf8')) as { subject?: { digest: Digest }; artifactType?: string; config?: { mediaType: string } };
    const m: StoredManifest = { bytes, mediaType, digest: digestOf(bytes), subject: json.subject?.digest, artifactType: json.artifactType ?? json.config?.mediaType };
    if (!this.manifests.has(repo)) this.manifests.set(repo, new Map());
    const refs = this.manifests.get(repo)!;
    refs.set(m.digest, m);
    for (const t of tags) refs.set(t, m);
    return m.digest;
  }

  /** An OCI image manifest over the given layers (and a small config); blobs and manifest are stored. */
  addImage(repo: string, tags: string[], layers: (BlobSource | Buffer)[], extra: { subject?: { digest: Digest; size: number; mediaType: string }; artifactType?: string } = {}): { digest: Digest; bytes: Buffer; layers: BlobSource[] } {
    const config = this.addBlob(repo, Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed: randomBytes(4).toString('hex') })));
    const ls = layers.map((l) => this.addBlob(repo, l));
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      ...(extra.artifactType ? { artifactType: extra.artifactType } : {}),
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
      layers: ls.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest, size: l.size })),
      ...(extra.subject ? { subject: extra.subject } : {}),
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    return { digest: this.addManifest(repo, bytes, manifest.mediaType, tags), bytes, layers: ls };
  }

  /** Injects a fault for requests matching `path` (and `method`), `times` times (default: until cleared). */
  fault(path: RegExp, fault: Fault, opts: { method?: string; times?: number } = {}): void {
    this.faults.push({ method: opts.method, path, fault, remaining: opts.times ?? Infinity });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  count(method: string, path: RegExp): number {
    return this.requests.filter((r) => r.method === method && path.test(r.path)).length;
  }

  // --- serving ---

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    this.requests.push({ method, path: url.pathname, authorization: req.headers.authorization, accept: req.headers.accept });
    // Every matching rule applies (e.g. wrong bytes and a stall); the first decides status, hang or delay.
    const rules = this.faults.filter((f) => f.remaining > 0 && (!f.method || f.method === method) && f.path.test(url.pathname));
    for (const r of rules) r.remaining--;
    const faults = rules.map((r) => r.fault);
    const fault = faults[0];
    if (fault?.kind === 'hang') return;
    if (fault?.kind === 'drop') return void req.socket.resetAndDestroy();
    if (fault?.kind === 'delay') await new Promise((r) => setTimeout(r, fault.ms));
    if (fault?.kind === 'status') return this.error(res, fault.status, fault.status === 429 ? 'TOOMANYREQUESTS' : 'UNKNOWN', 'injected fault', fault.headers);
    if (url.pathname === '/token') return this.token(req, url, res);
    if (url.pathname === '/v2/' || url.pathname === '/v2') return this.authorize(req, res, undefined) ? void res.end('{}') : undefined;
    const m = /^\/v2\/(.+)\/(manifests|blobs|referrers)\/([^/]+)$/.exec(url.pathname);
    if (!m) return this.error(res, 404, 'NOT_FOUND', 'no route');
    const [, repo, kind, ref] = m as unknown as [string, string, string, string];
    if (!this.authorize(req, res, repo)) return;
    if (kind === 'manifests') {
      const man = this.manifests.get(repo)?.get(ref);
      if (!man) return this.error(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
      res.writeHead(200, { 'content-type': man.mediaType, 'docker-content-digest': man.digest, 'content-length': man.bytes.length });
      if (method === 'HEAD') return void res.end();
      return this.sendBody(res, bytesBlob(man.bytes), 0, faults);
    }
    if (kind === 'referrers') {
      if (!this.opts.referrersApi) return this.error(res, 404, 'NOT_FOUND', '404 page not found');
      const manifests = [...new Set(this.manifests.get(repo)?.values() ?? [])]
        .filter((x) => x.subject === ref)
        .map((x) => ({ mediaType: x.mediaType, digest: x.digest, size: x.bytes.length, ...(x.artifactType ? { artifactType: x.artifactType } : {}) }));
      const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json', 'content-length': body.length });
      return void res.end(body);
    }
    const blob = this.blobs.get(repo)?.get(ref as Digest);
    if (!blob) return this.error(res, 404, 'BLOB_UNKNOWN', 'blob unknown');
    if (this.opts.blobRedirect && method === 'GET') {
      res.writeHead(307, { location: `${this.cdnUrl}/cdn/${repo}/${ref}` });
      return void res.end();
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'docker-content-digest': blob.digest, 'content-length': blob.size });
    if (method === 'HEAD') return void res.end();
    return this.sendBody(res, blob, 0, faults);
  }

  private async handleCdn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.cdnUrl);
    this.cdnRequests.push({ method: req.method ?? 'GET', path: url.pathname, authorization: req.headers.authorization });
    const m = /^\/cdn\/(.+)\/([^/]+)$/.exec(url.pathname);
    const blob = m && this.blobs.get(m[1]!)?.get(m[2] as Digest);
    if (!blob) return this.error(res, 404, 'BLOB_UNKNOWN', 'blob unknown');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.size });
    await this.sendBody(res, blob, 0, []);
  }

  private sendBody(res: ServerResponse, blob: BlobSource, start: number, faults: Fault[]): Promise<void> {
    return sendBlobWithFaults(res, blob, start, faults);
  }

  private authorize(req: IncomingMessage, res: ServerResponse, repo: string | undefined): boolean {
    if (!this.opts.auth) return true;
    const scope = repo ? `repository:${repo}:pull` : undefined;
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const grant = token ? this.tokens.get(token) : undefined;
    if (grant && grant.expiresAt > Date.now() && (!scope || grant.scopes.includes(scope))) return true;
    // A valid token without the scope: distribution's token auth (and Docker Hub) say why.
    const insufficient = grant && grant.expiresAt > Date.now() ? ',error="insufficient_scope"' : '';
    res.writeHead(401, {
      'content-type': 'application/json',
      'www-authenticate': `Bearer realm="${this.url}/token",service="fault-upstream"${scope ? `,scope="${scope}"` : ''}${insufficient}`,
    });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
    return false;
  }

  private token(req: IncomingMessage, url: URL, res: ServerResponse): void {
    const scopes = url.searchParams.getAll('scope');
    this.tokenRequests.push({ scopes, service: url.searchParams.get('service'), authorization: req.headers.authorization });
    const basic = this.opts.auth?.basic;
    if (basic) {
      const want = `Basic ${Buffer.from(`${basic.username}:${basic.password}`).toString('base64')}`;
      if (req.headers.authorization !== want) return this.error(res, 401, 'UNAUTHORIZED', 'bad credentials');
    }
    const token = randomBytes(16).toString('hex');
    const expiresIn = this.opts.auth?.expiresIn ?? 300;
    const exists = (s: string) => {
      const repo = /^repository:(.+):pull$/.exec(s)?.[1];
      return repo !== undefined && (this.manifests.has(repo) || this.blobs.has(repo));
    };
    // Docker Hub grants a token for any name, without access to a repository it does not have.
    const granted = this.opts.auth?.hubStyleMissing ? scopes.filter(exists) : scopes;
    this.tokens.set(token, { scopes: granted, expiresAt: Date.now() + expiresIn * 1000 });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, expires_in: expiresIn }));
  }

  private error(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
    const body = JSON.stringify({ errors: [{ code, message }] });
    res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}

/** Sends `blob` from `start`, applying the body faults (wrong bytes, reset, trickle, stall); the other Hub-like test servers use it too. */
export async function sendBlobWithFaults(res: ServerResponse, blob: BlobSource, start: number, faults: readonly Fault[]): Promise<void> {
  const src = blob.open(start);
  let sent = 0;
  let flipped = false;
  const wrong = faults.some((f) => f.kind === 'wrong-bytes');
  const reset = faults.find((f) => f.kind === 'reset');
  const trickle = faults.find((f) => f.kind === 'trickle');
  const stall = faults.find((f) => f.kind === 'stall');
  for await (const c of src) {
    let chunk = c as Buffer;
    if (wrong && !flipped && blob.size > 1) {
      chunk = flip(chunk);
      flipped = true;
    }
    if (reset && sent + chunk.length > reset.afterBytes) {
      const part = chunk.subarray(0, reset.afterBytes - sent);
      await new Promise<void>((r) => res.write(part, () => r()));
      src.destroy();
      res.socket?.resetAndDestroy();
      return;
    }
    if (stall && sent <= stall.afterBytes && sent + chunk.length > stall.afterBytes) {
      const cut = stall.afterBytes - sent;
      await new Promise<void>((r) => res.write(chunk.subarray(0, cut), () => r()));
      await stall.until;
      if (res.destroyed) return void src.destroy();
      res.write(chunk.subarray(cut));
    } else if (trickle) {
      for (let o = 0; o < chunk.length; o += trickle.bytes) {
        if (res.destroyed) return void src.destroy();
        res.write(chunk.subarray(o, o + trickle.bytes));
        await new Promise((r) => setTimeout(r, trickle.everyMs));
      }
    } else if (!res.write(chunk)) {
      await new Promise<void>((r) => {
        const done = (): void => {
          res.off('drain', done).off('close', done);
          r();
        };
        res.on('drain', done).on('close', done);
      });
      if (res.destroyed) return void src.destroy();
    }
    sent += chunk.length;
  }
  res.end();
}

function flip(b: Buffer): Buffer {
  const c = Buffer.from(b);
  c[c.length - 1] = c[c.length - 1]! ^ 0xff;
  return c;
}
