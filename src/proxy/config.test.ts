import { describe, expect, it } from 'vitest';
import { parseUpstreamFlag, parseUpstreams } from './config.js';
import { UpstreamTargets } from './targets.js';

describe('upstream configuration', () => {
  it('resolves defaults and freezes the result', () => {
    const [u] = parseUpstreams([{ name: 'ghcr.io', url: 'https://ghcr.io/' }]);
    expect(u).toEqual({
      name: 'ghcr.io',
      url: 'https://ghcr.io',
      credentials: 'none',
      tagFreshness: 300,
      timeouts: { header: 10, idle: 30, overall: 3600 },
      retries: { attempts: 3, baseMs: 100 },
      notFoundTtl: 30,
      dockerHubLibrary: false,
    });
    expect(Object.isFrozen(u)).toBe(true);
    expect(Object.isFrozen(u!.timeouts)).toBe(true);
    expect(Object.isFrozen(u!.retries)).toBe(true);
  });

  it('takes retries and the not-found window, and refuses nonsense', () => {
    const [u] = parseUpstreams([{ name: 'a', url: 'https://a.example', retries: { attempts: 1 }, notFoundTtl: 0 }]);
    expect(u!.retries).toEqual({ attempts: 1, baseMs: 100 });
    expect(u!.notFoundTtl).toBe(0);
    expect(() => parseUpstreams([{ name: 'a', url: 'https://a.example', retries: { attempts: 0 } }])).toThrow(/invalid upstream/);
    expect(() => parseUpstreams([{ name: 'a', url: 'https://a.example', retries: { attempts: 2.5 } }])).toThrow(/invalid upstream/);
    expect(() => parseUpstreams([{ name: 'a', url: 'https://a.example', notFoundTtl: -1 }])).toThrow(/invalid upstream/);
  });

  it('turns on the implicit library/ for Docker Hub', () => {
    expect(parseUpstreamFlag('docker.io=https://registry-1.docker.io').dockerHubLibrary).toBe(true);
    expect(parseUpstreamFlag('hub=https://registry-1.docker.io').dockerHubLibrary).toBe(true);
    expect(parseUpstreamFlag('upstream.example=http://127.0.0.1:5001').dockerHubLibrary).toBe(false);
  });

  it('accepts credentials by reference only (env or file), never inline', () => {
    const [b, t] = parseUpstreams([
      { name: 'a', url: 'https://a.example', credentials: { basic: { username: 'u', passwordEnv: 'A_PW' } } },
      { name: 'b', url: 'https://b.example', credentials: { bearer: { tokenFile: '/run/secrets/b' } } },
    ]);
    expect(b!.credentials).toEqual({ basic: { username: 'u', passwordEnv: 'A_PW' } });
    expect(t!.credentials).toEqual({ bearer: { tokenFile: '/run/secrets/b' } });
    expect(() => parseUpstreams([{ name: 'a', url: 'https://a.example', credentials: { basic: { username: 'u', password: 'inline' } } }])).toThrow(/invalid upstream/);
  });

  it('rejects bad names, non-HTTP URLs, duplicates and malformed flags', () => {
    expect(() => parseUpstreamFlag('Docker.IO=https://x')).toThrow();
    expect(() => parseUpstreamFlag('x=ftp://x')).toThrow();
    expect(() => parseUpstreamFlag('no-equals-sign')).toThrow(/NAME=URL/);
    expect(() => parseUpstreams([{ name: 'a', url: 'https://a' }, { name: 'a', url: 'https://b' }])).toThrow(/duplicate/);
  });

  it('accepts a {NAME: URL} map (startServer({ upstreams }))', () => {
    expect(parseUpstreams({ up: 'http://127.0.0.1:5001' }).map((u) => [u.name, u.url])).toEqual([['up', 'http://127.0.0.1:5001']]);
  });
});

describe('repository to upstream mapping', () => {
  const targets = new UpstreamTargets(parseUpstreams([
    { name: 'docker.io', url: 'https://registry-1.docker.io' },
    { name: 'ghcr.io', url: 'https://ghcr.io' },
    { name: 'ghcr.io/acme', url: 'https://acme.example' },
  ]));

  it('picks the longest prefix and keeps the rest as the remote repository', () => {
    expect(targets.resolve('ghcr.io/acme/model')).toEqual({ upstream: 'ghcr.io/acme', remote: 'model', repository: 'ghcr.io/acme/model', namespace: undefined });
    expect(targets.resolve('ghcr.io/other/model')).toMatchObject({ upstream: 'ghcr.io', remote: 'other/model' });
    expect(targets.resolve('ghcr.io')).toBeUndefined();
    expect(targets.resolve('local/model')).toBeUndefined();
  });

  it("applies Docker Hub's library/ and honours ns", () => {
    expect(targets.resolve('docker.io/alpine')).toMatchObject({ remote: 'library/alpine', repository: 'docker.io/alpine' });
    expect(targets.resolve('docker.io/bitnami/redis')).toMatchObject({ remote: 'bitnami/redis' });
    expect(targets.resolve('alpine', 'docker.io')).toEqual({ upstream: 'docker.io', remote: 'library/alpine', repository: 'docker.io/alpine', namespace: 'docker.io' });
    expect(targets.resolve('alpine', 'quay.io')).toBeUndefined();
  });
});
