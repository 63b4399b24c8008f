import { request as httpRequest, Agent } from 'node:http';
import * as fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../src/oci/index.js';
import { logLines } from '../faults/consistency.js';
import { pushImage, type Image } from '../helpers/registry-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Property-based fuzzing of the HTTP API with fast-check: random repository names, references,
 * methods, headers, query strings, chunk ranges and manifest bodies with odd JSON (duplicate
 * keys, huge numbers, deep nesting, invalid UTF-8). Whatever arrives: never a 5xx, never a crash
 * (the server runs in this process), every refusal a JSON error body with one of the spec's
 * codes, matching its status; upload sessions agree with a model of what was accepted.
 *
 * CI runs a fixed seed. A longer run, before a release (docs/integrity.md, "Fuzzing"):
 *   CUSTOMS_FUZZ_SEED=random CUSTOMS_FUZZ_RUNS=20000 npx vitest run test/fuzz
 */
const SEED = process.env.CUSTOMS_FUZZ_SEED === 'random' ? undefined : Number(process.env.CUSTOMS_FUZZ_SEED ?? 20261219);
const RUNS = Number(process.env.CUSTOMS_FUZZ_RUNS ?? 200);
const opts = (runs: number): fc.Parameters<unknown> => ({ ...(SEED === undefined ? {} : { seed: SEED }), numRuns: runs, endOnFailure: true });

/** The distribution spec's error codes, and the statuses each may come with (its endpoint table; 416/413/405 as mapped by customs). */
const SPEC_CODES: Record<string, number[]> = {
  BLOB_UNKNOWN: [404],
  BLOB_UPLOAD_INVALID: [400, 416],
  BLOB_UPLOAD_UNKNOWN: [404],
  DIGEST_INVALID: [400],
  MANIFEST_BLOB_UNKNOWN: [400],
  MANIFEST_INVALID: [400],
  MANIFEST_UNKNOWN: [404],
  NAME_INVALID: [400],
  NAME_UNKNOWN: [404],
  SIZE_INVALID: [400, 413],
  UNAUTHORIZED: [401],
  DENIED: [403],
  UNSUPPORTED: [400, 405],
  TOOMANYREQUESTS: [429],
};

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });

/** A raw request (node:http: arbitrary methods, paths and headers, exact bytes). */
function send(base: string, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) }, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A refusal must be a spec error body whose code fits its status. */
function expectSpecRefusal(r: Reply, method: string, what: string): void {
  expect(r.status, what).toBeLessThan(500);
  if (r.status < 400 || method === 'HEAD') return;
  let code: string | undefined;
  try {
    code = (JSON.parse(r.body.toString()) as { errors?: { code?: string }[] }).errors?.[0]?.code;
  } catch {
    throw new Error(`${what}: ${r.status} with a body that is not JSON: ${r.body.toString().slice(0, 200)}`);
  }
  expect(Object.keys(SPEC_CODES), `${what}: code ${code}`).toContain(code);
  expect(SPEC_CODES[code!], `${what}: ${code} with ${r.status}`).toContain(r.status);
}

// --- arbitraries ---
const nameComponent = fc.oneof(
  fc.stringMatching(/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/).filter((s) => s.length > 0 && s.length < 40),
  fc.constantFrom('..', '.', '%2e%2e', 'A', 'a..b', '-a', 'a-', '_', 'ä', '%00', '%2F', 'x'.repeat(300), '', 'a b', 'a%20b', '~', '@', ':'),
  fc.string({ unit: 'grapheme-ascii', maxLength: 12 }).map((s) => encodeURIComponent(s)),
);
const repoName = fc.array(nameComponent, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/'));
const digestLike = fc.oneof(
  fc.uint8Array({ minLength: 0, maxLength: 64 }).map((b) => digestOf(Buffer.from(b))),
  fc.constantFrom('sha256:abc', 'sha512:' + 'a'.repeat(128), 'md5:' + 'a'.repeat(32), 'sha256:' + 'A'.repeat(64), 'sha256:' + 'a'.repeat(65), 'sha256', ':', 'sha256:%00', 'SHA256:' + 'a'.repeat(64), 'sha256+b64:abc='),
);
const tagLike = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,20}$/), fc.constantFrom('', '.', '-x', 'a'.repeat(129), 'v1%2F..', '%ff', 'latest?x'));
const reference = fc.oneof(tagLike, digestLike);
const route = fc.oneof(
  fc.tuple(repoName, reference).map(([n, r]) => `/v2/${n}/manifests/${r}`),
  fc.tuple(repoName, digestLike).map(([n, d]) => `/v2/${n}/blobs/${d}`),
  repoName.map((n) => `/v2/${n}/blobs/uploads/`),
  fc.tuple(repoName, fc.oneof(fc.uuid(), fc.string({ unit: 'grapheme-ascii', maxLength: 40 }).map(encodeURIComponent))).map(([n, id]) => `/v2/${n}/blobs/uploads/${id}`),
  repoName.map((n) => `/v2/${n}/tags/list`),
  fc.tuple(repoName, digestLike).map(([n, d]) => `/v2/${n}/referrers/${d}`),
  fc.constantFrom('/v2/', '/v2', '/v2/_catalog', '/v2//', '/v2/../admin/gc', '/v2/%2e%2e/x/tags/list', '/admin/gc', '/admin/audit', '/readyz', '/nope'),
  fc.webPath().map((p) => `/v2${p}`),
);
const queryValue = fc.oneof(fc.string({ unit: 'grapheme-ascii', maxLength: 30 }), fc.integer().map(String), digestLike, fc.constantFrom('-1', '1e309', '99999999999999999999', 'NaN', '0x10'));
const query = fc
  .array(fc.tuple(fc.constantFrom('n', 'last', 'digest', 'mount', 'from', 'artifactType', 'ns', 'x', ''), queryValue), { maxLength: 4 })
  .map((kv) => (kv.length ? `?${kv.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}` : ''));
const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,60}$/).map((s) => s.trim());
const headers = fc.record(
  {
    'content-type': fc.oneof(headerValue, fc.constantFrom('application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'application/json; charset=utf-8')),
    'content-range': fc.oneof(headerValue, fc.tuple(fc.integer({ min: -5, max: 1e6 }), fc.integer({ min: -5, max: 1e6 })).map(([a, b]) => `${a}-${b}`), fc.constant('bytes=0-10')),
    range: fc.oneof(headerValue, fc.tuple(fc.nat(5000), fc.nat(5000)).map(([a, b]) => `bytes=${a}-${b}`), fc.constantFrom('bytes=-5', 'bytes=5-', 'bytes=0-0,2-3', 'bytes=99999999999999999999-')),
    accept: fc.oneof(headerValue, fc.constant('application/vnd.oci.image.manifest.v1+json')),
    'x-request-id': headerValue,
  },
  { requiredKeys: [] },
);
const body = fc.option(fc.oneof(fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)), fc.json().map((j) => Buffer.from(j))), { nil: undefined });

// Manifests with odd JSON.
const descriptor = (d: string, size: number | string = 2) => `{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"${d}","size":${size}}`;
const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
const oddManifest = (empty: string) =>
  fc.oneof(
    fc.constantFrom(
      // duplicate keys
      `{"schemaVersion":2,"schemaVersion":2,"config":${descriptor(empty)},"layers":[]}`,
      `{"schemaVersion":2,"config":${descriptor('sha256:' + '0'.repeat(64))},"config":${descriptor(empty)},"layers":[]}`,
      `{"schemaVersion":2,"config":${descriptor(empty)},"layers":[],"layers":[${descriptor('sha256:' + '1'.repeat(64))}]}`,
      // huge and odd numbers
      `{"schemaVersion":2,"config":${descriptor(empty, '1e400')},"layers":[]}`,
      `{"schemaVersion":2,"config":${descriptor(empty, '18446744073709551617')},"layers":[]}`,
      `{"schemaVersion":2,"config":${descriptor(empty, '-0')},"layers":[]}`,
      `{"schemaVersion":2,"config":${descriptor(empty, '2.5')},"layers":[]}`,
      `{"schemaVersion":2e0,"config":${descriptor(empty)},"layers":[]}`,
      `{"schemaVersion":1e400,"config":${descriptor(empty)},"layers":[]}`,
      // deep nesting, in an unknown field and in annotations
      `{"schemaVersion":2,"config":${descriptor(empty)},"layers":[],"x":${deep(5000)}}`,
      `{"schemaVersion":2,"config":${descriptor(empty)},"layers":[],"x":${deep(200000)}}`,
      `{"schemaVersion":2,"config":${descriptor(empty)},"layers":[],"annotations":{"a":${deep(100)}}}`,
      // structure
      '[]',
      'null',
      '"manifest"',
      '{}',
      `{"schemaVersion":2,"config":${descriptor(empty)},"layers":{}}`,
      `{"schemaVersion":2,"config":${descriptor(empty)},"layers":[],"subject":{}}`,
      `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[${descriptor(empty)}]}`,
    ),
    // invalid UTF-8 and other bytes spliced into an otherwise valid manifest
    fc.tuple(fc.nat(80), fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([at, bytes]) => {
      const ok = Buffer.from(`{"schemaVersion":2,"config":${descriptor(empty)},"layers":[],"annotations":{"k":"value"}}`);
      const i = Math.min(at, ok.length);
      return Buffer.concat([ok.subarray(0, i), Buffer.from(bytes), ok.subarray(i)]).toString('latin1');
    }),
    fc.constantFrom('\ufeff{"schemaVersion":2}', `{"schemaVersion":2,"config":${descriptor(empty)},"layers":[]}garbage`, '{"schemaVersion":2,'),
  );

describe('fuzz: the HTTP API', () => {
  let server: TestServer;
  let image: Image;
  const logs = logLines();
  let auth: Record<string, string>;
  const EMPTY = digestOf('{}');

  beforeAll(async () => {
    server = await startTestServer({ logLevel: 'info', logDestination: logs.stream });
    auth = server.auth();
    image = await pushImage(server.url, 'fuzz/base', 'v1', [5000], auth);
    await fetch(`${server.url}/v2/fuzz/odd/blobs/uploads/?digest=${EMPTY}`, { method: 'POST', headers: { ...auth, 'content-length': '2' }, body: '{}' });
  });
  afterAll(async () => {
    agent.destroy();
    await server?.close();
  });

  it('answers any request without a 5xx, each refusal with a spec error code', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS'), route, query, headers, body, fc.boolean(), async (method, path, q, h, b, withAuth) => {
        const r = await send(server.url, method, path + q, { ...h, ...(withAuth ? auth : {}) }, method === 'GET' || method === 'HEAD' ? undefined : b);
        expectSpecRefusal(r, method, `${method} ${path}${q}`);
      }),
      opts(RUNS),
    );
  });

  it('stores manifests with odd JSON byte-exact, or refuses them with MANIFEST_INVALID and the like; never a 5xx', async () => {
    const okCodes = ['MANIFEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'DIGEST_INVALID', 'SIZE_INVALID', 'UNSUPPORTED', 'NAME_INVALID'];
    await fc.assert(
      fc.asyncProperty(oddManifest(EMPTY), fc.constantFrom('application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', ''), fc.boolean(), async (text, ct, byDigest) => {
        const bytes = Buffer.from(text, 'latin1');
        const ref = byDigest ? digestOf(bytes) : 'odd';
        const r = await send(server.url, 'PUT', `/v2/fuzz/odd/manifests/${ref}`, { ...auth, ...(ct ? { 'content-type': ct } : {}) }, bytes);
        expectSpecRefusal(r, 'PUT', `manifest ${text.slice(0, 80)}`);
        if (r.status === 201) {
          const got = await send(server.url, 'GET', `/v2/fuzz/odd/manifests/${digestOf(bytes)}`, { ...auth, accept: '*/*' });
          expect(got.status).toBe(200);
          expect(got.body.equals(bytes)).toBe(true);
        } else {
          const code = (JSON.parse(r.body.toString()) as { errors: { code: string }[] }).errors[0]!.code;
          expect(okCodes).toContain(code);
        }
      }),
      opts(Math.max(50, Math.floor(RUNS / 2))),
    );
  });

  it('keeps chunked upload sessions exactly as the accepted chunks say, whatever Content-Range arrives', async () => {
    const chunk = fc.record({
      bytes: fc.uint8Array({ minLength: 0, maxLength: 300 }).map((b) => Buffer.from(b)),
      range: fc.oneof(
        fc.constant('honest' as const),
        fc.constant('none' as const),
        fc.tuple(fc.integer({ min: -3, max: 2000 }), fc.integer({ min: -3, max: 2000 })).map(([a, z]) => `${a}-${z}`),
        fc.stringMatching(/^[\x20-\x7e]{0,20}$/),
      ),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(chunk, { minLength: 1, maxLength: 6 }), fc.boolean(), async (chunks, lie) => {
        const start = await send(server.url, 'POST', '/v2/fuzz/chunks/blobs/uploads/', auth);
        expect(start.status).toBe(202);
        const location = String(start.headers.location);
        let accepted = Buffer.alloc(0);
        for (const c of chunks) {
          const range = c.range === 'honest' ? `${accepted.length}-${accepted.length + c.bytes.length - 1}` : c.range === 'none' ? undefined : c.range;
          const r = await send(server.url, 'PATCH', location, { ...auth, ...(range !== undefined ? { 'content-range': range } : {}) }, c.bytes);
          expectSpecRefusal(r, 'PATCH', `PATCH ${range} (${c.bytes.length} bytes) at ${accepted.length}`);
          if (r.status === 202) accepted = Buffer.concat([accepted, c.bytes]);
          const status = await send(server.url, 'GET', location, auth);
          expect(status.status).toBe(204);
          // The session's Range is what the model accepted, byte for byte.
          expect(status.headers.range).toBe(`0-${Math.max(0, accepted.length - 1)}`);
        }
        const claimed = lie ? digestOf(Buffer.concat([accepted, Buffer.from('x')])) : digestOf(accepted);
        const done = await send(server.url, 'PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${claimed}`, auth);
        expectSpecRefusal(done, 'PUT', 'finish');
        expect(done.status).toBe(lie ? 400 : 201);
        if (!lie) {
          const got = await send(server.url, 'GET', `/v2/fuzz/chunks/blobs/${claimed}`, auth);
          expect(got.status).toBe(200);
          expect(got.body.equals(accepted)).toBe(true);
        } else await send(server.url, 'DELETE', location, auth);
      }),
      opts(Math.max(30, Math.floor(RUNS / 4))),
    );
  });

  it('serves blob ranges exactly, or refuses them with 416', async () => {
    const blob = image.blobs[1]!;
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.tuple(fc.nat(6000), fc.nat(6000)).map(([a, b]) => `bytes=${a}-${b}`), fc.nat(6000).map((a) => `bytes=${a}-`), fc.nat(6000).map((n) => `bytes=-${n}`), headerValue), async (range) => {
        const r = await send(server.url, 'GET', `/v2/fuzz/base/blobs/${blob.digest}`, { ...auth, range });
        expectSpecRefusal(r, 'GET', `Range: ${range}`);
        expect([200, 206, 416]).toContain(r.status);
        if (r.status === 200) expect(r.body.equals(blob.bytes)).toBe(true);
        if (r.status === 206) {
          const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(r.headers['content-range']));
          expect(m).not.toBeNull();
          expect(r.body.equals(blob.bytes.subarray(Number(m![1]), Number(m![2]) + 1))).toBe(true);
        }
      }),
      opts(Math.max(50, Math.floor(RUNS / 2))),
    );
  });

  it('is still up, and logged no internal error', async () => {
    expect((await fetch(`${server.url}/v2/`, { headers: auth })).status).toBe(200);
    expect((await fetch(`${server.url}/v2/fuzz/base/manifests/v1`, { headers: { ...auth, accept: 'application/vnd.oci.image.manifest.v1+json' } })).status).toBe(200);
    expect(logs.lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
  });
});
