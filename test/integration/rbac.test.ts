/**
 * Every channel × every role, and no session at all. A refusal must be a clean error at the gate,
 * with no domain data read or written and one 'denied' entry in the audit ledger; an allowed call must
 * get past the gate.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHANNEL_NAMES, channels, type ChannelName } from '../../src/shared/ipc.js';
import { ROLES, roleHasPermission, type Role } from '../../src/shared/roles.js';
import { GATE } from '../../src/main/app/dispatcher.js';
import { repositories } from '../../src/main/app/handlers.js';
import { openEncryptedDatabase } from '../../src/main/store/database.js';
import { connect, setUpWorkstation, ADMIN, type TestConnection, type Workstation } from '../support/harness.js';

let ws: Workstation;
let patientId: string;
let targetUserId: string;
const passwords = new Map<string, string>();

/** A valid request for every channel: a new channel without an example fails this file. */
function example(channel: ChannelName, username: string): unknown {
  const examples: Record<ChannelName, unknown> = {
    'app.status': {},
    'store.unlock': { passphrase: 'not the passphrase' },
    'setup.initialize': { admin: { username: 'second.admin', displayName: 'Second', password: 'another long password' }, demoData: false },
    'auth.signIn': { username: 'nobody.here', password: 'wrong password' },
    'auth.resume': { token: 'forged-token-value' },
    'auth.signOut': {},
    'auth.lock': {},
    'auth.unlock': { password: passwords.get(username) ?? 'x' },
    'auth.touch': {},
    'auth.changePassword': { currentPassword: passwords.get(username) ?? 'x', newPassword: `${passwords.get(username) ?? 'x'}!2` },
    'auth.breakGlass': { reason: 'unconscious patient in resus, no next of kin', minutes: 5 },
    'auth.endBreakGlass': {},
    'system.connectivity': {},
    'patients.list': { query: 'Syn' },
    'patients.get': { id: patientId },
    'patients.create': { givenName: 'Rbac', familyName: 'Probe', birthDate: '1970-01-01', sex: 'unknown' },
    'users.list': {},
    'users.create': { username: `probe.${Math.random().toString(36).slice(2, 8)}`, displayName: 'Probe', role: 'nurse', password: 'a long probe password' },
    'users.update': { id: targetUserId, displayName: 'Target User' },
    'users.resetPassword': { id: targetUserId, password: 'target reset password' },
    'users.unlock': { id: targetUserId },
    'imaging.browse': {},
    'imaging.scan': { path: '/nonexistent-for-rbac' },
    'imaging.import': { path: '/nonexistent-for-rbac' },
    'imaging.jobs': {},
    'imaging.studies': {},
    'imaging.volume': { studyId: '00000000-0000-4000-8000-000000000000', volume: 'fa' },
    'ward.board': {},
    'ward.bedHistory': { bedKey: 'A/1', minutes: 5 },
    'ward.setSpo2Scale': { bedKey: 'A/1', scale: 2, reason: 'hypercapnic respiratory failure, target 88-92%' },
    'alarms.acknowledge': { alarmId: 'A/1/no-data/0', reason: 'checked the patient' },
    'alarms.pause': { alarmId: 'A/1/no-data/0', reason: 'repositioning probe', seconds: 60 },
    'audit.list': { limit: 5 },
    'audit.verify': {},
  };
  return examples[channel];
}

function domainFingerprint(): string {
  const db = openEncryptedDatabase(`${ws.config.dataDir}/neuroward.db`, keyOf(), { create: false });
  try {
    const hash = createHash('sha256');
    for (const table of ['users', 'patients', 'outbox']) hash.update(JSON.stringify(db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all()));
    return hash.digest('hex');
  } finally {
    db.close();
  }
}
let keyOf: () => Buffer;

function allowed(channel: ChannelName, role: Role | null): boolean {
  const permission = channels[channel].permission;
  if (permission === 'public') return true;
  if (role === null) return false;
  if (permission === 'session' || permission === 'active-session') return true;
  if (permission === 'patients:read-restricted') return false;
  return roleHasPermission(role, permission);
}

beforeAll(async () => {
  ws = await setUpWorkstation();
  for (const account of ws.demoAccounts) passwords.set(account.username, account.password);
  passwords.set(ADMIN.username, ADMIN.password);
  const { connection } = await ws.signInAs('admin');
  const target = await connection.ok('users.create', { username: 'target.user', displayName: 'Target User', role: 'nurse', password: 'target initial password' });
  targetUserId = target.id;
  const { connection: physician } = await ws.signInAs('physician');
  patientId = (await physician.ok('patients.list', { query: 'Synthetica' })).patients[0]!.id;
  // The tests read the encrypted file through a second handle with the same key.
  const { derivePassphraseKey, readKeyInfo } = await import('../../src/main/store/keys.js');
  const key = await derivePassphraseKey('long enough store passphrase', readKeyInfo(`${ws.config.dataDir}/neuroward.keyinfo.json`)!);
  keyOf = () => key;
});
afterAll(async () => ws?.app.close());

const subjects: (Role | null)[] = [...ROLES, null];
const cases = CHANNEL_NAMES.flatMap((channel) => subjects.map((role) => ({ channel, role })));

describe(`RBAC: ${CHANNEL_NAMES.length} channels × ${subjects.length} subjects (5 roles + no session) = ${cases.length} cases`, () => {
  it('has an example request for every channel', () => {
    for (const channel of CHANNEL_NAMES) expect(example(channel, 'x'), channel).toBeDefined();
  });

  it.each(cases)('$channel as $role', async ({ channel, role }) => {
    let connection: TestConnection;
    let username = '';
    if (role === null) connection = connect(ws.app);
    else {
      username = role === 'admin' ? ADMIN.username : `demo.${role}`;
      ({ connection } = await ws.signIn(username, passwords.get(username)!));
    }
    const audit = () => repositories(openAuditDb(), () => new Date());
    const before = { fingerprint: domainFingerprint(), auditCount: countAudit() };
    const envelope = await connection.raw(channel, example(channel, username));

    if (allowed(channel, role)) {
      if (!envelope.ok) {
        const gate = (envelope.error.code === 'unauthenticated' && envelope.error.message === GATE.noSession) || (envelope.error.code === 'forbidden' && envelope.error.message.startsWith(GATE.rolePrefix));
        expect(gate, `${channel} as ${role} was refused at the gate: ${envelope.error.message}`).toBe(false);
      }
      if (channel === 'auth.changePassword' && envelope.ok) passwords.set(username, `${passwords.get(username)}!2`);
    } else {
      expect(envelope.ok).toBe(false);
      if (envelope.ok) return;
      expect(envelope.error.code).toBe(role === null ? 'unauthenticated' : 'forbidden');
      expect(envelope.error.message).toEqual(role === null ? GATE.noSession : expect.stringContaining(GATE.rolePrefix));
      expect(envelope).not.toHaveProperty('value');
      expect(domainFingerprint(), 'domain data changed by a refused call').toBe(before.fingerprint);
      const after = countAudit();
      expect(after).toBe(before.auditCount + 1);
      const last = audit().ledger.list({ limit: 1 }).entries[0]!;
      expect(last).toMatchObject({ outcome: 'denied', channel, actorUsername: role === null ? null : username });
    }
  });
});

function openAuditDb() {
  return openEncryptedDatabase(`${ws.config.dataDir}/neuroward.db`, keyOf(), { create: false });
}
function countAudit(): number {
  const db = openAuditDb();
  try {
    return (db.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n;
  } finally {
    db.close();
  }
}
