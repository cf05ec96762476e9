import { defineConfig } from 'vitest/config';

// Database tests run once against the embedded PostgreSQL 18 and once against Debian's PostgreSQL 15
// (older sites: no skip scan); pure modules run once.
const dbProject = (major: 15 | 18) => ({
  test: {
    name: `pg${major}`,
    include: ['test/db/**/*.test.ts', 'test/e2e/**/*.test.ts'],
    globalSetup: [`test/setup/global-pg${major}.ts`],
    env: { SYNC_LOOKUP_TEST_PG: String(major) },
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
});

export default defineConfig({
  test: {
    maxWorkers: 2,
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      dbProject(18),
      dbProject(15),
    ],
  },
});
