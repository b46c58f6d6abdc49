// Shared by the bench launchers (and scripts/make-phantoms.mjs): bundles <folder>/<name>.ts (folder: bench) with esbuild into a temp folder under build/
// (inside the project, so its node_modules resolve), runs it, and removes the bundle when done, also
// when the process exits early (a second Ctrl-C exits without running `finally`).
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function runBundled(name, folder = 'bench') {
  await mkdir(path.join(root, 'build'), { recursive: true });
  const out = await mkdtemp(path.join(root, 'build', 'bench-'));
  process.on('exit', () => rmSync(out, { recursive: true, force: true }));
  try {
    const outfile = path.join(out, `${name}.mjs`);
    await build({
      entryPoints: [path.join(root, folder, `${name}.ts`)],
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
}
