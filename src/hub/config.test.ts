import { describe, expect, it } from 'vitest';
import { hubConfigSchema } from './config.js';

describe('the hub: config slice', () => {
  it('defaults: the API at /hf, no upstream', () => {
    expect(hubConfigSchema.parse(undefined)).toEqual({ prefix: '/hf', upstreams: [] });
  });

  it('an upstream gets the OCI proxy\'s timeouts and retries, and a revision freshness', () => {
    const c = hubConfigSchema.parse({ defaultUpstream: 'hf.co', upstreams: [{ name: 'hf.co', url: 'https://huggingface.co/', token: { env: 'HF_TOKEN' } }] });
    expect(c.upstreams[0]).toMatchObject({ url: 'https://huggingface.co', revisionFreshness: 300, timeouts: { header: 10, idle: 30, overall: 3600 }, retries: { attempts: 3, baseMs: 100 }, notFoundTtl: 30 });
  });

  it('refuses what would make paths ambiguous or a default that is not listed', () => {
    const bad = [
      { prefix: '/v2' },
      { prefix: 'hf' },
      { prefix: '/hf/' },
      { upstreams: [{ name: 'api', url: 'https://h' }] },
      { upstreams: [{ name: 'a/b', url: 'https://h' }] },
      { upstreams: [{ name: 'h', url: 'https://h' }, { name: 'h', url: 'https://i' }] },
      { defaultUpstream: 'hf.co', upstreams: [] },
      { upstreams: [{ name: 'h', url: 'ftp://h' }] },
      { upstreams: [{ name: 'h', url: 'https://h', token: 'hf_plaintext' }] },
    ];
    for (const b of bad) expect(hubConfigSchema.safeParse(b).success, JSON.stringify(b)).toBe(false);
  });
});
