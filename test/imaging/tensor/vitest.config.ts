// Runs the imaging tests (test/imaging/**) with the project's settings until the root vitest.config.ts
// includes them: `npx vitest run -c test/imaging/tensor/vitest.config.ts`.
import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../../vitest.config.js';

export default mergeConfig(
  base,
  defineConfig({
    root: new URL('../../..', import.meta.url).pathname,
    test: { include: ['test/imaging/**/*.test.ts'] },
  }),
);
