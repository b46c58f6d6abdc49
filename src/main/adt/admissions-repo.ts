/**
 * Admissions (ADT) in the store (migration 8, table `admissions`): one row per stay of a patient in one
 * bed. Admit opens a stay; a transfer ends the patient's stay and opens one in the new bed, in the same
 * FHIR Encounter; a discharge ends it. At most one open stay per bed and per patient: checked first (for
 * a clear message) and enforced by the store's partial unique indexes, whatever the race.
 *
 * Every write runs inside the caller's transaction (the dispatcher's, which holds the call's audit
 * entry) and puts the FHIR R4 Encounter (fhir/resources.ts toFhirEncounter) in the outbox in that same
 * transaction, with the ward's and bed's Locations the first time a bed is used: the Encounter's
 * `location[]` references `Location/<id>` (bedLocationId), which thus exists on the server too.
 * Times are the workstation's clock, UTC ISO 8601 with milliseconds; a stay covers
 * [admitted_at, discharged_at).
 */
import { randomUUID } from 'node:crypto';
import { NwError } from '../../shared/errors.js';
import type { Db } from '../store/database.js';
import { Outbox } from '../store/outbox.js';
import { bedLocationId, toFhirBedLocation, toFhirEncounter, toFhirWardLocation, wardLocationId } from '../fhir/resources.js';

/** What ADT needs of a patient record (from the patients domain, through the composition root). */
export interface AdtPatient {
  id: string;
  mrn: string;
  givenName: string;
  familyName: string;
  restricted: boolean;
  synthetic: boolean;
}

export interface AdtPatients {
  get(patientId: string): AdtPatient | null;
}

/** Who records the change: their name as shown (e.g. "Nurse Nia Demo") and account id (null: the system). */
export interface AdtActor {
  userId: string | null;
  name: string;
}

export interface Stay {
  id: string;
  patientId: string;
  ward: string;
  bed: string;
  bedKey: string;
  admittedAt: string;
  admittedBy: string;
  reason: string | null;
  dischargedAt: string | null;
  dischargedBy: string | null;
  endKind: 'transfer' | 'discharge' | null;
  endReason: string | null;
  encounterId: string;
  encounterVersion: number;
}

interface AdmissionRow {
  id: string;
  patient_id: string;
  ward: string;
  bed: string;
  admitted_at: string;
  admitted_by: string;
  admitted_by_user_id: string | null;
  reason: string | null;
  discharged_at: string | null;
  discharged_by: string | null;
  discharged_by_user_id: string | null;
  end_kind: 'transfer' | 'discharge' | null;
  end_reason: string | null;
  encounter_id: string;
  encounter_version: number;
}

function toStay(row: AdmissionRow): Stay {
  return {
    id: row.id,
    patientId: row.patient_id,
    ward: row.ward,
    bed: row.bed,
    bedKey: `${row.ward}/${row.bed}`,
    admittedAt: row.admitted_at,
    admittedBy: row.admitted_by,
    reason: row.reason,
    dischargedAt: row.discharged_at,
    dischargedBy: row.discharged_by,
    endKind: row.end_kind,
    endReason: row.end_reason,
    encounterId: row.encounter_id,
    encounterVersion: row.encounter_version,
  };
}

export function splitBedKey(bedKey: string): { ward: string; bed: string } {
  const match = /^([A-Za-z0-9_-]{1,32})\/([A-Za-z0-9_-]{1,32})$/.exec(bedKey);
  if (!match) throw new NwError('bad-request', `Not a bed: ${JSON.stringify(bedKey.slice(0, 80))} (a bed is <ward>/<bed>, as in the monitor's topic).`);
  return { ward: match[1]!, bed: match[2]! };
}

const note = (text: string | null | undefined): string | null => {
  const trimmed = text?.trim() ?? '';
  return trimmed.length ? trimmed : null;
};

function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE';
}

export class AdmissionsRepo {
  private readonly outbox: Outbox;

  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
    private readonly patients: AdtPatients,
  ) {
    this.outbox = new Outbox(db, now);
  }

  openForBed(ward: string, bed: string): Stay | null {
    const row = this.db.prepare('SELECT * FROM admissions WHERE ward = ? AND bed = ? AND discharged_at IS NULL').get(ward, bed) as AdmissionRow | undefined;
    return row ? toStay(row) : null;
  }

  openForPatient(patientId: string): Stay | null {
    const row = this.db.prepare('SELECT * FROM admissions WHERE patient_id = ? AND discharged_at IS NULL').get(patientId) as AdmissionRow | undefined;
    return row ? toStay(row) : null;
  }

  /** Open stays, by ward and bed (one ward, or all). */
  open(ward?: string): Stay[] {
    const rows = (
      ward === undefined
        ? this.db.prepare('SELECT * FROM admissions WHERE discharged_at IS NULL ORDER BY ward, bed').all()
        : this.db.prepare('SELECT * FROM admissions WHERE discharged_at IS NULL AND ward = ? ORDER BY bed').all(ward)
    ) as AdmissionRow[];
    return rows.map(toStay);
  }

  /** A patient's stays, newest first. */
  forPatient(patientId: string): Stay[] {
    return (this.db.prepare('SELECT * FROM admissions WHERE patient_id = ? ORDER BY admitted_at DESC, rowid DESC').all(patientId) as AdmissionRow[]).map(toStay);
  }

  /** Stays open now or ended at or after `cutoff` (ISO), oldest first. */
  since(cutoff: string): Stay[] {
    return (this.db.prepare('SELECT * FROM admissions WHERE discharged_at IS NULL OR discharged_at >= ? ORDER BY admitted_at, rowid').all(cutoff) as AdmissionRow[]).map(toStay);
  }

  /** The bed's stays open now or ended at or after `cutoff` (ISO), oldest first. */
  bedSince(ward: string, bed: string, cutoff: string): Stay[] {
    return (
      this.db.prepare('SELECT * FROM admissions WHERE ward = ? AND bed = ? AND (discharged_at IS NULL OR discharged_at >= ?) ORDER BY admitted_at, rowid').all(ward, bed, cutoff) as AdmissionRow[]
    ).map(toStay);
  }

  /** The patient's stays open now or ended at or after `cutoff` (ISO), oldest first. */
  patientSince(patientId: string, cutoff: string): Stay[] {
    return (
      this.db.prepare('SELECT * FROM admissions WHERE patient_id = ? AND (discharged_at IS NULL OR discharged_at >= ?) ORDER BY admitted_at, rowid').all(patientId, cutoff) as AdmissionRow[]
    ).map(toStay);
  }

  /** The stay in bed `<ward>/<bed>` covering `at` (ISO), or null. */
  coveringBed(ward: string, bed: string, at: string): Stay | null {
    const row = this.db
      .prepare('SELECT * FROM admissions WHERE ward = ? AND bed = ? AND admitted_at <= ? AND (discharged_at IS NULL OR discharged_at > ?) ORDER BY admitted_at DESC LIMIT 1')
      .get(ward, bed, at, at) as AdmissionRow | undefined;
    return row ? toStay(row) : null;
  }

  /** The patient's stay covering `at` (ISO), or null. */
  coveringPatient(patientId: string, at: string): Stay | null {
    const row = this.db
      .prepare('SELECT * FROM admissions WHERE patient_id = ? AND admitted_at <= ? AND (discharged_at IS NULL OR discharged_at > ?) ORDER BY admitted_at DESC LIMIT 1')
      .get(patientId, at, at) as AdmissionRow | undefined;
    return row ? toStay(row) : null;
  }

  /** Admits a patient to a free bed: a new stay and a new Encounter (in-progress). */
  admit(input: { patientId: string; bedKey: string; actor: AdtActor; reason?: string | null | undefined }): Stay {
    this.assertInTransaction();
    const patient = this.patient(input.patientId);
    const { ward, bed } = splitBedKey(input.bedKey);
    const current = this.openForPatient(patient.id);
    if (current) throw new NwError('conflict', `This patient (MRN ${patient.mrn}) is already admitted, to bed ${current.bedKey}: transfer them instead.`);
    this.assertBedFree(ward, bed);
    const stay = this.insert({ patientId: patient.id, ward, bed, actor: input.actor, reason: note(input.reason), encounterId: randomUUID(), encounterVersion: 1, at: this.now().toISOString() });
    this.queueLocations(stay);
    this.queueEncounter(stay.encounterId, patient, 'create');
    return stay;
  }

  /** Moves an admitted patient to a free bed: their stay ends now and one in the new bed begins, in the same Encounter. */
  transfer(input: { patientId: string; toBedKey: string; actor: AdtActor; reason?: string | null | undefined; expectedAdmissionId?: string | undefined }): { from: Stay; to: Stay } {
    this.assertInTransaction();
    const patient = this.patient(input.patientId);
    const { ward, bed } = splitBedKey(input.toBedKey);
    const current = this.current(patient, input.expectedAdmissionId);
    if (current.ward === ward && current.bed === bed) throw new NwError('conflict', `This patient is already in bed ${current.bedKey}.`);
    this.assertBedFree(ward, bed);
    const at = this.endTime(current);
    const version = current.encounterVersion + 1;
    const from = this.end(current, { at, kind: 'transfer', actor: input.actor, reason: note(input.reason), version });
    const to = this.insert({ patientId: patient.id, ward, bed, actor: input.actor, reason: note(input.reason), encounterId: current.encounterId, encounterVersion: version, at });
    this.queueLocations(to);
    this.queueEncounter(current.encounterId, patient, 'update');
    return { from, to };
  }

  /** Discharges an admitted patient: their stay and Encounter end now (finished). */
  discharge(input: { patientId: string; actor: AdtActor; reason?: string | null | undefined; expectedAdmissionId?: string | undefined }): Stay {
    this.assertInTransaction();
    const patient = this.patient(input.patientId);
    const current = this.current(patient, input.expectedAdmissionId);
    const stay = this.end(current, { at: this.endTime(current), kind: 'discharge', actor: input.actor, reason: note(input.reason), version: current.encounterVersion + 1 });
    this.queueEncounter(current.encounterId, patient, 'update');
    return stay;
  }

  /** Now, or the stay's start should the clock have been set back since (a stay never ends before it began). */
  private endTime(stay: Stay): string {
    const now = this.now().toISOString();
    return now < stay.admittedAt ? stay.admittedAt : now;
  }

  private assertInTransaction(): void {
    if (!this.db.inTransaction) throw new Error('ADT changes must run inside the transaction of their audit entry');
  }

  private patient(patientId: string): AdtPatient {
    const patient = this.patients.get(patientId);
    if (!patient) throw new NwError('not-found', 'No such patient.');
    return patient;
  }

  private current(patient: AdtPatient, expectedAdmissionId: string | undefined): Stay {
    const current = this.openForPatient(patient.id);
    if (!current) throw new NwError('conflict', `This patient (MRN ${patient.mrn}) is not admitted to a bed.`);
    if (expectedAdmissionId !== undefined && expectedAdmissionId !== current.id) {
      throw new NwError('conflict', `This patient's admission changed meanwhile (now in bed ${current.bedKey}): look again before you act.`);
    }
    return current;
  }

  private assertBedFree(ward: string, bed: string): void {
    const occupied = this.openForBed(ward, bed);
    if (!occupied) return;
    const occupant = this.patients.get(occupied.patientId);
    throw new NwError('conflict', `Bed ${ward}/${bed} is taken${occupant ? ` (MRN ${occupant.mrn})` : ''}: discharge or transfer that patient first.`);
  }

  private insert(input: { patientId: string; ward: string; bed: string; actor: AdtActor; reason: string | null; encounterId: string; encounterVersion: number; at: string }): Stay {
    const id = randomUUID();
    try {
      this.db
        .prepare(
          `INSERT INTO admissions (id, patient_id, ward, bed, admitted_at, admitted_by, admitted_by_user_id, reason, encounter_id, encounter_version)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(id, input.patientId, input.ward, input.bed, input.at, input.actor.name, input.actor.userId, input.reason, input.encounterId, input.encounterVersion);
    } catch (error) {
      // The partial unique indexes: another open stay of the bed or the patient (a race past the checks).
      if (isUniqueViolation(error)) throw new NwError('conflict', `Bed ${input.ward}/${input.bed} or this patient already has an open admission.`);
      throw error;
    }
    return toStay(this.db.prepare('SELECT * FROM admissions WHERE id = ?').get(id) as AdmissionRow);
  }

  private end(stay: Stay, change: { at: string; kind: 'transfer' | 'discharge'; actor: AdtActor; reason: string | null; version: number }): Stay {
    const info = this.db
      .prepare(
        `UPDATE admissions SET discharged_at = ?, discharged_by = ?, discharged_by_user_id = ?, end_kind = ?, end_reason = ?, encounter_version = ?
         WHERE id = ? AND discharged_at IS NULL`,
      )
      .run(change.at, change.actor.name, change.actor.userId, change.kind, change.reason, change.version, stay.id);
    if (info.changes !== 1) throw new NwError('conflict', 'This admission has just ended: look again before you act.');
    return toStay(this.db.prepare('SELECT * FROM admissions WHERE id = ?').get(stay.id) as AdmissionRow);
  }

  /** The ward's and the bed's Locations, the first time the ward or the bed is used (idempotent updates by id). */
  private queueLocations(stay: Stay): void {
    const usedBefore = (sql: string, ...params: unknown[]) => this.db.prepare(sql).get(...params) !== undefined;
    const queued = (id: string) => usedBefore(`SELECT 1 FROM outbox WHERE resource_type = 'Location' AND resource_id = ? LIMIT 1`, id);
    if (!usedBefore('SELECT 1 FROM admissions WHERE ward = ? AND id <> ? LIMIT 1', stay.ward, stay.id) && !queued(wardLocationId(stay.ward))) {
      this.outbox.enqueue('update', toFhirWardLocation(stay.ward));
    }
    if (!usedBefore('SELECT 1 FROM admissions WHERE ward = ? AND bed = ? AND id <> ? LIMIT 1', stay.ward, stay.bed, stay.id) && !queued(bedLocationId(stay.ward, stay.bed))) {
      this.outbox.enqueue('update', toFhirBedLocation(stay.ward, stay.bed));
    }
  }

  /** The Encounter as it is now (all its stays), into the outbox. */
  private queueEncounter(encounterId: string, patient: AdtPatient, operation: 'create' | 'update'): void {
    const stays = (this.db.prepare('SELECT * FROM admissions WHERE encounter_id = ? ORDER BY admitted_at, rowid').all(encounterId) as AdmissionRow[]).map(toStay);
    const last = stays[stays.length - 1];
    if (!last) throw new Error(`encounter ${encounterId} has no stay`);
    const finishedAt = last.endKind === 'discharge' ? last.dischargedAt : null;
    this.outbox.enqueue(
      operation,
      toFhirEncounter({
        id: encounterId,
        version: Math.max(...stays.map((s) => s.encounterVersion)),
        patient,
        stays,
        finishedAt,
        updatedAt: this.now().toISOString(),
      }),
    );
  }
}
