/**
 * Local records as FHIR R4 resources (types from @medplum/fhirtypes). These are what the outbox
 * carries to the remote servers.
 */
import type { AuditEvent, Patient as FhirPatient } from '@medplum/fhirtypes';
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

/** C/R/U/D/E per the AuditEvent.action value set, read from our action names. */
function auditAction(action: string): 'C' | 'R' | 'U' | 'D' | 'E' {
  if (/\.(create|initialize)$/.test(action)) return 'C';
  if (/\.(read|search|list|verify)$/.test(action)) return 'R';
  if (/\.(update|reset-password|unlock|change-password)$/.test(action)) return 'U';
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
