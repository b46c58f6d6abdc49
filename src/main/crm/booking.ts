/**
 * Free-slot search, holds, booking, rescheduling and the appointment's status (FHIR Appointment).
 *
 * No double-booking: a practitioner, room, device or patient never has two appointments (or an
 * appointment and someone else's live hold) at overlapping times, each resource's buffer included.
 * Every change that books time first writes the one row of crm_booking_guard, which takes the store's
 * write lock before any check reads; the checks and the insert then run in the same transaction. So
 * two bookings, from two windows or from two database connections, are serialised: the second sees the
 * first and gets "taken". The only way past the checks is an explicit overbooking with a reason, which
 * the caller audits.
 *
 * Call every change inside the caller's transaction (the dispatcher's, with the call's audit entry).
 * Times are stored as UTC ISO strings (toISOString), which order as text.
 */
import { randomUUID } from 'node:crypto';
import { NwError } from '../../shared/errors.js';
import type { AppointmentStatus, AppointmentView, FreeSlot, ScheduleResource } from '../../shared/ipc.js';
import { PatientsRepository } from '../patients/patients-repo.js';
import type { Db } from '../store/database.js';
import { Outbox } from '../store/outbox.js';
import { covers, normalise, subtract, type Interval } from './availability.js';
import { toFhirAppointment } from './fhir.js';
import { cancelReminders, clinicZone, DEFAULT_QUIET_HOURS, planReminders, type QuietHours } from './reminders.js';
import { ScheduleRepository } from './schedule-repo.js';

/** How long a hold keeps a time for the receptionist who asked. */
export const HOLD_SECONDS = 120;
/** The longest range a search or a listing covers. */
export const MAX_RANGE_DAYS = 93;
/** A cancellation this close to the start counts as late. */
const LATE_CANCEL_MS = 24 * 3_600_000;
const MINUTE = 60_000;
/** The last instant that still has a four-digit year (ISO strings order as text only up to there). */
const MAX_INSTANT = Date.parse('9999-12-31T23:59:59.999Z');
const DAY_MS = 86_400_000;
/** Statuses whose appointment occupies its time. */
const OCCUPYING: readonly AppointmentStatus[] = ['pending', 'booked', 'arrived', 'checked-in', 'fulfilled'];
const OCCUPYING_SQL = OCCUPYING.map((s) => `'${s}'`).join(', ');

/** Where each status may go (FHIR Appointment lifecycle); the ones not listed are final. */
const NEXT: Partial<Record<AppointmentStatus, readonly AppointmentStatus[]>> = {
  proposed: ['pending', 'booked', 'cancelled', 'entered-in-error'],
  pending: ['booked', 'cancelled', 'entered-in-error'],
  booked: ['arrived', 'checked-in', 'cancelled', 'noshow', 'entered-in-error'],
  arrived: ['checked-in', 'fulfilled', 'entered-in-error'],
  'checked-in': ['fulfilled', 'entered-in-error'],
  waitlist: ['cancelled', 'entered-in-error'],
};

export interface BookingActor {
  userId: string;
  name: string;
}

export interface BookingTime {
  start: string;
  end: string;
  resourceIds: string[];
  holdId?: string | undefined;
  overbook?: { reason: string } | undefined;
}

interface AppointmentRow {
  id: string;
  patient_id: string;
  status: AppointmentStatus;
  start_at: string | null;
  end_at: string | null;
  service: string;
  note: string | null;
  overbooked_reason: string | null;
  rescheduled_from: string | null;
  version: number;
  created_at: string;
  created_by: string;
}

const fmt = (ms: number) => new Date(ms).toISOString();

function instant(text: string, what: string): number {
  const ms = Date.parse(text);
  if (!Number.isFinite(ms)) throw new NwError('bad-request', `${what} is not a date-time: "${text}".`);
  return ms;
}

function range(fromText: string, toText: string): { from: number; to: number } {
  const from = instant(fromText, 'The start of the range');
  const to = instant(toText, 'The end of the range');
  if (to <= from) throw new NwError('bad-request', 'The range must end after it starts.');
  if (to - from > MAX_RANGE_DAYS * DAY_MS) throw new NwError('bad-request', `At most ${MAX_RANGE_DAYS} days at a time.`);
  return { from, to };
}

/**
 * The free intervals (a subset of `openings`, both in order) at least `duration` long, each with the
 * start of the opening it lies in (the origin of its slot grid).
 */
function gridStretches(openings: readonly Interval[], free: readonly Interval[], duration: number): (Interval & { gridFrom: number })[] {
  const out: (Interval & { gridFrom: number })[] = [];
  let o = 0;
  for (const f of free) {
    if (f.end - f.start < duration) continue;
    while (o < openings.length && openings[o]!.end <= f.start) o++;
    const opening = openings[o];
    if (opening && opening.start <= f.start) out.push({ start: f.start, end: f.end, gridFrom: opening.start });
  }
  return out;
}

export class BookingService {
  private readonly schedules: ScheduleRepository;
  private readonly resources = new Map<string, ScheduleResource>();

  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
    /** Reminders are planned outside these hours on the clinic's clock (crm/reminders.ts). */
    private readonly quietHours: QuietHours = DEFAULT_QUIET_HOURS,
  ) {
    this.schedules = new ScheduleRepository(db, now);
  }

  // -------------------------------------------------------------------------------------------
  // Search
  // -------------------------------------------------------------------------------------------

  findSlots(request: { resources: string[][]; durationMinutes: number; from: string; to: string; patientId?: string | undefined; limit?: number | undefined }): { slots: FreeSlot[]; truncated: boolean } {
    const { from, to } = range(request.from, request.to);
    const duration = request.durationMinutes * MINUTE;
    const limit = request.limit ?? 100;
    if (request.patientId) this.requirePatient(request.patientId);
    const groups = request.resources.map((ids) => ids.map((id) => this.requireActive(id)));
    const nowMs = this.now().getTime();
    const everyone = [...new Map(groups.flat().map((r) => [r.id, r])).values()];
    const slots: FreeSlot[] = [];
    // Growing windows (2 days, a week, a month, the rest): a search that fills its limit early reads
    // and computes only the days it needed.
    let windowFrom = from;
    for (const span of [2 * DAY_MS, 7 * DAY_MS, 30 * DAY_MS, Infinity]) {
      if (windowFrom >= to || slots.length > limit) break;
      const windowTo = Math.min(to, windowFrom + span);
      // Free time is worked out a day past the window, for appointments that start in it and end after.
      const reach = Math.min(to, windowTo + DAY_MS);
      const openings = new Map(everyone.map((r) => [r.id, this.schedules.openings(r, windowFrom, reach)]));
      const busy = this.busyOf(everyone, windowFrom, reach);
      const free = new Map(everyone.map((r) => [r.id, subtract(openings.get(r.id)!, busy.get(r.id) ?? [])]));
      const patientFree = request.patientId ? subtract([{ start: windowFrom, end: reach }], this.patientBusy(request.patientId, windowFrom, reach)) : null;
      // Each lead's free stretches long enough for the appointment, with the start of the opening each
      // lies in: starts are on the grid of that opening (09:00, 09:15, ... for a 15-minute grid).
      const stretches = new Map(groups[0]!.map((lead) => [lead.id, gridStretches(openings.get(lead.id)!, free.get(lead.id)!, duration)]));
      const next = new Map(groups[0]!.map((lead) => [lead.id, 0]));
      // Candidate starts day by day, so the search stops once it has enough.
      for (let dayStart = windowFrom; dayStart < windowTo && slots.length <= limit; dayStart += DAY_MS) {
        const dayEnd = Math.min(windowTo, dayStart + DAY_MS);
        const starts = new Map<number, ScheduleResource[]>();
        for (const lead of groups[0]!) {
          const list = stretches.get(lead.id)!;
          const step = lead.slotMinutes * MINUTE;
          let i = next.get(lead.id)!;
          for (; i < list.length && list[i]!.start < dayEnd; i++) {
            const stretch = list[i]!;
            const earliest = Math.max(stretch.start, dayStart, nowMs, from);
            for (let s = stretch.gridFrom + Math.ceil((earliest - stretch.gridFrom) / step) * step; s + duration <= stretch.end && s < dayEnd; s += step) {
              if (s + duration > to) break;
              const leads = starts.get(s);
              if (leads) leads.push(lead);
              else starts.set(s, [lead]);
            }
            if (stretch.end > dayEnd) break; // it goes on into the next day
          }
          next.set(lead.id, i);
        }
        for (const s of [...starts.keys()].sort((a, b) => a - b)) {
          const e = s + duration;
          if (patientFree && !covers(patientFree, s, e)) continue;
          for (const lead of starts.get(s)!) {
            if (!covers(free.get(lead.id)!, s, e)) continue;
            const chosen = [lead.id];
            for (const group of groups.slice(1)) {
              const pick = group.find((r) => !chosen.includes(r.id) && covers(free.get(r.id)!, s, e));
              if (!pick) break;
              chosen.push(pick.id);
            }
            if (chosen.length === groups.length) {
              slots.push({ start: fmt(s), end: fmt(e), resourceIds: chosen });
              break;
            }
          }
          if (slots.length > limit) break;
        }
      }
      windowFrom = windowTo;
    }
    return { slots: slots.slice(0, limit), truncated: slots.length > limit };
  }

  // -------------------------------------------------------------------------------------------
  // Changes (in the caller's transaction)
  // -------------------------------------------------------------------------------------------

  /** A user holds one time at once: a new hold (another patient picked, another slot) replaces theirs. */
  hold(request: { patientId: string; start: string; end: string; resourceIds: string[] }, actor: BookingActor): { holdId: string; expiresAt: string } {
    this.takeBookingLock();
    this.db.prepare('DELETE FROM crm_holds WHERE held_by_user_id = ?').run(actor.userId);
    const { start, end, resources } = this.checkTime({ ...request }, request.patientId, {});
    const id = randomUUID();
    const expiresAt = fmt(this.now().getTime() + HOLD_SECONDS * 1000);
    this.db.prepare('DELETE FROM crm_holds WHERE expires_at <= ?').run(this.now().toISOString());
    this.db
      .prepare('INSERT INTO crm_holds (id, patient_id, start_at, end_at, resource_ids_json, held_by_user_id, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(id, request.patientId, fmt(start), fmt(end), JSON.stringify(resources.map((r) => r.id)), actor.userId, expiresAt);
    return { holdId: id, expiresAt };
  }

  book(request: BookingTime & { patientId: string; service: string; note?: string | undefined }, actor: BookingActor): AppointmentView {
    this.takeBookingLock();
    const hold = this.consumeHold(request, request.patientId, actor);
    const { start, end, resources } = this.checkTime(request, request.patientId, { holdId: hold });
    return this.insert({ patientId: request.patientId, start, end, resources, service: request.service, note: request.note ?? null, overbook: request.overbook?.reason ?? null, rescheduledFrom: null }, actor);
  }

  reschedule(request: BookingTime & { appointmentId: string; version: number }, actor: BookingActor): { from: AppointmentView; to: AppointmentView } {
    this.takeBookingLock();
    const old = this.requireRow(request.appointmentId, request.version);
    if (!['booked', 'pending', 'proposed'].includes(old.status)) throw new NwError('conflict', `A ${old.status} appointment cannot be rescheduled.`);
    const resourceIds = request.resourceIds.length ? request.resourceIds : this.resourceIdsOf(old.id);
    const hold = this.consumeHold({ ...request, resourceIds }, old.patient_id, actor);
    const { start, end, resources } = this.checkTime({ ...request, resourceIds }, old.patient_id, { holdId: hold, appointmentId: old.id });
    const to = this.insert({ patientId: old.patient_id, start, end, resources, service: old.service, note: old.note, overbook: request.overbook?.reason ?? null, rescheduledFrom: old.id }, actor);
    const from = this.transition(old, 'cancelled', `rescheduled to ${fmt(start)} (appointment ${to.id})`, actor);
    return { from, to };
  }

  setStatus(request: { appointmentId: string; version: number; status: AppointmentStatus; note?: string | undefined }, actor: BookingActor): AppointmentView {
    const row = this.requireRow(request.appointmentId, request.version);
    const allowed = NEXT[row.status] ?? [];
    if (!allowed.includes(request.status)) {
      throw new NwError('conflict', `A ${row.status} appointment cannot become ${request.status}${allowed.length ? ` (it can become ${allowed.join(', ')})` : ': that is final'}.`);
    }
    const nowMs = this.now().getTime();
    if (['arrived', 'checked-in', 'fulfilled'].includes(request.status) && row.start_at && Date.parse(row.start_at) - nowMs > DAY_MS) {
      throw new NwError('conflict', `The appointment is on ${row.start_at.slice(0, 10)}: a patient cannot arrive for it more than a day early.`);
    }
    if (request.status === 'noshow' && row.start_at && Date.parse(row.start_at) > nowMs) throw new NwError('conflict', 'The appointment has not started yet: it cannot be a no-show.');
    return this.transition(row, request.status, request.note ?? null, actor);
  }

  // -------------------------------------------------------------------------------------------
  // Reads
  // -------------------------------------------------------------------------------------------

  appointments(request: { from: string; to: string; resourceId?: string | undefined; patientId?: string | undefined }): AppointmentView[] {
    const { from, to } = range(request.from, request.to);
    const args: unknown[] = [fmt(from), fmt(to)];
    let where = 'a.start_at >= ? AND a.start_at < ?';
    if (request.resourceId) {
      this.schedules.require(request.resourceId);
      where += ' AND a.id IN (SELECT appointment_id FROM crm_appointment_resources WHERE resource_id = ?)';
      args.push(request.resourceId);
    }
    if (request.patientId) {
      where += ' AND a.patient_id = ?';
      args.push(request.patientId);
    }
    const rows = this.db.prepare(`SELECT a.* FROM crm_appointments a WHERE ${where} ORDER BY a.start_at, a.created_at`).all(...args) as AppointmentRow[];
    return rows.map((r) => this.view(r));
  }

  /** No-shows, and cancellations less than 24 h before the start (not reschedules), of all time. */
  patientCounts(patientId: string): { noShows: number; lateCancellations: number } {
    const noShows = (this.db.prepare("SELECT count(*) AS n FROM crm_appointments WHERE patient_id = ? AND status = 'noshow'").get(patientId) as { n: number }).n;
    const cancelled = this.db
      .prepare(
        `SELECT a.start_at, h.at, h.note FROM crm_appointments a JOIN crm_appointment_history h ON h.appointment_id = a.id AND h.status = 'cancelled'
         WHERE a.patient_id = ? AND a.status = 'cancelled'`,
      )
      .all(patientId) as { start_at: string | null; at: string; note: string | null }[];
    const lateCancellations = cancelled.filter((c) => c.start_at && !c.note?.startsWith('rescheduled') && Date.parse(c.start_at) - Date.parse(c.at) < LATE_CANCEL_MS).length;
    return { noShows, lateCancellations };
  }

  get(id: string): AppointmentView | null {
    const row = this.db.prepare('SELECT * FROM crm_appointments WHERE id = ?').get(id) as AppointmentRow | undefined;
    return row ? this.view(row) : null;
  }

  // -------------------------------------------------------------------------------------------
  // Inside
  // -------------------------------------------------------------------------------------------

  /** The first write of a booking: the store's write lock, before any of its checks read. */
  private takeBookingLock(): void {
    if (!this.db.inTransaction) throw new Error('bookings must run inside a transaction');
    this.db.prepare('UPDATE crm_booking_guard SET bookings = bookings + 1 WHERE id = 1').run();
  }

  /**
   * Checks a time for a patient and resources: in the future, inside every resource's hours and clear
   * of its blocks, and clear of every other booking and live hold of the resources and the patient
   * (buffers included). An overbooking skips the hours and the clashes, never the rest.
   */
  private checkTime(time: BookingTime, patientId: string, except: { holdId?: string | null | undefined; appointmentId?: string | undefined }): { start: number; end: number; resources: ScheduleResource[] } {
    const start = instant(time.start, 'The start');
    const end = instant(time.end, 'The end');
    if (end <= start) throw new NwError('bad-request', 'An appointment must end after it starts.');
    if (end - start > DAY_MS) throw new NwError('bad-request', 'An appointment lasts at most a day.');
    if (start < this.now().getTime()) throw new NwError('bad-request', `${fmt(start)} is in the past: book a time from now on.`);
    if (new Set(time.resourceIds).size !== time.resourceIds.length) throw new NwError('bad-request', 'A resource is named twice.');
    this.requirePatient(patientId);
    const resources = time.resourceIds.map((id) => this.requireActive(id));
    if (time.overbook) return { start, end, resources };
    for (const r of resources) {
      if (!covers(this.schedules.openings(r, start - DAY_MS, end + DAY_MS), start, end)) {
        throw new NwError('bad-request', `${fmt(start)}–${fmt(end)} is outside ${r.name}'s hours (or in a block or holiday): pick a free slot, or overbook with a reason.`);
      }
      const buffer = r.bufferMinutes * MINUTE;
      const clash = this.db
        .prepare('SELECT start_ms, end_ms FROM crm_appointment_resources WHERE resource_id = ? AND occupying = 1 AND start_ms > ? AND start_ms < ? AND end_ms > ? AND appointment_id <> ? LIMIT 1')
        .get(r.id, start - buffer - DAY_MS, end + buffer, start - buffer, except.appointmentId ?? '') as { start_ms: number; end_ms: number } | undefined;
      if (clash) throw new NwError('conflict', `Taken: ${r.name} is booked ${fmt(clash.start_ms)}–${fmt(clash.end_ms)}${r.bufferMinutes ? ` (with a ${r.bufferMinutes} min buffer)` : ''}.`);
    }
    const patientClash = this.db
      .prepare(`SELECT start_at, end_at FROM crm_appointments WHERE patient_id = ? AND status IN (${OCCUPYING_SQL}) AND start_at > ? AND start_at < ? AND end_at > ? AND id <> ? LIMIT 1`)
      .get(patientId, fmt(start - DAY_MS), fmt(end), fmt(start), except.appointmentId ?? '') as { start_at: string; end_at: string } | undefined;
    if (patientClash) throw new NwError('conflict', `Taken: the patient already has an appointment ${patientClash.start_at}–${patientClash.end_at}.`);
    const ids = new Set(resources.map((r) => r.id));
    for (const hold of this.liveHolds(start - DAY_MS, end + DAY_MS)) {
      if (hold.id === except.holdId) continue;
      const buffer = Math.max(0, ...resources.filter((r) => hold.resourceIds.includes(r.id)).map((r) => r.bufferMinutes)) * MINUTE;
      const overlaps = hold.start < end + buffer && hold.end > start - buffer;
      if (overlaps && (hold.patientId === patientId || hold.resourceIds.some((id) => ids.has(id)))) {
        throw new NwError('conflict', `Taken: another booking is being confirmed for this time (held until ${hold.expiresAt}).`);
      }
    }
    return { start, end, resources };
  }

  /** The hold a booking confirms: it must be the caller's, live, and for exactly this time. Removed. */
  private consumeHold(time: BookingTime, patientId: string, actor: BookingActor): string | null {
    if (!time.holdId) return null;
    const row = this.db.prepare('SELECT id FROM crm_holds WHERE id = ? AND expires_at > ?').get(time.holdId, this.now().toISOString()) as { id: string } | undefined;
    const hold = row ? this.liveHolds(0, MAX_INSTANT).find((h) => h.id === row.id) : undefined;
    if (!hold) throw new NwError('conflict', 'The hold has expired or was used: search the free slots again.');
    const same = hold.heldBy === actor.userId && hold.patientId === patientId && hold.start === Date.parse(time.start) && hold.end === Date.parse(time.end) && [...hold.resourceIds].sort().join() === [...time.resourceIds].sort().join();
    if (!same) throw new NwError('bad-request', 'The hold is for another time, patient or resources (or another user).');
    this.db.prepare('DELETE FROM crm_holds WHERE id = ?').run(hold.id);
    return hold.id;
  }

  private liveHolds(fromMs: number, toMs: number): { id: string; patientId: string; start: number; end: number; resourceIds: string[]; heldBy: string; expiresAt: string }[] {
    const rows = this.db
      .prepare('SELECT * FROM crm_holds WHERE expires_at > ? AND start_at < ? AND end_at > ?')
      .all(this.now().toISOString(), fmt(Math.min(toMs, MAX_INSTANT)), fmt(Math.max(fromMs, 0))) as { id: string; patient_id: string; start_at: string; end_at: string; resource_ids_json: string; held_by_user_id: string; expires_at: string }[];
    return rows.map((h) => ({ id: h.id, patientId: h.patient_id, start: Date.parse(h.start_at), end: Date.parse(h.end_at), resourceIds: JSON.parse(h.resource_ids_json) as string[], heldBy: h.held_by_user_id, expiresAt: h.expires_at }));
  }

  /**
   * Each resource's booked time in [from, to), each appointment widened by the resource's buffer, and
   * live holds (the searcher's own included: a held time is not offered again). Appointments last at
   * most a day, so those that overlap the range start at most a day before it: one index range each.
   */
  private busyOf(resources: readonly ScheduleResource[], from: number, to: number): Map<string, Interval[]> {
    const byId = new Map(resources.map((r) => [r.id, r]));
    const maxBuffer = Math.max(0, ...resources.map((r) => r.bufferMinutes)) * MINUTE;
    const byResource = this.db.prepare('SELECT start_ms, end_ms FROM crm_appointment_resources WHERE resource_id = ? AND occupying = 1 AND start_ms > ? AND start_ms < ? AND end_ms > ?').raw();
    const raw = new Map<string, Interval[]>();
    const add = (id: string, start: number, end: number) => {
      const r = byId.get(id);
      if (!r) return;
      const buffer = r.bufferMinutes * MINUTE;
      const list = raw.get(id) ?? [];
      list.push({ start: start - buffer, end: end + buffer });
      raw.set(id, list);
    };
    for (const r of resources) for (const [start, end] of byResource.all(r.id, from - maxBuffer - DAY_MS, to + maxBuffer, from - maxBuffer) as [number, number][]) add(r.id, start, end);
    for (const h of this.liveHolds(from - maxBuffer, to + maxBuffer)) for (const id of h.resourceIds) add(id, h.start, h.end);
    return new Map([...raw].map(([id, list]) => [id, normalise(list)]));
  }

  private patientBusy(patientId: string, from: number, to: number): Interval[] {
    const rows = this.db
      .prepare(`SELECT start_at, end_at FROM crm_appointments WHERE patient_id = ? AND status IN (${OCCUPYING_SQL}) AND start_at > ? AND start_at < ? AND end_at > ?`)
      .all(patientId, fmt(from - DAY_MS), fmt(to), fmt(from)) as { start_at: string; end_at: string }[];
    const held = this.liveHolds(from, to).filter((h) => h.patientId === patientId);
    return normalise([...rows.map((a) => ({ start: Date.parse(a.start_at), end: Date.parse(a.end_at) })), ...held]);
  }

  private insert(input: { patientId: string; start: number; end: number; resources: ScheduleResource[]; service: string; note: string | null; overbook: string | null; rescheduledFrom: string | null }, actor: BookingActor): AppointmentView {
    const id = randomUUID();
    const at = this.now().toISOString();
    this.db
      .prepare(
        `INSERT INTO crm_appointments (id, patient_id, status, start_at, end_at, service, note, overbooked_reason, rescheduled_from, created_at, created_by, updated_at)
         VALUES (?, ?, 'booked', ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(id, input.patientId, fmt(input.start), fmt(input.end), input.service, input.note, input.overbook, input.rescheduledFrom, at, actor.name, at);
    const link = this.db.prepare('INSERT INTO crm_appointment_resources (appointment_id, resource_id, start_ms, end_ms, occupying) VALUES (?, ?, ?, ?, 1)');
    for (const r of input.resources) link.run(id, r.id, input.start, input.end);
    const note = input.overbook ? `overbooked: ${input.overbook}` : input.rescheduledFrom ? `rescheduled from appointment ${input.rescheduledFrom}` : null;
    this.history(id, at, actor, 'booked', input.start, input.end, note);
    const view = this.published(id);
    planReminders(this.db, this.now, view, { timeZone: clinicZone(input.resources), withWhom: input.resources.map((r) => r.name).join(' and '), quiet: this.quietHours });
    return view;
  }

  private transition(row: AppointmentRow, status: AppointmentStatus, note: string | null, actor: BookingActor): AppointmentView {
    const at = this.now().toISOString();
    const done = this.db.prepare('UPDATE crm_appointments SET status = ?, version = version + 1, updated_at = ? WHERE id = ? AND version = ?').run(status, at, row.id, row.version);
    if (done.changes !== 1) throw new NwError('conflict', 'The appointment changed meanwhile: reload it.');
    this.db.prepare('UPDATE crm_appointment_resources SET occupying = ? WHERE appointment_id = ?').run(OCCUPYING.includes(status) ? 1 : 0, row.id);
    this.history(row.id, at, actor, status, row.start_at ? Date.parse(row.start_at) : null, row.end_at ? Date.parse(row.end_at) : null, note);
    if (!OCCUPYING.includes(status)) cancelReminders(this.db, this.now, row.id);
    return this.published(row.id);
  }

  private history(id: string, at: string, actor: BookingActor, status: AppointmentStatus, start: number | null, end: number | null, note: string | null): void {
    this.db
      .prepare('INSERT INTO crm_appointment_history (appointment_id, at, by, status, start_at, end_at, note) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(id, at, actor.name, status, start === null ? null : fmt(start), end === null ? null : fmt(end), note);
  }

  /** The appointment as it is now, with its FHIR Appointment in the outbox. */
  private published(id: string): AppointmentView {
    const view = this.get(id)!;
    const resources = new Map(view.resourceIds.map((rid) => [rid, this.resource(rid)] as const));
    new Outbox(this.db, this.now).enqueue('update', toFhirAppointment(view, resources));
    return view;
  }

  private requireRow(id: string, version: number): AppointmentRow {
    const row = this.db.prepare('SELECT * FROM crm_appointments WHERE id = ?').get(id) as AppointmentRow | undefined;
    if (!row) throw new NwError('not-found', 'No such appointment.');
    if (row.version !== version) throw new NwError('conflict', 'The appointment changed meanwhile: reload it.');
    return row;
  }

  private requireActive(id: string): ScheduleResource {
    const r = this.resource(id);
    if (!r.active) throw new NwError('bad-request', `${r.name} is no longer bookable.`);
    return r;
  }

  /** A resource as this call first read it (a service lives for one call). */
  private resource(id: string): ScheduleResource {
    let r = this.resources.get(id);
    if (!r) {
      r = this.schedules.require(id);
      this.resources.set(id, r);
    }
    return r;
  }

  private requirePatient(id: string): void {
    if (!new PatientsRepository(this.db, this.now).get(id)) throw new NwError('not-found', 'No such patient.');
  }

  private resourceIdsOf(appointmentId: string): string[] {
    return (this.db.prepare('SELECT resource_id FROM crm_appointment_resources WHERE appointment_id = ? ORDER BY resource_id').all(appointmentId) as { resource_id: string }[]).map((r) => r.resource_id);
  }

  private view(row: AppointmentRow): AppointmentView {
    const patient = new PatientsRepository(this.db, this.now).get(row.patient_id);
    const history = this.db.prepare('SELECT at, by, status, start_at, end_at, note FROM crm_appointment_history WHERE appointment_id = ? ORDER BY seq').all(row.id) as {
      at: string;
      by: string;
      status: AppointmentStatus;
      start_at: string | null;
      end_at: string | null;
      note: string | null;
    }[];
    return {
      id: row.id,
      patientId: row.patient_id,
      mrn: patient?.mrn ?? '',
      patientName: patient ? `${patient.givenName} ${patient.familyName}` : null,
      status: row.status,
      start: row.start_at,
      end: row.end_at,
      service: row.service,
      note: row.note,
      resourceIds: this.resourceIdsOf(row.id),
      overbookedReason: row.overbooked_reason,
      rescheduledFrom: row.rescheduled_from,
      version: row.version,
      createdAt: row.created_at,
      createdBy: row.created_by,
      history: history.map((h) => ({ at: h.at, by: h.by, status: h.status, start: h.start_at, end: h.end_at, note: h.note })),
    };
  }
}
