#!/usr/bin/env node
// Builds the SQLCipher addon (better-sqlite3-multiple-ciphers) for the running Node.js from the package's
// own sources: node_modules/better-sqlite3-multiple-ciphers/build/Release/better_sqlite3.node, the addon the
// tests, the CLI and the headless host load. Runs as the project's `postinstall`, i.e. on `npm ci` and
// `npm install`, after the dependencies are in place.
//
//   node scripts/build-native.mjs           build unless the addon there already loads in this Node.js
//   node scripts/build-native.mjs --force   rebuild anyway
//
// The package's own install script (`prebuild-install || node-gyp rebuild --release`) is denied in
// package.json's `allowScripts`: it would download a prebuilt binary from GitHub and then Node's headers
// from nodejs.org, so it needs a network beyond the npm registry, or a user/global npm configuration that
// happens to set `nodedir`. Here nothing is downloaded where the running Node.js ships its headers
// (standard installs on Linux and macOS do: see localNodeHeaders); elsewhere (Windows) node-gyp uses its
// cache and downloads Node's headers into it only if they are missing. An explicit `nodedir` in npm's
// configuration (npm_config_nodedir) wins over both.
//
// The Electron-ABI build of the same addon is scripts/rebuild-electron-native.mjs.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { localNodeHeaders, nodeGypScript } from './node-gyp.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGE = 'better-sqlite3-multiple-ciphers';
const source = path.join(root, 'node_modules', PACKAGE);
const addon = path.join(source, 'build', 'Release', 'better_sqlite3.node');
// node-gyp's and the compiler's output (pages of warnings from the SQLite amalgamation): printed on failure.
const logFile = path.join(root, 'node_modules', '.cache', 'neuroward', 'build-native.log');
const force = process.argv.includes('--force');
const node = `Node.js ${process.version} (ABI ${process.versions.modules}, ${process.platform}-${process.arch})`;

function say(message) {
  console.log(`build-native: ${message}`);
}
function die(message) {
  console.error(`build-native: ${message}`);
  process.exit(1);
}

/** Opens an in-memory database through the package in a child Node.js: the addon loads and works. */
function addonWorks() {
  const probe = spawnSync(
    process.execPath,
    ['-e', "const D = require(process.argv[1]); const db = new D(':memory:'); process.stdout.write(db.prepare('select sqlite_version() as v').get().v); db.close();", source],
    { encoding: 'utf8' },
  );
  return probe.status === 0 ? { ok: true, sqlite: probe.stdout.trim() } : { ok: false, error: (probe.stderr || probe.error?.message || '').trim().split('\n')[0] };
}

// `npm install --package-lock-only` runs the root's install scripts too, with nothing installed.
if (process.env.npm_config_package_lock_only === 'true') process.exit(0);
if (!existsSync(path.join(source, 'package.json'))) die(`node_modules/${PACKAGE} is not installed; run npm ci first`);
const version = JSON.parse(readFileSync(path.join(source, 'package.json'), 'utf8')).version;

if (!force && existsSync(addon)) {
  const probe = addonWorks();
  if (probe.ok) {
    say(`${PACKAGE} ${version} already built for ${node} (SQLite ${probe.sqlite}): ${path.relative(root, addon)}`);
    process.exit(0);
  }
  say(`the existing addon does not load (${probe.error}): rebuilding`);
}

const gyp = nodeGypScript();
if (!gyp) die('node-gyp not found (neither in node_modules nor bundled with npm)');

const configured = process.env.npm_config_nodedir?.trim();
const nodedir = configured || localNodeHeaders();
if (configured) say(`Node.js headers: ${nodedir} (npm config nodedir)`);
else if (nodedir) say(`Node.js headers: ${path.join(nodedir, 'include', 'node')} (installed with this Node.js)`);
else say(`this Node.js ships no headers: node-gyp takes them from its cache, downloading ${process.release.headersUrl ?? 'them'} if they are missing`);

// For the running Node.js, whatever npm's configuration says about other targets (Electron, cross-arch).
const env = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !/^npm_config_(nodedir|target|target_arch|runtime|disturl|dist_url|arch|build_from_source)$/i.test(key)),
);
const args = [gyp, 'rebuild', '--release', ...(nodedir ? [`--nodedir=${nodedir}`] : []), ...(process.env.JOBS ? [] : ['--jobs=max'])];
say(`building ${PACKAGE} ${version} for ${node}: node-gyp ${args.slice(1).join(' ')} (output: ${path.relative(root, logFile)})`);
const started = Date.now();
mkdirSync(path.dirname(logFile), { recursive: true });
const log = openSync(logFile, 'w');
const result = spawnSync(process.execPath, args, { cwd: source, stdio: ['ignore', log, log], env });
closeSync(log);
if (result.error) die(`could not run node-gyp: ${result.error.message}`);
if (result.status !== 0) {
  const output = readFileSync(logFile, 'utf8').trimEnd().split('\n');
  console.error(output.slice(-60).join('\n'));
  const needs = nodedir ? 'Python 3, make and a C++ compiler' : "Python 3, make, a C++ compiler and Node.js's headers (downloaded unless npm's nodedir names a directory with include/node)";
  die(`node-gyp failed (exit code ${result.status}; it needs ${needs}): the last ${Math.min(60, output.length)} lines of ${logFile} are above`);
}

const probe = addonWorks();
if (!probe.ok) die(`node-gyp succeeded but the addon does not load: ${probe.error}`);
say(`built ${path.relative(root, addon)} for ${node} (SQLite ${probe.sqlite}) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
