/**
 * Which local patient an imported study belongs to. The DICOM header names a patient (Patient ID, name,
 * birth date, sex: dicom-patient.ts); this module compares that identity with the local records and
 * checks the radiologist's decision, on the server, whatever the page sent.
 *
 * Match (shown at scan time, `imaging.scan`):
 * - `exact`: a record's MRN is the DICOM Patient ID and no other field disagrees;
 * - `conflict`: a record's MRN is the DICOM Patient ID but its family name, given name or birth date
 *   disagrees: shown, never linked silently;
 * - `candidates`: no MRN match; records with the same normalised family name AND the same birth date;
 * - `none`: nothing like it here; `no-identity`: the header names nobody (or the file is NIfTI).
 * A restricted record is shown as "restricted record (MRN …)" only (no name, birth date, sex, nor which
 * fields disagree) unless the session holds break-glass.
 *
 * Decision (`imaging.import`, `imaging.linkPatient`): exactly one of an existing record (`patientId`), a
 * new record from the DICOM data as edited (`createPatient`) or none (`unlinked`). A record or new
 * patient that disagrees with the DICOM identity in MRN/Patient ID, family name, given name or birth
 * date needs an `override` reason (audited); sex is compared and shown but does not block. When the
 * DICOM names a patient, or the file is NIfTI (which names nobody), a request without a decision is
 * refused. A DICOM series that names nobody may be imported without one: it is stored unlinked, flagged.
 */
import { NwError } from '../../shared/errors.js';
import type { Patient, PatientSummary } from '../../shared/ipc.js';
import type { Db } from '../store/database.js';
import { PatientsRepository, type NewPatient } from '../patients/patients-repo.js';
import { displayDicomName, normaliseGivenName, normaliseName } from './dicom-patient.js';
import type { DicomPatient } from './types.js';

export type Agreement = 'same' | 'different' | 'missing';
export interface PatientAgreement {
  mrn: Agreement;
  familyName: Agreement;
  givenName: Agreement;
  birthDate: Agreement;
  sex: Agreement;
}
export type MatchKind = 'exact' | 'conflict' | 'candidates' | 'none' | 'no-identity';
export interface PatientMatch {
  kind: MatchKind;
  patient: PatientSummary | null;
  agreement: PatientAgreement | null;
  candidates: { patient: PatientSummary; agreement: PatientAgreement | null }[];
  message: string;
}

/** Fields whose disagreement needs an override reason, in the order messages name them. */
const BLOCKING = ['mrn', 'familyName', 'givenName', 'birthDate'] as const;
const FIELD_LABELS: Record<keyof PatientAgreement, string> = {
  mrn: 'MRN / Patient ID',
  familyName: 'family name',
  givenName: 'given name',
  birthDate: 'birth date',
  sex: 'sex',
};
const MAX_CANDIDATES = 10;
/** A valid MRN here (as patients.create takes it). */
const MRN = /^[A-Za-z0-9-]{1,32}$/;

interface PersonFacts {
  mrn: string | null;
  familyName: string | null;
  givenName: string | null;
  birthDate: string | null;
  sex: string | null;
}

function compare(a: string, b: string, present: boolean): Agreement {
  if (!present) return 'missing';
  return a === b ? 'same' : 'different';
}

/** Field by field: the DICOM identity against a record (or a record about to be created). */
export function comparePerson(dicom: DicomPatient, record: PersonFacts): PatientAgreement {
  const family = [normaliseName(dicom.familyName), normaliseName(record.familyName)] as const;
  const given = [normaliseGivenName(dicom.givenName), normaliseGivenName(record.givenName)] as const;
  const sexKnown = (s: string | null) => s !== null && s !== 'unknown';
  return {
    mrn: compare(dicom.id ?? '', record.mrn ?? '', Boolean(dicom.id && record.mrn)),
    familyName: compare(family[0], family[1], Boolean(family[0] && family[1])),
    givenName: compare(given[0], given[1], Boolean(given[0] && given[1])),
    birthDate: compare(dicom.birthDate ?? '', record.birthDate ?? '', Boolean(dicom.birthDate && record.birthDate)),
    sex: compare(dicom.sex ?? '', record.sex ?? '', sexKnown(dicom.sex) && sexKnown(record.sex)),
  };
}

/** The blocking fields that disagree, e.g. ['birthDate']. */
export function differences(agreement: PatientAgreement): (typeof BLOCKING)[number][] {
  return BLOCKING.filter((field) => agreement[field] === 'different');
}

export function describeDicomPatient(dicom: DicomPatient): string {
  const name = displayDicomName(dicom);
  return [name ? `"${name}"` : null, dicom.id ? `Patient ID ${dicom.id}` : null, dicom.birthDate ? `born ${dicom.birthDate}` : null].filter(Boolean).join(', ') || 'an unnamed patient';
}

function summaryOf(patient: Patient, seeRestricted: boolean): PatientSummary {
  const hidden = patient.restricted && !seeRestricted;
  return {
    id: patient.id,
    mrn: patient.mrn,
    restricted: patient.restricted,
    synthetic: patient.synthetic,
    name: hidden ? null : `${patient.givenName} ${patient.familyName}`,
    birthDate: hidden ? null : patient.birthDate,
    sex: hidden ? null : patient.sex,
  };
}

function label(patient: Patient, seeRestricted: boolean): string {
  return patient.restricted && !seeRestricted ? `restricted record (MRN ${patient.mrn})` : `${patient.givenName} ${patient.familyName} (MRN ${patient.mrn})`;
}

function listFields(fields: readonly (keyof PatientAgreement)[]): string {
  return fields.map((f) => FIELD_LABELS[f]).join(', ');
}

export class PatientMatcher {
  private readonly patients: PatientsRepository;
  constructor(
    private readonly db: Db,
    now: () => Date,
  ) {
    this.patients = new PatientsRepository(db, now);
  }

  byMrn(mrn: string): Patient | null {
    const row = this.db.prepare('SELECT id FROM patients WHERE mrn = ?').get(mrn) as { id: string } | undefined;
    return row ? this.patients.get(row.id) : null;
  }

  get(id: string): Patient | null {
    return this.patients.get(id);
  }

  /** The match shown at scan time (see the top of this file). */
  match(dicom: DicomPatient | null, seeRestricted: boolean): PatientMatch {
    if (!dicom) return { kind: 'no-identity', patient: null, agreement: null, candidates: [], message: 'The files name no patient: choose one, or import without a patient.' };
    const who = describeDicomPatient(dicom);
    const byMrn = dicom.id ? this.byMrn(dicom.id) : null;
    if (byMrn) {
      const agreement = comparePerson(dicom, byMrn);
      const diff = differences(agreement);
      const withheld = byMrn.restricted && !seeRestricted;
      if (diff.length === 0) {
        return { kind: 'exact', patient: summaryOf(byMrn, seeRestricted), agreement: withheld ? null : agreement, candidates: [], message: `Patient ID ${dicom.id} is the MRN of ${label(byMrn, seeRestricted)}.` };
      }
      return {
        kind: 'conflict',
        patient: summaryOf(byMrn, seeRestricted),
        agreement: withheld ? null : agreement,
        candidates: [],
        message: withheld
          ? `Patient ID ${dicom.id} is the MRN of a restricted record whose details differ from the DICOM (open it with break-glass to compare). Linking needs a reason.`
          : `Patient ID ${dicom.id} is the MRN of ${label(byMrn, seeRestricted)}, but the ${listFields(diff)} differ${diff.length === 1 ? 's' : ''} from the DICOM (${who}). Linking needs a reason.`,
      };
    }
    const family = normaliseName(dicom.familyName);
    if (family && dicom.birthDate) {
      const ids = (this.db.prepare('SELECT id FROM patients WHERE birth_date = ? ORDER BY family_name, given_name').all(dicom.birthDate) as { id: string }[]).map((r) => r.id);
      const candidates = ids
        .map((id) => this.patients.get(id)!)
        .filter((p) => normaliseName(p.familyName) === family)
        .slice(0, MAX_CANDIDATES)
        .map((p) => ({ patient: summaryOf(p, seeRestricted), agreement: p.restricted && !seeRestricted ? null : comparePerson(dicom, p) }));
      if (candidates.length) {
        return {
          kind: 'candidates',
          patient: null,
          agreement: null,
          candidates,
          message: `No record has MRN ${dicom.id ?? '(no Patient ID in the files)'}; ${candidates.length} record${candidates.length === 1 ? ' has' : 's have'} the same family name and birth date. Confirm which one, if any.`,
        };
      }
    }
    return {
      kind: 'none',
      patient: null,
      agreement: null,
      candidates: [],
      message: `No local record matches ${who}: register the patient from the DICOM data, choose another record, or import without a patient.`,
    };
  }

  /**
   * Checks the decision against the identity in the files and returns what to store, or throws: a
   * `bad-request` when a decision is needed and missing, `not-found` for no such record, `conflict` when
   * the record (or the new patient) disagrees with the DICOM identity and no override reason was given.
   */
  resolve(
    dicom: DicomPatient | null,
    decision: ImportDecision,
    context: { isNifti: boolean; seeRestricted: boolean },
  ): ResolvedDecision {
    const given = [decision.patientId !== undefined, decision.createPatient !== undefined, decision.unlinked === true].filter(Boolean).length;
    if (given > 1) throw new NwError('bad-request', 'Choose one of: a patient (patientId), a new patient from the DICOM data (createPatient), or no patient (unlinked).');
    if (given === 0) {
      if (context.isNifti) throw new NwError('bad-request', 'A NIfTI file names no patient: choose the patient (patientId), or import it without a patient (unlinked).');
      if (dicom) {
        throw new NwError(
          'bad-request',
          `The files name a patient (${describeDicomPatient(dicom)}): confirm the patient (patientId), register one from the DICOM data (createPatient), or import without a patient (unlinked).`,
        );
      }
      return { patientId: null, create: null, link: { decision: 'unlinked', differences: [], reason: null } };
    }
    const reason = decision.override?.trim() || null;
    if (decision.unlinked) return { patientId: null, create: null, link: { decision: 'unlinked', differences: [], reason: null } };

    if (decision.patientId !== undefined) {
      const patient = this.patients.get(decision.patientId);
      if (!patient) throw new NwError('not-found', 'The patient chosen for this study does not exist.');
      const agreement = dicom ? comparePerson(dicom, patient) : null;
      const diff = agreement ? differences(agreement) : [];
      if (diff.length && !reason) {
        const withheld = patient.restricted && !context.seeRestricted;
        throw new NwError(
          'conflict',
          withheld
            ? `The restricted record MRN ${patient.mrn} differs from the DICOM identity (details withheld: open it with break-glass to compare). To link anyway, give the reason (override).`
            : `${label(patient, true)} does not match the DICOM (${describeDicomPatient(dicom!)}): the ${listFields(diff)} differ${diff.length === 1 ? 's' : ''}. To link anyway, give the reason (override).`,
        );
      }
      const decided: PatientLinkDecision = diff.length ? 'override' : agreement?.mrn === 'same' ? 'matched' : 'confirmed';
      return { patientId: patient.id, create: null, link: { decision: decided, differences: diff, reason: diff.length ? reason : null } };
    }

    const input = decision.createPatient!;
    if (!dicom) throw new NwError('bad-request', 'These files name no patient to register; register the patient in Patients first, then choose the record.');
    const mrn = input.mrn ?? (dicom.id && MRN.test(dicom.id) ? dicom.id : undefined);
    if (mrn) {
      const existing = this.byMrn(mrn);
      if (existing) throw new NwError('conflict', `MRN ${mrn} is already registered (${label(existing, context.seeRestricted)}): link the study to that record instead.`);
    }
    const create: NewPatient = { givenName: input.givenName, familyName: input.familyName, birthDate: input.birthDate, sex: input.sex, mrn, restricted: false };
    // The new record's MRN is the local identifier (it may differ from a foreign Patient ID); the person must be
    // the same. A Patient ID that is already a record's MRN says the patient is registered: a second record needs a reason.
    const registered = dicom.id ? this.byMrn(dicom.id) : null;
    const diff = [...(registered ? (['mrn'] as const) : []), ...differences({ ...comparePerson(dicom, { ...create, mrn: null }), mrn: 'missing' })];
    if (registered && !reason) {
      throw new NwError('conflict', `Patient ID ${dicom.id} is the MRN of ${label(registered, context.seeRestricted)}: link the study to that record, or give the reason for a second record (override).`);
    }
    if (diff.length && !reason) {
      throw new NwError(
        'conflict',
        `The new patient differs from the DICOM (${describeDicomPatient(dicom)}) in ${listFields(diff)}. To register it anyway, give the reason (override).`,
      );
    }
    return { patientId: null, create, link: { decision: 'created', differences: diff, reason: diff.length ? reason : null } };
  }
}

export type PatientLinkDecision = 'matched' | 'confirmed' | 'override' | 'created' | 'unlinked';

/** What the request said (fields of `imaging.import` / `imaging.linkPatient`). */
export interface ImportDecision {
  patientId?: string | undefined;
  createPatient?: { givenName: string; familyName: string; birthDate: string; sex: Patient['sex']; mrn?: string | undefined } | undefined;
  unlinked?: boolean | undefined;
  override?: string | undefined;
}

export interface ResolvedDecision {
  /** An existing record to link. */
  patientId: string | null;
  /** A record to create first (in the transaction of the study). */
  create: NewPatient | null;
  link: { decision: PatientLinkDecision; differences: string[]; reason: string | null };
}
