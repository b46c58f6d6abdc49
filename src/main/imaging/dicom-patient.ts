/**
 * Who a DICOM series says it is of: Patient ID (0010,0020), Patient's Name (0010,0010), Birth Date
 * (0010,0030) and Sex (0010,0040) from its header, in the shapes the patient record uses, and the name
 * normalisation the match against local records compares with (patient-match.ts).
 */
import type { DicomPatient } from './types.js';

export interface RawDicomPatient {
  patientId: string | null;
  patientName: string | null;
  patientBirthDate: string | null;
  patientSex: string | null;
}

/** YYYYMMDD (or YYYY-MM-DD, YYYY.MM.DD as some old writers stored) → YYYY-MM-DD; null when absent or no real date. */
export function dicomDate(raw: string | null | undefined): string | null {
  const m = /^(\d{4})[-.]?(\d{2})[-.]?(\d{2})$/.exec((raw ?? '').trim());
  if (!m) return null;
  const [, y, mo, d] = m;
  const iso = `${y}-${mo}-${d}`;
  const date = new Date(`${iso}T00:00:00Z`);
  if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== iso) return null;
  return iso;
}

export function dicomSex(raw: string | null | undefined): DicomPatient['sex'] {
  const s = (raw ?? '').trim().toUpperCase();
  if (s === 'F') return 'female';
  if (s === 'M') return 'male';
  if (s === 'O') return 'other';
  return s ? 'unknown' : null;
}

/**
 * The person name of a PN value: its alphabetic group (before any '='), components
 * family^given^middle^prefix^suffix. Given and middle names are joined by a space.
 */
export function dicomPersonName(raw: string | null | undefined): { familyName: string | null; givenName: string | null } {
  const alphabetic = (raw ?? '').split('=')[0] ?? '';
  const [family = '', given = '', middle = ''] = alphabetic.split('^').map((part) => part.trim());
  const givenNames = [given, middle].filter(Boolean).join(' ');
  return { familyName: family || null, givenName: givenNames || null };
}

/** The identity in a header; null when the header names nobody (no ID, no name, no birth date). */
export function dicomPatient(raw: RawDicomPatient): DicomPatient | null {
  const id = raw.patientId?.trim() || null;
  const name = raw.patientName?.trim() || null;
  const birthDate = dicomDate(raw.patientBirthDate);
  if (!id && !name && !birthDate) return null;
  return { id, name, ...dicomPersonName(name), birthDate, sex: dicomSex(raw.patientSex) };
}

/**
 * A name as compared for a match: letters and digits only, diacritics and case dropped, so that
 * "O'Brien-Smith", "OBRIEN SMITH" and "Ó Brien Smith" compare equal. Empty for no name.
 */
export function normaliseName(name: string | null | undefined): string {
  return (name ?? '')
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '');
}

/** The first given name, normalised ("Mary Ann" → "mary"): given names vary more than family names. */
export function normaliseGivenName(name: string | null | undefined): string {
  const first = (name ?? '').trim().split(/[\s^]+/)[0] ?? '';
  return normaliseName(first);
}

/** "Given Family" as shown, or the raw PN when it has no components. */
export function displayDicomName(patient: DicomPatient): string | null {
  const parts = [patient.givenName, patient.familyName].filter(Boolean);
  return parts.length ? parts.join(' ') : patient.name;
}
