/**
 * Runs after Playwright has started the headless host (webServer) and before any spec: reads the launch
 * file the host wrote in its data dir (the documented way a local tool gets this launch's key, mode
 * 0600) and stores the launch cookie as Playwright storage state, so every page opens as the browser
 * the host printed its address for would. Specs that want a client WITHOUT the key make their own context.
 */
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { launchFilePath, readLaunchFile } from '../../src/main/hosts/launch-secret.js';
import { E2E_STORAGE_STATE } from './support.js';

export default async function globalSetup(): Promise<void> {
  const dataDir = process.env.NEUROWARD_E2E_DATA_DIR;
  if (!dataDir) throw new Error('NEUROWARD_E2E_DATA_DIR is not set (playwright.config.ts sets it)');
  const mode = statSync(launchFilePath(dataDir)).mode & 0o777;
  if (mode !== 0o600) throw new Error(`the launch file ${launchFilePath(dataDir)} has mode ${mode.toString(8)}, not 600`);
  const launch = readLaunchFile(dataDir);
  mkdirSync(path.dirname(E2E_STORAGE_STATE), { recursive: true });
  const cookie = { name: launch.cookieName, value: launch.secret, domain: '127.0.0.1', path: '/', expires: -1, httpOnly: true, secure: false, sameSite: 'Strict' as const };
  writeFileSync(E2E_STORAGE_STATE, JSON.stringify({ cookies: [cookie], origins: [] }), { mode: 0o600 });
}
