import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Needs the other Node versions and bundlers installed: `npm run test:runtimes`.
    exclude: ['test/runtimes/**', 'node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    env: {
      // The AWS SDK's notice that its releases after January 2027 need Node >= 22, printed
      // once per process and thread that loads it (8 times a run): noise that hid real
      // warnings (#12.5). Its own switch turns off exactly that one; the tests' child
      // processes and threads inherit it.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  },
});
