#!/usr/bin/env node
// Builds the SQLCipher addon (better-sqlite3-multiple-ciphers) for Electron's ABI in a copy of the package
// at build/electron-native/better-sqlite3-multiple-ciphers, leaving node_modules (the Node-ABI build the
// tests and the headless host use) untouched. The Electron host points better-sqlite3's `nativeBinding`
// at build/electron-native/better-sqlite3-multiple-ciphers/build/Release/better_sqlite3.node.
//
//   node scripts/rebuild-electron-native.mjs           build unless already built for this Electron version
//   node scripts/rebuild-electron-native.mjs --force   rebuild anyway
//
// Without an Electron binary (node_modules/electron/dist) there is nothing that could load the addon:
// the script says so and exits 0.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeGypScript } from './node-gyp.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGE = 'better-sqlite3-multiple-ciphers';
const electronDir = path.join(root, 'node_modules', 'electron');
const source = path.join(root, 'node_modules', PACKAGE);
const outDir = path.join(root, 'build', 'electron-native');
const target = path.join(outDir, PACKAGE);
const addon = path.join(target, 'build', 'Release', 'better_sqlite3.node');
const stampFile = path.join(outDir, 'electron-native.json');
const force = process.argv.includes('--force');

function say(message) {
  console.log(`rebuild-electron-native: ${message}`);
}
function die(message) {
  console.error(`rebuild-electron-native: ${message}`);
  process.exit(1);
}

/** The Electron executable, as node_modules/electron/index.js would find it, without its download fallback. */
function electronBinary() {
  const pathFile = path.join(electronDir, 'path.txt');
  if (!existsSync(pathFile)) return null;
  const relative = readFileSync(pathFile, 'utf8').trim();
  if (!relative) return null;
  const binary = path.join(electronDir, 'dist', relative);
  return existsSync(binary) ? binary : null;
}

if (!existsSync(path.join(electronDir, 'package.json'))) die('node_modules/electron is not installed; run npm install first');
if (!existsSync(path.join(source, 'package.json'))) die(`node_modules/${PACKAGE} is not installed; run npm install first`);

const binary = electronBinary();
if (!binary) {
  say('Electron binary not installed; nothing to rebuild');
  process.exit(0);
}

const electronVersion = JSON.parse(readFileSync(path.join(electronDir, 'package.json'), 'utf8')).version;
const packageVersion = JSON.parse(readFileSync(path.join(source, 'package.json'), 'utf8')).version;
const arch = process.env.npm_config_arch || process.arch;
const stamp = { electron: electronVersion, [PACKAGE]: packageVersion, platform: process.platform, arch };

if (!force && existsSync(addon) && existsSync(stampFile)) {
  try {
    const previous = JSON.parse(readFileSync(stampFile, 'utf8'));
    if (Object.entries(stamp).every(([key, value]) => previous[key] === value)) {
      say(`already built for Electron ${electronVersion} (${process.platform}-${arch}): ${path.relative(root, addon)}`);
      process.exit(0);
    }
  } catch {
    // unreadable stamp: rebuild
  }
}

say(`copying node_modules/${PACKAGE} (${packageVersion}) to ${path.relative(root, target)}`);
rmSync(target, { recursive: true, force: true });
rmSync(stampFile, { force: true });
mkdirSync(outDir, { recursive: true });
// The package's own build/ is the Node-ABI addon: not copied, the copy is built from its sources.
cpSync(source, target, {
  recursive: true,
  filter: (file) => path.relative(source, file).split(path.sep)[0] !== 'build' && !file.includes(`${path.sep}node_modules${path.sep}.cache`),
});

const gyp = nodeGypScript();
if (!gyp) die('node-gyp not found (neither in node_modules nor bundled with npm)');
const args = [
  gyp,
  'rebuild',
  `--target=${electronVersion}`,
  `--arch=${arch}`,
  '--dist-url=https://electronjs.org/headers',
  '--runtime=electron',
  '--release',
];
say(`building for Electron ${electronVersion} (${process.platform}-${arch}): node-gyp ${args.slice(1).join(' ')}`);
// A `nodedir` from npm's configuration (exported as npm_config_nodedir under `npm run`/`npx`) would make
// node-gyp compile against the local Node.js headers instead of Electron's: drop it and its kin.
const env = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !/^npm_config_(nodedir|target|runtime|disturl|dist_url|arch)$/i.test(key)),
);
const result = spawnSync(process.execPath, args, {
  cwd: target,
  stdio: 'inherit',
  env: { ...env, npm_config_runtime: 'electron', npm_config_target: electronVersion, npm_config_disturl: 'https://electronjs.org/headers' },
});
if (result.error) die(`could not run node-gyp: ${result.error.message}`);
if (result.status !== 0) die(`node-gyp failed (exit code ${result.status}); node_modules/${PACKAGE} was not touched`);
if (!existsSync(addon)) die(`node-gyp succeeded but ${path.relative(root, addon)} is missing`);

writeFileSync(stampFile, `${JSON.stringify({ ...stamp, builtAt: new Date().toISOString() }, null, 2)}\n`);
say(`built ${path.relative(root, addon)} for Electron ${electronVersion}`);
