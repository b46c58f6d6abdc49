/**
 * The alarm log end to end inside the app (security finding 7 of issue 7): a monitor's readings raise a
 * high NEWS2 alarm, which escalates; a nurse pauses and acknowledges it; it clears. Every event is in
 * the log (per bed and per patient, in order, with who and why) and in the audit ledger; an
 * acknowledgement whose transaction fails leaves neither, and the alarm is still unacknowledged; the
 * log survives a restart; nurses and physicians read it, receptionists do not, and a restricted
 * patient's log needs break-glass.
 *
 * The monitors publish to a plain aedes broker of the test's own, configured as the ward's broker
 * (`mqttUrl`), so the test does not depend on the embedded broker's accounts. The app's clock is the
 * harness's: it stands still unless the test moves it, so onset, escalation and clearing happen when
 * the test says.
 */
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AlarmView, ResponseOf } from '../../src/shared/ipc.js';
import { createApp } from '../../src/main/app/app.js';
import { AuditLedger, type AuditInput } from '../../src/main/security/audit-ledger.js';
import { openEncryptedDatabase, type Db } from '../../src/main/store/database.js';
import { derivePassphraseKey, readKeyInfo } from '../../src/main/store/keys.js';
import { AlarmLog, ALARM_LOG_RETENTION_DAYS } from '../../src/main/vitals/alarm-log.js';
import { connect, setUpWorkstation, STORE_PASSPHRASE, type TestConnection, type Workstation } from '../support/harness.js';

type LogEvent = ResponseOf<'alarms.log'>['events'][number];

const DETERIORATING = { hr: 135, spo2: 89, rr: 28, tempC: 39.4, sbp: 88, dbp: 50, acvpu: 'V', o2: true };
const NORMAL = { hr: 72, spo2: 98, rr: 14, tempC: 36.8, sbp: 128, dbp: 76, acvpu: 'A', o2: false };

let aedes: Aedes;
let server: net.Server;
let brokerUrl: string;
let ws: Workstation;
let nurse: TestConnection;
let nurseName: string;
let physician: TestConnection;
let publisher: mqtt.MqttClient;
let patientId: string;
let patientMrn: string;
let restrictedId: string;
let seq = 1;
let alarm: AlarmView;
let firstClosed = false;

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Publishes one reading and waits until the board shows it (stored and given to the alarm engine). */
async function reading(bed: string, vitals: Record<string, unknown>, patient: string | null): Promise<void> {
  const n = seq++;
  const payload = { v: 1, deviceId: `mon-log-${bed}`, seq: n, ts: new Date(Date.now() + n).toISOString(), ...vitals, ...(patient ? { patient } : {}) };
  await publisher.publishAsync(`ward/L/bed/${bed}/vitals`, JSON.stringify(payload), { qos: 1 });
  await until(async () => {
    const b = (await nurse.ok('ward.board', {})).beds.find((x) => x.key === `L/${bed}`);
    return b?.latest?.ts === payload.ts ? true : undefined;
  }, `reading ${n} of bed L/${bed} on the board`);
}

const boardAlarm = async (id: string): Promise<AlarmView | undefined> => (await nurse.ok('ward.board', {})).alarms.find((a) => a.id === id);

/** The log of `alarmId` once it holds `count` events (the engine's own are written a moment after they happen). */
async function logOf(viewer: TestConnection, request: Parameters<TestConnection['ok']>[1], alarmId: string, count: number): Promise<LogEvent[]> {
  return until(async () => {
    const events = ((await viewer.ok('alarms.log', request as never)) as ResponseOf<'alarms.log'>).events.filter((e) => e.alarmId === alarmId);
    return events.length >= count ? events : undefined;
  }, `${count} events of ${alarmId} in the log`);
}

async function openStore(workstation: Workstation): Promise<Db> {
  const key = await derivePassphraseKey(STORE_PASSPHRASE, readKeyInfo(`${workstation.config.dataDir}/neuroward.keyinfo.json`)!);
  return openEncryptedDatabase(`${workstation.config.dataDir}/neuroward.db`, key, { create: false });
}

async function withStore<T>(fn: (db: Db) => T): Promise<T> {
  const db = await openStore(ws);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

interface AuditRow {
  action: string;
  outcome: string;
  actor_role: string | null;
  entity_id: string | null;
  patient_id: string | null;
  detail_json: string | null;
}
const auditOf = (alarmId: string) =>
  withStore((db) => db.prepare('SELECT action, outcome, actor_role, entity_id, patient_id, detail_json FROM audit_log WHERE entity_id = ? ORDER BY seq').all(alarmId) as AuditRow[]);

beforeAll(async () => {
  aedes = await Aedes.createBroker({ id: 'alarm-log-test' });
  server = net.createServer((socket) => aedes.handle(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  brokerUrl = `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`;

  ws = await setUpWorkstation({ mqttUrl: brokerUrl });
  const signedIn = await ws.signInAs('nurse');
  nurse = signedIn.connection;
  nurseName = signedIn.session.user.displayName;
  ({ connection: physician } = await ws.signInAs('physician'));
  const ada = (await physician.ok('patients.list', { query: 'Synthetica' })).patients[0]!;
  patientId = ada.id;
  patientMrn = ada.mrn;
  // The restricted demo record is found by name only under break-glass.
  await physician.ok('auth.breakGlass', { reason: 'test set-up: find the restricted record', minutes: 5 });
  restrictedId = (await physician.ok('patients.list', { query: 'Confidentia' })).patients[0]!.id;
  await physician.ok('auth.endBreakGlass', {});

  publisher = await mqtt.connectAsync(brokerUrl, { clientId: 'alarm-log-monitor', clean: true });
  await until(async () => ((await nurse.ok('ward.board', {})).link.up ? true : undefined), 'the ward link');
});

afterAll(async () => {
  vi.restoreAllMocks();
  if (!firstClosed) {
    await publisher?.endAsync();
    await ws?.app.close();
  }
  await new Promise<void>((resolve) => (aedes ? aedes.close(() => resolve()) : resolve()));
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

describe('alarm log', () => {
  it('logs raise, escalation, pause, acknowledgement and clearing of an alarm, per bed and per patient, in order, with who and why', async () => {
    const patient = `Patient/${patientId}`;
    await reading('1', DETERIORATING, patient);
    alarm = await until(async () => (await nurse.ok('ward.board', {})).alarms.find((a) => a.bedKey === 'L/1' && a.condition === 'news2' && a.priority === 'high'), 'a high NEWS2 alarm');

    // Not acknowledged for 60 s: the first escalation step (readings keep coming, so no no-data alarm).
    ws.clock.advance(25_000);
    await reading('1', DETERIORATING, patient);
    ws.clock.advance(25_000);
    await reading('1', DETERIORATING, patient);
    ws.clock.advance(15_000);
    await until(async () => ((await boardAlarm(alarm.id))?.escalationLevel === 1 ? true : undefined), 'the escalation');

    await nurse.ok('alarms.pause', { alarmId: alarm.id, reason: 'repositioning the patient', seconds: 60 });
    ws.clock.advance(5_000);
    const acknowledged = await nurse.ok('alarms.acknowledge', { alarmId: alarm.id, reason: 'at bedside, sepsis pathway started' });
    expect(acknowledged.acknowledged).toMatchObject({ by: nurseName });

    // Better: the condition is gone for the clear delay (10 s); acknowledged, so it does not latch.
    await reading('1', NORMAL, patient);
    ws.clock.advance(11_000);
    await until(async () => ((await boardAlarm(alarm.id)) === undefined ? true : undefined), 'the alarm to clear');

    const byBed = await logOf(nurse, { bedKey: 'L/1' }, alarm.id, 5);
    expect(byBed.map((e) => [e.event, e.detail])).toEqual([
      ['raised', null],
      ['escalated', 'charge-nurse'],
      ['paused', null],
      ['acknowledged', null],
      ['cleared', 'resolved'],
    ]);
    expect(byBed.every((e) => e.bedKey === 'L/1' && e.patientRef === patient && e.kind === 'physiological' && e.condition === 'news2' && e.priority === 'high')).toBe(true);
    const [raised, escalated, paused, ack, cleared] = byBed as [LogEvent, LogEvent, LogEvent, LogEvent, LogEvent];
    expect(raised).toMatchObject({ by: null, reason: null, escalationLevel: 0 });
    expect(raised.news2).toBeGreaterThanOrEqual(7);
    expect(escalated).toMatchObject({ escalationLevel: 1 });
    expect(paused).toMatchObject({ by: nurseName, reason: 'repositioning the patient' });
    expect(Date.parse(paused.pausedUntil!) - Date.parse(paused.at)).toBe(60_000);
    expect(ack).toMatchObject({ by: nurseName, reason: 'at bedside, sepsis pathway started', pausedUntil: null });
    expect(cleared).toMatchObject({ by: null, news2: 0 });
    // In the order they happened, on the app's clock: escalated at 65 s, paused at 65 s, acknowledged at 70 s, cleared at 81 s.
    expect(byBed.map((e) => Date.parse(e.at) - Date.parse(raised.at))).toEqual([0, 65_000, 65_000, 70_000, 81_000]);

    // The same events for the patient, across beds: by record id, and by either reference a monitor may send.
    expect(await logOf(physician, { patientId }, alarm.id, 5)).toEqual(byBed);
    expect(await logOf(physician, { patientRef: patient }, alarm.id, 5)).toEqual(byBed);
    const byMrn = (await physician.ok('alarms.log', { patientRef: `mrn:${patientMrn}` })) as ResponseOf<'alarms.log'>;
    expect(byMrn.patientRefs).toEqual([patient, `mrn:${patientMrn}`]);
    expect(byMrn.events.filter((e) => e.alarmId === alarm.id)).toEqual(byBed);
    // Another patient has none of them.
    expect((await physician.ok('alarms.log', { patientRef: `Patient/${randomUUID()}` })).events).toEqual([]);
  });

  it('has every event in the audit ledger: the engine’s as the system, pause and acknowledgement as the nurse', async () => {
    const entries = await auditOf(alarm.id);
    expect(entries.map((e) => [e.action, e.outcome, e.actor_role])).toEqual([
      ['alarm.raised', 'success', null],
      ['alarm.escalated', 'success', null],
      ['alarm.pause', 'success', 'nurse'],
      ['alarm.acknowledge', 'success', 'nurse'],
      ['alarm.cleared', 'success', null],
    ]);
    // The engine's entries name the patient in the bed.
    expect(entries.filter((e) => e.actor_role === null).every((e) => e.patient_id === patientId)).toBe(true);
    const logIds = (await logOf(nurse, { bedKey: 'L/1' }, alarm.id, 5)).map((e) => e.id);
    const raisedDetail = JSON.parse(entries[0]!.detail_json!) as Record<string, unknown>;
    expect(raisedDetail).toMatchObject({ logId: logIds[0], bed: 'L/1', condition: 'news2', priority: 'high' });
    // The reads are audited too, and the chain is intact.
    const { connection: admin } = await ws.signInAs('admin');
    const reads = (await admin.ok('audit.list', { limit: 50, action: 'alarm.log-read' })).entries;
    expect(reads.some((e) => e.actorRole === 'nurse' && e.entityType === 'Bed' && e.entityId === 'L/1' && e.patientId === patientId)).toBe(true);
    expect(reads.some((e) => e.actorRole === 'physician' && e.entityType === 'Patient' && e.entityId === patientId)).toBe(true);
    expect((await admin.ok('audit.verify', {})).ok).toBe(true);
  });

  it('keeps neither the event nor the audit entry of an acknowledgement whose transaction fails, and the alarm stays unacknowledged', async () => {
    await reading('2', DETERIORATING, null);
    const second = await until(async () => (await nurse.ok('ward.board', {})).alarms.find((a) => a.bedKey === 'L/2' && a.condition === 'news2'), 'an alarm on bed L/2');
    await logOf(nurse, { bedKey: 'L/2' }, second.id, 1);

    // The dispatcher's audit entry of the acknowledgement cannot be written: the transaction rolls back.
    const append = AuditLedger.prototype.append;
    const spy = vi.spyOn(AuditLedger.prototype, 'append').mockImplementation(function (this: AuditLedger, input: AuditInput) {
      if (input.action === 'alarm.acknowledge' && input.outcome === 'success') throw new Error('disk I/O error (injected)');
      return append.call(this, input);
    });
    try {
      const failed = await nurse.fail('alarms.acknowledge', { alarmId: second.id, reason: 'at bedside, checking' });
      expect(failed.code).toBe('internal');
    } finally {
      spy.mockRestore();
    }
    await new Promise((r) => setTimeout(r, 50));
    const events = ((await nurse.ok('alarms.log', { bedKey: 'L/2' })) as ResponseOf<'alarms.log'>).events.filter((e) => e.alarmId === second.id);
    expect(events.map((e) => e.event)).toEqual(['raised']);
    const audit = await auditOf(second.id);
    expect(audit.filter((e) => e.action === 'alarm.acknowledge' && e.outcome === 'success')).toEqual([]);
    // Not silenced behind the log's back: still unacknowledged, and acknowledging again works.
    expect((await boardAlarm(second.id))?.acknowledged).toBeNull();
    await nurse.ok('alarms.acknowledge', { alarmId: second.id, reason: 'at bedside, checking' });
    expect((await logOf(nurse, { bedKey: 'L/2' }, second.id, 2)).map((e) => [e.event, e.by])).toEqual([
      ['raised', null],
      ['acknowledged', nurseName],
    ]);
    expect((await auditOf(second.id)).filter((e) => e.action === 'alarm.acknowledge' && e.outcome === 'success')).toHaveLength(1);
  });

  it('is read by nurses and physicians, not by receptionists; one bed or one patient per request', async () => {
    expect((await physician.ok('alarms.log', { bedKey: 'L/1', hours: 1 })).events.some((e) => e.alarmId === alarm.id)).toBe(true);
    const { connection: receptionist } = await ws.signInAs('receptionist');
    expect((await receptionist.fail('alarms.log', { bedKey: 'L/1' })).code).toBe('forbidden');
    expect((await receptionist.fail('alarms.log', { patientId })).code).toBe('forbidden');
    expect((await nurse.fail('alarms.log', { bedKey: 'L/1', patientId })).code).toBe('bad-request');
    expect((await nurse.fail('alarms.log', {})).code).toBe('bad-request');
    expect((await nurse.fail('alarms.log', { bedKey: 'L/1', hours: 169 })).code).toBe('bad-request');
  });

  it('gives a restricted patient’s alarms (by patient or by their bed) only under break-glass', async () => {
    await reading('3', DETERIORATING, `Patient/${restrictedId}`);
    const third = await until(async () => (await nurse.ok('ward.board', {})).alarms.find((a) => a.bedKey === 'L/3' && a.condition === 'news2'), 'an alarm on bed L/3');
    await until(async () => {
      const db = await openStore(ws);
      try {
        return db.prepare('SELECT 1 FROM alarm_events WHERE alarm_id = ?').get(third.id) ? true : undefined;
      } finally {
        db.close();
      }
    }, 'the restricted patient’s alarm in the log');
    const byPatient = await physician.fail('alarms.log', { patientId: restrictedId });
    expect(byPatient).toMatchObject({ code: 'forbidden', message: expect.stringContaining('restricted') });
    expect((await physician.fail('alarms.log', { patientRef: `Patient/${restrictedId}` })).code).toBe('forbidden');
    expect((await nurse.fail('alarms.log', { bedKey: 'L/3' })).code).toBe('forbidden');
    await physician.ok('auth.breakGlass', { reason: 'rapid response call, reviewing the alarms', minutes: 5 });
    expect((await physician.ok('alarms.log', { patientId: restrictedId })).events.map((e) => [e.alarmId, e.event])).toEqual([[third.id, 'raised']]);
    await physician.ok('auth.endBreakGlass', {});
    const { connection: admin } = await ws.signInAs('admin');
    const reads = (await admin.ok('audit.list', { limit: 20, action: 'alarm.log-read' })).entries;
    const restrictedReads = reads.filter((e) => e.patientId === restrictedId);
    expect(restrictedReads[0]).toMatchObject({ outcome: 'success', breakGlass: true, actorRole: 'physician' });
    expect(restrictedReads.slice(1).length).toBeGreaterThan(0);
    expect(restrictedReads.slice(1).every((e) => e.outcome === 'denied' && !e.breakGlass)).toBe(true);
  });

  it('is still there after a restart on the same data directory, reads the hours asked for, and is pruned after the retention period', async () => {
    await publisher.endAsync();
    await ws.app.close();
    firstClosed = true;
    // An hour and more later (the sessions of before have locked by now).
    ws.clock.advance(3_700_000);
    const app = await createApp({ config: ws.config, host: 'headless', now: () => new Date(ws.clock.now), log: () => undefined, announce: () => undefined });
    try {
      await connect(app).ok('store.unlock', { passphrase: STORE_PASSPHRASE });
      const account = ws.demoAccounts.find((a) => a.role === 'nurse')!;
      const again = connect(app);
      await again.ok('auth.signIn', { username: account.username, password: account.password });
      const events = (await again.ok('alarms.log', { bedKey: 'L/1', hours: 168 })).events.filter((e) => e.alarmId === alarm.id);
      expect(events.map((e) => e.event)).toEqual(['raised', 'escalated', 'paused', 'acknowledged', 'cleared']);
      // The window: events older than `hours` are left out.
      expect((await again.ok('alarms.log', { bedKey: 'L/1', hours: 1 })).events.filter((e) => e.alarmId === alarm.id)).toEqual([]);
      expect((await again.ok('alarms.log', { bedKey: 'L/1', hours: 2 })).events.filter((e) => e.alarmId === alarm.id)).toHaveLength(5);
      // Closing the workstation is not "monitoring lost": no ward-wide alarm was logged.
      expect((await again.ok('alarms.log', { bedKey: 'L/1', hours: 168 })).events.filter((e) => e.bedKey === null)).toEqual([]);
    } finally {
      await app.close();
    }
    const db = await openStore(ws);
    try {
      const count = () => (db.prepare('SELECT count(*) AS n FROM alarm_events').get() as { n: number }).n;
      expect(count()).toBeGreaterThanOrEqual(8);
      expect(new AlarmLog(db, () => new Date(ws.clock.now + (ALARM_LOG_RETENTION_DAYS - 1) * 86_400_000)).applyRetention()).toBe(0);
      const pruned = new AlarmLog(db, () => new Date(ws.clock.now + (ALARM_LOG_RETENTION_DAYS + 1) * 86_400_000)).applyRetention();
      expect(pruned).toBeGreaterThanOrEqual(8);
      expect(count()).toBe(0);
    } finally {
      db.close();
    }
  });
});
