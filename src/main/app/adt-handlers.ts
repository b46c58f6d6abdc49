/**
 * ADT (src/main/adt/): admit, transfer and discharge (nurses and physicians, 'adt:write'), who is in
 * which bed now, a patient's stays and a patient's vitals across beds (the ward, 'vitals:read').
 *
 * Each change runs in the dispatcher's transaction together with its audit entry (entity `Admission`,
 * the stay; the patient named) and the FHIR Encounter in the outbox; a refused change (bed taken,
 * patient already admitted, a stay that changed meanwhile) writes nothing but its refusal. Names: a
 * restricted patient's name is shown only under break-glass (the shared patient-access rule); the MRN
 * always. A patient's stays and vitals are their record's data: the patient-access check applies.
 */
import type { AdmissionView } from '../../shared/ipc.js';
import type { AdtService } from '../adt/adt-service.js';
import { PatientsRepository } from '../patients/patients-repo.js';
import type { PatientAccess } from '../security/patient-access.js';
import type { Session } from '../security/sessions.js';
import type { StoreService } from '../store/store-service.js';
import type { WardService } from '../vitals/ward-service.js';
import { requireSession, type HandlerTable } from './dispatcher.js';

export interface AdtHandlerDeps {
  store: StoreService;
  adt: AdtService;
  ward: WardService;
  patientAccess: PatientAccess;
  now: () => Date;
}

type AdtChannels = 'adt.admit' | 'adt.transfer' | 'adt.discharge' | 'adt.current' | 'adt.history' | 'patients.vitals';

const noteOf = (reason: string | undefined): string | undefined => (reason && reason.trim() ? reason.trim() : undefined);

export function createAdtHandlers(deps: AdtHandlerDeps): Pick<HandlerTable, AdtChannels> {
  const { adt, patientAccess } = deps;
  const actorOf = (session: Session) => ({ userId: session.userId, name: session.displayName });
  /** A restricted patient's name only under break-glass. */
  const shown = (session: Session, view: AdmissionView): AdmissionView => (view.restricted && view.name !== null && !patientAccess.canReadRestricted(session) ? { ...view, name: null } : view);

  return {
    'adt.admit': (req, ctx) => {
      const session = requireSession(ctx);
      const reason = noteOf(req.reason);
      ctx.audit.entityType = 'Admission';
      ctx.audit.patientId = req.patientId;
      ctx.audit.detail = { bed: req.bedKey, reason: reason ?? null };
      const stay = adt.admit(req.patientId, req.bedKey, actorOf(session), reason);
      ctx.audit.entityId = stay.id;
      ctx.audit.detail = { bed: stay.bedKey, reason: stay.reason, encounterId: stay.encounterId, admittedAt: stay.admittedAt };
      return shown(session, stay);
    },

    'adt.transfer': (req, ctx) => {
      const session = requireSession(ctx);
      const reason = noteOf(req.reason);
      ctx.audit.entityType = 'Admission';
      ctx.audit.entityId = req.admissionId ?? null;
      ctx.audit.patientId = req.patientId;
      ctx.audit.detail = { to: req.toBedKey, reason: reason ?? null };
      const { from, to } = adt.transfer(req.patientId, req.toBedKey, actorOf(session), { reason, expectedAdmissionId: req.admissionId });
      ctx.audit.entityId = to.id;
      ctx.audit.detail = { from: from.bedKey, to: to.bedKey, reason: to.reason, endedAdmissionId: from.id, encounterId: to.encounterId, at: to.admittedAt };
      return { from: shown(session, from), to: shown(session, to) };
    },

    'adt.discharge': (req, ctx) => {
      const session = requireSession(ctx);
      const reason = noteOf(req.reason);
      ctx.audit.entityType = 'Admission';
      ctx.audit.entityId = req.admissionId ?? null;
      ctx.audit.patientId = req.patientId;
      ctx.audit.detail = { reason: reason ?? null };
      const stay = adt.discharge(req.patientId, actorOf(session), { reason, expectedAdmissionId: req.admissionId });
      ctx.audit.entityId = stay.id;
      ctx.audit.detail = { bed: stay.bedKey, reason: stay.endReason, encounterId: stay.encounterId, dischargedAt: stay.dischargedAt };
      return shown(session, stay);
    },

    'adt.current': (req, ctx) => {
      const session = requireSession(ctx);
      const admissions = adt.current(req.ward).map((a) => shown(session, a));
      ctx.audit.detail = { ward: req.ward ?? null, admissions: admissions.length };
      return { admissions };
    },

    'adt.history': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'Patient';
      ctx.audit.entityId = req.patientId;
      ctx.audit.patientId = req.patientId;
      patientAccess.assertCanRead(session, req.patientId);
      const { current, admissions } = adt.history(req.patientId);
      ctx.audit.detail = { admissions: admissions.length };
      return { patientId: req.patientId, current: current ? shown(session, current) : null, admissions: admissions.map((a) => shown(session, a)) };
    },

    'patients.vitals': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'Patient';
      ctx.audit.entityId = req.patientId;
      ctx.audit.patientId = req.patientId;
      ctx.audit.detail = { hours: req.hours };
      patientAccess.assertCanRead(session, req.patientId);
      const patient = new PatientsRepository(deps.store.db, deps.now).get(req.patientId);
      // A monitor may have named the patient either way; readings of an admission are under `Patient/<id>`.
      const patientRefs = patient ? [`Patient/${patient.id}`, `mrn:${patient.mrn}`] : [`Patient/${req.patientId}`];
      const trend = deps.ward.patientTrend(patientRefs, req.hours);
      ctx.audit.detail = { hours: req.hours, minutes: trend.minutes.length };
      return { patientId: req.patientId, patientRefs, since: trend.since, minutes: trend.minutes, truncated: trend.truncated };
    },
  };
}
