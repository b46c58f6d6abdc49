#!/usr/bin/env node
// Builds and runs bench/dicom-load.ts (see run-bundled.mjs): `node bench/dicom-load.mjs [--repeats=3] [--large-volumes=130] [--keep]`.
import { runBundled } from './run-bundled.mjs';

await runBundled('dicom-load');
