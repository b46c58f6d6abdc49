/**
 * Sign-in abuse (security review, issue 7): per-source back-off, lockouts that do not reveal which
 * names exist, a lockout through the lock screen audited like one at sign-in, typed usernames kept out
 * of the ledger, wrong store passphrases counted and written at the next unlock, first-run setup only
 * from a connection holding the launch key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/main/app/app.js';
import { openEncryptedDatabase } from '../../src/main/store/database.js';
import { derivePassphraseKey, readKeyInfo } from '../../src/main/store/keys.js';
import { ADMIN, STORE_PASSPHRASE, connect, setUpWorkstation, testConfig, type Workstation } from '../support/harness.js';

let ws: Workstation;
let key: Buffer;

beforeAll(async () => {
  ws = await setUpWorkstation();
  key = await derivePassphraseKey(STORE_PASSPHRASE, readKeyInfo(`${ws.config.dataDir}/neuroward.keyinfo.json`)!);
});
afterAll(async () => ws?.app.close());

/** The ledger's rows as stored (detail included), read through a second handle on the encrypted file. */
function ledgerRows(dataDir = ws.config.dataDir, storeKey = key): { seq: number; action: string; outcome: string; outcome_detail: string | null; actor_username: string | null; detail_json: string | null; recorded_at: string }[] {
  const db = openEncryptedDatabase(`${dataDir}/neuroward.db`, storeKey, { create: false });
  try {
    return db.prepare('SELECT seq, action, outcome, outcome_detail, actor_username, detail_json, recorded_at FROM audit_log ORDER BY seq').all() as never;
  } finally {
    db.close();
  }
}

describe('lockout', () => {
  it('answers a name that is no account exactly as it answers a real one, attempt for attempt', async () => {
    const nurse = ws.demoAccounts.find((a) => a.role === 'nurse')!;
    const answers = async (username: string) => {
      const connection = connect(ws.app);
      const seen: string[] = [];
      for (let i = 0; i < 7; i += 1) {
        const error = await connection.fail('auth.signIn', { username, password: 'wrong password, attempt' });
        // The lockout time is part of the message; compare the wording without it.
        seen.push(`${error.code}: ${error.message.replace(/\d\d:\d\d:\d\d/, 'HH:MM:SS')}`);
      }
      return seen;
    };
    const real = await answers(nurse.username);
    const unknown = await answers('no.such.person');
    expect(unknown).toEqual(real);
    expect(real.slice(0, 5)).toEqual(Array(5).fill('unauthenticated: Wrong username or password.'));
    expect(real[5]).toBe('account-locked: This account is locked after 5 failed sign-ins until HH:MM:SS. An administrator can unlock it sooner.');
    await (await ws.signInAs('admin')).connection.ok('users.unlock', { id: (await (await ws.signInAs('admin')).connection.ok('users.list', {})).users.find((u) => u.username === nurse.username)!.id });
  });

  it('never writes a typed name that is no account into the ledger (it may be a password typed in the wrong field)', async () => {
    const typedByMistake = 'Sunflower-Ledger-9731';
    await connect(ws.app).fail('auth.signIn', { username: typedByMistake, password: 'whatever was typed next' });
    const rows = ledgerRows();
    expect(rows.some((r) => JSON.stringify(r).includes(typedByMistake))).toBe(false);
    const last = rows.filter((r) => r.action === 'auth.sign-in' && r.outcome === 'denied').at(-1)!;
    expect(JSON.parse(last.detail_json!)).toEqual({ username: 'unknown' });
    // A real account's name is kept, so an administrator sees whose password was tried.
    const physician = ws.demoAccounts.find((a) => a.role === 'physician')!;
    await connect(ws.app).fail('auth.signIn', { username: physician.username, password: 'not the physician password' });
    const named = ledgerRows().filter((r) => r.action === 'auth.sign-in' && r.outcome === 'denied').at(-1)!;
    expect(JSON.parse(named.detail_json!)).toEqual({ username: physician.username });
  });

  it('audits a lockout reached on the lock screen (auth.unlock) like one reached at sign-in', async () => {
    const { connection, session } = await ws.signInAs('radiologist');
    await connection.ok('auth.lock', {});
    for (let i = 0; i < 5; i += 1) await connection.fail('auth.unlock', { password: `not it ${i}` });
    const entry = ledgerRows().filter((r) => r.action === 'auth.account-locked').at(-1)!;
    expect(entry).toMatchObject({ outcome: 'denied', actor_username: session.user.username });
    expect(JSON.parse(entry.detail_json!)).toMatchObject({ via: 'auth.unlock', failures: 5 });
    // The session ended with the lockout.
    expect((await connection.fail('auth.touch', {})).code).toBe('unauthenticated');
  });
});

describe('per-source back-off', () => {
  it('after 10 failures from one source each further attempt waits, doubling, and the wait ends', async () => {
    const connection = connect(ws.app);
    for (let i = 0; i < 10; i += 1) expect((await connection.fail('auth.signIn', { username: `spray.${i}`, password: 'password guess' })).code).toBe('unauthenticated');
    // The 11th failure starts the back-off (1 s); the next attempt within it is refused without checking anything.
    expect((await connection.fail('auth.signIn', { username: 'spray.10', password: 'password guess' })).code).toBe('unauthenticated');
    const limited = await connection.fail('auth.signIn', { username: ADMIN.username, password: ADMIN.password });
    expect(limited).toMatchObject({ code: 'rate-limited', message: 'Too many failed attempts from this window. Try again in 1 s.' });
    ws.clock.advance(1_001);
    expect((await connection.fail('auth.signIn', { username: 'spray.11', password: 'password guess' })).code).toBe('unauthenticated');
    expect((await connection.fail('auth.signIn', { username: ADMIN.username, password: ADMIN.password })).message).toMatch(/Try again in 2 s/);
    ws.clock.advance(2_001);
    // The right password after the wait signs in, and clears the back-off.
    expect((await connection.call('auth.signIn', { username: ADMIN.username, password: ADMIN.password })).ok).toBe(true);
    // Another source was never held up.
    expect((await connect(ws.app).call('auth.signIn', { username: ADMIN.username, password: ADMIN.password })).ok).toBe(true);
  });
});

describe('the store passphrase', () => {
  it('wrong passphrases are throttled while the store is locked and written to the ledger at the next unlock', async () => {
    const config = testConfig({ passphrase: { source: 'prompt', env: 'UNUSED', fromEnv: null, file: null } });
    const first = await createApp({ config, host: 'headless', log: () => undefined, announce: () => undefined });
    await connect(first).ok('setup.initialize', { storePassphrase: STORE_PASSPHRASE, admin: ADMIN, demoData: false });
    await first.close();

    const app = await createApp({ config, host: 'headless', log: () => undefined, announce: () => undefined });
    try {
      const client = connect(app);
      for (let i = 0; i < 3; i += 1) expect((await client.fail('store.unlock', { passphrase: `wrong passphrase ${i}` })).code).toBe('wrong-passphrase');
      await client.ok('store.unlock', { passphrase: STORE_PASSPHRASE });
      const storeKey = await derivePassphraseKey(STORE_PASSPHRASE, readKeyInfo(`${config.dataDir}/neuroward.keyinfo.json`)!);
      const denied = ledgerRows(config.dataDir, storeKey).filter((r) => r.action === 'store.unlock' && r.outcome === 'denied');
      expect(denied).toHaveLength(3);
      for (const row of denied) expect(row.outcome_detail).toMatch(/^wrong-passphrase:/);
      // The passphrases themselves are nowhere in the ledger.
      expect(JSON.stringify(ledgerRows(config.dataDir, storeKey))).not.toContain('wrong passphrase');
    } finally {
      await app.close();
    }
  });
});

describe('first-run setup', () => {
  it('is refused to a connection that does not hold the launch key, and nothing is created', async () => {
    const app = await createApp({ config: testConfig({ passphrase: { source: 'prompt', env: 'UNUSED', fromEnv: null, file: null } }), host: 'headless', log: () => undefined, announce: () => undefined });
    try {
      const stranger = connect(app, { launchVerified: false });
      const refused = await stranger.fail('setup.initialize', { storePassphrase: STORE_PASSPHRASE, admin: ADMIN, demoData: true });
      expect(refused.code).toBe('forbidden');
      expect(refused.message).toMatch(/address it printed at start/);
      expect((await stranger.ok('app.status', {})).setupRequired).toBe(true);
    } finally {
      await app.close();
    }
  });
});
