/**
 * End-to-end tests of the Electron host (the real app, launched through Playwright's Electron support).
 *
 *   node scripts/build.mjs && node scripts/rebuild-electron-native.mjs
 *   npx playwright test -c test/electron/playwright.config.ts
 *
 * On Linux without a display, wrap it in `xvfb-run`. Where node_modules/electron has no binary the
 * whole file is skipped, with the reason printed.
 */
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: '.',
  testMatch: 'electron.spec.ts',
  reporter: 'list',
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  timeout: 90_000,
  expect: { timeout: 15_000 },
  // Cleaned at the start of each run; the spec writes its screenshot here too.
  outputDir: '../../test-results/electron',
});
