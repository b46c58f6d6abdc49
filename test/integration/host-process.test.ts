/**
 * The headless host as `npm start` runs it (a real process, stdout a pipe as under a service manager):
 * the printed address carries the launch key, the launch file is 0600, the demo passwords reach the
 * setup screen and never stdout, and the store's files and data dir are for this account only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { launchFilePath, readLaunchFile, type LaunchInfo } from '../../src/main/hosts/launch-secret.js';
import { ADMIN, STORE_PASSPHRASE, tempDir } from '../support/harness.js';
import { freePort } from '../support/net.js';

let child: ChildProcess;
let stdout = '';
let dataDir: string;
let launch: LaunchInfo;

/** Starts `node dist/main/headless.js` on the data dir; resolves once it printed the address to open. */
async function startHost(extraEnv: Record<string, string> = {}): Promise<void> {
  stdout = '';
  const port = await freePort();
  child = spawn(process.execPath, ['dist/main/headless.js', '--port', String(port)], {
    env: { ...process.env, NEUROWARD_DATA_DIR: dataDir, NEUROWARD_DEMO: 'true', NEUROWARD_MQTT_PORT: '0', NEUROWARD_HOST: 'headless', NEUROWARD_IMPORT_ROOTS: '/srv/scans:/media', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const deadline = Date.now() + 30_000;
  while (!stdout.includes('neuroward: open ')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the host did not start (run \`npm run build\` first):\n${stdout}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  launch = readLaunchFile(dataDir);
}

beforeAll(async () => {
  dataDir = path.join(tempDir('nw-host-'), 'data');
  // A data dir someone else made readable: the host must tighten it.
  mkdirSync(dataDir, { mode: 0o755 });
  await startHost();
}, 40_000);
afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
});

function call(ws: WebSocket, id: number, channel: string, payload: unknown): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      const reply = JSON.parse(String(data)) as Record<string, unknown>;
      if (reply.id !== id) return;
      ws.off('message', onMessage);
      resolve(reply);
    };
    ws.on('message', onMessage);
    ws.send(JSON.stringify({ id, channel, payload }));
  });
}

describe('the host process', () => {
  it('prints the address with the launch key and writes it to a 0600 file in a 0700 data dir', () => {
    expect(stdout).toContain(`neuroward: open ${launch.launchUrl} in Chromium`);
    expect(launch.launchUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?launch=[A-Za-z0-9_-]{43}$/);
    expect(statSync(launchFilePath(dataDir)).mode & 0o777).toBe(0o600);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
  });

  it('shows the demo passwords to the setup call only: stdout (not a terminal) never carries them', async () => {
    const ws = new WebSocket(launch.url.replace(/^http/, 'ws') + 'ipc', { origin: launch.url.replace(/\/$/, ''), headers: { cookie: `${launch.cookieName}=${launch.secret}` } });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const setup = await call(ws, 1, 'setup.initialize', { storePassphrase: STORE_PASSPHRASE, admin: ADMIN, demoData: true });
    expect(setup).toMatchObject({ ok: true });
    const accounts = (setup.value as { demoAccounts: { password: string }[] }).demoAccounts;
    expect(accounts).toHaveLength(4);
    await new Promise((r) => setTimeout(r, 200));
    for (const account of accounts) expect(stdout).not.toContain(account.password);
    expect(stdout).toContain('demo account passwords were shown once on the setup screen (not printed here: standard output is not a terminal)');
    ws.close();
  });

  it('keeps the store, its WAL and SHM and the key file for this account only (0600)', () => {
    const files = readdirSync(dataDir).filter((f) => f.startsWith('neuroward.'));
    expect(files).toEqual(expect.arrayContaining(['neuroward.db', 'neuroward.db-wal', 'neuroward.db-shm', 'neuroward.keyinfo.json']));
    for (const file of files) expect([file, statSync(path.join(dataDir, file)).mode & 0o777]).toEqual([file, 0o600]);
  });

  it('removes the launch file when it stops', async () => {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    expect(() => statSync(launchFilePath(dataDir))).toThrow();
  });

  it('on a restart after setup: no "demo data will be loaded" line, the import roots named, the broker announced once', async () => {
    expect(stdout).toContain('neuroward: demo: synthetic demo data will be loaded at first-run setup');
    // The passphrase variable alone opens the store (no NEUROWARD_PASSPHRASE_SOURCE needed).
    await startHost({ NEUROWARD_STORE_PASSPHRASE: STORE_PASSPHRASE });
    const deadline = Date.now() + 20_000;
    while (!/embedded broker listening/.test(stdout) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500));
    expect(stdout).toContain('neuroward: store: open');
    expect(stdout).not.toContain('demo data will be loaded');
    expect(stdout).toContain('neuroward: imaging: import roots /srv/scans, /media');
    expect(stdout.match(/broker listening/g)).toHaveLength(1);
  }, 40_000);
});
