import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/imaging/**/*.test.ts', 'test/fhir/**/*.test.ts', 'test/analysis/**/*.test.ts'],
    // Worker threads run their bundles in dist/workers (src/main/workers/locate.ts), also when the
    // tests run the TypeScript sources: rebuild those bundles from the current sources first (well under
    // a second; unchanged files are not rewritten), so no test spawns a stale worker.
    globalSetup: ['scripts/workers.mjs'],
    // SQLCipher is a native addon: separate processes keep each file's stores apart.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
