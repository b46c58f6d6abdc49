#!/usr/bin/env node
// Bundles scripts/evaluate-localisation.ts with esbuild and runs it (see that file for the flags).
import { runBundled } from '../bench/run-bundled.mjs';

await runBundled('evaluate-localisation', 'scripts');
