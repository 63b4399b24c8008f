import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { Digest } from '../src/oci/index.js';
import { FaultUpstream, generatedBlob } from './helpers/fault-upstream.js';
import { startTestServer } from './helpers/server.js';
import { code, collect, digestRef, drain, faultProxy, opened, streamError, tagRef } from './proxy-harness.js';

/**
 * Pull-through when the upstream misbehaves the way real registries do: brief
 * resets and 502/503/504 (retried within the header timeout), loops on missing
 * tags (remembered for `notFoundTtl`), rate limits (429 passed on with
 * Retry-After) and Docker Hub's 401 insufficient_scope for repositories it does
 * not have. Each test says what the client gets and counts upstream requests.
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const FAST = { attempts: 3, baseMs: 1 };

const setup = (opts: Parameters<typeof faultProxy>[1] = {}, upstream: Record<string, unknown> = {}, extra = {}) => faultProxy(cleanups, opts, { retries: FAST, ...upstream }, extra);
const tag = tagRef;
const dig = digestRef;
const MANIFESTS = /\/manifests\//;
const BLOBS = /\/blobs\//;

describe('retries of idempotent upstream requests', () => {
  it('a reset before the headers and a 503 are retried: the client gets the manifest, each retry logged at warn', async () => {
    const { up, px } = await setup();
    const img = up.addImage('a', ['v1'], [Buffer.from('x')]);
    up.fault(MANIFESTS, { kind: 'drop' }, { method: 'HEAD', times: 1 });
    up.fault(MANIFESTS, { kind: 'status', status: 503 }, { method: 'GET', times: 1 });
    expect(await px.service.manifest('up/a', tag('v1'))).toMatchObject({ digest: img.digest, stale: false });
    expect(up.count('HEAD', MANIFESTS)).toBe(2);
    expect(up.count('GET', MANIFESTS)).toBe(2);
    const retries = px.logs.filter((l) => l.level === 'warn' && /retrying/.test(l.msg ?? ''));
    expect(retries.map((l) => [l.obj.upstream, l.obj.method, l.obj.attempt])).toEqual([
      ['up', 'HEAD', 1],
      ['up', 'GET', 1],
    ]);
    expect(String(retries[0]!.obj.reason)).toMatch(/ECONNRESET/);
    expect(String(retries[1]!.obj.reason)).toMatch(/503/);
  });

  it('502, 503 and 504 every time: UPSTREAM_UNAVAILABLE after `attempts` tries; a 500 and a 404 are asked once', async () => {
    const { up, px } = await setup({}, { notFoundTtl: 0 });
    const img = up.addImage('a', ['v1'], [Buffer.from('x')]);
    for (const status of [502, 503, 504]) {
      up.clearFaults();
      up.fault(MANIFESTS, { kind: 'status', status });
      const before = up.count('GET', MANIFESTS);
      await expect(px.service.manifest('up/a', dig(img.digest))).rejects.toSatisfy((e) => code(e) === 'UPSTREAM_UNAVAILABLE');
      expect(up.count('GET', MANIFESTS) - before).toBe(3);
    }
    up.clearFaults();
    // A registry's 500 is nearly always deterministic: asking again only adds load and delay.
    up.fault(MANIFESTS, { kind: 'status', status: 500 });
    let before = up.count('GET', MANIFESTS);
    await expect(px.service.manifest('up/a', dig(img.digest))).rejects.toSatisfy((e) => code(e) === 'UPSTREAM_UNAVAILABLE');
    expect(up.count('GET', MANIFESTS) - before).toBe(1);
    up.clearFaults();
    before = up.count('HEAD', MANIFESTS);
    expect(await px.service.manifest('up/a', tag('missing'))).toBeUndefined();
    expect(up.count('HEAD', MANIFESTS) - before).toBe(1);
  });

  it('`attempts: 1` turns retries off', async () => {
    const { up, px } = await setup({}, { retries: { attempts: 1, baseMs: 1 } });
    const img = up.addImage('a', ['v1'], [Buffer.from('x')]);
    up.fault(MANIFESTS, { kind: 'status', status: 503 }, { times: 1 });
    await expect(px.service.manifest('up/a', dig(img.digest))).rejects.toSatisfy((e) => code(e) === 'UPSTREAM_UNAVAILABLE');
    expect(up.count('GET', MANIFESTS)).toBe(1);
  });

  it('a blob GET is retried until its headers arrive, never once its body has started', async () => {
    const { up, px } = await setup();
    const a = up.addBlob('a', Buffer.from('a'.repeat(5000)));
    // (fault-upstream's mid-body reset is reliable at a chunk boundary: a 1 MiB-block blob, cut after its first block)
    const b = up.addBlob('a', await generatedBlob(2 * 1024 * 1024, 'retry-reset'));
    const c = up.addBlob('a', Buffer.from('c'.repeat(5000)));
    up.fault(BLOBS, { kind: 'status', status: 503 }, { times: 2 });
    expect(await drain(await opened(await px.service.blob('up/a', a.digest)))).toEqual({ digest: a.digest, size: 5000 });
    expect(up.count('GET', BLOBS)).toBe(3);
    up.fault(BLOBS, { kind: 'drop' }, { times: 1 });
    expect(await drain(await opened(await px.service.blob('up/a', c.digest)))).toEqual({ digest: c.digest, size: 5000 });
    expect(up.count('GET', BLOBS)).toBe(5);
    // Headers sent, then a reset mid-body: the client's stream fails and the upstream is not asked again.
    up.fault(BLOBS, { kind: 'reset', afterBytes: 1024 * 1024 }, { times: 1 });
    expect(code(await streamError(await opened(await px.service.blob('up/a', b.digest))))).toBe('UPSTREAM_UNAVAILABLE');
    expect(up.count('GET', BLOBS)).toBe(6);
    expect(await px.blobs.stat(b.digest)).toBeUndefined();
  });

  it('a reset right after the headers of a small blob: the client gets an error (not a hang), once, and nothing is stored', async () => {
    const { up, px } = await setup();
    const small = up.addBlob('a', Buffer.from('s'.repeat(5000)));
    up.fault(BLOBS, { kind: 'reset', afterBytes: 1000 }, { times: 1 });
    // The reset may land before the fill listens to the body: the error surfaces on open or on read.
    const failure = await px.service
      .blob('up/a', small.digest)
      .then(async (b) => streamError(await opened(b)))
      .catch((e: unknown) => e);
    expect(code(failure)).toBe('UPSTREAM_UNAVAILABLE');
    expect(up.count('GET', BLOBS)).toBe(1);
    expect(await px.blobs.stat(small.digest)).toBeUndefined();
    await expect.poll(() => px.tempFiles()).toEqual([]);
  }, 10_000);

  it('token fetches are retried too', async () => {
    const { up, px } = await setup({ auth: {} });
    const img = up.addImage('a', ['v1'], [Buffer.from('x')]);
    up.fault(/^\/token$/, { kind: 'status', status: 503 }, { times: 1 });
    expect((await px.service.manifest('up/a', tag('v1')))?.digest).toBe(img.digest);
    expect(up.count('GET', /^\/token$/)).toBe(2);
    expect(up.tokenRequests).toHaveLength(1);
  });

  it('retries end at the header timeout: the client is not kept waiting for a backoff that outlasts it', async () => {
    let now = 1_000_000;
    // A backoff of 5 s or more against a 0.5 s header timeout: only the deadline can end the wait.
    const { up, px } = await setup({}, { tagFreshness: 1, timeouts: { header: 0.5, idle: 30, overall: 120 }, retries: { attempts: 3, baseMs: 10_000 } }, { clock: () => now });
    const img = up.addImage('a', ['v1', 'v2'], [Buffer.from('x')]);
    await px.service.manifest('up/a', tag('v1'));
    up.fault(MANIFESTS, { kind: 'status', status: 503 });
    const before = up.count('HEAD', MANIFESTS);
    await expect(px.service.manifest('up/a', tag('v2'))).rejects.toThrow(/503.*no time left/);
    expect(up.count('HEAD', MANIFESTS) - before).toBe(1);
    // With a local copy the same failure serves it, stale.
    now += 2_000;
    expect(await px.service.manifest('up/a', tag('v1'))).toMatchObject({ digest: img.digest, stale: true });
    expect(up.count('HEAD', MANIFESTS) - before).toBe(2);
  });
});

describe('negative cache of upstream 404s', () => {
  it('a missing tag asked twice within notFoundTtl costs one upstream request; after the window, another', async () => {
    let now = 1_000_000;
    const { up, px } = await setup({}, { notFoundTtl: 30 }, { clock: () => now });
    expect(await px.service.manifest('up/a', tag('v1'))).toBeUndefined();
    expect(await px.service.manifest('up/a', tag('v1'))).toBeUndefined();
    expect(up.count('HEAD', MANIFESTS)).toBe(1);
    // The tag appears upstream: within the window the remembered miss still answers.
    const img = up.addImage('a', ['v1'], [Buffer.from('x')]);
    now += 29_000;
    expect(await px.service.manifest('up/a', tag('v1'))).toBeUndefined();
    expect(up.count('HEAD', MANIFESTS)).toBe(1);
    now += 2_000;
    expect(await px.service.manifest('up/a', tag('v1'))).toMatchObject({ digest: img.digest });
    expect(up.count('HEAD', MANIFESTS)).toBe(2);
  });

  it('missing manifests by digest and missing blobs are remembered too, per upstream repository', async () => {
    let now = 1_000_000;
    const { up, px } = await setup({}, {}, { clock: () => now });
    const ghost = 'sha256:0000000000000000000000000000000000000000000000000000000000000001' as Digest;
    for (let i = 0; i < 3; i++) {
      expect(await px.service.manifest('up/a', dig(ghost))).toBeUndefined();
      expect(await px.service.blob('up/a', ghost)).toBeUndefined();
    }
    expect(up.count('GET', MANIFESTS)).toBe(1);
    expect(up.count('GET', BLOBS)).toBe(1);
    // Another repository is another question.
    expect(await px.service.blob('up/b', ghost)).toBeUndefined();
    expect(up.count('GET', BLOBS)).toBe(2);
    now += 31_000; // the default window is 30 s
    expect(await px.service.blob('up/a', ghost)).toBeUndefined();
    expect(up.count('GET', BLOBS)).toBe(3);
  });

  it('a blob stored for another repository: the HEAD that checks this upstream repository has it is remembered too', async () => {
    let now = 1_000_000;
    const { up, px } = await setup({}, {}, { clock: () => now });
    const src = up.addBlob('b', Buffer.from('only in b'));
    await drain(await opened(await px.service.blob('up/b', src.digest)));
    await expect.poll(() => px.blobs.stat(src.digest)).toBeDefined();
    for (let i = 0; i < 3; i++) expect(await px.service.blob('up/a', src.digest)).toBeUndefined();
    expect(up.count('HEAD', BLOBS)).toBe(1);
    expect(up.count('GET', BLOBS)).toBe(1);
    now += 31_000;
    expect(await px.service.blob('up/a', src.digest)).toBeUndefined();
    expect(up.count('HEAD', BLOBS)).toBe(2);
  });

  it('a remembered miss never hides a blob stored here meanwhile', async () => {
    const { up, px } = await setup();
    const bytes = Buffer.from('pushed later');
    const src = up.addBlob('elsewhere', bytes);
    expect(await px.service.blob('up/a', src.digest)).toBeUndefined();
    const info = await px.blobs.put(Readable.from([bytes]), { expected: src.digest, expectedSize: bytes.length });
    await px.metadata.linkBlob('up/a', info);
    expect((await collect(await opened(await px.service.blob('up/a', src.digest)))).toString()).toBe('pushed later');
    expect(up.count('GET', BLOBS)).toBe(1);
  });

  it('notFoundTtl 0 turns it off', async () => {
    const { up, px } = await setup({}, { notFoundTtl: 0 });
    expect(await px.service.manifest('up/a', tag('v1'))).toBeUndefined();
    expect(await px.service.manifest('up/a', tag('v1'))).toBeUndefined();
    expect(up.count('HEAD', MANIFESTS)).toBe(2);
  });
});

describe('429 from the upstream', () => {
  it('nothing local: TOOMANYREQUESTS with the upstream Retry-After (seconds or a date, clamped), not retried', async () => {
    const now = 1_700_000_000_000;
    const { up, px } = await setup({}, { notFoundTtl: 0 }, { clock: () => now });
    const img = up.addImage('a', ['v1'], [Buffer.from('x')]);
    const cases: [string, number][] = [
      ['120', 120],
      [new Date(now + 90_000).toUTCString(), 90],
      ['999999', 3600],
      ['0', 1],
    ];
    for (const [header, seconds] of cases) {
      up.clearFaults();
      up.fault(MANIFESTS, { kind: 'status', status: 429, headers: { 'retry-after': header } });
      const e = await px.service.manifest('up/a', tag('v1')).catch((x: unknown) => x);
      expect(code(e)).toBe('TOOMANYREQUESTS');
      expect((e as { detail: unknown }).detail).toEqual({ retryAfter: seconds });
    }
    expect(up.count('HEAD', MANIFESTS)).toBe(4);
    up.clearFaults();
    up.fault(BLOBS, { kind: 'status', status: 429 });
    const e = await px.service.blob('up/a', img.layers[0]!.digest).catch((x: unknown) => x);
    expect(code(e)).toBe('TOOMANYREQUESTS');
    expect((e as { detail: unknown }).detail).toBeUndefined();
    expect(up.count('GET', BLOBS)).toBe(1);
  });

  it('with a local copy past its freshness, a 429 is an upstream failure: stale-if-error serves it', async () => {
    let now = 1_000_000;
    const { up, px } = await setup({}, { tagFreshness: 60 }, { clock: () => now });
    const img = up.addImage('a', ['v1'], [Buffer.from('x')]);
    await px.service.manifest('up/a', tag('v1'));
    up.fault(MANIFESTS, { kind: 'status', status: 429, headers: { 'retry-after': '30' } });
    now += 61_000;
    expect(await px.service.manifest('up/a', tag('v1'))).toMatchObject({ digest: img.digest, stale: true });
  });
});

describe("Docker Hub's 401 for repositories it does not have", () => {
  it('insufficient_scope after one fresh token: NAME_UNKNOWN / BLOB_UNKNOWN, not a 502, and remembered', async () => {
    let now = 1_000_000;
    const { up, px } = await setup({ auth: { hubStyleMissing: true } }, {}, { clock: () => now });
    const img = up.addImage('team/app', ['v1'], [Buffer.from('x')]);
    const e = await px.service.manifest('up/nobody/nothing', tag('latest')).catch((x: unknown) => x);
    expect(code(e)).toBe('NAME_UNKNOWN');
    expect((e as Error).message).toMatch(/upstream up refused access to nobody\/nothing.*no such repository/);
    // Unauthenticated HEAD (401, challenge), token, HEAD with the token (401 insufficient_scope).
    expect(up.count('HEAD', MANIFESTS)).toBe(2);
    expect(up.tokenRequests).toHaveLength(1);
    await expect(px.service.manifest('up/nobody/nothing', tag('latest'))).rejects.toSatisfy((x) => code(x) === 'NAME_UNKNOWN');
    expect(up.count('HEAD', MANIFESTS)).toBe(2);
    now += 31_000;
    // The cached token draws insufficient_scope; exactly one fresh token is tried before giving the same answer.
    await expect(px.service.manifest('up/nobody/nothing', tag('latest'))).rejects.toSatisfy((x) => code(x) === 'NAME_UNKNOWN');
    expect(up.count('HEAD', MANIFESTS)).toBe(4);
    expect(up.tokenRequests).toHaveLength(2);
    const b = await px.service.blob('up/nobody/nothing', img.layers[0]!.digest).catch((x: unknown) => x);
    expect(code(b)).toBe('BLOB_UNKNOWN');
    // Referrers of a repository the upstream does not have: none, and not an upstream failure.
    expect(await px.service.referrersDetail('up/nobody/nothing', img.digest)).toMatchObject({ descriptors: [], stale: false });
    // A repository it has still works.
    expect((await px.service.manifest('up/team/app', tag('v1')))?.digest).toBe(img.digest);
  });

  it('other 401s (a bad configured token) stay UPSTREAM_UNAVAILABLE: authentication failed, naming the upstream', async () => {
    process.env.CUSTOMS_TEST_BOGUS_TOKEN = 'not-a-token';
    const { up, px } = await setup({ auth: {} }, { credentials: { bearer: { tokenEnv: 'CUSTOMS_TEST_BOGUS_TOKEN' } } });
    up.addImage('a', ['v1'], [Buffer.from('x')]);
    for (let i = 1; i <= 2; i++) {
      const e = await px.service.manifest('up/a', tag('v1')).catch((x: unknown) => x);
      expect(code(e)).toBe('UPSTREAM_UNAVAILABLE');
      expect((e as Error).message).toMatch(/upstream up: authentication failed/);
      // Not remembered as missing: each request asks again.
      expect(up.count('HEAD', MANIFESTS)).toBe(i);
    }
    expect(JSON.stringify(px.logs)).not.toContain('not-a-token');
  });

  it('wrong basic credentials at the token endpoint: authentication failed, naming the upstream', async () => {
    process.env.CUSTOMS_TEST_BAD_PW = 'wrong';
    const { up, px } = await setup({ auth: { basic: { username: 'bob', password: 'right' } } }, { credentials: { basic: { username: 'bob', passwordEnv: 'CUSTOMS_TEST_BAD_PW' } } });
    up.addImage('a', ['v1'], [Buffer.from('x')]);
    await expect(px.service.manifest('up/a', tag('v1'))).rejects.toThrow(/upstream up: authentication failed \(token endpoint answered 401\)/);
    // A 401 is not retried: one token request, one (unauthenticated) manifest request.
    expect(up.tokenRequests).toHaveLength(1);
    expect(up.count('HEAD', MANIFESTS)).toBe(1);
  });
});

describe('over HTTP', () => {
  it('a rate-limited upstream: 429 TOOMANYREQUESTS with Retry-After; a refused repository: 404 NAME_UNKNOWN', async () => {
    const up = await FaultUpstream.start({ auth: { hubStyleMissing: true } });
    const srv = await startTestServer({ config: { upstreams: [{ name: 'up', url: up.url, retries: FAST }] } });
    cleanups.push(async () => {
      await srv.close();
      await up.stop();
    });
    up.addImage('team/app', ['v1'], [Buffer.from('x')]);
    up.fault(MANIFESTS, { kind: 'status', status: 429, headers: { 'retry-after': '42' } }, { times: 1 });
    const limited = await fetch(`${srv.url}/v2/up/team/app/manifests/v1`, { headers: srv.auth() });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('42');
    expect(((await limited.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('TOOMANYREQUESTS');
    const missing = await fetch(`${srv.url}/v2/up/nobody/nothing/manifests/latest`, { headers: srv.auth() });
    expect(missing.status).toBe(404);
    const body = (await missing.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0]!.code).toBe('NAME_UNKNOWN');
    expect(body.errors[0]!.message).toMatch(/refused access/);
  });
});
