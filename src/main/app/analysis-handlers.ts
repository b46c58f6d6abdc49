/**
 * The AI read channels (issue 9) and the role inbox. A read is the data of its study's patient, so
 * every channel that shows or changes one passes the shared patient-access check of that study first
 * (a restricted patient's reads need break-glass, as their images do).
 */
import type { AiReadService } from '../analysis/ai-read-service.js';
import { NotificationsRepository } from '../analysis/ai-reads-repo.js';
import { StudiesRepository } from '../imaging/studies-repo.js';
import type { PatientAccess } from '../security/patient-access.js';
import type { Session } from '../security/sessions.js';
import type { StoreService } from '../store/store-service.js';
import { NwError } from '../../shared/errors.js';
import { requireSession, type HandlerContext, type HandlerTable } from './dispatcher.js';
import { studyOwnerRef } from './imaging-handlers.js';

export interface AnalysisHandlerDeps {
  store: StoreService;
  reads: AiReadService;
  patientAccess: PatientAccess;
  now: () => Date;
}

type AnalysisChannels = 'analysis.run' | 'analysis.cancel' | 'analysis.jobs' | 'analysis.reads' | 'analysis.report' | 'analysis.decide' | 'notifications.list' | 'notifications.markRead';

export function createAnalysisHandlers(deps: AnalysisHandlerDeps): Pick<HandlerTable, AnalysisChannels> {
  const { store, reads, patientAccess, now } = deps;
  const actorOf = (session: Session) => ({ userId: session.userId, username: session.username, role: session.role });

  /** The study, after the caller's access to its patient was checked; audits it as the entity. */
  const studyFor = (studyId: string, session: Session, ctx: HandlerContext) => {
    const study = new StudiesRepository(store.db, now).get(studyId);
    ctx.audit.entityType = 'ImagingStudy';
    ctx.audit.entityId = studyId;
    ctx.audit.patientId = study?.patientId ?? null;
    patientAccess.assertCanRead(session, study ? studyOwnerRef(study) : null);
    if (!study) throw new NwError('not-found', 'No such study.');
    return study;
  };
  const readFor = (readId: string, session: Session, ctx: HandlerContext) => {
    const read = reads.get(readId);
    if (!read) throw new NwError('not-found', 'No such AI read.');
    studyFor(read.studyId, session, ctx);
    ctx.audit.entityType = 'DiagnosticReport';
    ctx.audit.entityId = readId;
    return read;
  };

  return {
    'analysis.run': {
      async: async (req, ctx) => {
        const session = requireSession(ctx);
        studyFor(req.studyId, session, ctx);
        return reads.start(req.studyId, actorOf(session), ctx.connection.id);
      },
    },
    'analysis.cancel': (req, ctx) => {
      const job = reads.cancel(req.jobId, requireSession(ctx).userId);
      ctx.audit.entityType = 'ImagingStudy';
      ctx.audit.entityId = job.studyId;
      return job;
    },
    'analysis.jobs': (_req, ctx) => ({ jobs: reads.jobsFor(requireSession(ctx).userId) }),
    'analysis.reads': {
      async: async (req, ctx) => {
        const session = requireSession(ctx);
        studyFor(req.studyId, session, ctx);
        const list = reads.forStudy(req.studyId);
        ctx.audit.detail = { reads: list.length };
        return { reads: list, model: await reads.modelState() };
      },
    },
    'analysis.report': (req, ctx) => {
      readFor(req.readId, requireSession(ctx), ctx);
      return { resources: reads.reportOf(req.readId) as unknown as Record<string, unknown>[] };
    },
    'analysis.decide': (req, ctx) => {
      const session = requireSession(ctx);
      readFor(req.readId, session, ctx);
      const { read, audit } = reads.decide(req.readId, req, { ...actorOf(session), displayName: session.displayName });
      ctx.audit.detail = audit;
      return read;
    },

    'notifications.list': (req, ctx) => {
      const session = requireSession(ctx);
      const inbox = new NotificationsRepository(store.db, now).forRole(session.role, req.limit);
      // A restricted patient's notice says nothing about them without break-glass.
      const notifications = inbox.notifications.map((n) =>
        n.patientId && !patientAccess.canRead(session, n.patientId) ? { ...n, title: 'Notification about a restricted record', body: 'Open it with break-glass to read it.' } : n,
      );
      ctx.audit.detail = { shown: notifications.length, unread: inbox.unread };
      return { notifications, unread: inbox.unread };
    },
    'notifications.markRead': (req, ctx) => {
      const session = requireSession(ctx);
      const notification = new NotificationsRepository(store.db, now).markRead(req.id, session.role, session.userId);
      ctx.audit.entityType = 'Notification';
      ctx.audit.entityId = req.id;
      ctx.audit.patientId = notification.patientId;
      return notification;
    },
  };
}
