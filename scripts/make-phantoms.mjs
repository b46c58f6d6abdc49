#!/usr/bin/env node
// Bundles scripts/make-phantoms.ts with esbuild and runs it (see that file for the arguments).
import { runBundled } from '../bench/run-bundled.mjs';

await runBundled('make-phantoms', 'scripts');
