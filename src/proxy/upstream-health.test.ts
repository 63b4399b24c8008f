import { describe, expect, it } from 'vitest';
import { UpstreamHealth } from './upstream-health.js';

describe('UpstreamHealth', () => {
  it('is unknown before any exchange, failing after an error, ok again after a success', () => {
    let now = 1000;
    const h = new UpstreamHealth([{ name: 'docker.io', url: 'https://registry-1.docker.io' }, { name: 'ghcr.io', url: 'https://ghcr.io' }], () => now);
    expect(h.snapshot().map((s) => s.state)).toEqual(['unknown', 'unknown']);
    h.failed('docker.io', 'connect ECONNREFUSED');
    expect(h.snapshot()[0]).toMatchObject({ name: 'docker.io', state: 'failing', lastErrorAt: 1000, lastError: 'connect ECONNREFUSED', lastOkAt: undefined });
    now = 2000;
    h.ok('docker.io');
    // The last error stays visible after recovery: operators want to see what went wrong.
    expect(h.snapshot()[0]).toMatchObject({ state: 'ok', lastOkAt: 2000, lastErrorAt: 1000, lastError: 'connect ECONNREFUSED' });
    h.ok('not-configured');
    expect(h.snapshot()).toHaveLength(2);
  });
});
