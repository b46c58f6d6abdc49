/** The encrypted store: nothing readable on disk, clear refusals for wrong keys and damaged files, no half-written setup. */
import { existsSync, readFileSync, readdirSync, writeFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/main/app/app.js';
import type { NeurowardApp } from '../../src/main/app/types.js';
import { StoreService } from '../../src/main/store/store-service.js';
import { ADMIN, STORE_PASSPHRASE, connect, setUpWorkstation, testConfig } from '../support/harness.js';

const opened: NeurowardApp[] = [];
afterEach(async () => {
  for (const app of opened.splice(0)) await app.close();
});

async function openApp(dataDir: string, env: NodeJS.ProcessEnv = {}) {
  const config = testConfig({ dataDir }, env);
  const app = await createApp({ config, host: 'headless', log: () => undefined, announce: () => undefined });
  opened.push(app);
  return app;
}

function filesBytes(dir: string): Buffer {
  return Buffer.concat(readdirSync(dir).filter((f) => f.startsWith('neuroward.db')).map((f) => readFileSync(path.join(dir, f))));
}

describe('encrypted store', () => {
  it('keeps a patient name out of the database file bytes (main file and WAL)', async () => {
    const ws = await setUpWorkstation({}, { demoData: true });
    opened.push(ws.app);
    const { connection } = await ws.signInAs('receptionist');
    const unique = `Zyxquorbtelian${Date.now().toString(36)}`;
    const patient = await connection.ok('patients.create', { givenName: 'Plaintext', familyName: unique, birthDate: '1980-02-02', sex: 'other' });
    expect(patient.familyName).toBe(unique);
    // While running: WAL not yet checkpointed holds the newest pages.
    const live = filesBytes(ws.config.dataDir);
    expect(live.length).toBeGreaterThan(4096);
    expect(live.includes(Buffer.from(unique, 'utf8'))).toBe(false);
    expect(live.includes(Buffer.from(unique, 'utf16le'))).toBe(false);
    expect(live.subarray(0, 16).toString('latin1')).not.toContain('SQLite format 3');
    await ws.app.close();
    opened.pop();
    const closed = filesBytes(ws.config.dataDir);
    expect(closed.includes(Buffer.from(unique, 'utf8'))).toBe(false);
    // Control: the same search finds the name once decrypted, so the check above can fail.
    const app = await openApp(ws.config.dataDir);
    const c = connect(app);
    await c.ok('store.unlock', { passphrase: STORE_PASSPHRASE });
    await c.ok('auth.signIn', { username: ADMIN.username, password: ADMIN.password });
    const audit = await c.ok('audit.list', { limit: 500 });
    expect(audit.entries.some((e) => e.entityId === patient.id && e.action === 'patient.create')).toBe(true);
  });

  it('refuses a wrong passphrase with a clear error and stays usable', async () => {
    const ws = await setUpWorkstation({}, { demoData: false });
    await ws.app.close();
    const app = await openApp(ws.config.dataDir);
    const c = connect(app);
    expect((await c.ok('app.status', {})).store).toBe('locked');
    const error = await c.fail('store.unlock', { passphrase: 'not the right one' });
    expect(error).toEqual({ code: 'wrong-passphrase', message: 'Wrong store passphrase.' });
    // Locked store: data channels say so instead of failing obscurely.
    expect((await c.fail('auth.signIn', { username: ADMIN.username, password: ADMIN.password })).code).toBe('store-locked');
    const status = await c.ok('store.unlock', { passphrase: STORE_PASSPHRASE });
    expect(status.store).toBe('ready');
    await c.ok('auth.signIn', { username: ADMIN.username, password: ADMIN.password });
  });

  it('rate-limits passphrase guessing after five wrong attempts', async () => {
    const ws = await setUpWorkstation({}, { demoData: false });
    await ws.app.close();
    const app = await openApp(ws.config.dataDir);
    const c = connect(app);
    for (let i = 0; i < 5; i++) expect((await c.fail('store.unlock', { passphrase: `guess ${i}` })).code).toBe('wrong-passphrase');
    const limited = await c.fail('store.unlock', { passphrase: STORE_PASSPHRASE });
    expect(limited.code).toBe('rate-limited');
    expect(limited.message).toMatch(/Try again in \d+ s/);
  });

  it('reports a corrupted database file clearly, leaves it untouched and keeps the process up', async () => {
    const ws = await setUpWorkstation({}, { demoData: false });
    await ws.app.close();
    const file = path.join(ws.config.dataDir, 'neuroward.db');
    const bytes = readFileSync(file);
    bytes.fill(0x5a, 0, 8192); // scribble over the first two pages
    writeFileSync(file, bytes);
    const app = await openApp(ws.config.dataDir);
    const c = connect(app);
    const error = await c.fail('store.unlock', { passphrase: STORE_PASSPHRASE });
    expect(error.code).toBe('store-corrupted');
    expect(error.message).toContain(file);
    expect(error.message).toContain('left untouched');
    expect(readFileSync(file).equals(bytes)).toBe(true);
    const status = await c.ok('app.status', {});
    expect(status.store).toBe('error');
    expect(status.storeError?.code).toBe('store-corrupted');
    expect((await c.fail('patients.list', {})).code).toBe('store-corrupted');
  });

  it('says which file is missing when the key file is gone', async () => {
    const ws = await setUpWorkstation({}, { demoData: false });
    await ws.app.close();
    const { rmSync } = await import('node:fs');
    rmSync(path.join(ws.config.dataDir, 'neuroward.keyinfo.json'));
    const app = await openApp(ws.config.dataDir);
    const status = await connect(app).ok('app.status', {});
    expect(status.store).toBe('error');
    expect(status.storeError?.message).toContain('neuroward.keyinfo.json');
  });

  it('leaves no store behind when setup fails half-way', async () => {
    const config = testConfig({ passphrase: { source: 'prompt', env: 'X', fromEnv: null, file: null } });
    const store = new StoreService(config, undefined, () => new Date());
    await store.start();
    await expect(
      store.initialize(STORE_PASSPHRASE, () => {
        throw new Error('power cut during setup');
      }),
    ).rejects.toThrow('power cut');
    expect(readdirSync(config.dataDir).filter((f) => f.startsWith('neuroward.db'))).toEqual([]);
    expect(store.state).toBe('uninitialized');
  });

  it('opens unattended with the passphrase from the environment, and names a wrong one', async () => {
    const dataDir = testConfig().dataDir;
    const env = { NEUROWARD_PASSPHRASE_SOURCE: 'env', NEUROWARD_STORE_PASSPHRASE: 'passphrase from the environment' };
    const first = await openApp(dataDir, env);
    const c = connect(first);
    expect((await c.ok('app.status', {})).passphraseSource).toBe('env');
    // No passphrase field at setup when the source is env; sending one is refused.
    expect((await c.fail('setup.initialize', { storePassphrase: 'typed passphrase!!', admin: ADMIN, demoData: false })).code).toBe('bad-request');
    await c.ok('setup.initialize', { admin: ADMIN, demoData: false });
    await first.close();
    opened.splice(opened.indexOf(first), 1);
    const second = await openApp(dataDir, env);
    expect((await connect(second).ok('app.status', {})).store).toBe('ready');
    const wrong = await openApp(dataDir, { ...env, NEUROWARD_STORE_PASSPHRASE: 'some other passphrase' });
    const status = await connect(wrong).ok('app.status', {});
    expect(status.store).toBe('error');
    expect(status.storeError?.message).toContain('does not open');
  });

  it('creates the key file readable by the owner only', async () => {
    const ws = await setUpWorkstation({}, { demoData: false });
    opened.push(ws.app);
    expect(statSync(path.join(ws.config.dataDir, 'neuroward.keyinfo.json')).mode & 0o077).toBe(0);
    expect(existsSync(path.join(ws.config.dataDir, 'neuroward.db.initializing'))).toBe(false);
  });
});
