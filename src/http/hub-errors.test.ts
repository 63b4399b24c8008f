import { describe, expect, it } from 'vitest';
import { err } from '../oci/index.js';
import { toHubError } from './hub-errors.js';

describe('errors as a Hub answers them', () => {
  it('not-found codes huggingface_hub tells apart', () => {
    expect(toHubError(err('NAME_UNKNOWN', 'x'))).toMatchObject({ status: 404, headers: { 'x-error-code': 'RepoNotFound' } });
    expect(toHubError(err('MANIFEST_UNKNOWN', 'x'))).toMatchObject({ status: 404, headers: { 'x-error-code': 'RevisionNotFound' } });
    expect(toHubError(err('BLOB_UNKNOWN', 'x', { commit: 'c'.repeat(40) }))).toMatchObject({ status: 404, headers: { 'x-error-code': 'EntryNotFound', 'x-repo-commit': 'c'.repeat(40) } });
  });

  it('policy and quarantine denials are GatedRepo with the reasons; an access denial is a plain 403', () => {
    const policy = toHubError(err('DENIED', 'denied by policy: models/signatures: no signature found', { failed: [{}] }));
    expect(policy).toMatchObject({ status: 403, headers: { 'x-error-code': 'GatedRepo', 'x-error-message': 'denied by policy: models/signatures: no signature found' } });
    expect(JSON.parse(policy.body)).toEqual({ error: 'denied by policy: models/signatures: no signature found' });
    expect(toHubError(err('DENIED', 'q', { quarantined: ['sha256:x'] })).headers['x-error-code']).toBe('GatedRepo');
    expect(toHubError(err('DENIED', 'anonymous may not pull x')).headers['x-error-code']).toBeUndefined();
  });

  it('upstream faults: wrong bytes are a 502; a rate limit keeps its Retry-After; headers stay one line of ASCII', () => {
    expect(toHubError(err('DIGEST_INVALID', 'upstream sent wrong bytes')).status).toBe(502);
    expect(toHubError(err('TOOMANYREQUESTS', 'slow down', { retryAfter: 7 }))).toMatchObject({ status: 429, headers: { 'retry-after': '7' } });
    expect(toHubError(err('DENIED', 'a\nb\u00e9c', { failed: [] })).headers['x-error-message']).toBe('a b c');
    expect(toHubError(err('UNAUTHORIZED', 'invalid credentials')).headers['x-error-message']).toBe('Invalid credentials in Authorization header');
    expect(toHubError(new Error('boom'))).toMatchObject({ status: 500, internal: true });
  });
});
