#!/usr/bin/env node
// Builds everything `npm start`, `npx neuroward` and the tests run: main-process entries, the CLI, the
// worker threads' entries (dist/workers, see workers.mjs) and the preload with esbuild; the renderer
// with Vite. Runs on `npm install` (prepare) and `npm start`.
import { build } from 'esbuild';
import { build as viteBuild } from 'vite';
import { chmod, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { buildWorkers } from './workers.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
const started = Date.now();

const nodeCommon = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  // node_modules stay outside the bundle: native addons (SQLCipher) and electron resolve at run time.
  packages: 'external',
  logLevel: 'warning',
};

await build({
  ...nodeCommon,
  format: 'esm',
  entryPoints: {
    'main/headless': 'src/main/hosts/headless-main.ts',
    'main/electron': 'src/main/hosts/electron.ts',
  },
  outdir: 'dist',
  banner: { js: "import { createRequire as __nwCreateRequire } from 'node:module'; const require = __nwCreateRequire(import.meta.url);" },
});

// The CLI is split at its dynamic imports: each command loads only its own modules (and packages), so
// `neuroward --version` or `dti info` does not pay for the store, the config schema or the MQTT client.
await rm('dist/cli', { recursive: true, force: true });
await build({
  ...nodeCommon,
  format: 'esm',
  splitting: true,
  entryPoints: { neuroward: 'src/cli/neuroward.ts' },
  outdir: 'dist/cli',
  chunkNames: 'chunks/[name]-[hash]',
  banner: { js: "import { createRequire as __nwCreateRequire } from 'node:module'; const require = __nwCreateRequire(import.meta.url);" },
});
await chmod('dist/cli/neuroward.js', 0o755);

// Worker threads run real entry files: dist/workers/<name>.cjs (located by src/main/workers/locate.ts).
await buildWorkers();

// A sandboxed preload must be a single CommonJS file that requires nothing but 'electron'.
await build({
  ...nodeCommon,
  packages: undefined,
  external: ['electron'],
  format: 'cjs',
  entryPoints: { 'preload/index': 'src/preload/index.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.cjs' },
});

if (!process.argv.includes('--no-renderer')) {
  await viteBuild({ configFile: path.join(root, 'vite.config.ts'), logLevel: 'warn' });
}
console.log(`neuroward: built dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);
