import { describe, expect, it } from 'vitest';
import { TokenCache, parseChallenge, pickChallenge } from './auth.js';

describe('WWW-Authenticate challenges', () => {
  it('parses a bearer challenge with quoted parameters', () => {
    expect(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' },
    });
  });

  it('parses unquoted values, spaces and escapes', () => {
    expect(parseChallenge('Basic realm=registry')).toEqual({ scheme: 'basic', params: { realm: 'registry' } });
    expect(parseChallenge('Bearer realm = "a\\"b" , error="insufficient_scope"')?.params).toEqual({ realm: 'a"b', error: 'insufficient_scope' });
  });

  it('prefers Bearer over Basic when both are offered', () => {
    expect(pickChallenge(['Basic realm="x"', 'Bearer realm="https://t"'])?.scheme).toBe('bearer');
    expect(pickChallenge(['Negotiate abc'])).toBeUndefined();
    expect(pickChallenge(undefined)).toBeUndefined();
  });
});

describe('token cache', () => {
  it('keeps a token until 90% of its lifetime, per realm, service and scope', () => {
    let now = 0;
    const c = new TokenCache(() => now);
    const k = TokenCache.key('https://t', 's', 'repository:a:pull');
    c.set(k, 'tok', 100);
    expect(c.get(k)).toBe('tok');
    expect(c.get(TokenCache.key('https://t', 's', 'repository:b:pull'))).toBeUndefined();
    now = 89_000;
    expect(c.get(k)).toBe('tok');
    now = 90_000;
    expect(c.get(k)).toBeUndefined();
  });

  it('defaults to 60 s when the token endpoint gives no expires_in', () => {
    let now = 0;
    const c = new TokenCache(() => now);
    c.set('k', 't', undefined);
    now = 53_000;
    expect(c.get('k')).toBe('t');
    now = 54_000;
    expect(c.get('k')).toBeUndefined();
  });
});
