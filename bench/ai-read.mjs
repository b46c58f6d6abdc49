#!/usr/bin/env node
// Bundles bench/ai-read.ts with esbuild and runs it (see bench/README.md): `node bench/ai-read.mjs [--repeats=3] [--keep]`.
import { runBundled } from './run-bundled.mjs';

await runBundled('ai-read');
