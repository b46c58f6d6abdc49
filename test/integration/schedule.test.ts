/**
 * Scheduling through the app (IPC → dispatcher → crm/): resources with hours, blocks and holidays;
 * free slots; holds; booking without double-booking (also 50 windows at once); overbooking with a
 * reason; rescheduling with its history; the appointment's status; each audited, each with its FHIR
 * Appointment in the outbox (valid against the R4 definitions); bad input refused with nothing written.
 *
 * The workstation's clock is Sunday 6 January 2030, 12:00 UTC; London is on GMT (UTC+0) in January, so
 * the clinic's 09:00 is 09:00Z.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppointmentView, ScheduleResource } from '../../src/shared/ipc.js';
import { FhirValidator } from '../../src/main/fhir/validation.js';
import { connect, setUpWorkstation, storeReader, type StoreReader, type TestConnection, type Workstation } from '../support/harness.js';

let ws: Workstation;
let reception: TestConnection;
let physician: TestConnection;
let withStore: StoreReader;
let doctor: ScheduleResource;
let mri: ScheduleResource;
const patients: string[] = [];

const MONDAY = '2030-01-07';
const at = (day: string, time: string) => `${day}T${time}:00.000Z`;

const counts = () =>
  withStore((db) => ({
    appointments: (db.prepare('SELECT count(*) AS n FROM crm_appointments').get() as { n: number }).n,
    holds: (db.prepare('SELECT count(*) AS n FROM crm_holds').get() as { n: number }).n,
    appointmentsQueued: (db.prepare("SELECT count(*) AS n FROM outbox WHERE resource_type = 'Appointment'").get() as { n: number }).n,
  }));
const queuedAppointment = (id: string): Record<string, unknown> =>
  withStore((db) => JSON.parse((db.prepare("SELECT resource_json FROM outbox WHERE resource_type = 'Appointment' AND resource_id = ? ORDER BY id DESC LIMIT 1").get(id) as { resource_json: string }).resource_json) as Record<string, unknown>);
const audit = (action: string) =>
  withStore((db) =>
    (db.prepare('SELECT outcome, entity_id, patient_id, detail_json FROM audit_log WHERE action = ? ORDER BY seq').all(action) as { outcome: string; entity_id: string | null; patient_id: string | null; detail_json: string | null }[]).map((r) => ({
      ...r,
      detail: r.detail_json ? (JSON.parse(r.detail_json) as Record<string, unknown>) : null,
    })),
  );

function book(connection: TestConnection, patientId: string, start: string, end: string, resourceIds: string[], extra: Record<string, unknown> = {}) {
  return connection.call('schedule.book', { patientId, service: 'MRI brain follow-up', start, end, resourceIds, ...extra });
}

/** Moves the workstation's clock (sessions do not live across days: both sign in again). */
async function setClock(iso: string): Promise<void> {
  ws.clock.now = Date.parse(iso);
  ({ connection: reception } = await ws.signInAs('receptionist'));
  ({ connection: physician } = await ws.signInAs('physician'));
}
const SUNDAY_NOON = '2030-01-06T12:00:00.000Z';

beforeAll(async () => {
  ws = await setUpWorkstation();
  withStore = await storeReader(ws);
  await setClock(SUNDAY_NOON);
  for (let i = 0; i < 52; i++) {
    const p = await reception.ok('patients.create', { givenName: 'Sched', familyName: `Patient${i}`, birthDate: '1970-01-01', sex: 'unknown' });
    patients.push(p.id);
  }
  doctor = await reception.ok('schedule.createResource', { kind: 'practitioner', name: 'Dr Ada Neuro', role: 'Neuroradiologist', timeZone: 'Europe/London', slotMinutes: 15 });
  mri = await reception.ok('schedule.createResource', { kind: 'device', name: 'MRI scanner 1', timeZone: 'Europe/London', slotMinutes: 15, bufferMinutes: 15 });
  for (const r of [doctor, mri]) await reception.ok('schedule.addAvailability', { resourceId: r.id, rrule: 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR', startTime: '09:00', endTime: '17:00', validFrom: '2030-01-01' });
  await reception.ok('schedule.addBlock', { resourceId: doctor.id, kind: 'block', start: at(MONDAY, '12:00'), end: at(MONDAY, '13:00'), reason: 'Department meeting' });
  mri = await reception.ok('schedule.addBlock', { resourceId: mri.id, kind: 'holiday', start: '2030-01-09T00:00:00Z', end: '2030-01-10T00:00:00Z', reason: 'Scanner service day' });
});
afterAll(async () => {
  await ws?.app.close();
});

describe('scheduling', () => {
  it('finds the free times of a practitioner and the scanner together on the 15-minute grid, around the meeting and the service day', async () => {
    const { slots, truncated } = await reception.ok('schedule.findSlots', { resources: [[doctor.id], [mri.id]], durationMinutes: 30, from: at(MONDAY, '00:00'), to: '2030-01-10T00:00:00.000Z', limit: 500 });
    expect(truncated).toBe(false);
    const monday = slots.filter((s) => s.start.startsWith(MONDAY)).map((s) => s.start.slice(11, 16));
    // 09:00–12:00 and 13:00–17:00 open for both: 30-minute starts every 15 minutes.
    expect(monday).toEqual(['09:00', '09:15', '09:30', '09:45', '10:00', '10:15', '10:30', '10:45', '11:00', '11:15', '11:30', '13:00', '13:15', '13:30', '13:45', '14:00', '14:15', '14:30', '14:45', '15:00', '15:15', '15:30', '15:45', '16:00', '16:15', '16:30']);
    expect(slots.filter((s) => s.start.startsWith('2030-01-08'))).toHaveLength(31); // Tuesday: 09:00 … 16:30
    expect(slots.filter((s) => s.start.startsWith('2030-01-09'))).toEqual([]); // the scanner's service day
    expect(slots[0]).toEqual({ start: at(MONDAY, '09:00'), end: at(MONDAY, '09:30'), resourceIds: [doctor.id, mri.id] });
  });

  it('holds, books, and refuses the same or an overlapping time (the scanner keeps its 15-minute buffer); audited, Appointment queued and valid R4', async () => {
    const before = counts();
    const hold = await reception.ok('schedule.hold', { patientId: patients[0]!, start: at(MONDAY, '09:00'), end: at(MONDAY, '09:30'), resourceIds: [doctor.id, mri.id] });
    expect(Date.parse(hold.expiresAt) - ws.clock.now).toBe(120_000);
    // Someone else cannot take the held time meanwhile.
    const meanwhile = await book(physician, patients[1]!, at(MONDAY, '09:00'), at(MONDAY, '09:30'), [mri.id]);
    expect(meanwhile.ok ? null : meanwhile.error).toMatchObject({ code: 'conflict', message: expect.stringMatching(/^Taken: another booking is being confirmed/) });

    const booked = await reception.ok('schedule.book', { patientId: patients[0]!, service: 'MRI brain follow-up', start: at(MONDAY, '09:00'), end: at(MONDAY, '09:30'), resourceIds: [doctor.id, mri.id], holdId: hold.holdId });
    expect(booked).toMatchObject({ status: 'booked', start: at(MONDAY, '09:00'), end: at(MONDAY, '09:30'), patientId: patients[0], resourceIds: [doctor.id, mri.id].sort(), version: 1 });
    expect(booked.history.map((h) => h.status)).toEqual(['booked']);

    const refusals = await Promise.all([
      book(physician, patients[1]!, at(MONDAY, '09:00'), at(MONDAY, '09:30'), [doctor.id]),
      book(physician, patients[1]!, at(MONDAY, '09:15'), at(MONDAY, '09:45'), [mri.id]),
      // The scanner's buffer: its next patient from 09:45, not 09:30.
      book(physician, patients[1]!, at(MONDAY, '09:30'), at(MONDAY, '10:00'), [mri.id]),
      // The same patient cannot be in two places.
      book(physician, patients[0]!, at(MONDAY, '09:15'), at(MONDAY, '09:45'), []),
    ]);
    expect(refusals.map((r) => (r.ok ? 'ok' : `${r.error.code}: ${r.error.message}`))).toEqual([
      `conflict: Taken: Dr Ada Neuro is booked ${at(MONDAY, '09:00')}–${at(MONDAY, '09:30')}.`,
      `conflict: Taken: MRI scanner 1 is booked ${at(MONDAY, '09:00')}–${at(MONDAY, '09:30')} (with a 15 min buffer).`,
      `conflict: Taken: MRI scanner 1 is booked ${at(MONDAY, '09:00')}–${at(MONDAY, '09:30')} (with a 15 min buffer).`,
      'bad-request: Invalid request for schedule.book: resourceIds name at least one practitioner, room or device.',
    ]);
    const samePatient = await book(physician, patients[0]!, at(MONDAY, '09:15'), at(MONDAY, '09:45'), [doctor.id]);
    expect(samePatient.ok ? null : samePatient.error.message).toMatch(/^Taken: (Dr Ada Neuro is booked|the patient already has an appointment)/);
    // The practitioner has no buffer: 09:30 is his next free time, and the scanner's is 09:45.
    expect((await book(physician, patients[1]!, at(MONDAY, '09:30'), at(MONDAY, '10:00'), [doctor.id])).ok).toBe(true);
    expect((await book(physician, patients[2]!, at(MONDAY, '09:45'), at(MONDAY, '10:15'), [mri.id])).ok).toBe(true);

    expect(counts()).toEqual({ appointments: before.appointments + 3, holds: 0, appointmentsQueued: before.appointmentsQueued + 3 });
    const fhir = queuedAppointment(booked.id);
    expect(fhir).toMatchObject({
      resourceType: 'Appointment',
      id: booked.id,
      status: 'booked',
      start: at(MONDAY, '09:00'),
      end: at(MONDAY, '09:30'),
      minutesDuration: 30,
      serviceType: [{ text: 'MRI brain follow-up' }],
    });
    expect((fhir.participant as { actor: { reference: string } }[]).map((p) => p.actor.reference).sort()).toEqual([`Device/${mri.id}`, `Patient/${patients[0]}`, `Practitioner/${doctor.id}`].sort());
    expect(new FhirValidator().validate(fhir)).toMatchObject({ valid: true });
    const entries = audit('schedule.book');
    expect(entries.filter((e) => e.outcome === 'success').map((e) => e.entity_id)).toContain(booked.id);
    expect(entries.find((e) => e.entity_id === booked.id)).toMatchObject({ patient_id: patients[0], detail: { holdId: hold.holdId, resourceIds: [doctor.id, mri.id] } });
    expect(entries.filter((e) => e.outcome === 'error')).toHaveLength(5);
  });

  it('a hold lapses after two minutes: then the time is free for others; a new hold of the same user replaces the last', async () => {
    // The receptionist picked the wrong patient first: holding again for the right one replaces it.
    const wrong = await reception.ok('schedule.hold', { patientId: patients[5]!, start: at(MONDAY, '14:00'), end: at(MONDAY, '14:30'), resourceIds: [doctor.id] });
    await reception.ok('schedule.hold', { patientId: patients[3]!, start: at(MONDAY, '14:00'), end: at(MONDAY, '14:30'), resourceIds: [doctor.id] });
    expect(counts().holds).toBe(1);
    const stale = await reception.call('schedule.book', { patientId: patients[5]!, service: 'x-ray', start: at(MONDAY, '14:00'), end: at(MONDAY, '14:30'), resourceIds: [doctor.id], holdId: wrong.holdId });
    expect(stale.ok ? null : stale.error.message).toBe('The hold has expired or was used: search the free slots again.');
    const slotsHeld = await physician.ok('schedule.findSlots', { resources: [[doctor.id]], durationMinutes: 30, from: at(MONDAY, '14:00'), to: at(MONDAY, '15:00') });
    expect(slotsHeld.slots.map((s) => s.start.slice(11, 16))).toEqual(['14:30']);
    ws.clock.advance(121_000);
    expect((await book(physician, patients[4]!, at(MONDAY, '14:00'), at(MONDAY, '14:30'), [doctor.id])).ok).toBe(true);
  });

  it('50 windows book the same time at once: exactly one wins, 49 hear "taken"', async () => {
    const account = ws.demoAccounts.find((a) => a.role === 'receptionist')!;
    const windows: TestConnection[] = [];
    for (let i = 0; i < 50; i++) {
      const connection = connect(ws.app);
      await connection.ok('auth.signIn', { username: account.username, password: account.password });
      windows.push(connection);
    }
    const before = counts();
    const outcomes = await Promise.all(windows.map((w, i) => book(w, patients[i + 2]!, at('2030-01-08', '11:00'), at('2030-01-08', '11:30'), [doctor.id, mri.id])));
    const won = outcomes.filter((o) => o.ok);
    expect(won).toHaveLength(1);
    expect(outcomes.filter((o) => !o.ok && o.error.code === 'conflict' && o.error.message.startsWith('Taken:'))).toHaveLength(49);
    expect(counts().appointments).toBe(before.appointments + 1);
    const tuesday = await reception.ok('schedule.appointments', { from: at('2030-01-08', '11:00'), to: at('2030-01-08', '11:30'), resourceId: mri.id });
    expect(tuesday.appointments).toHaveLength(1);
  });

  it('an overbooking for an emergency goes over a booking and outside hours, with its reason, audited', async () => {
    const refused = await book(reception, patients[10]!, at(MONDAY, '09:00'), at(MONDAY, '09:20'), [mri.id], { overbook: { reason: 'short' } });
    expect(refused.ok ? null : refused.error).toMatchObject({ code: 'bad-request', message: expect.stringContaining('at least 10 characters') });
    const urgent = await reception.ok('schedule.book', { patientId: patients[10]!, service: 'Stroke protocol MRI', start: at(MONDAY, '09:00'), end: at(MONDAY, '09:20'), resourceIds: [mri.id], overbook: { reason: 'acute stroke, thrombolysis window' } });
    expect(urgent.overbookedReason).toBe('acute stroke, thrombolysis window');
    const night = await reception.ok('schedule.book', { patientId: patients[11]!, service: 'Stroke protocol MRI', start: at(MONDAY, '22:00'), end: at(MONDAY, '22:20'), resourceIds: [mri.id], overbook: { reason: 'acute stroke out of hours' } });
    expect(night.history[0]!.note).toBe('overbooked: acute stroke out of hours');
    expect(audit('schedule.book').find((e) => e.entity_id === urgent.id)?.detail).toMatchObject({ overbook: 'acute stroke, thrombolysis window' });
  });

  it('reschedules onto an overlapping later time (its own old time does not count) and keeps the history; the lifecycle refuses what FHIR does not allow', async () => {
    const first = await reception.ok('schedule.book', { patientId: patients[20]!, service: 'Neuro clinic', start: at('2030-01-10', '10:00'), end: at('2030-01-10', '10:30'), resourceIds: [doctor.id] });
    const moved = await reception.ok('schedule.reschedule', { appointmentId: first.id, version: first.version, start: at('2030-01-10', '10:15'), end: at('2030-01-10', '10:45') });
    expect(moved.from).toMatchObject({ id: first.id, status: 'cancelled', version: 2 });
    expect(moved.from.history.map((h) => [h.status, h.note])).toEqual([
      ['booked', null],
      ['cancelled', `rescheduled to ${at('2030-01-10', '10:15')} (appointment ${moved.to.id})`],
    ]);
    expect(moved.to).toMatchObject({ status: 'booked', rescheduledFrom: first.id, start: at('2030-01-10', '10:15'), resourceIds: [doctor.id] });
    expect(queuedAppointment(first.id)).toMatchObject({ status: 'cancelled', cancelationReason: { text: expect.stringMatching(/^rescheduled to/) } });
    const stale = await reception.call('schedule.reschedule', { appointmentId: first.id, version: 1, start: at('2030-01-10', '11:00'), end: at('2030-01-10', '11:30') });
    expect(stale.ok ? null : stale.error.code).toBe('conflict');

    // The day's flow: arrived, in the room, done. A done appointment is not cancelled afterwards.
    await setClock(at('2030-01-10', '10:05'));
    let a: AppointmentView = moved.to;
    for (const status of ['arrived', 'checked-in', 'fulfilled'] as const) a = await reception.ok('schedule.setStatus', { appointmentId: a.id, version: a.version, status });
    expect(a.history.map((h) => h.status)).toEqual(['booked', 'arrived', 'checked-in', 'fulfilled']);
    const late = await reception.call('schedule.setStatus', { appointmentId: a.id, version: a.version, status: 'cancelled' });
    expect(late.ok ? null : late.error).toMatchObject({ code: 'conflict', message: 'A fulfilled appointment cannot become cancelled: that is final.' });
    await setClock(SUNDAY_NOON);
  });

  it("counts a patient's no-shows and late cancellations", async () => {
    const p = patients[30]!;
    const soon = await reception.ok('schedule.book', { patientId: p, service: 'Neuro clinic', start: at('2030-01-07', '15:00'), end: at('2030-01-07', '15:15'), resourceIds: [doctor.id] });
    const later = await reception.ok('schedule.book', { patientId: p, service: 'Neuro clinic', start: at('2030-01-11', '15:00'), end: at('2030-01-11', '15:15'), resourceIds: [doctor.id] });
    const early = await reception.call('schedule.setStatus', { appointmentId: soon.id, version: soon.version, status: 'noshow' });
    expect(early.ok ? null : early.error.message).toBe('The appointment has not started yet: it cannot be a no-show.');
    await setClock(at('2030-01-07', '15:20'));
    await reception.ok('schedule.setStatus', { appointmentId: soon.id, version: soon.version, status: 'noshow' });
    await setClock(at('2030-01-10', '18:00')); // 21 h before the second one
    await reception.ok('schedule.setStatus', { appointmentId: later.id, version: later.version, status: 'cancelled', note: 'patient phoned' });
    const record = await physician.ok('schedule.appointments', { from: '2030-01-01T00:00:00Z', to: '2030-02-01T00:00:00Z', patientId: p });
    expect(record.patientCounts).toEqual({ noShows: 1, lateCancellations: 1 });
    expect(record.appointments.map((x) => x.status)).toEqual(['noshow', 'cancelled']);
    await setClock(SUNDAY_NOON);
  });

  it('bad input: a clear error each, nothing written', async () => {
    const before = counts();
    const unknown = '00000000-0000-4000-8000-000000000000';
    const cases: [Promise<{ ok: boolean; error?: { code: string; message: string } }>, string, RegExp][] = [
      [book(reception, patients[40]!, '2030-01-06T09:00:00Z', '2030-01-06T09:30:00Z', [doctor.id]), 'bad-request', /is in the past/],
      [book(reception, patients[40]!, at(MONDAY, '08:00'), at(MONDAY, '08:30'), [doctor.id]), 'bad-request', /outside Dr Ada Neuro's hours/],
      [book(reception, patients[40]!, at(MONDAY, '12:15'), at(MONDAY, '12:45'), [doctor.id]), 'bad-request', /outside Dr Ada Neuro's hours \(or in a block or holiday\)/],
      [book(reception, unknown, at(MONDAY, '15:00'), at(MONDAY, '15:30'), [doctor.id]), 'not-found', /No such patient/],
      [book(reception, patients[40]!, at(MONDAY, '15:00'), at(MONDAY, '15:30'), [unknown]), 'not-found', /No practitioner, room or device/],
      [book(reception, patients[40]!, at(MONDAY, '15:30'), at(MONDAY, '15:00'), [doctor.id]), 'bad-request', /must end after it starts/],
      [book(reception, patients[40]!, 'next monday', at(MONDAY, '15:00'), [doctor.id]), 'bad-request', /not an ISO 8601 date-time/],
      [reception.call('schedule.addAvailability', { resourceId: doctor.id, rrule: 'FREQ=WEEKLY;BYDAY=FR', startTime: '16:00', endTime: '18:00', validFrom: '2030-02-01' }), 'conflict', /overlaps the existing one FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR 09:00–17:00/],
      [reception.call('schedule.addAvailability', { resourceId: doctor.id, rrule: 'FREQ=MINUTELY', startTime: '18:00', endTime: '19:00', validFrom: '2030-02-01' }), 'bad-request', /repeats by days/],
      [reception.call('schedule.createResource', { kind: 'room', name: 'Room on Mars', timeZone: 'Mars/Olympus', slotMinutes: 15 }), 'bad-request', /Unknown time zone "Mars\/Olympus"/],
      [reception.call('schedule.createResource', { kind: 'device', name: 'MRI scanner 1', timeZone: 'Europe/London', slotMinutes: 15 }), 'conflict', /already a device called "MRI scanner 1"/],
      [reception.call('schedule.findSlots', { resources: [[doctor.id]], durationMinutes: 30, from: '2030-01-07T00:00:00Z', to: '2030-06-07T00:00:00Z' }), 'bad-request', /At most 93 days/],
    ];
    for (const [call, code, message] of cases) {
      const outcome = await call;
      expect(outcome.ok, String(message)).toBe(false);
      expect(outcome.error, String(message)).toMatchObject({ code, message: expect.stringMatching(message) });
    }
    expect(counts()).toEqual(before);
    expect((await reception.ok('schedule.resources', {})).resources.find((r) => r.id === doctor.id)!.availability).toHaveLength(1);
  });

  it('a nurse reads the appointments but books none', async () => {
    const { connection: nurse } = await ws.signInAs('nurse');
    expect((await nurse.ok('schedule.appointments', { from: at(MONDAY, '00:00'), to: at(MONDAY, '23:59') })).appointments.length).toBeGreaterThan(0);
    expect((await book(nurse, patients[41]!, at(MONDAY, '15:00'), at(MONDAY, '15:30'), [doctor.id])).ok).toBe(false);
  });
});
