/**
 * Appointment reminders: planned when an appointment is booked (FHIR CommunicationRequest), sent when
 * due through the patient's consented channels, each outcome recorded (Communication).
 *
 * - Channels behind one interface (MessageChannel): email through nodemailer to an SMTP server, SMS
 *   through a provider (none is built in: without one, SMS reminders wait with that reason), and the
 *   file channel, the embedded default, which writes each message as a text file for a letter run or
 *   another system to pick up.
 * - Consent: a reminder goes only to a channel the patient consented to (crm_contacts); a letter only
 *   for the first (earliest) reminder.
 * - Quiet hours (on the clinic's clock: clinicZone): a reminder due inside them
 *   is planned for the minute before they start instead; one that could not go before they began
 *   (the link was down) waits for their end if that is before the appointment, else it is not sent.
 * - Offline: a failed send stays planned and is retried with back-off until the appointment starts.
 * - Never twice: each send is claimed ('sending') in its own transaction before it goes out; a row
 *   found 'sending' at start (the workstation stopped mid-send) is marked failed, in doubt, not resent.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Communication, CommunicationRequest } from '@medplum/fhirtypes';
import { DateTime } from 'luxon';
import nodemailer, { type Transporter } from 'nodemailer';
import type { AppointmentView, ReminderView } from '../../shared/ipc.js';
import { PatientsRepository } from '../patients/patients-repo.js';
import type { Db } from '../store/database.js';
import { Outbox } from '../store/outbox.js';

export type ReminderChannelName = 'email' | 'sms' | 'file';
export type ContactChannel = 'email' | 'sms' | 'letter';
const CHANNEL_OF: Record<ContactChannel, ReminderChannelName> = { email: 'email', sms: 'sms', letter: 'file' };

/** Before the start: a day, and an hour. */
export const REMINDER_OFFSETS_MINUTES = [24 * 60, 60] as const;
export const DEFAULT_QUIET_HOURS = { start: '21:00', end: '08:00' };
const RETRY_BASE_MS = 60_000;
const RETRY_MAX_MS = 30 * 60_000;

export interface QuietHours {
  /** 'HH:MM' on the clinic's clock; start after end means overnight. */
  start: string;
  end: string;
}

export interface OutgoingMessage {
  reminderId: string;
  to: string;
  subject: string;
  body: string;
}

export interface MessageChannel {
  readonly name: ReminderChannelName;
  /** Sends one message; resolves with the channel's id of it, rejects when it did not go. */
  send(message: OutgoingMessage): Promise<{ messageId: string }>;
}

export interface SmtpSettings {
  host: string;
  port: number;
  /** TLS from the start (465); otherwise STARTTLS when the server offers it. */
  secure: boolean;
  from: string;
  username?: string | null | undefined;
  password?: string | null | undefined;
}

export class SmtpChannel implements MessageChannel {
  readonly name = 'email';
  private readonly transport: Transporter;

  constructor(private readonly settings: SmtpSettings) {
    this.transport = nodemailer.createTransport({
      host: settings.host,
      port: settings.port,
      secure: settings.secure,
      ...(settings.username ? { auth: { user: settings.username, pass: settings.password ?? '' } } : {}),
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 20_000,
    });
  }

  async send(message: OutgoingMessage): Promise<{ messageId: string }> {
    const info = (await this.transport.sendMail({
      from: this.settings.from,
      to: message.to,
      subject: message.subject,
      text: message.body,
      // One id per reminder: a receiving system that saw it once can tell a copy.
      messageId: `<${message.reminderId}@reminders.neuroward>`,
      headers: { 'X-NeuroWard-Reminder': message.reminderId },
    })) as { messageId: string };
    return { messageId: info.messageId };
  }

  close(): void {
    this.transport.close();
  }
}

/** Writes each message to `<dir>/<reminder id>.txt` (mode 600: it names the patient), atomically. */
export class FileChannel implements MessageChannel {
  readonly name = 'file';
  constructor(private readonly dir: string) {}

  send(message: OutgoingMessage): Promise<{ messageId: string }> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.dir, `${message.reminderId}.txt`);
    const temp = `${file}.tmp`;
    writeFileSync(temp, `To: ${message.to}\nSubject: ${message.subject}\nReminder: ${message.reminderId}\n\n${message.body}\n`, { mode: 0o600 });
    renameSync(temp, file);
    return Promise.resolve({ messageId: path.basename(file) });
  }
}

export interface ReminderChannels {
  email: MessageChannel | null;
  sms: MessageChannel | null;
  file: MessageChannel;
}

/** The clinic's clock of an appointment: its practitioner's zone, else its room's, else its device's. */
export function clinicZone(resources: readonly { kind: 'practitioner' | 'room' | 'device'; timeZone: string }[]): string {
  const order = ['practitioner', 'room', 'device'];
  return [...resources].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind))[0]?.timeZone ?? 'UTC';
}

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

export function inQuietHours(ms: number, zone: string, quiet: QuietHours): boolean {
  const t = DateTime.fromMillis(ms, { zone });
  const m = t.hour * 60 + t.minute;
  const start = minutesOf(quiet.start);
  const end = minutesOf(quiet.end);
  return start > end ? m >= start || m < end : m >= start && m < end;
}

/** The minute before the quiet hours that `ms` falls in began. */
function beforeQuiet(ms: number, zone: string, quiet: QuietHours): number {
  const t = DateTime.fromMillis(ms, { zone });
  let start = t.set({ hour: Number(quiet.start.slice(0, 2)), minute: Number(quiet.start.slice(3, 5)), second: 0, millisecond: 0 });
  if (start.toMillis() > ms) start = start.minus({ days: 1 });
  return start.minus({ minutes: 1 }).toMillis();
}

/** When the quiet hours that `ms` falls in end. */
function afterQuiet(ms: number, zone: string, quiet: QuietHours): number {
  const t = DateTime.fromMillis(ms, { zone });
  let end = t.set({ hour: Number(quiet.end.slice(0, 2)), minute: Number(quiet.end.slice(3, 5)), second: 0, millisecond: 0 });
  if (end.toMillis() <= ms) end = end.plus({ days: 1 });
  return end.toMillis();
}

interface ReminderRow {
  id: string;
  appointment_id: string;
  patient_id: string;
  channel: ReminderChannelName;
  address: string;
  offset_minutes: number;
  due_at: string;
  status: 'planned' | 'sending' | 'sent' | 'failed' | 'cancelled';
  attempts: number;
  next_attempt_at: string;
  last_error: string | null;
  sent_at: string | null;
  message_id: string | null;
  subject: string;
  body: string;
  created_at: string;
}


const toView = (r: ReminderRow): ReminderView => ({
  id: r.id,
  appointmentId: r.appointment_id,
  patientId: r.patient_id,
  channel: r.channel,
  address: r.address,
  dueAt: r.due_at,
  status: r.status,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  lastError: r.last_error,
  sentAt: r.sent_at,
});

function communicationRequest(r: ReminderRow, status: CommunicationRequest['status']): CommunicationRequest & { id: string } {
  return {
    resourceType: 'CommunicationRequest',
    id: r.id,
    status,
    subject: { reference: `Patient/${r.patient_id}` },
    about: [{ reference: `Appointment/${r.appointment_id}` }],
    occurrenceDateTime: r.due_at,
    authoredOn: r.created_at,
    medium: [{ text: r.channel }],
    payload: [{ contentString: r.body }],
  };
}

function communication(r: ReminderRow, outcome: { sent: string } | { notDone: string }): Communication & { id: string } {
  return {
    resourceType: 'Communication',
    id: r.id,
    basedOn: [{ reference: `CommunicationRequest/${r.id}` }],
    status: 'sent' in outcome ? 'completed' : 'not-done',
    subject: { reference: `Patient/${r.patient_id}` },
    about: [{ reference: `Appointment/${r.appointment_id}` }],
    medium: [{ text: r.channel }],
    ...('sent' in outcome ? { sent: outcome.sent } : { statusReason: { text: outcome.notDone } }),
    payload: [{ contentString: r.body }],
  };
}

export interface ReminderPlanContext {
  /** The clinic's clock (clinicZone). */
  timeZone: string;
  /** Names of the booked resources, for the message. */
  withWhom: string;
  quiet: QuietHours;
}

/**
 * Plans the reminders of a newly booked appointment, inside its transaction: one per consented
 * channel and offset still ahead (after the quiet-hours rule), each with its CommunicationRequest.
 * Returns how many.
 */
export function planReminders(db: Db, now: () => Date, appointment: AppointmentView, context: ReminderPlanContext): number {
  if (!appointment.start) return 0;
  const start = Date.parse(appointment.start);
  const nowMs = now().getTime();
  const contacts = db.prepare('SELECT channel, address FROM crm_contacts WHERE patient_id = ? AND consent = 1 ORDER BY channel').all(appointment.patientId) as { channel: ContactChannel; address: string }[];
  if (!contacts.length) return 0;
  const patient = new PatientsRepository(db, now).get(appointment.patientId);
  const local = DateTime.fromMillis(start, { zone: context.timeZone });
  const when = `${local.toFormat('cccc d LLLL yyyy')} at ${local.toFormat('HH:mm')}`;
  const subject = `Appointment reminder: ${local.toFormat('d LLL yyyy, HH:mm')}`;
  const body = [
    `Dear ${patient ? `${patient.givenName} ${patient.familyName}` : 'patient'},`,
    '',
    `This is a reminder of your appointment (${appointment.service}) on ${when} (${context.timeZone} time) with ${context.withWhom}.`,
    'If you cannot come, please call the clinic so that the time can be given to someone else.',
  ].join('\n');
  const insert = db.prepare(
    `INSERT INTO crm_reminders (id, appointment_id, patient_id, channel, address, offset_minutes, due_at, status, next_attempt_at, subject, body, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, 'planned', ?, ?, ?, ?)`,
  );
  const outbox = new Outbox(db, now);
  let planned = 0;
  for (const contact of contacts) {
    const offsets = contact.channel === 'letter' ? REMINDER_OFFSETS_MINUTES.slice(0, 1) : REMINDER_OFFSETS_MINUTES;
    for (const offset of offsets) {
      let due = start - offset * 60_000;
      if (inQuietHours(due, context.timeZone, context.quiet)) due = beforeQuiet(due, context.timeZone, context.quiet);
      if (due < nowMs) continue; // too late for this one (a later offset may still come)
      const id = randomUUID();
      const dueAt = new Date(due).toISOString();
      insert.run(id, appointment.id, appointment.patientId, CHANNEL_OF[contact.channel], contact.address, offset, dueAt, dueAt, subject, body, now().toISOString());
      outbox.enqueue('update', communicationRequest(getRow(db, id)!, 'active'));
      planned += 1;
    }
  }
  return planned;
}

/** The appointment's reminders not sent yet are cancelled (it was cancelled, moved or entered in error). */
export function cancelReminders(db: Db, now: () => Date, appointmentId: string): number {
  const rows = db.prepare("SELECT * FROM crm_reminders WHERE appointment_id = ? AND status = 'planned'").all(appointmentId) as ReminderRow[];
  const outbox = new Outbox(db, now);
  for (const r of rows) {
    db.prepare("UPDATE crm_reminders SET status = 'cancelled' WHERE id = ? AND status = 'planned'").run(r.id);
    outbox.enqueue('update', communicationRequest(r, 'revoked'));
  }
  return rows.length;
}

function getRow(db: Db, id: string): ReminderRow | null {
  return (db.prepare('SELECT * FROM crm_reminders WHERE id = ?').get(id) as ReminderRow | undefined) ?? null;
}

export interface ReminderServiceOptions {
  db: () => Db;
  now: () => Date;
  channels: ReminderChannels;
  quiet: QuietHours;
  log: (message: string) => void;
}

export interface ReminderRunReport {
  sent: number;
  failed: number;
  retried: number;
}

export class ReminderService {
  private running: Promise<ReminderRunReport> | null = null;

  constructor(private readonly options: ReminderServiceOptions) {}

  /** At start: a row left 'sending' may or may not have gone out; it is never sent again. */
  recoverInDoubt(): number {
    const db = this.options.db();
    const rows = db.prepare("SELECT * FROM crm_reminders WHERE status = 'sending'").all() as ReminderRow[];
    db.transaction(() => {
      for (const r of rows) this.finish(db, r, { notDone: 'in doubt: the workstation stopped while sending it; not sent again so that it is never sent twice' });
    })();
    return rows.length;
  }

  /** Sends every reminder that is due (one pass at a time). */
  runOnce(): Promise<ReminderRunReport> {
    this.running ??= this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  list(filter: { status?: ReminderRow['status'] | undefined; appointmentId?: string | undefined; limit?: number | undefined } = {}): ReminderView[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.status) {
      where.push('status = ?');
      args.push(filter.status);
    }
    if (filter.appointmentId) {
      where.push('appointment_id = ?');
      args.push(filter.appointmentId);
    }
    const rows = this.options
      .db()
      .prepare(`SELECT * FROM crm_reminders ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY due_at LIMIT ?`)
      .all(...args, filter.limit ?? 500) as ReminderRow[];
    return rows.map(toView);
  }

  private async pass(): Promise<ReminderRunReport> {
    const report: ReminderRunReport = { sent: 0, failed: 0, retried: 0 };
    const db = this.options.db();
    const { now, quiet } = this.options;
    const due = db.prepare("SELECT * FROM crm_reminders WHERE status = 'planned' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT 200").all(now().toISOString()) as ReminderRow[];
    for (const row of due) {
      const nowMs = now().getTime();
      const start = this.appointmentStart(db, row.appointment_id);
      if (start === null || nowMs >= start) {
        db.transaction(() => this.finish(db, row, { notDone: 'not sent before the appointment started' }))();
        report.failed += 1;
        continue;
      }
      const zone = clinicZone(db.prepare('SELECT r.kind, r.time_zone AS timeZone FROM crm_appointment_resources ar JOIN crm_resources r ON r.id = ar.resource_id WHERE ar.appointment_id = ?').all(row.appointment_id) as { kind: 'practitioner' | 'room' | 'device'; timeZone: string }[]);
      if (inQuietHours(nowMs, zone, quiet)) {
        const end = afterQuiet(nowMs, zone, quiet);
        db.transaction(() => {
          if (end < start) db.prepare('UPDATE crm_reminders SET next_attempt_at = ? WHERE id = ?').run(new Date(end).toISOString(), row.id);
          else this.finish(db, row, { notDone: 'not sent: quiet hours last until after the appointment' });
        })();
        if (end >= start) report.failed += 1;
        continue;
      }
      const channel = this.options.channels[row.channel];
      if (!channel) {
        this.retry(db, row, `no ${row.channel === 'sms' ? 'SMS provider' : 'email server (SMTP)'} is configured`);
        report.retried += 1;
        continue;
      }
      const claimed = db.transaction(() => db.prepare("UPDATE crm_reminders SET status = 'sending', attempts = attempts + 1 WHERE id = ? AND status = 'planned'").run(row.id).changes === 1)();
      if (!claimed) continue;
      try {
        const { messageId } = await channel.send({ reminderId: row.id, to: row.address, subject: row.subject, body: row.body });
        db.transaction(() => {
          db.prepare("UPDATE crm_reminders SET status = 'sent', sent_at = ?, message_id = ?, last_error = NULL WHERE id = ?").run(now().toISOString(), messageId, row.id);
          new Outbox(db, now).enqueue('update', communicationRequest(row, 'completed'));
          new Outbox(db, now).enqueue('update', communication(row, { sent: now().toISOString() }));
        })();
        report.sent += 1;
      } catch (error) {
        db.transaction(() => db.prepare("UPDATE crm_reminders SET status = 'planned' WHERE id = ?").run(row.id))();
        this.retry(db, { ...row, attempts: row.attempts + 1 }, (error as Error).message);
        report.retried += 1;
      }
    }
    return report;
  }

  private retry(db: Db, row: ReminderRow, error: string): void {
    const wait = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.max(0, row.attempts - 1));
    db.prepare('UPDATE crm_reminders SET next_attempt_at = ?, last_error = ? WHERE id = ?').run(new Date(this.options.now().getTime() + wait).toISOString(), error.slice(0, 500), row.id);
  }

  private finish(db: Db, row: ReminderRow, outcome: { notDone: string }): void {
    db.prepare("UPDATE crm_reminders SET status = 'failed', last_error = ? WHERE id = ?").run(outcome.notDone, row.id);
    const outbox = new Outbox(db, this.options.now);
    outbox.enqueue('update', communicationRequest(row, 'revoked'));
    outbox.enqueue('update', communication(row, outcome));
  }

  private appointmentStart(db: Db, appointmentId: string): number | null {
    const row = db.prepare("SELECT start_at FROM crm_appointments WHERE id = ? AND status IN ('booked', 'pending')").get(appointmentId) as { start_at: string | null } | undefined;
    return row?.start_at ? Date.parse(row.start_at) : null;
  }
}
