#!/usr/bin/env node
// Bundles scripts/train.ts with esbuild and runs it (see that file for the flags): `npm run train -- --minutes=55`.
import { runBundled } from '../bench/run-bundled.mjs';

await runBundled('train', 'scripts');
