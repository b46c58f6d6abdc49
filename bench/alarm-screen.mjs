#!/usr/bin/env node
// Builds and runs bench/alarm-screen.ts (see run-bundled.mjs): `node bench/alarm-screen.mjs [--beds=2000] [--seconds=60] [--import=DIR|synthetic]`.
import { runBundled } from './run-bundled.mjs';

await runBundled('alarm-screen');
