import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests talk to real HTTP servers and a real Redis; give slow shared machines some room.
    testTimeout: 20_000,
    hookTimeout: 20_000,
    globalSetup: ['test/support/global-setup.ts'],
    // After each test file: no secret or issued token in any log it captured.
    setupFiles: ['test/support/secret-scan.ts'],
  },
});
