import { defineConfig } from 'vitest/config';

/**
 * `npm run test:e2e`: the demo's web app driven in a real headless Chromium. Kept out of `npm test`
 * (whose include is test/ only) because it needs a browser, which .ci/run installs first.
 */
export default defineConfig({
  test: {
    include: ['e2e/**/*.test.ts'],
    // A browser start and a whole sign-in and link journey on a shared machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ['test/support/global-setup.ts'],
    setupFiles: ['test/support/secret-scan.ts'],
  },
});
