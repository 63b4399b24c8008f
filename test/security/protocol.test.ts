import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startArena, type Arena } from './helpers.js';

/**
 * Threat T6 of docs/security.md: protocol looseness. A token holder must not be able to make the server
 * read a body it will refuse, hold connections open with bodies that never arrive, open unbounded
 * uploads, or present a token with bytes appended. Raw sockets: the attacks are about what is (not) sent.
 */
const MAX = 1024 * 1024;

/** Writes `head` (and `body`), then collects what the server sends until it closes or `waitMs` passes. */
function exchange(port: number, head: string, body: Buffer | undefined, waitMs: number): Promise<{ text: string; closed: boolean; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    const sock: Socket = connect(port, '127.0.0.1', () => {
      sock.write(head);
      if (body) sock.write(body);
    });
    const done = (closed: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed, ms: Date.now() - started });
    };
    const timer = setTimeout(() => done(false), waitMs);
    sock.on('data', (c) => chunks.push(c));
    sock.on('close', () => done(true));
    sock.on('error', () => done(true));
  });
}

const status = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);

describe('T6: protocol hardening', () => {
  let a: Arena;
  let port: number;
  const bearer = () => `Authorization: Bearer ${a.token('attacker')}\r\n`;

  beforeAll(async () => {
    a = await startArena({ config: { limits: { maxBlobBytes: MAX, bodyIdleSeconds: 1, maxConcurrentUploadsPerPrincipal: 2 } } });
    port = Number(new URL(a.srv.url).port);
  });
  afterAll(async () => {
    await a?.srv.close();
  });

  it('a Content-Length over the limit gets 413 before a byte of the body is sent, and the connection is not reused', async () => {
    const digest = `sha256:${'0'.repeat(64)}`;
    const head = `POST /v2/team/big/blobs/uploads/?digest=${digest} HTTP/1.1\r\nHost: x\r\n${bearer()}Content-Type: application/octet-stream\r\nContent-Length: ${MAX + 1}\r\n\r\n`;
    const r = await exchange(port, head, undefined, 10_000);
    expect(status(r.text)).toBe(413);
    expect(r.text).toMatch(/SIZE_INVALID/);
    expect(r.text.toLowerCase()).toMatch(/connection: close/);
    expect(r.closed).toBe(true);
  });

  it('with Expect: 100-continue the refusal comes instead of 100 Continue: the client never sends the body', async () => {
    const head = `PUT /v2/team/big/manifests/v1 HTTP/1.1\r\nHost: x\r\n${bearer()}Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: ${5 * MAX}\r\nExpect: 100-continue\r\n\r\n`;
    const r = await exchange(port, head, undefined, 10_000);
    expect(r.text).not.toMatch(/100 Continue/);
    expect(status(r.text)).toBe(413);
  });

  it('a chunk that would take a session past the limit is refused before it is read', async () => {
    const start = await fetch(`${a.srv.url}/v2/team/big/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${a.token('attacker')}` } });
    expect(start.status).toBe(202);
    const location = start.headers.get('location')!;
    const head = `PATCH ${location} HTTP/1.1\r\nHost: x\r\n${bearer()}Content-Type: application/octet-stream\r\nContent-Range: 0-${MAX}\r\nContent-Length: ${MAX + 1}\r\n\r\n`;
    const r = await exchange(port, head, Buffer.alloc(100), 10_000);
    expect(status(r.text)).toBe(413);
    const st = await fetch(`${a.srv.url}${location}`, { headers: { authorization: `Bearer ${a.token('attacker')}` } });
    expect(st.headers.get('range')).toBe('0-0'); // nothing of the refused chunk was written
  });

  it('a body that stops arriving is aborted after limits.bodyIdleSeconds; the session keeps its bytes and resumes', async () => {
    const start = await fetch(`${a.srv.url}/v2/team/idle/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${a.token('attacker')}` } });
    const location = start.headers.get('location')!;
    const data = Buffer.from('0123456789'.repeat(10));
    const head = `PATCH ${location} HTTP/1.1\r\nHost: x\r\n${bearer()}Content-Type: application/octet-stream\r\nContent-Length: ${data.length}\r\n\r\n`;
    const r = await exchange(port, head, data.subarray(0, 10), 15_000);
    expect(r.closed).toBe(true); // the server hung up; without the idle timeout the exchange runs into its 15 s wait
    const st = await fetch(`${a.srv.url}${location}`, { headers: { authorization: `Bearer ${a.token('attacker')}` } });
    expect(st.status).toBe(204);
    expect(st.headers.get('range')).toBe('0-9');
    const rest = await fetch(`${a.srv.url}${location}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${a.token('attacker')}`, 'content-type': 'application/octet-stream', 'content-range': `10-${data.length - 1}` },
      body: data.subarray(10),
    });
    expect(rest.status).toBe(202);
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    const done = await fetch(`${a.srv.url}${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, { method: 'PUT', headers: { authorization: `Bearer ${a.token('attacker')}` } });
    expect(done.status).toBe(201);
  });

  it('tokens match their issued form exactly: nothing appended, prepended or altered', async () => {
    const basic = Buffer.from(`x:${a.token('reader')}`).toString('base64');
    const issued = ((await (await fetch(`${a.srv.url}/auth/token?service=customs`, { headers: { authorization: `Basic ${basic}` } })).json()) as { token: string }).token;
    const probe = async (token: string) => (await fetch(`${a.srv.url}/v2/_catalog`, { headers: { authorization: `Bearer ${token}` } })).status;
    expect(await probe(issued)).toBe(200);
    expect(await probe(a.token('reader'))).toBe(200);
    for (const bad of [`${issued}.AAAA`, `${issued}A`, `x${issued}`, `${issued}=`, issued.replace(/\.(.)/, (_m, c: string) => `.${c === 'A' ? 'B' : 'A'}`), `${a.token('reader')}.AAAA`, `${a.token('reader')}A`]) {
      expect({ bad: bad.slice(-12), status: await probe(bad) }).toEqual({ bad: bad.slice(-12), status: 401 });
    }
  });

  it('a principal gets at most limits.maxConcurrentUploadsPerPrincipal uploads in progress; 429 with Retry-After above', async () => {
    const open: Socket[] = [];
    const sessions: string[] = [];
    for (let i = 0; i < 3; i++) {
      const s = await fetch(`${a.srv.url}/v2/team/cap/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${a.token('attacker')}` } });
      sessions.push(s.headers.get('location')!);
    }
    // Two uploads that trickle (a byte every 300 ms keeps them under the idle timeout).
    for (const loc of sessions.slice(0, 2)) {
      const sock = connect(port, '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      sock.write(`PATCH ${loc} HTTP/1.1\r\nHost: x\r\n${bearer()}Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\nx`);
      open.push(sock);
    }
    const trickle = setInterval(() => open.forEach((s) => s.write('x')), 300);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const third = await fetch(`${a.srv.url}${sessions[2]}`, { method: 'PATCH', headers: { authorization: `Bearer ${a.token('attacker')}`, 'content-type': 'application/octet-stream' }, body: Buffer.from('y') });
      expect(third.status).toBe(429);
      expect(third.headers.get('retry-after')).toBe('1');
      expect(((await third.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('TOOMANYREQUESTS');
      // Another principal is not affected.
      const other = await fetch(`${a.srv.url}/v2/models/fraud/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${a.token('ci')}` } });
      const otherPatch = await fetch(`${a.srv.url}${other.headers.get('location')}`, { method: 'PATCH', headers: { authorization: `Bearer ${a.token('ci')}`, 'content-type': 'application/octet-stream' }, body: Buffer.from('z') });
      expect(otherPatch.status).toBe(202);
    } finally {
      clearInterval(trickle);
      open.forEach((s) => s.destroy());
    }
    await new Promise((r) => setTimeout(r, 200));
    const again = await fetch(`${a.srv.url}${sessions[2]}`, { method: 'PATCH', headers: { authorization: `Bearer ${a.token('attacker')}`, 'content-type': 'application/octet-stream' }, body: Buffer.from('y') });
    expect(again.status).toBe(202);
  });
});
