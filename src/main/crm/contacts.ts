/**
 * How a patient may be contacted, per channel, and whether they consented to it (crm_contacts). The
 * address is checked for its channel: an email address, a phone number in international form
 * (E.164: +, country code, up to 15 digits), or a postal address of at least two lines.
 */
import { NwError } from '../../shared/errors.js';
import type { Db } from '../store/database.js';
import type { ContactChannel } from './reminders.js';

export interface PatientContact {
  channel: ContactChannel;
  address: string;
  consent: boolean;
  recordedAt: string;
  recordedBy: string;
}

const EMAIL = /^[^\s@<>()[\],;:"]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
const PHONE = /^\+[1-9]\d{7,14}$/;

/** The address as stored, or a clear error for its channel. */
export function checkAddress(channel: ContactChannel, address: string): string {
  const a = address.trim();
  if (channel === 'email') {
    if (!EMAIL.test(a) || a.length > 254) throw new NwError('bad-request', `"${a}" is not an email address (name@example.org).`);
    return a;
  }
  if (channel === 'sms') {
    const digits = a.replace(/[\s().-]/g, '');
    if (!PHONE.test(digits)) throw new NwError('bad-request', `"${a}" is not a mobile number in international form (e.g. +44 7700 900123).`);
    return digits;
  }
  const lines = a.split(/\n|,/).map((l) => l.trim()).filter(Boolean);
  if (lines.length < 2 || a.length > 500) throw new NwError('bad-request', 'A postal address needs at least two lines (street, town and postcode).');
  return lines.join('\n');
}

export class ContactsRepository {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {}

  set(patientId: string, contact: { channel: ContactChannel; address: string; consent: boolean }, by: string): PatientContact {
    const address = checkAddress(contact.channel, contact.address);
    this.db
      .prepare(
        `INSERT INTO crm_contacts (patient_id, channel, address, consent, recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (patient_id, channel) DO UPDATE SET address = excluded.address, consent = excluded.consent, recorded_at = excluded.recorded_at, recorded_by = excluded.recorded_by`,
      )
      .run(patientId, contact.channel, address, contact.consent ? 1 : 0, this.now().toISOString(), by);
    return this.list(patientId).find((c) => c.channel === contact.channel)!;
  }

  list(patientId: string): PatientContact[] {
    const rows = this.db.prepare('SELECT channel, address, consent, recorded_at, recorded_by FROM crm_contacts WHERE patient_id = ? ORDER BY channel').all(patientId) as {
      channel: ContactChannel;
      address: string;
      consent: number;
      recorded_at: string;
      recorded_by: string;
    }[];
    return rows.map((r) => ({ channel: r.channel, address: r.address, consent: r.consent === 1, recordedAt: r.recorded_at, recordedBy: r.recorded_by }));
  }
}
