#!/usr/bin/env node
// Builds and runs bench/crash-durability.ts (see run-bundled.mjs):
// `node bench/crash-durability.mjs [--trials=30] [--seconds=1-4] [--writers=4] [--depth=4] [--app-reads=50] [--seed=N] [--keep]` (see bench/README.md).
// It drives the built host (dist/main/headless.js) and CLI (dist/cli/neuroward.js): when either is missing,
// they are built first with `node scripts/build.mjs --no-renderer` (the host serves no page here).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBundled } from './run-bundled.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (!existsSync(path.join(root, 'dist/main/headless.js')) || !existsSync(path.join(root, 'dist/cli/neuroward.js'))) {
  console.log('crash-durability: dist/ is missing the host or the CLI: node scripts/build.mjs --no-renderer');
  const build = spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs'), '--no-renderer'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}

await runBundled('crash-durability');
