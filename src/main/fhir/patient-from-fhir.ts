/**
 * A FHIR R4 Patient as the local record's demographics: the inverse of resources.ts toFhirPatient for
 * the elements the workstation stores (MRN identifier, official name, gender, birth date). Elements it
 * does not store (telecom, address, …) stay only in the FHIR copy.
 */
import type { Patient as FhirPatient, Resource } from '@medplum/fhirtypes';
import type { Patient } from '../../shared/ipc.js';
import { MRN_SYSTEM } from './resources.js';

export type PatientDemographics = Pick<Patient, 'mrn' | 'givenName' | 'familyName' | 'birthDate' | 'sex'>;

/** The demographics, or why the copy cannot be a local record (each element the local record requires). */
export function demographicsFromFhir(resource: Resource): { ok: true; fields: PatientDemographics } | { ok: false; missing: string[] } {
  if (resource.resourceType !== 'Patient') return { ok: false, missing: ['resourceType Patient'] };
  const patient = resource as FhirPatient;
  const name = patient.name?.find((n) => n.use === 'official') ?? patient.name?.[0];
  const mrn = patient.identifier?.find((i) => i.system === MRN_SYSTEM)?.value;
  const givenName = name?.given?.join(' ').trim();
  const familyName = name?.family?.trim();
  const sex = patient.gender;
  const missing = [
    ...(mrn ? [] : [`identifier (${MRN_SYSTEM})`]),
    ...(givenName ? [] : ['name.given']),
    ...(familyName ? [] : ['name.family']),
    ...(patient.birthDate && /^\d{4}-\d{2}-\d{2}$/.test(patient.birthDate) ? [] : ['birthDate (YYYY-MM-DD)']),
    ...(sex ? [] : ['gender']),
  ];
  if (missing.length) return { ok: false, missing };
  return { ok: true, fields: { mrn: mrn!, givenName: givenName!, familyName: familyName!, birthDate: patient.birthDate!, sex: sex! } };
}
