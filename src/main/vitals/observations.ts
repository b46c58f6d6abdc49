/**
 * Ward vitals as FHIR R4 vital-signs Observations (types from @medplum/fhirtypes).
 *
 * Batching (the decision): ONE outbox entry per patient per UTC minute. The entry is a FHIR `Bundle`
 * of type `transaction` (outbox row: resource_type 'Bundle', operation 'create', meaning "POST it to the
 * server base") holding at most one Observation per vital for that minute, with the LATEST value of the
 * minute (latest device time; ties by arrival). Each Observation has a deterministic id (patient +
 * minute + vital) and is sent as `PUT Observation/<id>`, so resending a bundle, or sending a newer
 * version of the same minute, updates the same Observations on the server and never duplicates them.
 *
 * The bundle is rebuilt from the stored readings of that patient and minute in the same transaction
 * that stores each reading: while the minute's outbox row is still pending (attempts = 0) it is
 * rewritten in place; once the sync engine has started on it, a new row is queued. Contract for the
 * sync engine: bump `attempts` (in a transaction) before sending a row, and delete it after success.
 *
 * Codes: category vital-signs (http://terminology.hl7.org/CodeSystem/observation-category); LOINC
 * heart rate 8867-4 (/min), SpO2 2708-6 + 59408-5 (%), respiratory rate 9279-1 (/min), body
 * temperature 8310-5 (Cel), blood pressure panel 85354-9 with systolic 8480-6 / diastolic 8462-4
 * (mm[Hg]); ACVPU as level of responsiveness 67775-7 with a coded value (local system for A/C/V/P/U,
 * plus text); "on supplemental oxygen" as a boolean with a local code (no single LOINC code says it).
 * Units are UCUM (http://unitsofmeasure.org). A reading without a patient reference stays local: a
 * vital-signs Observation needs a subject.
 */
import { createHash } from 'node:crypto';
import type { Bundle, BundleEntry, CodeableConcept, Observation, Patient, Quantity, Reference } from '@medplum/fhirtypes';
import { MRN_SYSTEM } from '../fhir/resources.js';
import type { StoredReading } from './vitals-repo.js';

export const LOINC = 'http://loinc.org';
export const UCUM = 'http://unitsofmeasure.org';
export const OBSERVATION_CATEGORY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/observation-category';
/** The monitor (no Device resource is kept: a logical reference by identifier). */
export const DEVICE_SYSTEM = 'urn:neuroward:device';
/** A reading's identity, `<deviceId>:<seq>`. */
export const READING_SYSTEM = 'urn:neuroward:vitals-reading';
export const ACVPU_SYSTEM = 'urn:neuroward:acvpu';
export const LOCAL_VITALS_SYSTEM = 'urn:neuroward:vitals';

export type VitalKind = 'hr' | 'spo2' | 'rr' | 'temp' | 'bp' | 'acvpu' | 'o2';
export const VITAL_KINDS: readonly VitalKind[] = ['hr', 'spo2', 'rr', 'temp', 'bp', 'acvpu', 'o2'];

const VITAL_SIGNS_CATEGORY: CodeableConcept = {
  coding: [{ system: OBSERVATION_CATEGORY_SYSTEM, code: 'vital-signs', display: 'Vital Signs' }],
  text: 'Vital Signs',
};

const CODES: Record<VitalKind, CodeableConcept> = {
  hr: { coding: [{ system: LOINC, code: '8867-4', display: 'Heart rate' }], text: 'Heart rate' },
  spo2: {
    coding: [
      { system: LOINC, code: '2708-6', display: 'Oxygen saturation in Arterial blood' },
      { system: LOINC, code: '59408-5', display: 'Oxygen saturation in Arterial blood by Pulse oximetry' },
    ],
    text: 'SpO2',
  },
  rr: { coding: [{ system: LOINC, code: '9279-1', display: 'Respiratory rate' }], text: 'Respiratory rate' },
  temp: { coding: [{ system: LOINC, code: '8310-5', display: 'Body temperature' }], text: 'Body temperature' },
  bp: { coding: [{ system: LOINC, code: '85354-9', display: 'Blood pressure panel with all children optional' }], text: 'Blood pressure' },
  acvpu: { coding: [{ system: LOINC, code: '67775-7', display: 'Level of responsiveness' }], text: 'Level of consciousness (ACVPU)' },
  o2: { coding: [{ system: LOCAL_VITALS_SYSTEM, code: 'on-supplemental-oxygen', display: 'On supplemental oxygen' }], text: 'On supplemental oxygen' },
};

/** Base FHIR vital-signs profiles, for the five vitals that have one. */
const PROFILES: Partial<Record<VitalKind, string>> = {
  hr: 'http://hl7.org/fhir/StructureDefinition/heartrate',
  spo2: 'http://hl7.org/fhir/StructureDefinition/oxygensat',
  rr: 'http://hl7.org/fhir/StructureDefinition/resprate',
  temp: 'http://hl7.org/fhir/StructureDefinition/bodytemp',
  bp: 'http://hl7.org/fhir/StructureDefinition/bp',
};

const ACVPU_DISPLAY = { A: 'Alert', C: 'New confusion', V: 'Responds to voice', P: 'Responds to pain', U: 'Unresponsive' } as const;

function quantity(value: number, unit: string, code: string): Quantity {
  return { value, unit, system: UCUM, code };
}

/** 'YYYY-MM-DDTHH:MM' (UTC) of a normalized ISO timestamp. */
export function minuteOf(ts: string): string {
  return new Date(ts).toISOString().slice(0, 16);
}

/** `Patient/<uuid>` → literal reference; `mrn:<MRN>` → logical reference by the MRN identifier. */
export function subjectReference(patientRef: string): Reference<Patient> {
  if (patientRef.startsWith('mrn:')) return { identifier: { system: MRN_SYSTEM, value: patientRef.slice(4) } };
  return { reference: patientRef };
}

function digest(...parts: string[]): string {
  return createHash('sha256').update(parts.join('|')).digest('hex');
}

/** Deterministic: the same patient, minute and vital always map to the same Observation. */
export function observationId(patientRef: string, minute: string, kind: VitalKind): string {
  return `vs-${kind}-${digest(patientRef, minute, kind).slice(0, 40)}`;
}

export function vitalsBundleId(patientRef: string, minute: string): string {
  return `vitals-${digest(patientRef, minute).slice(0, 40)}`;
}

function has(value: number | null | undefined): value is number {
  return typeof value === 'number';
}

/** Does this reading carry a value for the vital? */
export function readingHas(reading: StoredReading, kind: VitalKind): boolean {
  switch (kind) {
    case 'hr':
      return has(reading.hr);
    case 'spo2':
      return has(reading.spo2);
    case 'rr':
      return has(reading.rr);
    case 'temp':
      return has(reading.tempC);
    case 'bp':
      return has(reading.sbp) || has(reading.dbp);
    case 'acvpu':
      return reading.acvpu !== null;
    case 'o2':
      return reading.o2 !== null;
  }
}

/** The value part of one vital's Observation. */
function valueOf(reading: StoredReading, kind: VitalKind): Partial<Observation> {
  switch (kind) {
    case 'hr':
      return { valueQuantity: quantity(reading.hr!, 'beats/minute', '/min') };
    case 'spo2':
      return { valueQuantity: quantity(reading.spo2!, '%', '%') };
    case 'rr':
      return { valueQuantity: quantity(reading.rr!, 'breaths/minute', '/min') };
    case 'temp':
      return { valueQuantity: quantity(reading.tempC!, 'Cel', 'Cel') };
    case 'bp':
      return {
        component: [
          ...(has(reading.sbp)
            ? [{ code: { coding: [{ system: LOINC, code: '8480-6', display: 'Systolic blood pressure' }], text: 'Systolic' }, valueQuantity: quantity(reading.sbp, 'mmHg', 'mm[Hg]') }]
            : []),
          ...(has(reading.dbp)
            ? [{ code: { coding: [{ system: LOINC, code: '8462-4', display: 'Diastolic blood pressure' }], text: 'Diastolic' }, valueQuantity: quantity(reading.dbp, 'mmHg', 'mm[Hg]') }]
            : []),
        ],
      };
    case 'acvpu': {
      const level = reading.acvpu!;
      return { valueCodeableConcept: { coding: [{ system: ACVPU_SYSTEM, code: level, display: ACVPU_DISPLAY[level] }], text: ACVPU_DISPLAY[level] } };
    }
    case 'o2':
      return { valueBoolean: reading.o2! };
  }
}

/** One vital of one reading as an Observation for `patientRef`'s minute (null when the reading lacks it). */
export function vitalObservation(reading: StoredReading, kind: VitalKind, patientRef: string): (Observation & { id: string }) | null {
  if (!readingHas(reading, kind)) return null;
  const minute = minuteOf(reading.ts);
  const profile = PROFILES[kind];
  return {
    resourceType: 'Observation',
    id: observationId(patientRef, minute, kind),
    ...(profile ? { meta: { profile: ['http://hl7.org/fhir/StructureDefinition/vitalsigns', profile] } } : {}),
    identifier: [{ system: READING_SYSTEM, value: `${reading.deviceId}:${reading.seq}` }],
    status: 'final',
    category: [VITAL_SIGNS_CATEGORY],
    code: CODES[kind],
    subject: subjectReference(patientRef),
    effectiveDateTime: reading.ts,
    issued: reading.receivedAt,
    device: { identifier: { system: DEVICE_SYSTEM, value: reading.deviceId }, display: reading.deviceId },
    ...valueOf(reading, kind),
    ...(reading.fault ? { note: [{ text: `Device-reported fault at this reading: ${reading.fault}` }] } : {}),
  };
}

/**
 * The minute's Observations: for each vital, the latest reading that carries it. `readings` are one
 * patient's readings of one minute, in any order.
 */
export function minuteObservations(readings: readonly StoredReading[], patientRef: string): (Observation & { id: string })[] {
  const ordered = [...readings].sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.id - b.id));
  const observations: (Observation & { id: string })[] = [];
  for (const kind of VITAL_KINDS) {
    const latest = ordered.findLast((r) => readingHas(r, kind));
    const observation = latest ? vitalObservation(latest, kind, patientRef) : null;
    if (observation) observations.push(observation);
  }
  return observations;
}

/** The outbox entry of one patient's minute; null when nothing in it maps to an Observation. */
export function vitalsMinuteBundle(readings: readonly StoredReading[], patientRef: string, minute: string, now: Date): (Bundle & { id: string }) | null {
  const observations = minuteObservations(readings, patientRef);
  if (observations.length === 0) return null;
  const entry: BundleEntry[] = observations.map((resource) => ({ resource, request: { method: 'PUT', url: `Observation/${resource.id}` } }));
  return { resourceType: 'Bundle', id: vitalsBundleId(patientRef, minute), type: 'transaction', timestamp: now.toISOString(), entry };
}
