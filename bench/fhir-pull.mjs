#!/usr/bin/env node
// Builds and runs bench/fhir-pull.ts (see run-bundled.mjs):
// `node bench/fhir-pull.mjs [--count=10000] [--page=100,1000]` (see bench/README.md).
// The bundle also runs as the loopback FHIR server's child process (`--server`); it is removed when this process exits.
import { runBundled } from './run-bundled.mjs';

await runBundled('fhir-pull');
