#!/usr/bin/env node
// Builds and runs bench/ward-load.ts (see run-bundled.mjs):
// `node bench/ward-load.mjs [--seconds=60] [--beds=50,200,500,1000,2000,500@5] [--brokers=mosquitto,aedes]` (see bench/README.md).
// The bundle also runs as the publisher child process (`--publisher`); it is removed when this process exits.
import { runBundled } from './run-bundled.mjs';

await runBundled('ward-load');
