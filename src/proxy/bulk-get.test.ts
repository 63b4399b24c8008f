import { createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { isRegistryError } from '../oci/index.js';
import type { Memory } from './body-sink.js';
import { BulkPool, BulkUnsupported, bulkGet, parseHead, type BulkBody } from './bulk-get.js';
import { createTransport } from './http-transport.js';

/** A raw TCP server: each connection gets the request head, then `answer` writes whatever bytes it likes. */
async function rawServer(answer: (socket: Socket, requestHead: string) => unknown): Promise<{ url: string; server: Server; heads: string[] }> {
  const heads: string[] = [];
  const server = createServer((socket) => {
    let buf = '';
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.slice(0, end);
      buf = '';
      heads.push(head);
      void answer(socket, head);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server, heads };
}

/**
 * Takes a body through a sink that keeps every view it is handed (retaining its slab) until the end,
 * then checks them: a slab reused while still held would show as wrong bytes.
 */
async function sinkAll(body: BulkBody): Promise<{ bytes: Buffer; digest: string; pieces: number[] }> {
  const held: { view: Buffer; memory: Memory }[] = [];
  try {
    await body.pipeToSink(
      {
        data: (view, memory) => {
          memory.retain();
          held.push({ view, memory });
          return true;
        },
      },
      () => undefined,
    );
    const bytes = Buffer.concat(held.map((h) => h.view));
    return { bytes, digest: sha(bytes), pieces: held.map((h) => h.view.length) };
  } finally {
    for (const h of held) h.memory.release();
  }
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('bulkGet', () => {
  const servers: Server[] = [];
  const serve = async (answer: Parameters<typeof rawServer>[0]) => {
    const s = await rawServer(answer);
    servers.push(s.server);
    return s;
  };
  afterAll(() => {
    for (const s of servers) s.close();
  });

  /** GETs `url` and takes the body through a sink: its bytes, digest and the sizes handed over. */
  async function copy(url: string, opts: { idleMs?: number; signal?: AbortSignal } = {}) {
    const res = await bulkGet(new URL(url), { headers: { 'user-agent': 't' }, signal: opts.signal ?? new AbortController().signal, idleMs: opts.idleMs });
    return { res, ...(await sinkAll(res.body)) };
  }

  it('copies a Content-Length body of many slabs to a file, hashed, the head and body split across reads', async () => {
    const body = randomBytes(5 * 1024 * 1024 + 123);
    const { url, heads } = await serve(async (s) => {
      // The head in pieces, the first body bytes in the same packet as its end.
      s.write('HTTP/1.1 200 OK\r\nContent-Le');
      await sleep(10);
      s.write(`ngth: ${body.length}\r\nX-Multi: a\r\nX-Multi: b\r\n\r\n`);
      s.write(body.subarray(0, 1000));
      await sleep(10);
      s.end(body.subarray(1000));
    });
    const { res, bytes, digest, pieces } = await copy(`${url}/v2/x/blobs/sha256:abc?q=1`);
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe(String(body.length));
    expect(res.headersDistinct['x-multi']).toEqual(['a', 'b']);
    expect(res.headers['x-multi']).toBe('a, b');
    expect(bytes.equals(body)).toBe(true);
    expect(digest).toBe(sha(body));
    expect(pieces.reduce((a, b) => a + b, 0)).toBe(body.length);
    expect(heads[0]).toMatch(/^GET \/v2\/x\/blobs\/sha256:abc\?q=1 HTTP\/1\.1\r\n/);
    expect(heads[0]).toMatch(/\r\nuser-agent: t(\r\n|$)/);
  });

  it('copies a body that runs to the end of the connection (no Content-Length)', async () => {
    const body = randomBytes(300_000);
    const { url } = await serve((s) => {
      s.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n');
      s.end(body);
    });
    const { bytes, digest } = await copy(url);
    expect(bytes.equals(body)).toBe(true);
    expect(digest).toBe(sha(body));
  });

  it('skips an interim 100 response', async () => {
    const { url } = await serve((s) => s.end('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc'));
    const { res, bytes } = await copy(url);
    expect(res.status).toBe(200);
    expect(bytes.toString()).toBe('abc');
  });

  it('reads a small body (a redirect, an error) as a stream', async () => {
    const { url } = await serve((s) => s.end('HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"errors":[1]}\nEXTRA'));
    const res = await bulkGet(new URL(url), { headers: {}, signal: new AbortController().signal });
    expect(res.status).toBe(404);
    const chunks: Buffer[] = [];
    for await (const c of res.body) chunks.push(c as Buffer);
    // Bytes past Content-Length are not the body.
    expect(Buffer.concat(chunks).toString()).toBe('{"errors":[1]}\n');
  });

  it('fails mid-body when the connection closes before Content-Length bytes came, and reports no more than arrived', async () => {
    const { url } = await serve((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n');
      s.end(Buffer.alloc(5000, 1));
    });
    const e = await copy(url).catch((x: unknown) => x);
    expect(isRegistryError(e) && e.code).toBe('UPSTREAM_UNAVAILABLE');
    expect((e as Error).message).toMatch(/mid-blob/);
  });

  it('fails with the idle timeout when the upstream goes silent mid-body', async () => {
    const { url } = await serve((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n');
      s.write(Buffer.alloc(5000, 1));
    });
    const e = await copy(url, { idleMs: 200 }).catch((x: unknown) => x);
    expect((e as Error).message).toMatch(/silent for 200 ms/);
  });

  it('rejects with the abort reason before the head, and fails the copy after it', async () => {
    const silent = await serve(() => undefined);
    const ac = new AbortController();
    const pending = bulkGet(new URL(silent.url), { headers: {}, signal: ac.signal });
    ac.abort(new Error('caller gave up'));
    await expect(pending).rejects.toThrow('caller gave up');

    const { url } = await serve((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nxyz'));
    const ac2 = new AbortController();
    const res = await bulkGet(new URL(url), { headers: {}, signal: ac2.signal });
    const copying = sinkAll(res.body);
    ac2.abort(new Error('fill timed out'));
    await expect(copying).rejects.toThrow();
  });

  it('refuses a chunked response with BulkUnsupported; the transport then asks again with node:http', async () => {
    const { url, heads } = await serve((s) => s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'));
    await expect(bulkGet(new URL(url), { headers: {}, signal: new AbortController().signal })).rejects.toBeInstanceOf(BulkUnsupported);
    const transport = createTransport();
    const res = await transport.send(new URL(url), { method: 'GET', headers: {}, signal: new AbortController().signal, bulk: true });
    const chunks: Buffer[] = [];
    for await (const c of res.body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('abc');
    // One for the bare bulkGet above, then the transport's bulk try and its node:http retry.
    expect(heads.length).toBe(3);
    transport.close();
  });

  it('a malformed head or an oversized one is an upstream error, not a crash', async () => {
    const bad = await serve((s) => s.end('HTTP/1.1 200 OK\r\n folded: x\r\n\r\n'));
    await expect(bulkGet(new URL(bad.url), { headers: {}, signal: new AbortController().signal })).rejects.toThrow(/malformed HTTP header/);
    const huge = await serve((s) => s.end(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(40_000)}`));
    await expect(bulkGet(new URL(huge.url), { headers: {}, signal: new AbortController().signal })).rejects.toThrow(/head too large/);
    const notHttp = await serve((s) => s.end('SSH-2.0-OpenSSH\r\n\r\n'));
    await expect(bulkGet(new URL(notHttp.url), { headers: {}, signal: new AbortController().signal })).rejects.toThrow(/status line/);
  });

  it('a sink that asks for a pause gets nothing more until it resumes', async () => {
    const body = randomBytes(4 * 1024 * 1024);
    const { url } = await serve((s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      s.end(body);
    });
    const res = await bulkGet(new URL(url), { headers: {}, signal: new AbortController().signal });
    const parts: Buffer[] = [];
    let resume = (): void => undefined;
    let calls = 0;
    const done = res.body.pipeToSink({ data: (b) => (calls++, parts.push(Buffer.from(b)), false) }, (r) => (resume = r));
    await sleep(100);
    // Paused after each arrival: one call per resume.
    expect(calls).toBe(1);
    for (let i = 0; i < 1000 && Buffer.concat(parts).length < body.length; i++) {
      const before = calls;
      resume();
      await sleep(2);
      expect(calls - before).toBeLessThanOrEqual(1);
    }
    await done;
    expect(Buffer.concat(parts).equals(body)).toBe(true);
  });

  it('runs many copies at once without one overwriting another (slabs are pooled)', async () => {
    const bodies = Array.from({ length: 6 }, () => randomBytes(3 * 1024 * 1024 + 17));
    const { url } = await serve(async (s, head) => {
      const i = Number(/\/(\d+) HTTP/.exec(head)![1]);
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${bodies[i]!.length}\r\n\r\n`);
      for (let o = 0; o < bodies[i]!.length; o += 100_000) {
        if (!s.write(bodies[i]!.subarray(o, o + 100_000))) await new Promise((r) => s.once('drain', r));
      }
      s.end();
    });
    const results = await Promise.all(bodies.map((_, i) => copy(`${url}/${i}`)));
    results.forEach((r, i) => expect(r.digest).toBe(sha(bodies[i]!)));
  });
});

describe('BulkPool: keep-alive', () => {
  const body = randomBytes(2 * 1024 * 1024 + 9);

  /** node:http with keep-alive: /redirect answers 307 to /blob; ?close answers with Connection: close. */
  async function keepAliveServer(keepAliveMs = 5000) {
    let connections = 0;
    const server = createHttpServer((req, res) => {
      if (req.url === '/redirect') return res.writeHead(307, { location: '/blob', 'content-length': 2 }).end('no');
      const headers: Record<string, string | number> = { 'content-length': body.length };
      if (req.url?.includes('close')) headers.connection = 'close';
      res.writeHead(200, headers).end(body);
    });
    server.keepAliveTimeout = keepAliveMs;
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    return { url, server, connections: () => connections };
  }

  async function fetchInto(pool: BulkPool, url: string): Promise<string> {
    const res = await bulkGet(new URL(url), { headers: {}, signal: new AbortController().signal }, pool);
    if (res.status !== 200) {
      res.body.resume();
      await new Promise((r) => res.body.on('end', r));
      return `status ${res.status}`;
    }
    return (await sinkAll(res.body)).digest;
  }

  it('carries a redirect and the GETs after it on one connection', async () => {
    const srv = await keepAliveServer();
    const pool = new BulkPool();
    expect(await fetchInto(pool, `${srv.url}/redirect`)).toBe('status 307');
    expect(await fetchInto(pool, `${srv.url}/blob`)).toBe(sha(body));
    expect(await fetchInto(pool, `${srv.url}/blob`)).toBe(sha(body));
    expect(srv.connections()).toBe(1);
    pool.close();
    srv.server.close();
  });

  it('does not reuse a connection the server said it would close', async () => {
    const srv = await keepAliveServer();
    const pool = new BulkPool();
    expect(await fetchInto(pool, `${srv.url}/blob?close`)).toBe(sha(body));
    expect(await fetchInto(pool, `${srv.url}/blob`)).toBe(sha(body));
    expect(srv.connections()).toBe(2);
    pool.close();
    srv.server.close();
  });

  it('asks again on a new connection when the server closes the pooled one as the request arrives', async () => {
    // One response per connection, kept alive by its headers; a second request is met with a close, no answer
    // (the race a keep-alive client always runs: the server's idle timeout fires as the request goes out).
    let connections = 0;
    const server = createServer((socket) => {
      connections++;
      let requests = 0;
      socket.on('error', () => undefined);
      socket.on('data', () => {
        if (++requests > 1) return void socket.end();
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
        socket.write(body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/blob`;
    const pool = new BulkPool();
    for (let i = 0; i < 3; i++) expect(await fetchInto(pool, url)).toBe(sha(body));
    // The 2nd and 3rd GETs each found the pooled connection closed on them, and made a new one.
    expect(connections).toBe(3);
    pool.close();
    server.close();
  });
});

describe('parseHead', () => {
  it('takes the status, lower-cases names, joins repeats and reads the framing', () => {
    const h = parseHead('HTTP/1.1 307 Temporary Redirect\r\nLocation: https://cdn/x\r\nWWW-Authenticate: a\r\nWWW-Authenticate: b\r\nContent-Length: 0');
    expect(h.status).toBe(307);
    expect(h.headers.location).toBe('https://cdn/x');
    expect(h.headersDistinct['www-authenticate']).toEqual(['a', 'b']);
    expect(h.contentLength).toBe(0);
    expect(h.chunked).toBe(false);
    expect(parseHead('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked').chunked).toBe(true);
    expect(parseHead('HTTP/1.0 200').status).toBe(200);
  });

  it('refuses conflicting or malformed Content-Length (request smuggling territory)', () => {
    expect(() => parseHead('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6')).toThrow(/Content-Length/);
    expect(() => parseHead('HTTP/1.1 200 OK\r\nContent-Length: -1')).toThrow(/Content-Length/);
    expect(parseHead('HTTP/1.1 200 OK\r\nContent-Length: 5, 5').contentLength).toBe(5);
  });
});
