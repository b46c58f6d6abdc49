#!/usr/bin/env node
// Builds and runs bench/fhir-sync.ts (see run-bundled.mjs):
// `node bench/fhir-sync.mjs [--count=10000] [--bundle=100] [--per-resource=N]` (see bench/README.md).
// The bundle also runs as the loopback FHIR server's child process (`--server`); it is removed when this process exits.
import { runBundled } from './run-bundled.mjs';

await runBundled('fhir-sync');
