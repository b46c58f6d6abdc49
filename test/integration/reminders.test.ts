/**
 * Appointment reminders end to end: bookings through the app plan them for the patients' consented
 * channels; the app sends them to a real SMTP server (Debian's python3-aiosmtpd on loopback, storing
 * what arrives in a Maildir this test reads) and, for letters, to the file channel. A simulated week
 * across the UK's change to summer time (Sunday 31 March 2030, 01:00 UTC: GMT → BST) in 5-minute steps,
 * with the SMTP server down for a whole day: none missed, none twice, none in the quiet hours
 * (21:00–08:00 London time), cancelled and moved appointments' reminders never sent.
 *
 * Expected instants come from the rules (a day and an hour before; a reminder due in the quiet hours
 * goes the minute before they start) and the published DST dates, worked out by hand below.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppointmentView, ScheduleResource } from '../../src/shared/ipc.js';
import { loadConfig } from '../../src/main/app/config.js';
import { canConnect, freePort } from '../support/net.js';
import { setUpWorkstation, storeReader, tempDir, type StoreReader, type TestConnection, type Workstation } from '../support/harness.js';

const PYTHON = '/usr/bin/python3';
let ws: Workstation;
let withStore: StoreReader;
let smtpPort: number;
let smtp: ChildProcess | null = null;
let maildir: string;
let lettersDir: string;
let doctor: ScheduleResource;
const patient: Record<'email' | 'emailAndLetter' | 'noConsent' | 'sms', string> = { email: '', emailAndLetter: '', noConsent: '', sms: '' };

async function startSmtp(): Promise<void> {
  smtp = spawn(PYTHON, ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${smtpPort}`, '-c', 'aiosmtpd.handlers.Mailbox', maildir], { stdio: 'ignore' });
  const deadline = Date.now() + 15_000;
  while (!(await canConnect(smtpPort))) {
    if (Date.now() > deadline) throw new Error('aiosmtpd did not start (apt-get install python3-aiosmtpd)');
    await new Promise((r) => setTimeout(r, 50));
  }
}
async function stopSmtp(): Promise<void> {
  const child = smtp;
  smtp = null;
  if (!child || child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
/** What arrived at the SMTP server: each message's recipient, reminder id and Date header. */
function arrived(): { to: string; reminder: string; subject: string }[] {
  const dir = path.join(maildir, 'new');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((f) => {
    const text = readFileSync(path.join(dir, f), 'utf8');
    const header = (name: string) => new RegExp(`^${name}: (.*)$`, 'mi').exec(text)?.[1]?.trim() ?? '';
    return { to: header('To'), reminder: header('X-NeuroWard-Reminder'), subject: header('Subject') };
  });
}
const letters = () => (existsSync(lettersDir) ? readdirSync(lettersDir).filter((f) => f.endsWith('.txt')) : []);
const reminders = () =>
  withStore(
    (db) =>
      db.prepare('SELECT id, appointment_id, channel, offset_minutes, due_at, status, attempts, sent_at, last_error FROM crm_reminders ORDER BY due_at').all() as {
        id: string;
        appointment_id: string;
        channel: string;
        offset_minutes: number;
        due_at: string;
        status: string;
        attempts: number;
        sent_at: string | null;
        last_error: string | null;
      }[],
  );
/** London wall-clock minutes of an instant, through Intl (not the code's luxon). */
function londonMinutes(iso: string): number {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(iso));
  return Number(parts.find((p) => p.type === 'hour')!.value) * 60 + Number(parts.find((p) => p.type === 'minute')!.value);
}
/** A reception connection signed in at the workstation's clock now. */
async function reception(): Promise<TestConnection> {
  return (await ws.signInAs('receptionist')).connection;
}
function book(c: TestConnection, patientId: string, start: string, minutes = 30): Promise<AppointmentView> {
  return c.ok('schedule.book', { patientId, service: 'Neurology clinic', start, end: new Date(Date.parse(start) + minutes * 60_000).toISOString(), resourceIds: [doctor.id] });
}

beforeAll(async () => {
  smtpPort = await freePort();
  const dir = tempDir('nw-reminders-');
  maildir = path.join(dir, 'maildir');
  lettersDir = path.join(dir, 'letters');
  // aiosmtpd's Mailbox makes the Maildir (cur, new, tmp) only when the folder does not exist yet.
  await startSmtp();
  const defaults = loadConfig(['--data-dir', dir], { HOME: dir }).reminders;
  ws = await setUpWorkstation({ reminders: { ...defaults, smtp: { host: '127.0.0.1', port: smtpPort, secure: false, from: 'Clinic <clinic@example.org>', username: null, password: null }, messagesDir: lettersDir } });
  withStore = await storeReader(ws);
  ws.clock.now = Date.parse('2030-03-25T12:00:00.000Z'); // Monday
  const c = await reception();
  for (const key of Object.keys(patient) as (keyof typeof patient)[]) patient[key] = (await c.ok('patients.create', { givenName: 'Remi', familyName: `Nder-${key}`, birthDate: '1960-05-05', sex: 'female' })).id;
  await c.ok('patients.setContact', { patientId: patient.email, channel: 'email', address: 'remi.email@example.org', consent: true });
  await c.ok('patients.setContact', { patientId: patient.emailAndLetter, channel: 'email', address: 'remi.both@example.org', consent: true });
  await c.ok('patients.setContact', { patientId: patient.emailAndLetter, channel: 'letter', address: '1 High Street\nLondon\nN1 1AA', consent: true });
  await c.ok('patients.setContact', { patientId: patient.noConsent, channel: 'email', address: 'remi.noconsent@example.org', consent: false });
  await c.ok('patients.setContact', { patientId: patient.sms, channel: 'sms', address: '+44 7700 900123', consent: true });
  doctor = await c.ok('schedule.createResource', { kind: 'practitioner', name: 'Dr Remi Week', timeZone: 'Europe/London', slotMinutes: 15 });
  await c.ok('schedule.addAvailability', { resourceId: doctor.id, rrule: 'FREQ=DAILY', startTime: '08:00', endTime: '18:00', validFrom: '2030-03-01' });
}, 60_000);
afterAll(async () => {
  await ws?.app.close();
  await stopSmtp();
});

describe('reminders', () => {
  it('refuses a malformed address for its channel and writes nothing', async () => {
    const c = await reception();
    for (const [channel, address, message] of [
      ['email', 'not an address', /is not an email address/],
      ['sms', '07700 900123', /international form/],
      ['letter', 'London', /at least two lines/],
    ] as const) {
      const refused = await c.call('patients.setContact', { patientId: patient.noConsent, channel, address, consent: true });
      expect(refused.ok ? null : refused.error).toMatchObject({ code: 'bad-request', message: expect.stringMatching(message) });
    }
    expect((await c.ok('patients.contacts', { patientId: patient.noConsent })).contacts).toEqual([expect.objectContaining({ channel: 'email', consent: false })]);
  });

  it('a simulated week across the change to summer time, the SMTP server down for a day: none missed, none twice, none in the quiet hours', async () => {
    const c = await reception();
    // A: Thu 28 Mar 14:00 GMT. B: Fri 29 Mar 08:30 GMT (email and letter). C: Mon 1 Apr 08:30 BST (07:30Z).
    // D: Sun 31 Mar 14:00 BST (13:00Z), the day the clocks change (email and letter). E: no consent.
    // F: SMS only (no SMS provider here). G: cancelled later. H: moved later (email and letter).
    const A = await book(c, patient.email, '2030-03-28T14:00:00.000Z');
    const B = await book(c, patient.emailAndLetter, '2030-03-29T08:30:00.000Z');
    const C = await book(c, patient.email, '2030-04-01T07:30:00.000Z');
    const D = await book(c, patient.emailAndLetter, '2030-03-31T13:00:00.000Z');
    await book(c, patient.noConsent, '2030-04-02T09:00:00.000Z');
    const F = await book(c, patient.sms, '2030-03-27T10:00:00.000Z');
    const G = await book(c, patient.email, '2030-03-30T11:00:00.000Z');
    const H = await book(c, patient.emailAndLetter, '2030-04-02T14:00:00.000Z');

    const planned = reminders();
    const dueOf = (appointmentId: string) => planned.filter((r) => r.appointment_id === appointmentId).map((r) => `${r.channel} ${r.due_at}`);
    expect(dueOf(A.id)).toEqual(['email 2030-03-27T14:00:00.000Z', 'email 2030-03-28T13:00:00.000Z']);
    // B's hour-before is 07:30, in the quiet hours: the minute before they started, 20:59 the evening before.
    expect(dueOf(B.id)).toEqual(['email 2030-03-28T08:30:00.000Z', 'file 2030-03-28T08:30:00.000Z', 'email 2030-03-28T20:59:00.000Z']);
    // C is on summer time: 08:30 BST; 20:59 BST the evening before is 19:59Z.
    expect(dueOf(C.id)).toEqual(['email 2030-03-31T07:30:00.000Z', 'email 2030-03-31T19:59:00.000Z']);
    expect(dueOf(D.id)).toEqual(['email 2030-03-30T13:00:00.000Z', 'file 2030-03-30T13:00:00.000Z', 'email 2030-03-31T12:00:00.000Z']);
    expect(planned.filter((r) => r.channel === 'email' || r.channel === 'file')).toHaveLength(15); // A 2, B 3, C 2, D 3, G 2, H 3
    expect(dueOf(F.id)).toEqual(['sms 2030-03-26T10:00:00.000Z', 'sms 2030-03-27T09:00:00.000Z']);

    const CUT_FROM = Date.parse('2030-03-27T00:00:00.000Z');
    const CUT_TO = Date.parse('2030-03-28T00:00:00.000Z');
    const END = Date.parse('2030-04-03T00:00:00.000Z');
    for (let t = ws.clock.now; t <= END; t += 5 * 60_000) {
      ws.clock.now = t;
      if (t === CUT_FROM) await stopSmtp();
      if (t === CUT_TO) await startSmtp();
      if (t === Date.parse('2030-03-28T09:00:00.000Z')) {
        const g = (await reception()).ok('schedule.setStatus', { appointmentId: G.id, version: G.version, status: 'cancelled', note: 'patient phoned' });
        await g;
      }
      if (t === Date.parse('2030-03-30T10:00:00.000Z')) {
        await (await reception()).ok('schedule.reschedule', { appointmentId: H.id, version: H.version, start: '2030-04-02T15:00:00.000Z', end: '2030-04-02T15:30:00.000Z' });
      }
      await ws.app.sendDueReminders();
    }

    const rows = reminders();
    const sent = rows.filter((r) => r.status === 'sent');
    const mail = arrived();
    // Sent: A 2, B 2 + letter, C 2, D 2 + letter, H (moved) 2 + letter: 10 emails, 3 letters.
    expect(mail).toHaveLength(10);
    expect(new Set(mail.map((m) => m.reminder)).size).toBe(10); // none twice
    expect(letters()).toHaveLength(3);
    expect(sent).toHaveLength(13);
    expect(new Set(mail.map((m) => m.reminder))).toEqual(new Set(sent.filter((r) => r.channel === 'email').map((r) => r.id)));
    expect(mail.map((m) => m.to).sort()).toEqual([...Array(6).fill('remi.both@example.org'), ...Array(4).fill('remi.email@example.org')].sort());
    // None in the quiet hours (London time, with its change to BST), none after its appointment began.
    for (const r of sent) {
      const m = londonMinutes(r.sent_at!);
      expect(m >= 21 * 60 || m < 8 * 60, `${r.id} sent ${r.sent_at}`).toBe(false);
    }
    // The one due while the server was down went when the link was back and the quiet hours over (08:00).
    const aDayBefore = rows.find((r) => r.appointment_id === A.id && r.offset_minutes === 1440)!;
    expect(aDayBefore).toMatchObject({ status: 'sent', sent_at: '2030-03-28T08:00:00.000Z' });
    expect(aDayBefore.attempts).toBeGreaterThan(1);
    // Cancelled and moved appointments: their reminders cancelled, never sent; the new time's ones sent.
    expect(rows.filter((r) => r.appointment_id === G.id).map((r) => r.status)).toEqual(['cancelled', 'cancelled']);
    expect(rows.filter((r) => r.appointment_id === H.id).map((r) => r.status)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    // SMS: no provider here, said plainly; never sent after the appointment began.
    expect(rows.filter((r) => r.appointment_id === F.id).map((r) => [r.status, r.last_error])).toEqual([
      ['failed', 'not sent before the appointment started'],
      ['failed', 'not sent before the appointment started'],
    ]);
    // Each outcome is a FHIR Communication in the outbox.
    const communications = withStore((db) => (db.prepare("SELECT count(DISTINCT resource_id) AS n FROM outbox WHERE resource_type = 'Communication' AND resource_json LIKE '%\"completed\"%'").get() as { n: number }).n);
    expect(communications).toBe(13);
    const queue = await (await reception()).ok('schedule.reminders', { status: 'sent' });
    expect(queue.reminders).toHaveLength(13);
  }, 240_000);
});
