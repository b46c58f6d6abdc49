/**
 * No double-booking across database connections: 50 connections in 5 processes (another workstation
 * process, a second window's host) book the same time of the same practitioner and scanner at the
 * same instant. Exactly one wins; the other 49 get "taken"; the store holds one appointment for that
 * time. Each attempt is a transaction of its own on its own connection (crm/booking.ts: the guard
 * write takes the write lock before the checks read).
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ScheduleRepository } from '../../src/main/crm/schedule-repo.js';
import { PatientsRepository } from '../../src/main/patients/patients-repo.js';
import { bundleDriver } from '../support/bundle.js';
import { openTestStore } from '../support/sync-rig.js';

const PROCESSES = 5;
const PER_PROCESS = 10;
const NOW = '2030-01-06T12:00:00.000Z';
let driver: string;
let removeDriver = () => {};

beforeAll(async () => {
  ({ driver, remove: removeDriver } = await bundleDriver('test/support/booking-race-driver.ts', 'booking-race-'));
});
afterAll(() => removeDriver());

it('50 connections in 5 processes book the same time at once: exactly one wins, 49 are told it is taken', async () => {
  const { db, file, key } = openTestStore();
  const now = () => new Date(NOW);
  const patients = new PatientsRepository(db, now);
  const schedules = new ScheduleRepository(db, now);
  const ids = db.transaction(() => {
    const people = Array.from({ length: PROCESSES * PER_PROCESS }, (_, i) => patients.create({ mrn: `RACE-${i}`, givenName: 'Race', familyName: `P${i}`, birthDate: '1980-01-01', sex: 'unknown', restricted: false }).id);
    const resources = [
      schedules.create({ kind: 'practitioner', name: 'Dr Race', timeZone: 'Europe/London', slotMinutes: 15 }, 'test'),
      schedules.create({ kind: 'device', name: 'MRI race', timeZone: 'Europe/London', slotMinutes: 15 }, 'test'),
    ].map((r) => {
      schedules.addAvailability(r.id, { rrule: 'FREQ=DAILY', startTime: '08:00', endTime: '18:00', validFrom: '2030-01-01', validUntil: null }, 'test');
      return r.id;
    });
    return { people, resources };
  })();
  db.close();

  const goAt = Date.now() + 1500;
  const runs = Array.from({ length: PROCESSES }, (_, p) =>
    new Promise<{ patientId: string; outcome: string }[]>((resolve, reject) => {
      const child = spawn(process.execPath, [driver], {
        env: {
          ...process.env,
          RACE_DB: file,
          RACE_KEY: key.toString('hex'),
          RACE_PATIENTS: ids.people.slice(p * PER_PROCESS, (p + 1) * PER_PROCESS).join(','),
          RACE_RESOURCES: ids.resources.join(','),
          RACE_NOW: NOW,
          RACE_GO_AT: String(goAt),
          RACE_START: '2030-01-07T10:00:00.000Z',
          RACE_END: '2030-01-07T10:30:00.000Z',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as { patientId: string; outcome: string }[]) : reject(new Error(`driver exited ${code}: ${err}`))));
    }),
  );
  const outcomes = (await Promise.all(runs)).flat();
  expect(outcomes).toHaveLength(50);
  const won = outcomes.filter((o) => o.outcome.startsWith('booked '));
  expect(won, JSON.stringify(outcomes.filter((o) => !o.outcome.startsWith('conflict: Taken')))).toHaveLength(1);
  expect(outcomes.filter((o) => o.outcome.startsWith('conflict: Taken: Dr Race is booked 2030-01-07T10:00:00.000Z–2030-01-07T10:30:00.000Z'))).toHaveLength(49);

  const { openEncryptedDatabase } = await import('../../src/main/store/database.js');
  const check = openEncryptedDatabase(file, key, { create: false });
  try {
    expect((check.prepare('SELECT count(*) AS n FROM crm_appointments').get() as { n: number }).n).toBe(1);
    expect((check.prepare('SELECT patient_id FROM crm_appointments').get() as { patient_id: string }).patient_id).toBe(won[0]!.patientId);
    // Every attempt took the guard row in turn.
    expect((check.prepare('SELECT bookings FROM crm_booking_guard').get() as { bookings: number }).bookings).toBe(1);
  } finally {
    check.close();
  }
}, 60_000);
