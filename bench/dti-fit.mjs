#!/usr/bin/env node
// Builds and runs bench/dti-fit.ts (see run-bundled.mjs): `node bench/dti-fit.mjs [--dims=96x96x60] [--workers=2] [--repeats=3] [--keep]`.
import { runBundled } from './run-bundled.mjs';

await runBundled('dti-fit');
