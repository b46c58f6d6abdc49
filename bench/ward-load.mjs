#!/usr/bin/env node
// Builds bench/ward-load.ts with esbuild into build/ (inside the project, so its node_modules resolve) and runs it:
// `node bench/ward-load.mjs [--seconds=60] [--beds=50,200,500,1000,2000,500@5] [--brokers=mosquitto,aedes]` (see bench/README.md).
// The bundle also runs as the publisher child process (`--publisher`); it is removed when this process exits.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
await mkdir(path.join(root, 'build'), { recursive: true });
const out = await mkdtemp(path.join(root, 'build', 'bench-'));
// Also after a second Ctrl-C, which exits without running the `finally` below.
process.on('exit', () => rmSync(out, { recursive: true, force: true }));
try {
  const outfile = path.join(out, 'ward-load.mjs');
  await build({
    entryPoints: [path.join(root, 'bench/ward-load.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    packages: 'external',
    outfile,
    logLevel: 'warning',
  });
  await import(pathToFileURL(outfile).href);
} finally {
  await rm(out, { recursive: true, force: true });
}
