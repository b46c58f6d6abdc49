/**
 * Every channel × every role, and no session at all, checked against the POLICY below: a reviewed
 * statement of who may do what, written by hand, not derived from the permission table the dispatcher
 * uses (a wrong role table must fail here). A refusal must be a clean error at the gate, with no
 * domain data read or written and one 'denied' entry in the audit ledger; an allowed call must get past
 * the gate.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHANNEL_NAMES, type ChannelName } from '../../src/shared/ipc.js';
import { ROLES, type Role } from '../../src/shared/roles.js';
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
    'imaging.linkPatient': { studyId: '00000000-0000-4000-8000-000000000000', patientId },
    'imaging.volume': { studyId: '00000000-0000-4000-8000-000000000000', volume: 'fa' },
    'analysis.run': { studyId: '00000000-0000-4000-8000-000000000000' },
    'analysis.cancel': { jobId: '00000000-0000-4000-8000-000000000000' },
    'analysis.jobs': {},
    'analysis.reads': { studyId: '00000000-0000-4000-8000-000000000000' },
    'analysis.report': { readId: '00000000-0000-4000-8000-000000000000' },
    'analysis.decide': { readId: '00000000-0000-4000-8000-000000000000', decision: 'reject', comment: 'rbac probe' },
    'notifications.list': {},
    'notifications.markRead': { id: '00000000-0000-4000-8000-000000000000' },
    'schedule.resources': {},
    'schedule.reminders': {},
    'patients.setContact': { patientId, channel: 'email', address: 'rbac.probe@example.org', consent: true },
    'patients.contacts': { patientId },
    'schedule.createResource': { kind: 'room', name: `RBAC room ${username}`, timeZone: 'Europe/London', slotMinutes: 15 },
    'schedule.addAvailability': { resourceId: '00000000-0000-4000-8000-000000000000', rrule: 'FREQ=WEEKLY;BYDAY=MO', startTime: '09:00', endTime: '17:00', validFrom: '2030-01-07' },
    'schedule.addBlock': { resourceId: '00000000-0000-4000-8000-000000000000', kind: 'block', start: '2030-01-07T12:00:00Z', end: '2030-01-07T13:00:00Z', reason: 'rbac probe' },
    'schedule.findSlots': { resources: [['00000000-0000-4000-8000-000000000000']], durationMinutes: 30, from: '2030-01-07T00:00:00Z', to: '2030-01-08T00:00:00Z' },
    'schedule.hold': { patientId, start: '2030-01-07T09:00:00Z', end: '2030-01-07T09:30:00Z', resourceIds: ['00000000-0000-4000-8000-000000000000'] },
    'schedule.book': { patientId, service: 'rbac probe', start: '2030-01-07T09:00:00Z', end: '2030-01-07T09:30:00Z', resourceIds: ['00000000-0000-4000-8000-000000000000'] },
    'schedule.reschedule': { appointmentId: '00000000-0000-4000-8000-000000000000', version: 1, start: '2030-01-07T10:00:00Z', end: '2030-01-07T10:30:00Z' },
    'schedule.setStatus': { appointmentId: '00000000-0000-4000-8000-000000000000', version: 1, status: 'arrived' },
    'schedule.appointments': { from: '2030-01-07T00:00:00Z', to: '2030-01-08T00:00:00Z' },
    'adt.admit': { patientId, bedKey: 'RBAC/1', reason: 'rbac probe' },
    'adt.transfer': { patientId, toBedKey: 'RBAC/2' },
    'adt.discharge': { patientId, reason: 'rbac probe' },
    'adt.current': { ward: 'RBAC' },
    'adt.history': { patientId },
    'patients.vitals': { patientId, hours: 1 },
    'ward.board': {},
    'ward.bedHistory': { bedKey: 'A/1', minutes: 5 },
    'ward.setSpo2Scale': { bedKey: 'A/1', scale: 2, reason: 'hypercapnic respiratory failure, target 88-92%' },
    'alarms.acknowledge': { alarmId: 'A/1/no-data/0', reason: 'checked the patient' },
    'alarms.pause': { alarmId: 'A/1/no-data/0', reason: 'repositioning probe', seconds: 60 },
    'monitors.list': {},
    'monitors.create': { ward: 'RBAC', beds: ['1'], label: 'rbac probe' },
    'monitors.revoke': { id: '00000000-0000-4000-8000-000000000000' },
    'alarms.log': { bedKey: 'A/1', hours: 24 },
    'audit.list': { limit: 5 },
    'audit.verify': {},
    'patients.update': { id: patientId, version: 1, givenName: 'Rbac' },
    'sync.status': {},
    'sync.runNow': {},
    'sync.conflicts': {},
    'sync.resolveConflict': { id: 999_999, choice: 'keep-mine' },
    'sync.deadLetters': {},
    'sync.discardDeadLetter': { id: 999_999 },
    'sync.requeueDeadLetter': { id: 999_999 },
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

type Subject = Role | 'no session';
const EVERYONE: readonly Subject[] = ['no session', 'admin', 'radiologist', 'physician', 'nurse', 'receptionist'];
const STAFF: readonly Subject[] = ['admin', 'radiologist', 'physician', 'nurse', 'receptionist'];
const CLINICAL: readonly Subject[] = ['radiologist', 'physician', 'nurse', 'receptionist'];
const WARD: readonly Subject[] = ['physician', 'nurse'];

/**
 * THE POLICY (reviewed; change it only with the reason in the commit): who gets past the gate of each
 * channel. The administrator runs accounts, monitors and the audit trail and reads no clinical data;
 * reception reads and registers patients but sees no images or vitals; radiologists import and read
 * images; the ward (nurses, physicians) reads vitals and alarms; only a physician changes a patient's
 * NEWS2 scale; break-glass is for clinicians who treat.
 */
const POLICY: Record<ChannelName, readonly Subject[]> = {
  'app.status': EVERYONE,
  'store.unlock': EVERYONE,
  'setup.initialize': EVERYONE, // public, refused by the store once set up
  'auth.signIn': EVERYONE,
  'auth.resume': EVERYONE,
  'auth.signOut': STAFF,
  'auth.lock': STAFF,
  'auth.unlock': STAFF,
  'auth.touch': STAFF,
  'auth.changePassword': STAFF,
  'auth.breakGlass': ['radiologist', 'physician', 'nurse'],
  'auth.endBreakGlass': STAFF,
  'system.connectivity': STAFF,
  'patients.list': CLINICAL,
  'patients.get': CLINICAL,
  'patients.create': ['physician', 'receptionist'],
  'users.list': ['admin'],
  'users.create': ['admin'],
  'users.update': ['admin'],
  'users.resetPassword': ['admin'],
  'users.unlock': ['admin'],
  'audit.list': ['admin'],
  'audit.verify': ['admin'],
  'imaging.browse': ['radiologist'],
  'imaging.scan': ['radiologist'],
  'imaging.import': ['radiologist'],
  'imaging.jobs': ['radiologist'],
  'imaging.studies': ['radiologist', 'physician'],
  // Linking a study stored without a patient is part of the radiologist's import (issue 8).
  'imaging.linkPatient': ['radiologist'],
  'imaging.volume': ['radiologist', 'physician'],
  // The AI read: radiologists run it and decide on it; physicians read it (and its report) as they read images.
  'analysis.run': ['radiologist'],
  'analysis.cancel': ['radiologist'],
  'analysis.jobs': ['radiologist'],
  'analysis.reads': ['radiologist', 'physician'],
  'analysis.report': ['radiologist', 'physician'],
  'analysis.decide': ['radiologist'],
  // Each role's own inbox (what a notice says about a patient needs patients:read).
  'notifications.list': ['radiologist', 'physician', 'nurse', 'receptionist'],
  'notifications.markRead': ['radiologist', 'physician', 'nurse', 'receptionist'],
  'alarms.log': WARD,
  // Admissions (who is in which bed, so whose readings they are) are the ward's clinical staff's.
  // Scheduling: reception and physicians book; nurses see the appointments of the patients they care
  // for; radiologists see the scanner's list.
  'schedule.resources': ['radiologist', 'physician', 'nurse', 'receptionist'],
  'schedule.reminders': ['radiologist', 'physician', 'nurse', 'receptionist'],
  // A patient's contacts and consent: those who register and edit records.
  'patients.setContact': ['physician', 'receptionist'],
  'patients.contacts': CLINICAL,
  'schedule.createResource': ['physician', 'receptionist'],
  'schedule.addAvailability': ['physician', 'receptionist'],
  'schedule.addBlock': ['physician', 'receptionist'],
  'schedule.findSlots': ['radiologist', 'physician', 'nurse', 'receptionist'],
  'schedule.hold': ['physician', 'receptionist'],
  'schedule.book': ['physician', 'receptionist'],
  'schedule.reschedule': ['physician', 'receptionist'],
  'schedule.setStatus': ['physician', 'receptionist'],
  'schedule.appointments': ['radiologist', 'physician', 'nurse', 'receptionist'],
  'adt.admit': WARD,
  'adt.transfer': WARD,
  'adt.discharge': WARD,
  'adt.current': WARD,
  'adt.history': WARD,
  'patients.vitals': WARD,
  'ward.board': WARD,
  'ward.bedHistory': WARD,
  'ward.setSpo2Scale': ['physician'],
  'alarms.acknowledge': WARD,
  'alarms.pause': WARD,
  'monitors.list': ['admin'],
  'monitors.create': ['admin'],
  'monitors.revoke': ['admin'],
  'patients.update': ['physician', 'receptionist'],
  // Sync: everyone sees whether their work has left the workstation; the administrator (the link) and
  // the physician (what a record says) act on it. A conflict's content needs patients:read besides.
  'sync.status': STAFF,
  'sync.conflicts': STAFF,
  'sync.deadLetters': STAFF,
  'sync.runNow': ['admin', 'physician'],
  'sync.resolveConflict': ['admin', 'physician'],
  'sync.discardDeadLetter': ['admin', 'physician'],
  'sync.requeueDeadLetter': ['admin', 'physician'],
};

function allowed(channel: ChannelName, role: Role | null): boolean {
  return POLICY[channel].includes(role ?? 'no session');
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
  it('has an example request and a reviewed policy row for every channel, and no row for a channel that does not exist', () => {
    for (const channel of CHANNEL_NAMES) expect(example(channel, 'x'), channel).toBeDefined();
    expect(Object.keys(POLICY).sort()).toEqual([...CHANNEL_NAMES].sort());
  });

  it('states the facts a reviewer checks first', () => {
    // Each line is a sentence of the policy, so a change to it is a visible change of the rules.
    expect(allowed('audit.list', 'nurse')).toBe(false); // a nurse cannot read the audit trail
    expect(allowed('imaging.volume', 'receptionist')).toBe(false); // reception opens no images
    expect(allowed('ward.board', 'receptionist')).toBe(false); // nor vitals
    expect(allowed('patients.get', 'admin')).toBe(false); // the administrator reads no clinical record
    expect(allowed('imaging.volume', 'admin')).toBe(false);
    expect(allowed('ward.board', 'admin')).toBe(false);
    expect(allowed('alarms.acknowledge', 'radiologist')).toBe(false); // alarms are the ward's
    expect(allowed('ward.setSpo2Scale', 'nurse')).toBe(false); // the NEWS2 scale is a physician's decision
    expect(allowed('adt.admit', 'nurse')).toBe(true); // nurses put patients in beds
    expect(allowed('adt.admit', 'receptionist')).toBe(false); // reception registers patients, it does not place them in beds
    expect(allowed('adt.discharge', 'radiologist')).toBe(false);
    expect(allowed('patients.vitals', 'receptionist')).toBe(false); // nor reads their vitals
    expect(allowed('imaging.import', 'physician')).toBe(false); // only radiologists import
    // A radiologist registers a patient only from an imported study's DICOM identity, inside imaging.import
    // or imaging.linkPatient (permission patients:create-from-study), never through patients.create.
    expect(allowed('patients.create', 'radiologist')).toBe(false);
    expect(allowed('imaging.linkPatient', 'physician')).toBe(false);
    expect(allowed('analysis.decide', 'physician')).toBe(false); // a radiologist decides on the AI read
    expect(allowed('analysis.reads', 'receptionist')).toBe(false);
    expect(allowed('monitors.create', 'nurse')).toBe(false); // only the administrator issues monitor credentials
    expect(allowed('users.create', 'physician')).toBe(false);
    expect(allowed('auth.breakGlass', 'receptionist')).toBe(false);
    expect(CHANNEL_NAMES.filter((c) => allowed(c, null)).sort()).toEqual(['app.status', 'auth.resume', 'auth.signIn', 'setup.initialize', 'store.unlock']);
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
