/**
 * `alarms.log`: the alarm log (vitals/alarm-log.ts) of one bed or of one patient across beds, for
 * nurses and physicians (vitals:read). A patient's alarms are that patient's data: the log of a
 * restricted patient, or of a bed that held one in the period read, needs break-glass (the shared
 * patient-access check), and the read is audited with the patient(s) it showed.
 */
import { PatientsRepository } from '../patients/patients-repo.js';
import type { PatientAccess } from '../security/patient-access.js';
import type { StoreService } from '../store/store-service.js';
import { AlarmLog } from '../vitals/alarm-log.js';
import { requireSession, type HandlerTable } from './dispatcher.js';

const HOUR_MS = 3_600_000;

export interface AlarmHandlerDeps {
  store: StoreService;
  patientAccess: PatientAccess;
  now: () => Date;
}

const unique = <T>(values: (T | null)[]): T[] => [...new Set(values.filter((v): v is T => v !== null))];

export function createAlarmHandlers(deps: AlarmHandlerDeps): Pick<HandlerTable, 'alarms.log'> {
  const { store, patientAccess, now } = deps;

  /**
   * The references a patient's alarms are logged under: a monitor names a patient `Patient/<id>` or
   * `mrn:<MRN>`, so a record known here is looked up under both. `recordId` null: no local record.
   */
  const patientRefs = (req: { patientRef?: string | undefined; patientId?: string | undefined }): { refs: string[]; recordId: string | null } => {
    const patients = new PatientsRepository(store.db, now);
    const ref = req.patientRef ?? `Patient/${req.patientId ?? ''}`;
    const recordId = patientAccess.recordId(ref);
    const record = recordId ? patients.get(recordId) : null;
    if (!record) return { refs: [ref], recordId: null };
    return { refs: unique([`Patient/${record.id}`, `mrn:${record.mrn}`, ref]), recordId: record.id };
  };

  return {
    'alarms.log': (req, ctx) => {
      const session = requireSession(ctx);
      const since = new Date(now().getTime() - req.hours * HOUR_MS).toISOString();
      const log = new AlarmLog(store.db, now);

      if (req.bedKey !== undefined) {
        ctx.audit.entityType = 'Bed';
        ctx.audit.entityId = req.bedKey;
        ctx.audit.detail = { hours: req.hours };
        const { events, truncated } = log.forBed(req.bedKey, since);
        // The alarms of whoever was in the bed then: each patient's own access check.
        const refs = unique(events.map((e) => e.patientRef));
        const recordIds = unique(refs.map((r) => patientAccess.recordId(r)));
        if (recordIds.length === 1) ctx.audit.patientId = recordIds[0]!;
        ctx.audit.detail = { hours: req.hours, events: events.length, patients: recordIds };
        for (const ref of refs) patientAccess.assertCanRead(session, ref);
        return { bedKey: req.bedKey, patientRefs: refs, since, events, truncated };
      }

      const { refs, recordId } = patientRefs(req);
      ctx.audit.entityType = 'Patient';
      ctx.audit.entityId = recordId ?? refs[0]!;
      ctx.audit.patientId = recordId;
      ctx.audit.detail = { hours: req.hours, patientRefs: refs };
      patientAccess.assertCanRead(session, recordId ?? refs[0]);
      const { events, truncated } = log.forPatient(refs, since);
      ctx.audit.detail = { hours: req.hours, patientRefs: refs, events: events.length };
      return { bedKey: null, patientRefs: refs, since, events, truncated };
    },
  };
}
