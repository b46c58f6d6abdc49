#!/usr/bin/env node
// Builds and runs bench/crm-schedule.ts (see run-bundled.mjs):
// `node bench/crm-schedule.mjs [--searches=240] [--bookings=1000] [--fill=0.3] [--conflicts=0.2] [--patients=400] [--seed=10] [--valid-from=2027-01-01]` (see bench/README.md).
import { runBundled } from './run-bundled.mjs';

await runBundled('crm-schedule');
