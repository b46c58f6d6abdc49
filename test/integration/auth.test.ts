/** Sign-in, lockout, idle lock, connection-bound sessions, break-glass, first run. */
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/main/app/app.js';
import type { NeurowardApp } from '../../src/main/app/types.js';
import { ADMIN, STORE_PASSPHRASE, connect, setUpWorkstation, testConfig, type Workstation } from '../support/harness.js';

const open: (NeurowardApp | Workstation)[] = [];
afterEach(async () => {
  for (const x of open.splice(0)) await ('app' in x ? x.app : x).close();
});
async function workstation(...args: Parameters<typeof setUpWorkstation>) {
  const ws = await setUpWorkstation(...args);
  open.push(ws);
  return ws;
}
async function lastAudit(ws: Workstation, n = 5) {
  const { connection } = await ws.signInAs('admin');
  return (await connection.ok('audit.list', { limit: n })).entries;
}

describe('first run', () => {
  it('has no account and no default password until the administrator is created', async () => {
    const app = await createApp({ config: testConfig(), host: 'headless', log: () => undefined, announce: () => undefined });
    open.push(app);
    const c = connect(app);
    const status = await c.ok('app.status', {});
    expect(status).toMatchObject({ store: 'uninitialized', setupRequired: true, session: null, passphraseSource: 'prompt' });
    for (const username of ['admin', 'administrator', 'root']) {
      expect((await c.fail('auth.signIn', { username, password: 'admin' })).code).toBe('store-uninitialized');
    }
    // Weak admin passwords and a missing store passphrase are refused field by field.
    const weak = await c.fail('setup.initialize', { storePassphrase: STORE_PASSPHRASE, admin: { ...ADMIN, password: 'short' }, demoData: false });
    expect(weak.code).toBe('bad-request');
    expect(weak.issues).toContainEqual({ path: 'admin.password', message: 'at least 10 characters' });
    expect((await c.fail('setup.initialize', { admin: ADMIN, demoData: false })).issues).toEqual([{ path: 'storePassphrase', message: 'required' }]);
    const done = await c.ok('setup.initialize', { storePassphrase: STORE_PASSPHRASE, admin: ADMIN, demoData: true });
    expect(done.status).toMatchObject({ store: 'ready', setupRequired: false });
    expect(done.demoAccounts.map((a) => a.role).sort()).toEqual(['nurse', 'physician', 'radiologist', 'receptionist']);
    expect(new Set(done.demoAccounts.map((a) => a.password)).size).toBe(4);
    // A second setup is refused.
    expect((await c.fail('setup.initialize', { admin: ADMIN, demoData: false })).code).toBe('conflict');
  });
});

describe('sign-in', () => {
  it('locks an account after 5 failures, audits it, and an admin can unlock it', async () => {
    const ws = await workstation();
    const nurse = ws.demoAccounts.find((a) => a.role === 'nurse')!;
    const c = connect(ws.app);
    for (let i = 0; i < 5; i++) expect(await c.fail('auth.signIn', { username: nurse.username, password: 'wrong password' })).toEqual({ code: 'unauthenticated', message: 'Wrong username or password.' });
    const locked = await c.fail('auth.signIn', { username: nurse.username, password: nurse.password });
    expect(locked.code).toBe('account-locked');
    expect(locked.message).toMatch(/locked after 5 failed sign-ins until/);
    const { connection: admin } = await ws.signInAs('admin');
    const users = (await admin.ok('users.list', {})).users;
    const user = users.find((u) => u.username === nurse.username)!;
    expect(user.lockedUntil).not.toBeNull();
    const entries = (await admin.ok('audit.list', { limit: 20 })).entries;
    expect(entries.filter((e) => e.action === 'auth.sign-in' && e.outcome === 'denied' && e.actorUsername === nurse.username).length).toBeGreaterThanOrEqual(6);
    expect(entries.some((e) => e.action === 'auth.account-locked')).toBe(true);
    await admin.ok('users.unlock', { id: user.id });
    await ws.signIn(nurse.username, nurse.password);
    // Once unlocked, a lockout expires by itself too.
    for (let i = 0; i < 5; i++) await c.fail('auth.signIn', { username: nurse.username, password: 'wrong again!' });
    ws.clock.advance(16 * 60_000);
    await ws.signIn(nurse.username, nurse.password);
  });

  it('gives the same answer for an unknown user as for a wrong password', async () => {
    const ws = await workstation({}, { demoData: false });
    const c = connect(ws.app);
    const unknown = await c.fail('auth.signIn', { username: 'nobody', password: 'whatever password' });
    const wrong = await c.fail('auth.signIn', { username: ADMIN.username, password: 'whatever password' });
    expect(unknown).toEqual(wrong);
  });

  it('refuses disabled accounts and ends their sessions', async () => {
    const ws = await workstation();
    const { connection: admin } = await ws.signInAs('admin');
    const { connection: nurse } = await ws.signInAs('nurse');
    const nurseUser = (await admin.ok('users.list', {})).users.find((u) => u.role === 'nurse')!;
    await admin.ok('users.update', { id: nurseUser.id, disabled: true });
    expect(nurse.events.at(-1)).toMatchObject({ event: 'session.changed', payload: { session: null, reason: 'account disabled' } });
    expect((await nurse.fail('patients.list', {})).code).toBe('unauthenticated');
    const account = ws.demoAccounts.find((a) => a.role === 'nurse')!;
    expect((await connect(ws.app).fail('auth.signIn', { username: account.username, password: account.password })).code).toBe('unauthenticated');
  });

  it('keeps at least one active administrator', async () => {
    const ws = await workstation({}, { demoData: false });
    const { connection: admin, session } = await ws.signInAs('admin');
    const error = await admin.fail('users.update', { id: session.user.id, role: 'nurse' });
    expect(error.code).toBe('conflict');
  });

  it('makes accounts created by an admin change their password first', async () => {
    const ws = await workstation({}, { demoData: false });
    const { connection: admin } = await ws.signInAs('admin');
    await admin.ok('users.create', { username: 'new.physician', displayName: 'New Physician', role: 'physician', password: 'temporary password 1' });
    const { connection, session } = await ws.signIn('new.physician', 'temporary password 1');
    expect(session.mustChangePassword).toBe(true);
    expect((await connection.fail('patients.list', {})).message).toBe('Change your password before continuing.');
    const changed = await connection.ok('auth.changePassword', { currentPassword: 'temporary password 1', newPassword: 'my own long password' });
    expect(changed.mustChangePassword).toBe(false);
    await connection.ok('patients.list', {});
  });
});

describe('sessions', () => {
  it('are bound to their connection: another window has no session', async () => {
    const ws = await workstation();
    const { connection } = await ws.signInAs('physician');
    await connection.ok('patients.list', {});
    const other = connect(ws.app);
    expect((await other.fail('patients.list', {})).code).toBe('unauthenticated');
  });

  it('lock after the idle time, push the change, and unlock with the password', async () => {
    const ws = await workstation();
    const { connection } = await ws.signInAs('nurse');
    const nurse = ws.demoAccounts.find((a) => a.role === 'nurse')!;
    ws.clock.advance(ws.config.security.idleLockMs + 1000);
    const refused = await connection.fail('patients.list', {});
    expect(refused.code).toBe('session-locked');
    expect(connection.events.some((e) => e.event === 'session.changed' && (e.payload as { reason: string }).reason === 'locked after inactivity')).toBe(true);
    expect((await connection.fail('auth.unlock', { password: 'not it at all' })).code).toBe('unauthenticated');
    const unlocked = await connection.ok('auth.unlock', { password: nurse.password });
    expect(unlocked.locked).toBe(false);
    await connection.ok('patients.list', {});
  });

  it('do not stay unlocked through background polling', async () => {
    const ws = await workstation();
    const { connection } = await ws.signInAs('nurse');
    for (let i = 0; i < 25; i++) {
      ws.clock.advance(30_000);
      await connection.call('system.connectivity', {});
    }
    expect((await connection.fail('patients.list', {})).code).toBe('session-locked');
  });

  it('end at their maximum length', async () => {
    const ws = await workstation();
    const { connection, session } = await ws.signInAs('nurse');
    ws.clock.advance(ws.config.security.sessionMs + 1);
    expect((await connection.fail('patients.list', {})).code).toBe('unauthenticated');
    expect((await connect(ws.app).fail('auth.resume', { token: session.token })).code).toBe('session-expired');
  });

  it('resume after a reload only from a new window, and come back locked', async () => {
    const ws = await workstation();
    const { connection, session } = await ws.signInAs('radiologist');
    const thief = connect(ws.app);
    expect(await thief.fail('auth.resume', { token: session.token })).toEqual({ code: 'forbidden', message: 'This session is open in another window.' });
    expect((await thief.fail('auth.resume', { token: 'A'.repeat(43) })).code).toBe('unauthenticated');
    ws.app.connectionClosed(connection.id);
    const reloaded = connect(ws.app);
    const resumed = await reloaded.ok('auth.resume', { token: session.token });
    expect(resumed.locked).toBe(true);
    expect((await reloaded.fail('patients.list', {})).code).toBe('session-locked');
    const entries = await lastAudit(ws, 30);
    expect(entries.some((e) => e.action === 'auth.resume' && e.outcome === 'denied')).toBe(true);
  });
});

describe('break-glass', () => {
  it('opens a restricted record for a limited time, with a typed reason, audited as break-glass', async () => {
    const ws = await workstation();
    const { connection } = await ws.signInAs('nurse');
    const hidden = (await connection.ok('patients.list', {})).patients.find((p) => p.restricted)!;
    expect(hidden.name).toBeNull();
    expect((await connection.ok('patients.list', { query: 'Confidentia' })).patients).toEqual([]);
    expect((await connection.fail('patients.get', { id: hidden.id })).code).toBe('forbidden');
    expect((await connection.fail('auth.breakGlass', { reason: 'because', minutes: 10 })).issues?.[0]?.path).toBe('reason');
    const reason = 'Patient collapsed on ward 4, need allergy history now';
    const session = await connection.ok('auth.breakGlass', { reason, minutes: 10 });
    expect(session.breakGlass?.reason).toBe(reason);
    const record = await connection.ok('patients.get', { id: hidden.id });
    expect(record.familyName).toBe('Confidentia');
    ws.clock.advance(10 * 60_000 + 1000);
    await connection.ok('auth.touch', {}).catch(() => undefined);
    expect((await connection.fail('patients.get', { id: hidden.id })).code).toBe('session-locked');

    const entries = await lastAudit(ws, 30);
    const grant = entries.find((e) => e.action === 'auth.break-glass')!;
    expect(grant).toMatchObject({ outcome: 'success', breakGlass: true, actorRole: 'nurse' });
    const read = entries.find((e) => e.action === 'patient.read' && e.outcome === 'success' && e.patientId === hidden.id)!;
    expect(read.breakGlass).toBe(true);
    expect(entries.some((e) => e.action === 'patient.read' && e.outcome === 'denied' && e.patientId === hidden.id)).toBe(true);
  });

  it('is not available to receptionists', async () => {
    const ws = await workstation();
    const { connection } = await ws.signInAs('receptionist');
    expect((await connection.fail('auth.breakGlass', { reason: 'I would like to see this record please', minutes: 5 })).code).toBe('forbidden');
  });
});
