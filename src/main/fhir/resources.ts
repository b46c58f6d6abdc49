/**
 * Local records as FHIR R4 resources (types from @medplum/fhirtypes). These are what the outbox
 * carries to the remote servers.
 */
import { createHash } from 'node:crypto';
import type { AuditEvent, Encounter, Location, Patient as FhirPatient } from '@medplum/fhirtypes';
import type { Patient } from '../../shared/ipc.js';
import type { StoredAuditEntry } from '../security/audit-ledger.js';

export const MRN_SYSTEM = 'urn:neuroward:mrn';
export const USER_SYSTEM = 'urn:neuroward:user';
/** HL7 "test health data": marks synthetic demo records so no server mistakes them for real people. */
const SYNTHETIC_TAG = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HTEST', display: 'test health data' };
const RESTRICTED_LABEL = { system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R', display: 'restricted' };

export function toFhirPatient(patient: Patient): FhirPatient & { id: string } {
  return {
    resourceType: 'Patient',
    id: patient.id,
    meta: {
      lastUpdated: patient.updatedAt,
      versionId: String(patient.version),
      ...(patient.synthetic ? { tag: [SYNTHETIC_TAG] } : {}),
      ...(patient.restricted ? { security: [RESTRICTED_LABEL] } : {}),
    },
    identifier: [{ use: 'usual', system: MRN_SYSTEM, value: patient.mrn }],
    name: [{ use: 'official', family: patient.familyName, given: [patient.givenName] }],
    gender: patient.sex,
    birthDate: patient.birthDate,
  };
}

export const BED_SYSTEM = 'urn:neuroward:bed';
export const WARD_SYSTEM = 'urn:neuroward:ward';
export const ENCOUNTER_SYSTEM = 'urn:neuroward:encounter';

/**
 * FHIR ids of the ward and bed Locations. Readable where the names allow it (`4A-7`, `ward.4A`):
 * FHIR ids take letters, digits, '-' and '.' (at most 64), topic names also '_'. A bed id is
 * `<ward>-<bed>` when the ward has no '-' or '_' and the bed no '_' (then the first '-' splits them, so
 * no two beds share one); otherwise `bed.<hash>`; a ward's is `ward.<ward>` or `ward.h.<hash>`. Ids
 * with '.' never collide with readable bed ids, which have none.
 */
export function bedLocationId(ward: string, bed: string): string {
  const readable = `${ward}-${bed}`;
  if (/^[A-Za-z0-9]+$/.test(ward) && /^[A-Za-z0-9-]+$/.test(bed) && readable.length <= 64) return readable;
  return `bed.${createHash('sha256').update(`${ward}/${bed}`).digest('hex').slice(0, 40)}`;
}

export function wardLocationId(ward: string): string {
  return /^[A-Za-z0-9-]{1,32}$/.test(ward) ? `ward.${ward}` : `ward.h.${createHash('sha256').update(ward).digest('hex').slice(0, 40)}`;
}

/** A ward (physical type `wa`) as a FHIR Location. */
export function toFhirWardLocation(ward: string): Location & { id: string } {
  return {
    resourceType: 'Location',
    id: wardLocationId(ward),
    identifier: [{ system: WARD_SYSTEM, value: ward }],
    status: 'active',
    name: `Ward ${ward}`,
    mode: 'instance',
    physicalType: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/location-physical-type', code: 'wa', display: 'Ward' }] },
  };
}

/** A bed (physical type `bd`), part of its ward, as a FHIR Location. Identifier `<ward>/<bed>` as in the MQTT topic. */
export function toFhirBedLocation(ward: string, bed: string): Location & { id: string } {
  return {
    resourceType: 'Location',
    id: bedLocationId(ward, bed),
    identifier: [{ system: BED_SYSTEM, value: `${ward}/${bed}` }],
    status: 'active',
    name: `Bed ${bed}, ward ${ward}`,
    mode: 'instance',
    physicalType: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/location-physical-type', code: 'bd', display: 'Bed' }] },
    partOf: { reference: `Location/${wardLocationId(ward)}`, display: `Ward ${ward}` },
  };
}

/** One stay in one bed of an inpatient encounter (see toFhirEncounter). */
export interface EncounterStay {
  ward: string;
  bed: string;
  admittedAt: string;
  dischargedAt: string | null;
  /** The admission or transfer note of this stay. */
  reason: string | null;
}

export interface EncounterInput {
  id: string;
  version: number;
  patient: Pick<Patient, 'id' | 'synthetic' | 'restricted'>;
  /** Oldest first: the first is the admission, the last the current (or last) bed. */
  stays: readonly EncounterStay[];
  /** Set once the patient is discharged. */
  finishedAt: string | null;
  updatedAt: string;
}

/**
 * An inpatient stay (ADT) as a FHIR R4 Encounter: class IMP, `in-progress` until discharge, then
 * `finished`; every bed the patient was in as `location[]` (the current one `active`, earlier ones
 * `completed`), each referencing its bed's Location (toFhirBedLocation, queued with it) and carrying the
 * bed's identifier too, so a server without that Location still knows the bed.
 */
export function toFhirEncounter(input: EncounterInput): Encounter & { id: string } {
  const first = input.stays[0];
  if (!first) throw new Error('an encounter needs at least one stay');
  const reason = first.reason;
  return {
    resourceType: 'Encounter',
    id: input.id,
    meta: {
      versionId: String(input.version),
      lastUpdated: input.updatedAt,
      ...(input.patient.synthetic ? { tag: [SYNTHETIC_TAG] } : {}),
      ...(input.patient.restricted ? { security: [RESTRICTED_LABEL] } : {}),
    },
    identifier: [{ system: ENCOUNTER_SYSTEM, value: input.id }],
    status: input.finishedAt ? 'finished' : 'in-progress',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP', display: 'inpatient encounter' },
    subject: { reference: `Patient/${input.patient.id}` },
    period: { start: first.admittedAt, ...(input.finishedAt ? { end: input.finishedAt } : {}) },
    ...(reason ? { reasonCode: [{ text: reason }] } : {}),
    location: input.stays.map((stay) => ({
      location: { reference: `Location/${bedLocationId(stay.ward, stay.bed)}`, identifier: { system: BED_SYSTEM, value: `${stay.ward}/${stay.bed}` }, display: `Bed ${stay.bed}, ward ${stay.ward}` },
      status: stay.dischargedAt ? ('completed' as const) : ('active' as const),
      physicalType: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/location-physical-type', code: 'bd', display: 'Bed' }] },
      period: { start: stay.admittedAt, ...(stay.dischargedAt ? { end: stay.dischargedAt } : {}) },
    })),
  };
}

/** C/R/U/D/E per the AuditEvent.action value set, read from our action names. */
function auditAction(action: string): 'C' | 'R' | 'U' | 'D' | 'E' {
  if (/\.(create|initialize|admit)$/.test(action)) return 'C';
  if (/\.(read|search|list|verify)$/.test(action)) return 'R';
  if (/\.(update|reset-password|unlock|change-password|transfer|discharge)$/.test(action)) return 'U';
  if (/\.delete$/.test(action)) return 'D';
  return 'E';
}

/** Outcome codes: 0 success, 4 minor failure (refused), 8 serious failure. */
const OUTCOME = { success: '0', denied: '4', error: '8' } as const;

export function toFhirAuditEvent(entry: StoredAuditEntry, observer: string): AuditEvent & { id: string } {
  const isAuth = entry.action.startsWith('auth.');
  const event: AuditEvent & { id: string } = {
    resourceType: 'AuditEvent',
    id: entry.id,
    type: isAuth
      ? { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110114', display: 'User Authentication' }
      : { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110110', display: 'Patient Record' },
    subtype: [{ system: 'urn:neuroward:audit-action', code: entry.action }],
    action: auditAction(entry.action),
    recorded: entry.recorded_at,
    outcome: OUTCOME[entry.outcome],
    ...(entry.outcome_detail ? { outcomeDesc: entry.outcome_detail } : {}),
    ...(entry.break_glass
      ? { purposeOfEvent: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'BTG', display: 'break the glass' }] }] }
      : {}),
    agent: [
      {
        requestor: true,
        ...(entry.actor_user_id
          ? { who: { identifier: { system: USER_SYSTEM, value: entry.actor_user_id }, display: entry.actor_username ?? undefined } }
          : { who: { display: 'unauthenticated caller' } }),
        ...(entry.actor_role ? { role: [{ coding: [{ system: 'urn:neuroward:role', code: entry.actor_role }] }] } : {}),
        ...(entry.connection ? { network: { address: entry.connection, type: '5' as const } } : {}),
      },
    ],
    source: { observer: { display: observer }, type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '1', display: 'User Device' }] },
    entity: [
      ...(entry.patient_id ? [{ what: { reference: `Patient/${entry.patient_id}` }, type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' } }] : []),
      ...(entry.entity_type && entry.entity_id && !(entry.entity_type === 'Patient' && entry.entity_id === entry.patient_id)
        ? [{ what: { identifier: { system: `urn:neuroward:${entry.entity_type}`, value: entry.entity_id } } }]
        : []),
      // The chain link travels with the event so a remote copy can be checked against the local ledger.
      { what: { identifier: { system: 'urn:neuroward:audit-chain', value: `${entry.seq}:${entry.hash}` } }, detail: [{ type: 'prev_hash', valueString: entry.prev_hash }] },
    ],
  };
  return event;
}
