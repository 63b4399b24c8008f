import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'conformance/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Starts Ceph RGW and PostgreSQL once per run for the scale-out tests (skipped when none is selected).
    globalSetup: ['test/global-setup-scaleout.ts'],
    // Two cores: more workers only make the I/O-heavy suites trip over each other.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
