import { defineConfig } from 'vitest/config';

// The runtime and bundle checks (#12.3, #12.4): run by `npm run test:runtimes`
// (scripts/runtimes.mjs), which installs the Node versions first; not part of `npm test`.
export default defineConfig({
  test: {
    include: ['test/runtimes/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});
