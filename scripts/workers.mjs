// The worker-thread bundles: dist/workers/<name>.cjs, one per entry below (the names are
// src/main/workers/locate.ts's WORKER_NAMES; a test checks that both lists agree). Used by
// scripts/build.mjs and, as vitest's globalSetup (vitest.config.ts), before every vitest run, so the
// tests always spawn workers built from the current sources.
//
// CommonJS, not ESM: Electron loads a worker's CommonJS from inside app.asar. The packages the workers
// use are bundled in, except the SQLCipher driver (a native addon, required from node_modules at run
// time): some are ESM-only (nifti-reader-js), which a CommonJS bundle cannot require.
//
// Files are written atomically (a temporary file, then rename) and only when their content changed:
// several vitest runs may build at once while another one is spawning these workers.
import { build } from 'esbuild';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const WORKER_ENTRIES = {
  'tensor-fit': 'src/main/imaging/tensor/fit.worker.ts',
  'wal-checkpointer': 'src/main/store/checkpointer.worker.ts',
  'imaging-io': 'src/main/imaging/io.worker.ts',
  analysis: 'src/main/analysis/analysis.worker.ts',
};

async function writeIfChanged(file, contents) {
  const current = await readFile(file).catch(() => null);
  if (current && Buffer.compare(current, contents) === 0) return;
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temp, contents);
    await rename(temp, file);
  } finally {
    await rm(temp, { force: true });
  }
}

/** Builds every worker entry into dist/workers/. */
export async function buildWorkers() {
  const entryPoints = Object.fromEntries(
    Object.entries(WORKER_ENTRIES).map(([name, entry]) => [name, path.join(root, entry)]),
  );
  const result = await build({
    bundle: true,
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    // tfjs stays outside too: its wasm backend finds its .wasm files next to its own module (__dirname).
    external: ['better-sqlite3-multiple-ciphers', '@tensorflow/*'],
    logLevel: 'warning',
    format: 'cjs',
    // CommonJS has no import.meta: give it the bundle's own URL, so that workers/locate.ts finds the
    // tensor-fit bundle from inside the analysis worker, which starts those workers itself.
    define: { 'import.meta.url': '__nwImportMetaUrl' },
    banner: { js: "'use strict'; const __nwImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
    entryPoints,
    outdir: path.join(root, 'dist', 'workers'),
    outExtension: { '.js': '.cjs' },
    write: false,
  });
  for (const file of result.outputFiles) await writeIfChanged(file.path, file.contents);
}

/** vitest globalSetup. */
export async function setup() {
  await buildWorkers();
}
