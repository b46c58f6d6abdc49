#!/usr/bin/env node
// Builds bench/dti-fit.ts with esbuild into build/ (inside the project, so its node_modules resolve) and runs it: `node bench/dti-fit.mjs [--dims=96x96x60] [--workers=2] [--repeats=3] [--keep]`.
import { build } from 'esbuild';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
await mkdir(path.join(root, 'build'), { recursive: true });
const out = await mkdtemp(path.join(root, 'build', 'bench-'));
try {
  const outfile = path.join(out, 'dti-fit.mjs');
  await build({
    entryPoints: [path.join(root, 'bench/dti-fit.ts')],
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
