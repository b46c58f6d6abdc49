/**
 * Scheduling benchmark (issue 10 item 10): free-slot search across 50 schedules over 3 months, and
 * booking throughput with the double-booking guarantee. Goals: search p95 ≤ 50 ms, ≥ 200 bookings/s.
 * Run with `node bench/crm-schedule.mjs` (see bench/README.md). Prints figures; never fails on a slow
 * machine (no timing is asserted).
 *
 * One run, reproducible (a fixed clock before the range, a seeded PRNG):
 * 1. a fresh encrypted store (SQLCipher, WAL, synchronous=FULL, its WAL checkpoints on a worker thread as
 *    the app's StoreService runs them) in a temp dir; 50 bookable resources (40 practitioners in
 *    Europe/London and a few other zones, 6 rooms, 4 devices; 15-min grid, some with buffers), each with
 *    Mon–Fri templates (some split morning/afternoon, some on alternating days), lunch blocks, a week's
 *    holiday and the London bank holidays; a few hundred patients; about 30 % of the 3-month capacity
 *    booked through BookingService.book (many bookings per transaction, so the set-up stays short);
 * 2. searches (BookingService.findSlots, limit 100) over a 3-month range in seven mixes: one
 *    practitioner, 10 alternative practitioners + a room, all 50 as one group, each with and without a
 *    patient; p50/p95/p99/max per mix and overall;
 * 3. bookings: distinct free slots taken from findSlots results beforehand, booked one at a time, each in
 *    its own transaction (as the dispatcher runs a call: the guard write, the checks, the insert, the
 *    history row and the FHIR outbox entry, one commit); then a contended run in which a fraction of the
 *    attempts target times already taken (a resource's, within a resource's buffer, or the patient's),
 *    which must be refused with NwError 'conflict'; then an SQL check that no resource and no patient
 *    holds two overlapping occupying appointments; then the reference: as many plain INSERTs of
 *    appointment (+ resource) rows without any check, one transaction each, on the same store.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DateTime } from 'luxon';
import { openEncryptedDatabase, type Db } from '../src/main/store/database.js';
import { applyMigrations } from '../src/main/store/migrations.js';
import { WalCheckpointer } from '../src/main/store/checkpointer.js';
import { ScheduleRepository } from '../src/main/crm/schedule-repo.js';
import { BookingService, type BookingActor } from '../src/main/crm/booking.js';
import { PatientsRepository } from '../src/main/patients/patients-repo.js';
import { NwError } from '../src/shared/errors.js';
import { mulberry32 } from '../src/shared/random.js';
import type { ScheduleResource } from '../src/shared/ipc.js';

interface Options {
  searches: number;
  bookings: number;
  fill: number;
  conflicts: number;
  patients: number;
  seed: number;
  /** The first day of every availability template (rrule expands from there, so older templates cost more). */
  validFrom: string;
}

const USAGE = 'node bench/crm-schedule.mjs [--searches=240] [--bookings=1000] [--fill=0.3] [--conflicts=0.2] [--patients=400] [--seed=10] [--valid-from=2027-01-01]';

function parseOptions(argv: string[]): Options {
  const options: Options = { searches: 240, bookings: 1000, fill: 0.3, conflicts: 0.2, patients: 400, seed: 10, validFrom: '2027-01-01' };
  for (const arg of argv) {
    const date = /^--valid-from=(\d{4}-\d{2}-\d{2})$/.exec(arg);
    if (date && date[1]! <= '2027-03-01') {
      options.validFrom = date[1]!;
      continue;
    }
    const match = /^--(searches|bookings|fill|conflicts|patients|seed)=(\d+(?:\.\d+)?)$/.exec(arg);
    if (!match) {
      console.error(`crm-schedule: bad argument ${arg}\nusage: ${USAGE}`);
      process.exit(2);
    }
    const value = Number(match[2]);
    const key = match[1] as Exclude<keyof Options, 'validFrom'>;
    if (key === 'fill' || key === 'conflicts') options[key] = Math.min(0.9, value);
    else options[key] = Math.max(1, Math.round(value));
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// The calendar: 1 March – 1 June 2027 (92 days, across the spring daylight-saving change), booked from
// a clock that stands still a week before.

const MINUTE = 60_000;
const DAY_MS = 86_400_000;
const CELL = 15 * MINUTE;
const FROM = Date.parse('2027-03-01T00:00:00.000Z');
const TO = FROM + 92 * DAY_MS;
const CELLS = (TO - FROM) / CELL;
const NOW = new Date('2027-02-22T09:00:00.000Z');
const now = () => NOW;
const ACTOR: BookingActor = { userId: 'bench-receptionist', name: 'Bench Receptionist' };
const BY = 'bench';
const LONDON_BANK_HOLIDAYS = ['2027-03-26', '2027-03-29', '2027-05-03', '2027-05-31'];
const MON_FRI = 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR';
const OCCUPYING_SQL = "'pending', 'booked', 'arrived', 'checked-in', 'fulfilled'";

const iso = (ms: number) => new Date(ms).toISOString();

interface Template {
  rrule: string;
  startTime: string;
  endTime: string;
}
interface ResourcePlan {
  kind: 'practitioner' | 'room' | 'device';
  name: string;
  role?: string;
  timeZone: string;
  bufferMinutes: number;
  templates: Template[];
  /** Local lunch break on each weekday, or none. */
  lunch: [string, string] | null;
}

function resourcePlans(): ResourcePlan[] {
  const plans: ResourcePlan[] = [];
  const zoneOf = (i: number) => (i < 30 ? 'Europe/London' : i < 34 ? 'Europe/Berlin' : i < 37 ? 'America/New_York' : 'Asia/Kolkata');
  const roles = ['neurologist', 'neurophysiologist', 'nurse specialist', 'radiographer'];
  for (let i = 0; i < 40; i++) {
    let templates: Template[];
    let lunch: [string, string] | null = null;
    if (i % 3 === 0) {
      templates = [
        { rrule: MON_FRI, startTime: '08:00', endTime: '12:00' },
        { rrule: MON_FRI, startTime: '13:00', endTime: '17:00' },
      ];
    } else if (i % 5 === 4) {
      templates = [
        { rrule: 'FREQ=WEEKLY;BYDAY=MO,WE,FR', startTime: '08:00', endTime: '16:00' },
        { rrule: 'FREQ=WEEKLY;BYDAY=TU,TH', startTime: '10:00', endTime: '18:00' },
      ];
      lunch = ['12:30', '13:00'];
    } else {
      templates = [{ rrule: MON_FRI, startTime: '08:30', endTime: '17:00' }];
      lunch = ['12:30', '13:15'];
    }
    plans.push({ kind: 'practitioner', name: `Dr Bench ${String(i + 1).padStart(2, '0')}`, role: roles[i % roles.length]!, timeZone: zoneOf(i), bufferMinutes: i % 4 === 0 ? 5 : 0, templates, lunch });
  }
  for (let i = 0; i < 6; i++) plans.push({ kind: 'room', name: `Consulting room ${i + 1}`, timeZone: 'Europe/London', bufferMinutes: 5, templates: [{ rrule: MON_FRI, startTime: '08:00', endTime: '18:00' }], lunch: null });
  plans.push({ kind: 'device', name: 'MRI 3T', timeZone: 'Europe/London', bufferMinutes: 10, templates: [{ rrule: MON_FRI, startTime: '07:30', endTime: '19:30' }], lunch: null });
  plans.push({ kind: 'device', name: 'CT', timeZone: 'Europe/London', bufferMinutes: 10, templates: [{ rrule: MON_FRI, startTime: '08:00', endTime: '18:00' }], lunch: ['12:00', '12:30'] });
  for (const name of ['EEG 1', 'EEG 2']) {
    plans.push({
      kind: 'device',
      name,
      timeZone: 'Europe/London',
      bufferMinutes: 0,
      templates: [
        { rrule: MON_FRI, startTime: '08:00', endTime: '12:30' },
        { rrule: MON_FRI, startTime: '13:30', endTime: '17:30' },
      ],
      lunch: null,
    });
  }
  return plans;
}

/** Local calendar days of the range in a zone, as luxon days. */
function localDays(zone: string): DateTime[] {
  const days: DateTime[] = [];
  for (let d = DateTime.fromMillis(FROM, { zone }).startOf('day'); d.toMillis() < TO; d = d.plus({ days: 1 })) days.push(d);
  return days;
}

function localAt(day: DateTime, time: string): number {
  const [hour, minute] = time.split(':').map(Number) as [number, number];
  return day.set({ hour, minute, second: 0, millisecond: 0 }).toMillis();
}

// ---------------------------------------------------------------------------------------------
// Occupancy bitmaps (15-min cells over the range): the bench's own record of what it booked, so the
// set-up and the booking runs pick times that are free without asking the code under test.

class Cells {
  readonly bits = new Uint8Array(CELLS);
  static span(start: number, end: number): [number, number] {
    return [Math.floor((start - FROM) / CELL), Math.ceil((end - FROM) / CELL)];
  }
  free(start: number, end: number, marginCells = 0): boolean {
    const [a, b] = Cells.span(start, end);
    for (let c = Math.max(0, a - marginCells); c < Math.min(CELLS, b + marginCells); c++) if (this.bits[c]) return false;
    return true;
  }
  any(start: number, end: number): boolean {
    return !this.free(start, end);
  }
  mark(start: number, end: number): void {
    const [a, b] = Cells.span(start, end);
    for (let c = Math.max(0, a); c < Math.min(CELLS, b); c++) this.bits[c] = 1;
  }
}

interface Planned {
  patientId: string;
  start: number;
  end: number;
  resourceIds: string[];
}

// ---------------------------------------------------------------------------------------------

function percentile(sorted: readonly number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

function stats(times: readonly number[]): { n: number; mean: number; p50: number; p95: number; p99: number; max: number } {
  const sorted = [...times].sort((a, b) => a - b);
  return { n: sorted.length, mean: sorted.reduce((s, t) => s + t, 0) / Math.max(1, sorted.length), p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1] ?? NaN };
}

const pad = (s: string, n: number) => s.padEnd(n);
const ms = (v: number) => v.toFixed(v < 10 ? 2 : 1);

function book(db: Db, service: BookingService, p: Planned): void {
  db.transaction(() => service.book({ patientId: p.patientId, service: 'Neurology clinic', start: iso(p.start), end: iso(p.end), resourceIds: p.resourceIds }, ACTOR))();
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = performance.now();
  const random = mulberry32(options.seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  console.log(
    `crm-schedule: 50 resources, ${options.patients} patients, ${iso(FROM).slice(0, 10)} – ${iso(TO).slice(0, 10)} (92 days), fill ${Math.round(options.fill * 100)} %, ${options.searches} searches, ${options.bookings} bookings + ${options.bookings} contended attempts (${Math.round(options.conflicts * 100)} % at taken times), seed ${options.seed}, templates from ${options.validFrom}; Node ${process.version}, ${os.availableParallelism()} CPUs, load average ${os.loadavg()[0]!.toFixed(2)}`,
  );

  const dir = mkdtempSync(path.join(os.tmpdir(), 'nw-crm-schedule-bench-'));
  const key = randomBytes(32);
  const file = path.join(dir, 'bench.db');
  const db = openEncryptedDatabase(file, key, { create: true });
  let checkpointer: WalCheckpointer | null = null;
  try {
    applyMigrations(db, () => NOW.toISOString());
    checkpointer = WalCheckpointer.start(db, file, key, { log: (message) => console.log(`  checkpointer: ${message}`) });
    const schedules = new ScheduleRepository(db, now);
    const service = new BookingService(db, now);
    const patientsRepo = new PatientsRepository(db, now);

    // --- 1. Set-up -----------------------------------------------------------------------------
    let phase = performance.now();
    const plans = resourcePlans();
    const resources: ScheduleResource[] = [];
    let blockCount = 0;
    db.transaction(() => {
      for (const plan of plans) {
        const r = schedules.create({ kind: plan.kind, name: plan.name, role: plan.role, timeZone: plan.timeZone, slotMinutes: 15, bufferMinutes: plan.bufferMinutes }, BY);
        for (const t of plan.templates) schedules.addAvailability(r.id, { ...t, validFrom: options.validFrom, validUntil: null }, BY);
        const days = localDays(plan.timeZone);
        if (plan.lunch) {
          for (const day of days) {
            if (day.weekday > 5) continue;
            schedules.addBlock(r.id, { kind: 'block', start: iso(localAt(day, plan.lunch[0])), end: iso(localAt(day, plan.lunch[1])), reason: 'Lunch' }, BY);
            blockCount++;
          }
        }
        // A week's holiday (Monday to Friday) somewhere in the range.
        const mondays = days.filter((d) => d.weekday === 1);
        const monday = pick(mondays.slice(0, -1));
        schedules.addBlock(r.id, { kind: 'holiday', start: iso(monday.toMillis()), end: iso(monday.plus({ days: 5 }).toMillis()), reason: 'Annual leave' }, BY);
        blockCount++;
        if (plan.timeZone === 'Europe/London') {
          for (const date of LONDON_BANK_HOLIDAYS) {
            const day = DateTime.fromISO(date, { zone: plan.timeZone });
            schedules.addBlock(r.id, { kind: 'holiday', start: iso(day.toMillis()), end: iso(day.plus({ days: 1 }).toMillis()), reason: 'Bank holiday' }, BY);
            blockCount++;
          }
        }
        resources.push(schedules.require(r.id));
      }
    })();
    const practitioners = resources.filter((r) => r.kind === 'practitioner');
    const rooms = resources.filter((r) => r.kind !== 'practitioner');
    const londonPractitioners = practitioners.filter((r) => r.timeZone === 'Europe/London');
    const consultingRooms = resources.filter((r) => r.kind === 'room');

    const given = ['Ada', 'Ben', 'Cara', 'Dev', 'Ela', 'Finn', 'Gita', 'Hugo', 'Isla', 'Jon'];
    const family = ['Adams', 'Brown', 'Clarke', 'Davies', 'Evans', 'Fox', 'Green', 'Hall', 'Iqbal', 'Jones'];
    const patientIds: string[] = [];
    db.transaction(() => {
      for (let i = 0; i < options.patients; i++) {
        const p = patientsRepo.create({ givenName: pick(given), familyName: pick(family), birthDate: `19${String(40 + Math.floor(random() * 60))}-0${1 + Math.floor(random() * 9)}-1${Math.floor(random() * 9)}`, sex: pick(['female', 'male'] as const), restricted: false, synthetic: true });
        patientIds.push(p.id);
      }
    })();

    // Open cells and the bench's occupancy record.
    const openCells = new Map<string, Cells>();
    const busyCells = new Map<string, Cells>();
    let capacityMinutes = 0;
    for (const r of resources) {
      const cells = new Cells();
      for (const o of schedules.openings(r, FROM, TO)) {
        cells.mark(o.start, o.end);
        capacityMinutes += (o.end - o.start) / MINUTE;
      }
      openCells.set(r.id, cells);
      busyCells.set(r.id, new Cells());
    }
    const patientCells = new Map(patientIds.map((id) => [id, new Cells()] as const));
    const marginOf = new Map(resources.map((r) => [r.id, Math.ceil(r.bufferMinutes / 15)] as const));
    const isOpen = (rid: string, start: number, end: number) => {
      const [a, b] = Cells.span(start, end);
      const bits = openCells.get(rid)!.bits;
      for (let c = a; c < b; c++) if (c < 0 || c >= CELLS || !bits[c]) return false;
      return true;
    };
    const resourcesFree = (rids: readonly string[], start: number, end: number) => rids.every((rid) => busyCells.get(rid)!.free(start, end, marginOf.get(rid)!));
    const freePatient = (start: number, end: number, tries = 12): string | null => {
      for (let t = 0; t < tries; t++) {
        const id = pick(patientIds);
        if (patientCells.get(id)!.free(start, end)) return id;
      }
      return null;
    };
    const markPlanned = (p: Planned) => {
      for (const rid of p.resourceIds) busyCells.get(rid)!.mark(p.start, p.end);
      patientCells.get(p.patientId)!.mark(p.start, p.end);
    };
    const setupSeconds = (performance.now() - phase) / 1000;

    // Fill: random times on each resource's grid, 15–60 min, until the resource is `fill` booked.
    phase = performance.now();
    const fill: Planned[] = [];
    const durations = [15, 30, 30, 30, 45, 60];
    for (const r of resources) {
      const open: number[] = [];
      openCells.get(r.id)!.bits.forEach((bit, c) => {
        if (bit) open.push(c);
      });
      const target = open.length * 15 * options.fill;
      let booked = 0;
      for (let attempt = 0; booked < target && attempt < 50_000; attempt++) {
        const start = FROM + pick(open) * CELL;
        const duration = pick(durations) * MINUTE;
        const end = start + duration;
        if (!isOpen(r.id, start, end) || !resourcesFree([r.id], start, end)) continue;
        const patientId = freePatient(start, end);
        if (!patientId) continue;
        const p = { patientId, start, end, resourceIds: [r.id] };
        markPlanned(p);
        fill.push(p);
        booked += duration / MINUTE;
      }
    }
    // Booked in a shuffled order, many per transaction (the set-up is not what is measured).
    for (let i = fill.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [fill[i], fill[j]] = [fill[j]!, fill[i]!];
    }
    const booked: Planned[] = [];
    let fillRefused = 0;
    const fillErrors = new Map<string, number>();
    for (let i = 0; i < fill.length; i += 250) {
      db.transaction(() => {
        for (const p of fill.slice(i, i + 250)) {
          try {
            service.book({ patientId: p.patientId, service: 'Follow-up', start: iso(p.start), end: iso(p.end), resourceIds: p.resourceIds }, ACTOR);
            booked.push(p);
          } catch (error) {
            fillRefused++;
            const code = error instanceof NwError ? error.code : (error as Error).message;
            fillErrors.set(code, (fillErrors.get(code) ?? 0) + 1);
          }
        }
      })();
    }
    const fillSeconds = (performance.now() - phase) / 1000;
    const bookedMinutes = booked.reduce((s, p) => s + (p.end - p.start) / MINUTE, 0);
    console.log(
      `set-up: ${resources.length} resources (${practitioners.length} practitioners, ${consultingRooms.length} rooms, ${rooms.length - consultingRooms.length} devices; zones ${[...new Set(resources.map((r) => r.timeZone))].join(', ')}), ${resources.reduce((s, r) => s + r.availability.length, 0)} templates, ${blockCount} blocks/holidays, ${patientIds.length} patients in ${setupSeconds.toFixed(1)} s`,
    );
    console.log(
      `fill: ${booked.length} appointments booked through BookingService.book (250 per transaction) in ${fillSeconds.toFixed(1)} s (${(booked.length / fillSeconds).toFixed(0)}/s), ${(bookedMinutes / 60).toFixed(0)} h of ${(capacityMinutes / 60).toFixed(0)} h open = ${((100 * bookedMinutes) / capacityMinutes).toFixed(1)} % of capacity${fillRefused ? `; ${fillRefused} refused (${[...fillErrors].map(([c, n]) => `${c}: ${n}`).join(', ')})` : ''}`,
    );

    // --- 2. Search -----------------------------------------------------------------------------
    interface Mix {
      name: string;
      request: () => { resources: string[][]; durationMinutes: number; patientId?: string };
    }
    const tenOf = () => {
      const offset = Math.floor(random() * (londonPractitioners.length - 9));
      return londonPractitioners.slice(offset, offset + 10).map((r) => r.id);
    };
    const mixes: Mix[] = [
      { name: 'one practitioner', request: () => ({ resources: [[pick(practitioners).id]], durationMinutes: pick([15, 30, 45]) }) },
      { name: 'one practitioner + patient', request: () => ({ resources: [[pick(practitioners).id]], durationMinutes: pick([15, 30, 45]), patientId: pick(patientIds) }) },
      { name: '10 practitioners + room', request: () => ({ resources: [tenOf(), consultingRooms.map((r) => r.id)], durationMinutes: pick([30, 45]) }) },
      { name: '10 practitioners + room + patient', request: () => ({ resources: [tenOf(), consultingRooms.map((r) => r.id)], durationMinutes: pick([30, 45]), patientId: pick(patientIds) }) },
      { name: 'all 50 as one group', request: () => ({ resources: [resources.map((r) => r.id)], durationMinutes: pick([15, 30, 60]) }) },
      { name: 'all 50 as one group + patient', request: () => ({ resources: [resources.map((r) => r.id)], durationMinutes: pick([15, 30, 60]), patientId: pick(patientIds) }) },
      // Hardly ever free (days are split by lunch blocks): the search reads the whole 3 months.
      { name: 'all 50, 7 h (whole range read)', request: () => ({ resources: [resources.map((r) => r.id)], durationMinutes: 420 }) },
    ];
    const searchRange = () => {
      const from = FROM + Math.floor(random() * 2) * DAY_MS;
      return { from: iso(from), to: iso(from + 91 * DAY_MS) };
    };
    for (let i = 0; i < 6; i++) service.findSlots({ ...mixes[i % mixes.length]!.request(), ...searchRange(), limit: 100 }); // warm-up, not counted
    const perMix = mixes.map(() => ({ times: [] as number[], slots: 0, truncated: 0 }));
    const all: number[] = [];
    phase = performance.now();
    for (let i = 0; i < options.searches; i++) {
      const m = i % mixes.length;
      const request = { ...mixes[m]!.request(), ...searchRange(), limit: 100 };
      const t0 = performance.now();
      const result = service.findSlots(request);
      const t = performance.now() - t0;
      perMix[m]!.times.push(t);
      perMix[m]!.slots += result.slots.length;
      if (result.truncated) perMix[m]!.truncated++;
      all.push(t);
    }
    const searchSeconds = (performance.now() - phase) / 1000;
    console.log('');
    console.log(`search: BookingService.findSlots, 91-day ranges, limit 100, ${options.searches} searches in ${searchSeconds.toFixed(1)} s (after 6 warm-up searches)`);
    console.log(`${pad('mix', 36)}${pad('n', 6)}${pad('mean ms', 10)}${pad('p50', 9)}${pad('p95', 9)}${pad('p99', 9)}${pad('max', 9)}slots/search (truncated)`);
    mixes.forEach((mix, m) => {
      const s = stats(perMix[m]!.times);
      console.log(`${pad(mix.name, 36)}${pad(String(s.n), 6)}${pad(ms(s.mean), 10)}${pad(ms(s.p50), 9)}${pad(ms(s.p95), 9)}${pad(ms(s.p99), 9)}${pad(ms(s.max), 9)}${(perMix[m]!.slots / Math.max(1, s.n)).toFixed(0)} (${perMix[m]!.truncated})`);
    });
    const overall = stats(all);
    console.log(`${pad('overall', 36)}${pad(String(overall.n), 6)}${pad(ms(overall.mean), 10)}${pad(ms(overall.p50), 9)}${pad(ms(overall.p95), 9)}${pad(ms(overall.p99), 9)}${pad(ms(overall.max), 9)}`);
    const worstMix = mixes.map((mix, m) => ({ name: mix.name, p95: stats(perMix[m]!.times).p95 })).sort((a, b) => b.p95 - a.p95)[0]!;
    console.log(`goal search p95 ≤ 50 ms: ${overall.p95 <= 50 ? 'met' : 'NOT met'} overall (${ms(overall.p95)} ms); worst mix ${worstMix.name}: ${worstMix.p95 <= 50 ? 'met' : 'NOT met'} (${ms(worstMix.p95)} ms)`);

    // --- 3. Bookings ----------------------------------------------------------------------------
    // Distinct free slots, taken from findSlots results (30 min; practitioner alone, or with a room).
    phase = performance.now();
    const candidates: { start: number; end: number; resourceIds: string[] }[] = [];
    for (const p of practitioners) {
      for (const resourcesOf of [[[p.id]], ...(p.timeZone === 'Europe/London' ? [[[p.id], consultingRooms.map((r) => r.id)]] : [])]) {
        const { slots } = service.findSlots({ resources: resourcesOf, durationMinutes: 30, from: iso(FROM), to: iso(FROM + 91 * DAY_MS), limit: 100_000 });
        for (const s of slots) candidates.push({ start: Date.parse(s.start), end: Date.parse(s.end), resourceIds: s.resourceIds });
      }
    }
    const planFresh = (count: number): Planned[] => {
      const out: Planned[] = [];
      for (let attempt = 0; out.length < count && attempt < count * 200; attempt++) {
        const c = pick(candidates);
        if (!resourcesFree(c.resourceIds, c.start, c.end)) continue;
        const patientId = freePatient(c.start, c.end);
        if (!patientId) continue;
        const p = { patientId, start: c.start, end: c.end, resourceIds: c.resourceIds };
        markPlanned(p);
        out.push(p);
      }
      return out;
    };
    const fresh = planFresh(options.bookings);
    const planSeconds = (performance.now() - phase) / 1000;
    console.log('');
    console.log(`bookings: ${fresh.length} distinct free 30-min slots picked from ${candidates.length} findSlots results (${practitioners.length + londonPractitioners.length} searches, ${planSeconds.toFixed(1)} s, not timed below); ${fresh.filter((p) => p.resourceIds.length > 1).length} with a room`);

    const bookingTimes: number[] = [];
    let freshRefused = 0;
    const freshErrors = new Map<string, number>();
    const throughputBooked: Planned[] = [];
    const cpu0 = process.cpuUsage();
    phase = performance.now();
    for (const p of fresh) {
      const t0 = performance.now();
      try {
        book(db, service, p);
        throughputBooked.push(p);
      } catch (error) {
        freshRefused++;
        const text = error instanceof NwError ? `${error.code}: ${error.message}` : (error as Error).message;
        freshErrors.set(text, (freshErrors.get(text) ?? 0) + 1);
      }
      bookingTimes.push(performance.now() - t0);
    }
    const bookingSeconds = (performance.now() - phase) / 1000;
    const bookingCpu = process.cpuUsage(cpu0);
    const bookingRate = throughputBooked.length / bookingSeconds;
    const bs = stats(bookingTimes);
    console.log(
      `  sequential, one transaction each: ${throughputBooked.length} booked in ${bookingSeconds.toFixed(2)} s = ${bookingRate.toFixed(0)} bookings/s; per booking p50 ${ms(bs.p50)} ms, p95 ${ms(bs.p95)} ms, p99 ${ms(bs.p99)} ms, max ${ms(bs.max)} ms; CPU ${(((bookingCpu.user + bookingCpu.system) / 1e6 / bookingSeconds) * 100).toFixed(0)} % of one core${freshRefused ? `; ${freshRefused} REFUSED (${[...freshErrors].map(([c, n]) => `${n}× ${c}`).join('; ')})` : ', none refused'}`,
    );

    // Contended: the same number of attempts, a fraction of them at times already taken.
    type Attempt = { planned: Planned; expect: 'booked' | 'conflict'; kind: string };
    const conflictCount = Math.round(options.bookings * options.conflicts);
    const freshForContended = planFresh(options.bookings - conflictCount);
    const spare = planFresh(Math.max(10, conflictCount)); // free resource times, offered to a patient who is busy then: never booked
    const attempts: Attempt[] = freshForContended.map((planned) => ({ planned, expect: 'booked', kind: 'free slot' }));
    const previously = [...booked, ...throughputBooked];
    // Patients' booked time only (patientCells also holds the plans not booked yet, the spare ones included).
    const bookedPatientCells = new Map(patientIds.map((id) => [id, new Cells()] as const));
    for (const p of previously) bookedPatientCells.get(p.patientId)!.mark(p.start, p.end);
    const buffered = previously.filter((p) => p.resourceIds.some((rid) => marginOf.get(rid)! > 0));
    const kinds = ['resource taken', 'within a buffer', 'patient busy'];
    const conflicts: Attempt[] = [];
    for (let i = 0, guard = 0; conflicts.length < conflictCount && guard < conflictCount * 100; guard++, i++) {
      const kind = kinds[i % kinds.length]!;
      if (kind === 'resource taken') {
        // The time of an existing appointment (shifted by 0 or 15 min), its resources, another patient.
        const a = pick(previously);
        const shift = a.end - a.start > 15 * MINUTE ? pick([0, 15]) * MINUTE : 0;
        const start = a.start + shift;
        const end = start + 30 * MINUTE;
        const patientId = freePatient(start, end);
        if (!patientId || !a.resourceIds.every((rid) => isOpen(rid, start, end))) continue;
        conflicts.push({ planned: { patientId, start, end, resourceIds: a.resourceIds }, expect: 'conflict', kind });
      } else if (kind === 'within a buffer') {
        // Right after an existing appointment of a resource with a buffer, in its hours, not overlapping.
        const a = pick(buffered);
        const rid = a.resourceIds.find((id) => marginOf.get(id)! > 0)!;
        const start = a.end;
        const end = start + 15 * MINUTE;
        if (!isOpen(rid, start, end) || !busyCells.get(rid)!.free(start, end)) continue;
        const patientId = freePatient(start, end);
        if (!patientId) continue;
        conflicts.push({ planned: { patientId, start, end, resourceIds: [rid] }, expect: 'conflict', kind });
      } else {
        // A free time of its resources, for a patient who has an appointment then.
        const s = pick(spare);
        const patientId = patientIds.find((id) => bookedPatientCells.get(id)!.any(s.start, s.end));
        if (!patientId) continue;
        conflicts.push({ planned: { ...s, patientId }, expect: 'conflict', kind });
      }
    }
    const contended = [...attempts, ...conflicts];
    for (let i = contended.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [contended[i], contended[j]] = [contended[j]!, contended[i]!];
    }
    const outcome = new Map<string, number>();
    const count = (k: string) => outcome.set(k, (outcome.get(k) ?? 0) + 1);
    const contendedTimes: number[] = [];
    let contendedBooked = 0;
    phase = performance.now();
    for (const a of contended) {
      const t0 = performance.now();
      try {
        book(db, service, a.planned);
        contendedBooked++;
        count(a.expect === 'booked' ? 'free slot: booked' : `${a.kind}: BOOKED (double booking!)`);
      } catch (error) {
        const code = error instanceof NwError ? error.code : 'exception';
        count(a.expect === 'conflict' && code === 'conflict' ? `${a.kind}: refused (conflict)` : `${a.kind}: refused (${code}${a.expect === 'booked' ? ', unexpected' : ''}: ${(error as Error).message})`);
      }
      contendedTimes.push(performance.now() - t0);
    }
    const contendedSeconds = (performance.now() - phase) / 1000;
    const cs = stats(contendedTimes);
    const refusedAsConflict = [...outcome].filter(([k]) => k.endsWith('refused (conflict)')).reduce((s, [, n]) => s + n, 0);
    console.log(
      `  contended: ${contended.length} attempts (${conflicts.length} at taken times) in ${contendedSeconds.toFixed(2)} s = ${(contended.length / contendedSeconds).toFixed(0)} attempts/s, ${(contendedBooked / contendedSeconds).toFixed(0)} bookings/s; per attempt p50 ${ms(cs.p50)} ms, p95 ${ms(cs.p95)} ms, max ${ms(cs.max)} ms; ${contendedBooked} booked, ${refusedAsConflict} of ${conflicts.length} refused with 'conflict'`,
    );
    for (const [k, n] of [...outcome].sort()) console.log(`    ${pad(String(n), 6)}${k}`);

    // The guarantee, checked in SQL: no resource and no patient holds two overlapping occupying
    // appointments; and none closer to another on a resource than that resource's buffer.
    const secs = (col: string) => `CAST(strftime('%s', ${col}) AS INTEGER)`;
    const resourceOverlaps = (
      db
        .prepare(
          `SELECT count(*) AS n FROM crm_appointment_resources ra JOIN crm_appointments a ON a.id = ra.appointment_id
           JOIN crm_appointment_resources rb ON rb.resource_id = ra.resource_id AND rb.appointment_id > ra.appointment_id JOIN crm_appointments b ON b.id = rb.appointment_id
           WHERE a.status IN (${OCCUPYING_SQL}) AND b.status IN (${OCCUPYING_SQL}) AND a.start_at < b.end_at AND b.start_at < a.end_at`,
        )
        .get() as { n: number }
    ).n;
    const bufferViolations = (
      db
        .prepare(
          `SELECT count(*) AS n FROM crm_appointment_resources ra JOIN crm_resources r ON r.id = ra.resource_id JOIN crm_appointments a ON a.id = ra.appointment_id
           JOIN crm_appointment_resources rb ON rb.resource_id = ra.resource_id AND rb.appointment_id > ra.appointment_id JOIN crm_appointments b ON b.id = rb.appointment_id
           WHERE r.buffer_minutes > 0 AND a.status IN (${OCCUPYING_SQL}) AND b.status IN (${OCCUPYING_SQL})
             AND ${secs('a.start_at')} < ${secs('b.end_at')} + 60 * r.buffer_minutes AND ${secs('b.start_at')} < ${secs('a.end_at')} + 60 * r.buffer_minutes`,
        )
        .get() as { n: number }
    ).n;
    const patientOverlaps = (
      db
        .prepare(
          `SELECT count(*) AS n FROM crm_appointments a JOIN crm_appointments b ON b.patient_id = a.patient_id AND b.id > a.id
           WHERE a.status IN (${OCCUPYING_SQL}) AND b.status IN (${OCCUPYING_SQL}) AND a.start_at < b.end_at AND b.start_at < a.end_at`,
        )
        .get() as { n: number }
    ).n;
    const totals = db.prepare(`SELECT count(*) AS n, (SELECT count(*) FROM crm_appointment_resources) AS links FROM crm_appointments WHERE status IN (${OCCUPYING_SQL})`).get() as { n: number; links: number };
    const guarantee = resourceOverlaps === 0 && patientOverlaps === 0 && bufferViolations === 0;
    console.log(
      `  double-booking check (SQL over ${totals.n} occupying appointments, ${totals.links} resource links): resource pairs overlapping ${resourceOverlaps}, closer than the resource's buffer ${bufferViolations}, patient pairs overlapping ${patientOverlaps}: ${guarantee ? 'held' : 'VIOLATED'}`,
    );

    // Reference: the same number of plain INSERTs (appointment + its resource rows), no checks, one
    // transaction each, on the same store; at distinct times in 2030, so they collide with nothing.
    const insertAppointment = db.prepare(
      `INSERT INTO crm_appointments (id, patient_id, status, start_at, end_at, service, note, overbooked_reason, rescheduled_from, created_at, created_by, updated_at)
       VALUES (?, ?, 'booked', ?, ?, ?, NULL, NULL, NULL, ?, ?, ?)`,
    );
    const insertLink = db.prepare('INSERT INTO crm_appointment_resources (appointment_id, resource_id, start_ms, end_ms, occupying) VALUES (?, ?, ?, ?, 1)');
    const plainOne = db.transaction((p: Planned, k: number) => {
      const id = randomUUID();
      const at = NOW.toISOString();
      const start = Date.parse('2030-01-01T00:00:00.000Z') + k * 30 * MINUTE;
      insertAppointment.run(id, p.patientId, iso(start), iso(start + 30 * MINUTE), 'Reference', at, ACTOR.name, at);
      for (const rid of p.resourceIds) insertLink.run(id, rid, start, start + 30 * MINUTE);
    });
    const reference = throughputBooked.length ? throughputBooked : fresh;
    phase = performance.now();
    reference.forEach((p, k) => plainOne(p, k));
    const plainSeconds = (performance.now() - phase) / 1000;
    const plainRate = reference.length / plainSeconds;
    console.log(`  reference: ${reference.length} plain INSERTs (appointment + resource rows, no checks, no history, no outbox), one transaction each: ${plainSeconds.toFixed(2)} s = ${plainRate.toFixed(0)}/s`);
    console.log(`  cost of the guarantee (and the history row + FHIR outbox entry): booking takes ${(plainRate / bookingRate).toFixed(1)}× the time of a plain insert (${((1000 * bookingSeconds) / Math.max(1, throughputBooked.length)).toFixed(2)} ms vs ${((1000 * plainSeconds) / reference.length).toFixed(2)} ms per commit)`);
    console.log(`goal ≥ 200 bookings/s with the double-booking guarantee: ${bookingRate >= 200 && guarantee ? 'met' : 'NOT met'} (${bookingRate.toFixed(0)} bookings/s sequential, ${(contendedBooked / contendedSeconds).toFixed(0)}/s booked in the contended run; guarantee ${guarantee ? 'held' : 'VIOLATED'})`);
  } finally {
    checkpointer?.stop();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log('');
  console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB; total ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

await main();
