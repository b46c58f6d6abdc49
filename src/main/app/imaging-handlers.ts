/**
 * The imaging channels: browse, scan (series with the patient each names and its match), import (with
 * the radiologist's patient decision), jobs, studies (all, or one patient's), linking a study stored
 * without a patient, and volumes. A study is the data of the patient it belongs to; one stored without
 * a patient is treated as that of the local record whose MRN its DICOM Patient ID is, so a restricted
 * patient's images stay behind break-glass either way (the shared patient-access check).
 */
import type { Study } from '../../shared/ipc.js';
import { roleHasPermission } from '../../shared/roles.js';
import type { ImagingService, ImagingViewer } from '../imaging/imaging-service.js';
import { StudiesRepository } from '../imaging/studies-repo.js';
import { AiReadsRepository } from '../analysis/ai-reads-repo.js';
import { NwError } from '../../shared/errors.js';
import type { PatientAccess } from '../security/patient-access.js';
import type { Session } from '../security/sessions.js';
import type { StoreService } from '../store/store-service.js';
import { requireSession, type HandlerTable } from './dispatcher.js';

export interface ImagingHandlerDeps {
  store: StoreService;
  imaging: ImagingService;
  patientAccess: PatientAccess;
  now: () => Date;
}

type ImagingChannels = 'imaging.browse' | 'imaging.scan' | 'imaging.import' | 'imaging.jobs' | 'imaging.studies' | 'imaging.linkPatient' | 'imaging.volume';

function viewerOf(session: Session, patientAccess: PatientAccess): ImagingViewer {
  return {
    seeRestricted: patientAccess.canReadRestricted(session),
    canCreatePatient: roleHasPermission(session.role, 'patients:create-from-study') || roleHasPermission(session.role, 'patients:write'),
  };
}

/** Whose data a study is: its patient, or else the record its DICOM Patient ID names (`mrn:<id>`), or nobody. */
export function studyOwnerRef(study: Pick<Study, 'patientId' | 'dicomPatient'>): string | null {
  if (study.patientId) return study.patientId;
  return study.dicomPatient?.id ? `mrn:${study.dicomPatient.id}` : null;
}

/** Which decision a request carries, for the audit entry. */
function decisionOf(req: { patientId?: string | undefined; createPatient?: unknown; unlinked?: true | undefined }): string {
  return req.patientId ? 'patient' : req.createPatient ? 'create-patient' : req.unlinked ? 'unlinked' : 'none';
}

export function createImagingHandlers(deps: ImagingHandlerDeps): Pick<HandlerTable, ImagingChannels> {
  const { store, imaging, patientAccess, now } = deps;
  const actorOf = (session: Session) => ({ userId: session.userId, username: session.username, role: session.role });

  return {
    'imaging.browse': { async: (req) => imaging.browse(req.path) },

    'imaging.scan': {
      async: async (req, ctx) => {
        const session = requireSession(ctx);
        ctx.audit.detail = { path: req.path };
        const result = await imaging.scan(req.path, viewerOf(session, patientAccess));
        // Which records were shown as matches, restricted ones included (shown by MRN only without break-glass).
        const shown = [...new Set(result.series.flatMap((s) => [s.match.patient?.id, ...s.match.candidates.map((c) => c.patient.id)]).filter((id): id is string => !!id))];
        ctx.audit.detail = { path: req.path, series: result.series.length, matches: result.series.map((s) => s.match.kind), patientsShown: shown };
        return result;
      },
    },

    'imaging.import': {
      async: async (req, ctx) => {
        const session = requireSession(ctx);
        ctx.audit.detail = { path: req.path, seriesInstanceUid: req.seriesInstanceUid ?? null, mask: req.mask, patientDecision: decisionOf(req), override: req.override ?? null };
        if (req.patientId) ctx.audit.patientId = req.patientId;
        return imaging.startImport(req, actorOf(session), ctx.connection.id, viewerOf(session, patientAccess));
      },
    },

    'imaging.jobs': (_req, ctx) => ({ jobs: imaging.jobsFor(requireSession(ctx).userId) }),

    'imaging.studies': (req, ctx) => {
      const session = requireSession(ctx);
      const all = new StudiesRepository(store.db, now).list({ patientId: req.patientId });
      // A restricted patient's studies are not listed without break-glass (nor is their description).
      const studies = all.filter((study) => patientAccess.canRead(session, studyOwnerRef(study)));
      if (req.patientId) ctx.audit.patientId = req.patientId;
      ctx.audit.detail = { studies: studies.length, restrictedHidden: all.length - studies.length, ...(req.patientId ? { patientId: req.patientId } : {}) };
      return { studies, restrictedHidden: all.length - studies.length };
    },

    'imaging.linkPatient': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'ImagingStudy';
      ctx.audit.entityId = req.studyId;
      ctx.audit.detail = { patientDecision: decisionOf(req), override: req.override ?? null };
      const before = new StudiesRepository(store.db, now).get(req.studyId);
      // The study's own access rule (an unlinked study of a restricted MRN needs break-glass). Linking to a
      // restricted record needs none, as importing into one does not: it adds to the record, reads nothing.
      patientAccess.assertCanRead(session, before ? studyOwnerRef(before) : null);
      const { study, link } = imaging.linkPatient(req.studyId, req, actorOf(session), viewerOf(session, patientAccess));
      ctx.audit.patientId = study.patientId;
      ctx.audit.detail = { patientDecision: decisionOf(req), patientLink: link, dicomPatientId: study.dicomPatient?.id ?? null };
      return study;
    },

    'imaging.volume': (req, ctx) => {
      const session = requireSession(ctx);
      const v = req.volume;
      const key = typeof v === 'string' ? v : 'dwi' in v ? `dwi:${v.dwi}` : `ai:${v.aiRead}:${v.map}`;
      const studies = new StudiesRepository(store.db, now);
      const study = studies.get(req.studyId);
      ctx.audit.entityType = 'ImagingStudy';
      ctx.audit.entityId = req.studyId;
      ctx.audit.patientId = study?.patientId ?? (study ? patientAccess.recordId(studyOwnerRef(study)) : null);
      ctx.audit.detail = { volume: key };
      patientAccess.assertCanRead(session, study ? studyOwnerRef(study) : null);
      // An AI read's map is asked for by read and study; a read of another study is not found here.
      if (typeof v !== 'string' && 'aiRead' in v && new AiReadsRepository(store.db, now).get(v.aiRead)?.studyId !== req.studyId) throw new NwError('not-found', 'No such AI read of this study.');
      return studies.volume(req.studyId, key);
    },
  };
}
