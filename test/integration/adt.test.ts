/**
 * ADT end to end inside the app (issue 8 item 5): real encrypted store, real dispatcher, monitors on the
 * embedded broker with the credentials an administrator made for them.
 *
 *  - a nurse admits a patient to a bed: the bed's readings are the patient's from the admission time on
 *    (readings before it are not, also when they arrive late); a transfer moves that at its time; a
 *    discharge ends it;
 *  - a second admission of a bed or of a patient is refused (conflict) with nothing written, so is a
 *    transfer or discharge of a stay that changed meanwhile;
 *  - the FHIR Encounter in the outbox: in-progress then finished, class IMP, the patient, every bed as a
 *    Location with its period; each action audited with the patient;
 *  - a monitor naming another patient: the reading is kept, stored under the admitted patient with what
 *    the monitor sent, and the bed gets a technical alarm (never a silent relink);
 *  - receptionists and radiologists cannot admit; a restricted patient's name is not on the board (nor
 *    in its pushed updates) without break-glass;
 *  - the patient's record: stays, vitals across beds; the demo ward's pre-admitted synthetic patients.
 *
 * The app's clock is the harness's and stands still unless the test moves it; readings carry times
 * relative to it, so "before" and "after" the admission are exact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdmissionView, BedView, EventPayload } from '../../src/shared/ipc.js';
import { createApp } from '../../src/main/app/app.js';
import { connect, setUpWorkstation, STORE_PASSPHRASE, storeReader, type StoreReader, type TestConnection, type Workstation } from '../support/harness.js';
import { MonitorFleet, provisionMonitors, type MonitorSecret } from '../support/monitors.js';

let ws: Workstation;
let nurse: TestConnection;
let nurseName: string;
let physician: TestConnection;
let fleet: MonitorFleet;
const credentials: MonitorSecret[] = [];
let seq = 1;
let withStore: StoreReader;

interface TestPatient {
  id: string;
  mrn: string;
}
let alma: TestPatient;
let boris: TestPatient;
let rhea: TestPatient;

const NORMAL = { hr: 72, spo2: 97, rr: 14, tempC: 36.8, sbp: 124, dbp: 76, acvpu: 'A', o2: false };

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const boardBed = async (viewer: TestConnection, bedKey: string): Promise<BedView | undefined> => (await viewer.ok('ward.board', {})).beds.find((b) => b.key === bedKey);

/**
 * Publishes one reading from bed ADT/<bed> with device time `tsMs` and waits until the board has it
 * (stored, then given to the alarm engine). Returns its (deviceId, seq).
 */
async function reading(bed: string, tsMs: number, patient?: string, vitals: Record<string, unknown> = NORMAL): Promise<{ deviceId: string; seq: number }> {
  const n = seq++;
  const deviceId = `mon-adt-${bed}`;
  const ts = new Date(tsMs).toISOString();
  const payload = { v: 1, deviceId, seq: n, ts, ...vitals, ...(patient ? { patient } : {}) };
  await (await fleet.client('ADT', bed)).publishAsync(`ward/ADT/bed/${bed}/vitals`, JSON.stringify(payload), { qos: 1 });
  await until(async () => ((await boardBed(nurse, `ADT/${bed}`))?.latest?.ts === ts ? true : undefined), `reading ${n} of bed ADT/${bed} on the board`);
  return { deviceId, seq: n };
}


interface StoredRow {
  patient_ref: string | null;
  monitor_patient_ref: string | null;
  patient_conflict: string | null;
}
const stored = (r: { deviceId: string; seq: number }): StoredRow | undefined =>
  withStore((db) => db.prepare('SELECT patient_ref, monitor_patient_ref, patient_conflict FROM vitals_readings WHERE device_id = ? AND seq = ?').get(r.deviceId, r.seq) as StoredRow | undefined);

interface OutboxRow {
  resource_type: string;
  resource_id: string;
  operation: string;
  resource: Record<string, unknown>;
}
const outbox = (type: string, id?: string): OutboxRow[] =>
  withStore((db) =>
    (
      db.prepare(`SELECT resource_type, resource_id, operation, resource_json FROM outbox WHERE resource_type = ? ${id ? 'AND resource_id = ?' : ''} ORDER BY id`).all(...(id ? [type, id] : [type])) as {
        resource_type: string;
        resource_id: string;
        operation: string;
        resource_json: string;
      }[]
    ).map(({ resource_json, ...row }) => ({ ...row, resource: JSON.parse(resource_json) as Record<string, unknown> })),
  );

interface AuditRow {
  action: string;
  outcome: string;
  actor_role: string | null;
  entity_type: string | null;
  entity_id: string | null;
  patient_id: string | null;
  detail: Record<string, unknown> | null;
}
const audit = (action: string): AuditRow[] =>
  withStore((db) =>
    (db.prepare('SELECT action, outcome, actor_role, entity_type, entity_id, patient_id, detail_json FROM audit_log WHERE action = ? ORDER BY seq').all(action) as (Omit<AuditRow, 'detail'> & { detail_json: string | null })[]).map(
      ({ detail_json, ...row }) => ({ ...row, detail: detail_json ? (JSON.parse(detail_json) as Record<string, unknown>) : null }),
    ),
  );

const counts = () =>
  withStore((db) => ({
    admissions: (db.prepare('SELECT count(*) AS n FROM admissions').get() as { n: number }).n,
    // Not the vitals' minute Bundles, which the ward queues by itself every second.
    outbox: (db.prepare(`SELECT count(*) AS n FROM outbox WHERE resource_type <> 'Bundle'`).get() as { n: number }).n,
  }));

beforeAll(async () => {
  ws = await setUpWorkstation();
  withStore = await storeReader(ws);
  const signedIn = await ws.signInAs('nurse');
  nurse = signedIn.connection;
  nurseName = signedIn.session.user.displayName;
  ({ connection: physician } = await ws.signInAs('physician'));
  const create = async (givenName: string, familyName: string, restricted = false) => {
    const p = await physician.ok('patients.create', { givenName, familyName, birthDate: '1960-01-02', sex: 'female', restricted });
    return { id: p.id, mrn: p.mrn };
  };
  alma = await create('Alma', 'Bedside');
  boris = await create('Boris', 'Transferwell');
  rhea = await create('Rhea', 'Withheld', true);
  const url = await until(() => ws.app.vitalsBrokerUrl ?? undefined, 'the embedded broker');
  const { connection: admin } = await ws.signInAs('admin');
  fleet = new MonitorFleet(
    () => url,
    () => credentials,
    async (ward, bed) => void credentials.push(...(await provisionMonitors(admin, ward, [bed])).monitors),
  );
  await until(async () => ((await nurse.ok('ward.board', {})).link.up ? true : undefined), 'the ward link');
});

let closed = false;
afterAll(async () => {
  await fleet?.end();
  if (!closed) await ws?.app.close();
});

describe('ADT: patients in beds', () => {
  let admitted: AdmissionView;
  let t0: number;

  it('has the demo ward: six synthetic patients admitted to 4A/1…6 at setup, on the board by name, with Encounters and audit entries', async () => {
    const current = (await nurse.ok('adt.current', { ward: '4A' })).admissions;
    expect(current.map((a) => a.bedKey)).toEqual(['4A/1', '4A/2', '4A/3', '4A/4', '4A/5', '4A/6']);
    expect(current.every((a) => a.synthetic && a.mrn.startsWith('SYN-') && a.name !== null)).toBe(true);
    expect(current[0]).toMatchObject({ name: 'Ada Synthetica', admittedBy: 'Demo data (synthetic)' });
    // On the board before any monitor reports.
    const bed = await boardBed(nurse, '4A/1');
    expect(bed).toMatchObject({ patientRef: `Patient/${current[0]!.patientId}`, latest: null, admission: { name: 'Ada Synthetica', mrn: current[0]!.mrn, synthetic: true } });
    const encounters = outbox('Encounter').filter((e) => (e.resource.subject as { reference: string }).reference === `Patient/${current[0]!.patientId}`);
    expect(encounters).toHaveLength(1);
    expect(encounters[0]!.resource).toMatchObject({ status: 'in-progress', meta: { tag: [{ code: 'HTEST' }] } });
    const entries = audit('adt.admit').filter((e) => e.detail?.synthetic === true);
    expect(entries).toHaveLength(6);
    expect(entries.every((e) => e.actor_role === null && e.outcome === 'success' && e.entity_type === 'Admission')).toBe(true);
  });

  it('attributes a bed’s readings to the patient admitted to it from the admission time on, not before', async () => {
    t0 = ws.clock.now;
    const before = await reading('1', t0 - 60_000);
    admitted = await nurse.ok('adt.admit', { patientId: alma.id, bedKey: 'ADT/1', reason: 'from the emergency department' });
    expect(admitted).toMatchObject({ patientId: alma.id, mrn: alma.mrn, name: 'Alma Bedside', bedKey: 'ADT/1', admittedAt: new Date(t0).toISOString(), admittedBy: nurseName, reason: 'from the emergency department', dischargedAt: null });
    const after = await reading('1', t0 + 1_000);
    // Queued during a link loss, it arrives after the admission but was measured before it.
    const late = await reading('1', t0 - 30_000);
    expect(stored(before)?.patient_ref).toBeNull();
    expect(stored(after)).toEqual({ patient_ref: `Patient/${alma.id}`, monitor_patient_ref: null, patient_conflict: null });
    expect(stored(late)?.patient_ref).toBeNull();

    const bed = await boardBed(nurse, 'ADT/1');
    expect(bed).toMatchObject({ patientRef: `Patient/${alma.id}`, admission: { admissionId: admitted.id, patientId: alma.id, name: 'Alma Bedside', mrn: alma.mrn, by: nurseName } });
    // The nurse's window got the change pushed.
    expect(nurse.events.some((e) => e.event === 'ward.update' && (e.payload as EventPayload<'ward.update'>).beds.some((b) => b.key === 'ADT/1' && b.admission?.patientId === alma.id))).toBe(true);
  });

  it('audits the admission with the patient, and queues an in-progress inpatient Encounter with the bed as its Location', () => {
    const [entry] = audit('adt.admit').filter((e) => e.patient_id === alma.id);
    expect(entry).toMatchObject({ outcome: 'success', actor_role: 'nurse', entity_type: 'Admission', entity_id: admitted.id, patient_id: alma.id, detail: { bed: 'ADT/1', reason: 'from the emergency department', encounterId: admitted.encounterId } });
    const [encounter] = outbox('Encounter', admitted.encounterId);
    expect(encounter).toMatchObject({ operation: 'create' });
    expect(encounter!.resource).toMatchObject({
      resourceType: 'Encounter',
      id: admitted.encounterId,
      meta: { versionId: '1' },
      status: 'in-progress',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
      subject: { reference: `Patient/${alma.id}` },
      period: { start: new Date(t0).toISOString() },
      reasonCode: [{ text: 'from the emergency department' }],
      location: [{ location: { reference: 'Location/ADT-1', identifier: { system: 'urn:neuroward:bed', value: 'ADT/1' } }, status: 'active', period: { start: new Date(t0).toISOString() } }],
    });
    expect(encounter!.resource.period).not.toHaveProperty('end');
    // The Location it references (and its ward) are in the outbox too.
    expect(outbox('Location', 'ADT-1')[0]!.resource).toMatchObject({ resourceType: 'Location', physicalType: { coding: [{ code: 'bd' }] }, partOf: { reference: 'Location/ward.ADT' } });
    expect(outbox('Location', 'ward.ADT')[0]!.resource).toMatchObject({ physicalType: { coding: [{ code: 'wa' }] } });
  });

  it('refuses a second admission of the bed or of the patient (conflict), writing nothing but the refusal', async () => {
    const before = counts();
    const deniedBefore = audit('adt.admit').filter((e) => e.outcome !== 'success').length;
    const bedTaken = await nurse.fail('adt.admit', { patientId: boris.id, bedKey: 'ADT/1' });
    expect(bedTaken).toMatchObject({ code: 'conflict', message: expect.stringContaining(`Bed ADT/1 is taken (MRN ${alma.mrn})`) });
    const patientAdmitted = await physician.fail('adt.admit', { patientId: alma.id, bedKey: 'ADT/2' });
    expect(patientAdmitted).toMatchObject({ code: 'conflict', message: expect.stringContaining('already admitted, to bed ADT/1') });
    expect((await nurse.fail('adt.admit', { patientId: '00000000-0000-4000-8000-000000000000', bedKey: 'ADT/2' })).code).toBe('not-found');
    expect((await nurse.fail('adt.admit', { patientId: boris.id, bedKey: 'ADT/1/x' })).code).toBe('bad-request');
    expect(counts()).toEqual(before);
    const denied = audit('adt.admit').filter((e) => e.outcome !== 'success');
    expect(denied.length - deniedBefore).toBe(4);
    expect(denied.slice(deniedBefore, deniedBefore + 2).map((e) => e.patient_id)).toEqual([boris.id, alma.id]);
    // The store itself holds the line, whatever a caller checks first (partial unique indexes).
    expect(() =>
      withStore((db) =>
        db
          .prepare(`INSERT INTO admissions (id, patient_id, ward, bed, admitted_at, admitted_by, encounter_id, encounter_version) VALUES ('00000000-0000-4000-8000-00000000000a', ?, 'ADT', '1', ?, 'x', '00000000-0000-4000-8000-00000000000b', 1)`)
          .run(boris.id, new Date().toISOString()),
      ),
    ).toThrow(/UNIQUE/);
  });

  it('moves the attribution at the time of a transfer; a transfer of a stay that changed meanwhile is refused', async () => {
    ws.clock.advance(60_000);
    const t1 = ws.clock.now;
    const { from, to } = await nurse.ok('adt.transfer', { patientId: alma.id, admissionId: admitted.id, toBedKey: 'ADT/2', reason: 'side room' });
    expect(from).toMatchObject({ id: admitted.id, bedKey: 'ADT/1', dischargedAt: new Date(t1).toISOString(), endKind: 'transfer', dischargedBy: nurseName });
    expect(to).toMatchObject({ bedKey: 'ADT/2', admittedAt: new Date(t1).toISOString(), encounterId: admitted.encounterId, reason: 'side room' });
    expect((await nurse.fail('adt.transfer', { patientId: alma.id, admissionId: admitted.id, toBedKey: 'ADT/3' })).code).toBe('conflict');
    expect((await nurse.fail('adt.transfer', { patientId: alma.id, toBedKey: 'ADT/2' })).message).toMatch(/already in bed ADT\/2/);

    const oldBedAfter = await reading('1', t1 + 1_000);
    const oldBedBefore = await reading('1', t1 - 1_000);
    const newBedAfter = await reading('2', t1 + 1_000);
    const newBedBefore = await reading('2', t1 - 1_000);
    expect(stored(oldBedAfter)?.patient_ref).toBeNull();
    expect(stored(oldBedBefore)?.patient_ref).toBe(`Patient/${alma.id}`);
    expect(stored(newBedAfter)?.patient_ref).toBe(`Patient/${alma.id}`);
    expect(stored(newBedBefore)?.patient_ref).toBeNull();

    expect((await boardBed(nurse, 'ADT/1'))).toMatchObject({ admission: null, patientRef: null });
    expect((await boardBed(nurse, 'ADT/2'))).toMatchObject({ admission: { admissionId: to.id, name: 'Alma Bedside' }, patientRef: `Patient/${alma.id}` });

    const versions = outbox('Encounter', admitted.encounterId);
    expect(versions.map((v) => [v.operation, (v.resource.meta as { versionId: string }).versionId])).toEqual([
      ['create', '1'],
      ['update', '2'],
    ]);
    expect(versions[1]!.resource).toMatchObject({
      status: 'in-progress',
      location: [
        { location: { reference: 'Location/ADT-1' }, status: 'completed', period: { start: new Date(t0).toISOString(), end: new Date(t1).toISOString() } },
        { location: { reference: 'Location/ADT-2' }, status: 'active', period: { start: new Date(t1).toISOString() } },
      ],
    });
    expect(audit('adt.transfer').filter((e) => e.outcome === 'success')).toEqual([
      expect.objectContaining({ actor_role: 'nurse', patient_id: alma.id, entity_id: to.id, detail: expect.objectContaining({ from: 'ADT/1', to: 'ADT/2', endedAdmissionId: admitted.id }) }),
    ]);
    admitted = to;
  });

  it('ends the attribution at the discharge; the Encounter is finished', async () => {
    ws.clock.advance(60_000);
    const t2 = ws.clock.now;
    expect((await physician.fail('adt.discharge', { patientId: alma.id, admissionId: '00000000-0000-4000-8000-000000000000' })).code).toBe('conflict');
    const done = await physician.ok('adt.discharge', { patientId: alma.id, admissionId: admitted.id, reason: 'home' });
    expect(done).toMatchObject({ id: admitted.id, bedKey: 'ADT/2', dischargedAt: new Date(t2).toISOString(), endKind: 'discharge', endReason: 'home' });
    expect((await physician.fail('adt.discharge', { patientId: alma.id })).message).toMatch(/not admitted/);
    const during = await reading('2', t2 - 1_000);
    const afterwards = await reading('2', t2 + 1_000);
    expect(stored(during)?.patient_ref).toBe(`Patient/${alma.id}`);
    expect(stored(afterwards)?.patient_ref).toBeNull();
    expect(await boardBed(nurse, 'ADT/2')).toMatchObject({ admission: null, patientRef: null });

    const last = outbox('Encounter', admitted.encounterId).at(-1)!;
    expect(last.resource).toMatchObject({ status: 'finished', meta: { versionId: '3' }, period: { start: new Date(t0).toISOString(), end: new Date(t2).toISOString() } });
    expect((last.resource.location as { status: string }[]).map((l) => l.status)).toEqual(['completed', 'completed']);
    expect(audit('adt.discharge').filter((e) => e.outcome === 'success')).toEqual([expect.objectContaining({ actor_role: 'physician', patient_id: alma.id, entity_id: admitted.id })]);

    // The patient's record: both stays, and the vitals from both beds (only those of the stays).
    const history = await nurse.ok('adt.history', { patientId: alma.id });
    expect(history.current).toBeNull();
    expect(history.admissions.map((a) => [a.bedKey, a.endKind])).toEqual([
      ['ADT/2', 'discharge'],
      ['ADT/1', 'transfer'],
    ]);
    const vitals = await physician.ok('patients.vitals', { patientId: alma.id, hours: 1 });
    expect(vitals.patientRefs).toEqual([`Patient/${alma.id}`, `mrn:${alma.mrn}`]);
    expect(new Set(vitals.minutes.map((m) => m.bedKey))).toEqual(new Set(['ADT/1', 'ADT/2']));
    expect(vitals.minutes.reduce((n, m) => n + m.readings, 0)).toBe(4);
    expect(vitals.minutes.every((m) => m.news2 === 0)).toBe(true);
  });

  it('keeps a reading whose monitor names another patient under the admitted one, marked, and raises a technical alarm on the bed', async () => {
    const t = ws.clock.now;
    await nurse.ok('adt.admit', { patientId: boris.id, bedKey: 'ADT/3' });
    const agrees = await reading('3', t + 1_000, `mrn:${boris.mrn}`);
    expect(stored(agrees)).toEqual({ patient_ref: `Patient/${boris.id}`, monitor_patient_ref: null, patient_conflict: null });

    const wrong = await reading('3', t + 2_000, `Patient/${alma.id}`);
    expect(stored(wrong)).toEqual({ patient_ref: `Patient/${boris.id}`, monitor_patient_ref: `Patient/${alma.id}`, patient_conflict: 'monitor-mismatch' });
    const alarm = await until(async () => (await nurse.ok('ward.board', {})).alarms.find((a) => a.bedKey === 'ADT/3' && a.condition === 'patient-mismatch'), 'the patient-mismatch alarm');
    expect(alarm).toMatchObject({ kind: 'technical', priority: 'medium', message: expect.stringContaining(`Monitor reports a different patient (Patient/${alma.id}) from the one admitted to bed ADT/3 (MRN ${boris.mrn})`) });
    const bed = await boardBed(nurse, 'ADT/3');
    // Not relinked: the board still names the admitted patient, and shows the problem.
    expect(bed).toMatchObject({ patientRef: `Patient/${boris.id}`, admission: { patientId: boris.id } });
    expect(bed!.technical.some((t) => t.startsWith('Monitor reports a different patient'))).toBe(true);
    // The alarm is the admitted patient's, in the log.
    const logged = await until(async () => {
      const events = (await nurse.ok('alarms.log', { patientId: boris.id })).events.filter((e) => e.alarmId === alarm.id);
      return events.length ? events : undefined;
    }, 'the alarm in the patient’s log');
    expect(logged[0]).toMatchObject({ event: 'raised', bedKey: 'ADT/3', patientRef: `Patient/${boris.id}` });

    // The monitor names the admitted patient again: the alarm clears.
    await reading('3', t + 3_000, `mrn:${boris.mrn}`);
    await until(async () => ((await nurse.ok('ward.board', {})).alarms.some((a) => a.id === alarm.id) ? undefined : true), 'the alarm to clear');

    // A bed without an admission whose monitor names a patient admitted to another bed: kept, marked, alarmed.
    const elsewhere = await reading('4', t + 4_000, `Patient/${boris.id}`);
    expect(stored(elsewhere)).toEqual({ patient_ref: `Patient/${boris.id}`, monitor_patient_ref: `Patient/${boris.id}`, patient_conflict: 'admitted-elsewhere' });
    const other = await until(async () => (await nurse.ok('ward.board', {})).alarms.find((a) => a.bedKey === 'ADT/4' && a.condition === 'patient-mismatch'), 'the alarm on ADT/4');
    expect(other.message).toContain(`who is admitted to bed ADT/3`);
    // The record counts the conflicting readings.
    const vitals = await nurse.ok('patients.vitals', { patientId: boris.id, hours: 1 });
    expect(vitals.minutes.reduce((n, m) => n + m.conflicts, 0)).toBe(2);
  });

  it('scores NEWS2 on the admitted patient’s SpO2 scale, which follows them on a transfer', async () => {
    const bed = await physician.ok('ward.setSpo2Scale', { bedKey: 'ADT/3', scale: 2, reason: 'hypercapnic respiratory failure (COPD)' });
    expect(bed).toMatchObject({ spo2Scale: 2, patientRef: `Patient/${boris.id}` });
    ws.clock.advance(1_000);
    const t = ws.clock.now;
    await nurse.ok('adt.transfer', { patientId: boris.id, toBedKey: 'ADT/6' });
    await reading('6', t + 1_000, undefined, { ...NORMAL, spo2: 88 });
    const moved = await boardBed(nurse, 'ADT/6');
    expect(moved).toMatchObject({ spo2Scale: 2, news2: { aggregate: 0 }, admission: { patientId: boris.id } });
    // The bed left behind starts afresh: no patient, and not the previous patient's vitals.
    expect(await boardBed(nurse, 'ADT/3')).toMatchObject({ admission: null, latest: null, spo2Scale: 1 });
  });

  it('refuses admission changes to receptionists and radiologists at the gate, writing nothing', async () => {
    const before = counts();
    for (const role of ['receptionist', 'radiologist']) {
      const { connection } = await ws.signInAs(role);
      for (const [channel, request] of [
        ['adt.admit', { patientId: alma.id, bedKey: 'ADT/7' }],
        ['adt.transfer', { patientId: boris.id, toBedKey: 'ADT/7' }],
        ['adt.discharge', { patientId: boris.id }],
        ['patients.vitals', { patientId: boris.id }],
      ] as const) {
        const error = await connection.fail(channel, request as never);
        expect(error, `${channel} as ${role}`).toMatchObject({ code: 'forbidden', message: expect.stringContaining('Your role') });
      }
    }
    expect(counts()).toEqual(before);
  });

  it('leaves a restricted patient’s name off the board, its updates and the admission answers without break-glass', async () => {
    const from = nurse.events.length;
    const admittedRhea = await nurse.ok('adt.admit', { patientId: rhea.id, bedKey: 'ADT/5' });
    expect(admittedRhea).toMatchObject({ restricted: true, name: null, mrn: rhea.mrn });
    const bed = await boardBed(nurse, 'ADT/5');
    expect(bed?.admission).toMatchObject({ patientId: rhea.id, mrn: rhea.mrn, restricted: true, name: null });
    const pushed = await until(
      () => nurse.events.slice(from).flatMap((e) => (e.event === 'ward.update' ? (e.payload as EventPayload<'ward.update'>).beds : [])).find((b) => b.key === 'ADT/5'),
      'the pushed bed',
    );
    expect(pushed.admission).toMatchObject({ patientId: rhea.id, name: null });
    expect((await nurse.ok('adt.current', { ward: 'ADT' })).admissions.find((a) => a.patientId === rhea.id)?.name).toBeNull();
    expect((await nurse.fail('adt.history', { patientId: rhea.id })).code).toBe('forbidden');
    expect((await nurse.fail('patients.vitals', { patientId: rhea.id })).code).toBe('forbidden');

    // Under break-glass: the name, on the board and in the pushes.
    await physician.ok('auth.breakGlass', { reason: 'rapid response call on the ward, need the identity', minutes: 5 });
    const pushFrom = physician.events.length;
    expect((await boardBed(physician, 'ADT/5'))?.admission?.name).toBe('Rhea Withheld');
    await reading('5', ws.clock.now + 1_000);
    const seen = await until(
      () => physician.events.slice(pushFrom).flatMap((e) => (e.event === 'ward.update' ? (e.payload as EventPayload<'ward.update'>).beds : [])).find((b) => b.key === 'ADT/5'),
      'a push to the physician',
    );
    expect(seen.admission?.name).toBe('Rhea Withheld');
    expect((await physician.ok('adt.history', { patientId: rhea.id })).current?.name).toBe('Rhea Withheld');
    await physician.ok('auth.endBreakGlass', {});
    expect((await boardBed(physician, 'ADT/5'))?.admission?.name).toBeNull();
  });

  it('keeps the admissions across a restart: the board shows who is in which bed as soon as the store opens', async () => {
    await fleet.end();
    await ws.app.close();
    closed = true;
    const app = await createApp({ config: ws.config, host: 'headless', now: () => new Date(ws.clock.now), log: () => undefined, announce: () => undefined });
    try {
      await connect(app).ok('store.unlock', { passphrase: STORE_PASSPHRASE });
      const account = ws.demoAccounts.find((a) => a.role === 'nurse')!;
      const again = connect(app);
      await again.ok('auth.signIn', { username: account.username, password: account.password });
      const board = await until(async () => {
        const b = await again.ok('ward.board', {});
        return b.beds.some((x) => x.key === 'ADT/6') ? b : undefined;
      }, 'the admitted beds on the board');
      expect(board.beds.find((b) => b.key === 'ADT/6')).toMatchObject({ patientRef: `Patient/${boris.id}`, spo2Scale: 2, admission: { patientId: boris.id, name: 'Boris Transferwell' } });
      expect(board.beds.find((b) => b.key === '4A/1')?.admission?.name).toBe('Ada Synthetica');
      expect((await again.ok('adt.current', { ward: 'ADT' })).admissions.map((a) => [a.bedKey, a.patientId])).toEqual([
        ['ADT/5', rhea.id],
        ['ADT/6', boris.id],
      ]);
    } finally {
      await app.close();
    }
  });
});
