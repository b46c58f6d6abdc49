/**
 * Bundles a test's child-process driver (a .ts file under test/support/) with esbuild into a fresh
 * folder under build/, so plain Node can run it; packages stay external (node_modules).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export async function bundleDriver(entry: string, prefix: string): Promise<{ driver: string; remove: () => void }> {
  mkdirSync(path.join(root, 'build'), { recursive: true });
  const dir = mkdtempSync(path.join(root, 'build', prefix));
  const driver = path.join(dir, 'driver.mjs');
  await build({ entryPoints: [path.join(root, entry)], bundle: true, platform: 'node', target: 'node20', format: 'esm', packages: 'external', outfile: driver, logLevel: 'warning' });
  return { driver, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
