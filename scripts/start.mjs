#!/usr/bin/env node
// `npm start`: builds, then runs the Electron desktop app where its binary exists (and a display),
// otherwise the headless host, saying which and why. NEUROWARD_HOST=headless|electron forces one.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);

const build = spawnSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

/** The Electron binary, or the reason there is none. Never `require('electron')`: it tries to download. */
function electronBinary() {
  const dir = path.join(root, 'node_modules/electron');
  const pathFile = path.join(dir, 'path.txt');
  if (!existsSync(dir)) return { reason: 'the electron package is not installed' };
  if (!existsSync(pathFile)) return { reason: "Electron's binary is not installed (`npm ci` does not download it; `node node_modules/electron/install.js` does, where its download host is reachable)" };
  const binary = path.join(dir, 'dist', readFileSync(pathFile, 'utf8').trim());
  if (!existsSync(binary)) return { reason: `Electron's binary is missing (${binary})` };
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) return { reason: 'there is no display (DISPLAY / WAYLAND_DISPLAY unset)' };
  return { binary };
}

const forced = process.env.NEUROWARD_HOST;
const electron = forced === 'headless' ? { reason: 'NEUROWARD_HOST=headless' } : electronBinary();
let child;
if (electron.binary) {
  const rebuild = spawnSync(process.execPath, [path.join(root, 'scripts/rebuild-electron-native.mjs')], { stdio: 'inherit' });
  if (rebuild.status !== 0) process.exit(rebuild.status ?? 1);
  console.log('neuroward: starting the Electron desktop app');
  child = spawn(electron.binary, [path.join(root, 'dist/main/electron.js'), ...args], { stdio: 'inherit' });
} else {
  if (forced === 'electron') {
    console.error(`neuroward: NEUROWARD_HOST=electron, but ${electron.reason}.`);
    process.exit(2);
  }
  console.log(`neuroward: starting the headless host: ${electron.reason}.`);
  child = spawn(process.execPath, [path.join(root, 'dist/main/headless.js'), ...args], { stdio: 'inherit' });
}
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
