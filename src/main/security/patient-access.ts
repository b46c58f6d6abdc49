/**
 * The one access check for a patient's data, whatever kind: the record itself, images, vitals, alarm
 * history (and reports and appointments as they come). The role check happens at the dispatcher's
 * gate (does this role read images at all?); this one asks whether this session may read THIS
 * patient's data now: a restricted record needs an active break-glass grant, and every read under a
 * grant is audited as break-glass.
 *
 * Patients are named by record id, or by the reference a bedside monitor sends (`Patient/<id>` or
 * `mrn:<MRN>`). A reference that names no local record is not a restricted record (there is nothing
 * to protect beyond the role check).
 */
import { NwError } from '../../shared/errors.js';
import type { Session } from './sessions.js';

export const RESTRICTED_MESSAGE = 'This record is restricted. Open it with break-glass access, giving your reason.';

export interface PatientLookup {
  /** Whether the record with this id is restricted; null when there is no such record. */
  restrictedById(patientId: string): boolean | null;
  /** The record id behind an MRN, or null. */
  idByMrn(mrn: string): string | null;
}

export class PatientAccess {
  constructor(private readonly lookup: () => PatientLookup) {}

  /**
   * The record id a patient reference names (for the audit entry and the access check): the id of
   * `Patient/<id>` or of a bare id, known here or not; for `mrn:<MRN>` the local record's, or null.
   */
  recordId(ref: string | null | undefined): string | null {
    if (!ref) return null;
    if (ref.startsWith('mrn:')) return this.lookup().idByMrn(ref.slice('mrn:'.length));
    return ref.startsWith('Patient/') ? ref.slice('Patient/'.length) || null : ref;
  }

  canRead(session: Session, patientIdOrRef: string | null | undefined): boolean {
    const id = this.recordId(patientIdOrRef);
    if (id === null) return true;
    return this.lookup().restrictedById(id) !== true || this.canReadRestricted(session);
  }

  /**
   * The same rule for records already at hand (no lookup), e.g. the names on the ward board pushed
   * once a second: may this session read RESTRICTED records now (an active break-glass grant)?
   */
  canReadRestricted(session: Session): boolean {
    return session.breakGlass !== null;
  }

  /** Throws `forbidden` unless `session` may read this patient's data now. */
  assertCanRead(session: Session, patientIdOrRef: string | null | undefined): void {
    if (!this.canRead(session, patientIdOrRef)) throw new NwError('forbidden', RESTRICTED_MESSAGE);
  }
}
