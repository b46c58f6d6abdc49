import type { SessionInfo } from '../../../shared/ipc.js';
import { NewPatientForm } from './NewPatientForm.js';
import { PatientDetail } from './PatientDetail.js';
import { PatientList } from './PatientList.js';

/** #/patients, #/patients/new, #/patients/<id> */
export function PatientsArea({ session, rest }: { session: SessionInfo; rest: string[] }) {
  const [first] = rest;
  if (first === 'new') return <NewPatientForm session={session} />;
  if (first) return <PatientDetail key={first} session={session} id={first} />;
  return <PatientList session={session} />;
}
