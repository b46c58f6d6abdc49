/**
 * Synthetic demo data for the embedded default: staff accounts with random passwords (shown once)
 * and patients whose records say plainly that they are not real people.
 */
import type { Role } from '../../shared/roles.js';
import type { NewPatient } from '../patients/patients-repo.js';
import type { AdmissionsRepo } from '../adt/admissions-repo.js';
import type { AuditLedger } from '../security/audit-ledger.js';
import { hashPassword, randomPassword } from '../security/passwords.js';

export interface DemoAccount {
  username: string;
  displayName: string;
  role: Role;
  password: string;
  passwordHash: string;
}

const DEMO_STAFF: { username: string; displayName: string; role: Role }[] = [
  { username: 'demo.radiologist', displayName: 'Dr Rae Demo (synthetic)', role: 'radiologist' },
  { username: 'demo.physician', displayName: 'Dr Phil Demo (synthetic)', role: 'physician' },
  { username: 'demo.nurse', displayName: 'Nurse Nia Demo (synthetic)', role: 'nurse' },
  { username: 'demo.receptionist', displayName: 'Rex Demo (synthetic)', role: 'receptionist' },
];

export async function demoAccounts(): Promise<DemoAccount[]> {
  return Promise.all(
    DEMO_STAFF.map(async (staff) => {
      const password = randomPassword();
      return { ...staff, password, passwordHash: await hashPassword(password) };
    }),
  );
}

/** Names chosen to be obviously fictional; every record carries the synthetic flag and an SYN- MRN. */
export const DEMO_PATIENTS: NewPatient[] = [
  { givenName: 'Ada', familyName: 'Synthetica', birthDate: '1956-03-14', sex: 'female', restricted: false, synthetic: true },
  { givenName: 'Bruno', familyName: 'Testwell', birthDate: '1948-11-02', sex: 'male', restricted: false, synthetic: true },
  { givenName: 'Chioma', familyName: 'Placebo', birthDate: '1971-07-29', sex: 'female', restricted: false, synthetic: true },
  { givenName: 'Dmitri', familyName: 'Mockford', birthDate: '1939-01-18', sex: 'male', restricted: false, synthetic: true },
  { givenName: 'Esme', familyName: 'Demoulin', birthDate: '1988-05-06', sex: 'female', restricted: false, synthetic: true },
  { givenName: 'Farid', familyName: 'Samplewood', birthDate: '1962-09-23', sex: 'male', restricted: false, synthetic: true },
  { givenName: 'Greta', familyName: 'Fixture', birthDate: '1994-12-01', sex: 'female', restricted: false, synthetic: true },
  { givenName: 'Hugo', familyName: 'Simulacre', birthDate: '1953-04-10', sex: 'male', restricted: false, synthetic: true },
  // A restricted record (e.g. a staff member admitted as a patient): opening it needs break-glass.
  { givenName: 'Iris', familyName: 'Confidentia', birthDate: '1979-08-17', sex: 'female', restricted: true, synthetic: true },
];

/**
 * The demo ward: the first six synthetic patients are admitted at setup to beds 4A/1…4A/6, so that a
 * simulator on ward 4A (`neuroward simulate-ward --ward 4A --beds 12 --credentials FILE`, after Admin →
 * Monitors creates 4A 1-12) shows them by name at once, NEWS2 scale 2, their records' vitals and alarm
 * logs included. Greta Fixture and Hugo Simulacre wait for a bed (admit them from a bed view), and the
 * restricted Iris Confidentia is not admitted (admit her to see the board hide a restricted name).
 */
export const DEMO_WARD = '4A';
export const DEMO_ADMITTED = 6;

/**
 * Admits the demo patients in the setup transaction, each with its audit entry (the system's doing, as
 * the demo data is) and its Encounter in the outbox. `patientIds`: the demo patients as created, in
 * DEMO_PATIENTS order.
 */
export function admitDemoPatients(records: AdmissionsRepo, ledger: AuditLedger, patientIds: readonly string[], connection: string | null): void {
  const actor = { userId: null, name: 'Demo data (synthetic)' };
  patientIds.slice(0, DEMO_ADMITTED).forEach((patientId, i) => {
    const stay = records.admit({ patientId, bedKey: `${DEMO_WARD}/${i + 1}`, actor, reason: 'Synthetic demo admission' });
    ledger.append({
      actor: null,
      connection,
      action: 'adt.admit',
      outcome: 'success',
      entityType: 'Admission',
      entityId: stay.id,
      patientId,
      detail: { bed: stay.bedKey, encounterId: stay.encounterId, admittedAt: stay.admittedAt, synthetic: true, loadedBy: 'first-run setup (demo data)' },
    });
  });
}
