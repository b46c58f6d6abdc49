/**
 * Who is in a bed: what the ward needs of the admissions (ADT), as an interface the composition root
 * gives it (src/main/adt/ implements it; this domain does not import that one).
 *
 * Attribution of a reading (`attributeReading`), decided in the transaction that stores it, at the
 * reading's own time (the monitor's `ts`, so that readings queued during a link loss go to whoever was
 * in the bed when they were measured):
 *  - the bed has a stay covering that time → the reading is that patient's (`Patient/<id>`). A monitor
 *    that names someone else (neither `Patient/<id>` nor `mrn:<MRN>` of the admitted patient) is either
 *    the wrong monitor or the admission is wrong: the reading is kept and attributed to the admission,
 *    what the monitor sent is kept beside it (`monitor-mismatch`), and the bed gets a technical alarm.
 *    It is never silently relinked;
 *  - no stay covers it → the monitor's own reference, if any (monitors fed by a hospital ADT system),
 *    as before admissions existed; when that patient is admitted to ANOTHER bed at that time the
 *    reading is marked `admitted-elsewhere` and the bed gets the same technical alarm (the patient may
 *    have moved without a transfer, or the monitor is set up for someone else).
 */

/** The patient admitted to a bed (one stay). */
export interface BedOccupant {
  /** The stay (admissions row). */
  admissionId: string;
  patientId: string;
  mrn: string;
  /** "Given Family". Shown only to those who may see the record (a restricted one needs break-glass). */
  name: string;
  restricted: boolean;
  synthetic: boolean;
  /** When the stay in this bed began (ISO) and who recorded it. */
  since: string;
  by: string;
}

export interface BedOccupancy {
  /** The patient whose stay in bed `<ward>/<bed>` covers `atMs`, or null. */
  occupantAt(bedKey: string, atMs: number): BedOccupant | null;
  /** The bed whose stay covers `atMs` for the patient a monitor names (`Patient/<id>` or `mrn:<MRN>`), or null. */
  bedOfPatientAt(patientRef: string, atMs: number): string | null;
  /** Open stays now, by bed key. */
  occupied(): ReadonlyMap<string, BedOccupant>;
}

export type PatientConflict = 'monitor-mismatch' | 'admitted-elsewhere';

export interface Attribution {
  /** The patient the reading is stored under (`Patient/<id>` of the admission, else the monitor's reference), or null. */
  patientRef: string | null;
  /** What the monitor sent, when it conflicts with the admissions (else null). */
  monitorPatientRef: string | null;
  conflict: PatientConflict | null;
  /** For the technical alarm: what is wrong, in words; null when nothing is. */
  problem: string | null;
}

/** Whether a monitor's reference names this patient. */
export function namesPatient(ref: string, patient: Pick<BedOccupant, 'patientId' | 'mrn'>): boolean {
  return ref === `Patient/${patient.patientId}` || ref === `mrn:${patient.mrn}`;
}

function refLabel(ref: string): string {
  return ref.startsWith('mrn:') ? `MRN ${ref.slice(4)}` : ref;
}

const NONE: Attribution = Object.freeze({ patientRef: null, monitorPatientRef: null, conflict: null, problem: null });

/** See the top of this file. `occupancy` null: no admissions here (the monitor's reference, as before). */
export function attributeReading(occupancy: BedOccupancy | null, bedKey: string, monitorRef: string | undefined, atMs: number): Attribution {
  const occupant = occupancy?.occupantAt(bedKey, atMs) ?? null;
  if (occupant) {
    const patientRef = `Patient/${occupant.patientId}`;
    if (monitorRef === undefined || namesPatient(monitorRef, occupant)) return { patientRef, monitorPatientRef: null, conflict: null, problem: null };
    return {
      patientRef,
      monitorPatientRef: monitorRef,
      conflict: 'monitor-mismatch',
      problem: `Monitor reports a different patient (${refLabel(monitorRef)}) from the one admitted to bed ${bedKey} (MRN ${occupant.mrn}): check the monitor and the admission`,
    };
  }
  if (monitorRef === undefined) return NONE;
  const elsewhere = occupancy?.bedOfPatientAt(monitorRef, atMs) ?? null;
  if (elsewhere !== null && elsewhere !== bedKey) {
    return {
      patientRef: monitorRef,
      monitorPatientRef: monitorRef,
      conflict: 'admitted-elsewhere',
      problem: `Monitor reports patient ${refLabel(monitorRef)}, who is admitted to bed ${elsewhere}: check the monitor, or transfer the patient`,
    };
  }
  return { patientRef: monitorRef, monitorPatientRef: null, conflict: null, problem: null };
}
