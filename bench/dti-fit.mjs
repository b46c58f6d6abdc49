#!/usr/bin/env node
// Builds bench/dti-fit.ts with esbuild into a temporary folder and runs it: `node bench/dti-fit.mjs [--dims=96x96x60] [--workers=2] [--repeats=3] [--keep]`.
import { build } from 'esbuild';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = await mkdtemp(path.join(tmpdir(), 'nw-bench-build-'));
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
