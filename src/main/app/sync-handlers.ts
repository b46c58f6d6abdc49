/**
 * FHIR sync channels (the Sync screen, src/main/fhir/sync/): each server's state, run now, conflicts
 * with a field-level diff, their resolution (keep mine / take theirs / merge by field), dead letters.
 *
 * A conflict's copies are a record's content: shown (and resolvable) only to a session that may read
 * that record (patients:read, and break-glass for a restricted patient); others see that it exists.
 * Take theirs and merge write the chosen copy back to the local record when the workstation keeps that
 * type as an editable record (Patient: its demographics), and queue the copy so the other servers get
 * it too (the server it came from skips it: it holds that content). Audit entries name the conflict or
 * letter, the server and the resource; field names and sides, never field values.
 */
import type { Resource } from '@medplum/fhirtypes';
import { NwError } from '../../shared/errors.js';
import type { SyncConflictView, SyncDeadLetterView, SyncStatusView } from '../../shared/ipc.js';
import { roleHasPermission } from '../../shared/roles.js';
import { reachableFrom } from '../fhir/connectivity.js';
import { demographicsFromFhir } from '../fhir/patient-from-fhir.js';
import { sendable } from '../fhir/sync/changes.js';
import { fieldDifferences, mergeByField, type FieldSide } from '../fhir/sync/merge.js';
import { currentError, passWithPull } from '../fhir/sync/run-outcome.js';
import type { SyncServer } from '../fhir/sync/settings.js';
import type { FhirSyncEngine } from '../fhir/sync/sync-engine.js';
import type { ConflictRecord, DeadLetterRecord } from '../fhir/sync/sync-state.js';
import { PatientsRepository } from '../patients/patients-repo.js';
import { RESTRICTED_MESSAGE, type PatientAccess } from '../security/patient-access.js';
import type { Session } from '../security/sessions.js';
import { Outbox } from '../store/outbox.js';
import type { StoreService } from '../store/store-service.js';
import { requireSession, type HandlerContext, type HandlerTable } from './dispatcher.js';

export interface SyncHandlerDeps {
  store: StoreService;
  patientAccess: PatientAccess;
  now: () => Date;
  servers: readonly SyncServer[];
  /** The running engine; null before the store opens or with no server configured. */
  engine: () => FhirSyncEngine | null;
  /** Something was queued or resolved: refresh the queued-changes count and ask for a pass. */
  changed: () => void;
}

type SyncChannels = 'sync.status' | 'sync.runNow' | 'sync.conflicts' | 'sync.resolveConflict' | 'sync.deadLetters' | 'sync.discardDeadLetter' | 'sync.requeueDeadLetter';

const parsed = (json: string | null): Resource | null => (json ? (JSON.parse(json) as Resource) : null);

/** The patient a resource is about: a Patient itself, or its subject / patient reference. */
function patientOf(resourceType: string, resourceId: string, ...copies: (Resource | null)[]): string | null {
  if (resourceType === 'Patient') return resourceId;
  for (const copy of copies) {
    const ref = (copy as { subject?: { reference?: string }; patient?: { reference?: string } } | null)?.subject?.reference ?? (copy as { patient?: { reference?: string } } | null)?.patient?.reference;
    if (ref?.startsWith('Patient/')) return ref.slice('Patient/'.length);
  }
  return null;
}

/** Types the workstation keeps as records a copy can be written back to. */
const WRITTEN_BACK = new Set(['Patient']);

export function createSyncHandlers(deps: SyncHandlerDeps): Pick<HandlerTable, SyncChannels> {
  const { store, patientAccess, now } = deps;

  const requireEngine = (): FhirSyncEngine => {
    const engine = deps.engine();
    if (engine) return engine;
    throw new NwError('conflict', deps.servers.length ? 'FHIR sync is not running: the store is not open.' : 'No FHIR server is configured on this workstation: changes stay in the outbox.');
  };

  /** Null when this session may read the conflict's content, else why not. */
  const withheldReason = (session: Session, conflict: ConflictRecord): string | null => {
    if (!roleHasPermission(session.role, 'patients:read')) return 'Your role does not read clinical records: the copies are not shown, and the conflict is resolved by a physician.';
    const patient = patientOf(conflict.resourceType, conflict.resourceId, parsed(conflict.localJson), parsed(conflict.remoteJson), parsed(conflict.baseJson));
    return patient && !patientAccess.canRead(session, patient) ? RESTRICTED_MESSAGE : null;
  };

  const conflictView = (session: Session, conflict: ConflictRecord): SyncConflictView => {
    const withheld = withheldReason(session, conflict);
    const base = parsed(conflict.baseJson);
    const mine = parsed(conflict.localJson);
    const theirs = parsed(conflict.remoteJson);
    const json = (r: Resource | null) => (r ? (r as unknown as Record<string, unknown>) : null);
    return {
      id: conflict.id,
      server: conflict.server,
      resourceType: conflict.resourceType,
      resourceId: conflict.resourceId,
      localOperation: conflict.localOperation,
      httpStatus: conflict.httpStatus,
      baseVersionId: conflict.baseVersionId,
      remoteVersionId: conflict.remoteVersionId,
      detectedAt: conflict.detectedAt,
      status: conflict.status,
      resolvedAt: conflict.resolvedAt,
      resolvedBy: conflict.resolvedBy,
      content: withheld ? null : { base: json(base), mine: json(mine), theirs: json(theirs), fields: fieldDifferences(base, mine, theirs) },
      contentWithheld: withheld,
    };
  };

  const letterView = (letter: DeadLetterRecord): SyncDeadLetterView => ({
    id: letter.id,
    server: letter.server,
    outboxId: letter.outboxId,
    resourceType: letter.resourceType,
    resourceId: letter.resourceId,
    localOperation: letter.localOperation,
    httpStatus: letter.httpStatus,
    message: letter.message,
    createdAt: letter.createdAt,
    status: letter.status,
  });

  const findConflict = (engine: FhirSyncEngine, id: number): ConflictRecord => {
    const conflict = engine.conflicts().find((c) => c.id === id);
    if (!conflict) throw new NwError('not-found', `No sync conflict ${id}.`);
    return conflict;
  };

  /** Checks before anything is sent that the copy the person chose can become the local record. */
  const assertWritableBack = (conflict: ConflictRecord, copy: Resource | null): void => {
    if (!copy || !WRITTEN_BACK.has(conflict.resourceType)) return;
    const mapped = demographicsFromFhir(copy);
    if (!mapped.ok) throw new NwError('bad-request', `That copy of ${conflict.resourceType}/${conflict.resourceId} cannot be the local record: it lacks ${mapped.missing.join(', ')}. Keep mine, or merge taking those elements from mine.`);
    const holder = new PatientsRepository(store.db, now).idByMrn(mapped.fields.mrn);
    if (holder && holder !== conflict.resourceId) throw new NwError('conflict', `That copy gives MRN ${mapped.fields.mrn}, which another record on this workstation holds.`);
  };

  /** Writes the chosen copy to the local record and queues it (other servers receive it). */
  const writeBack = (ctx: HandlerContext, conflict: ConflictRecord, copy: Resource | null): { applied: boolean; message: string } => {
    const what = `${conflict.resourceType}/${conflict.resourceId}`;
    if (!WRITTEN_BACK.has(conflict.resourceType)) {
      return ctx.commit(() => ({
        applied: false,
        message: `${conflict.resourceType} is not kept as an editable record on this workstation (it is built from local data such as admissions): ${what} was settled with server "${conflict.server}" only, and is not sent to other servers.`,
      }));
    }
    if (!copy) return ctx.commit(() => ({ applied: false, message: `Server "${conflict.server}" deleted ${what}; the local record is kept (sync never deletes a local record).` }));
    const mapped = demographicsFromFhir(copy);
    if (!mapped.ok) return ctx.commit(() => ({ applied: false, message: `The copy lacks ${mapped.missing.join(', ')}: the local record was left as it was.` }));
    return ctx.commit(() => {
      const patient = new PatientsRepository(store.db, now).replaceDemographics(conflict.resourceId, mapped.fields);
      new Outbox(store.db, now).enqueue('update', sendable(copy) as Resource & { id: string });
      return { applied: true, message: `The local record ${what} now holds that copy (version ${patient.version}); it is queued for the other servers.` };
    });
  };

  return {
    'sync.status': (): SyncStatusView => {
      const engine = deps.engine();
      const outboxPending = new Outbox(store.db, now).pendingCount();
      if (!engine) return { configured: deps.servers.length > 0, running: false, servers: [], outboxPending };
      const pulls = engine.pullStatus();
      return {
        configured: true,
        running: true,
        outboxPending,
        servers: engine.status().map((s) => {
          const pull = pulls.find((p) => p.server === s.name)?.types ?? [];
          // A pull that fails shows on the card as a push failure does (run-outcome.ts).
          const error = currentError(s, pull);
          return {
            ...s,
            ...error,
            resourceTypes: deps.servers.find((server) => server.name === s.name)?.resourceTypes.slice() ?? '*',
            reachable: reachableFrom({ ...s, ...error }),
            pull,
          };
        }) as SyncStatusView['servers'],
      };
    },

    'sync.runNow': {
      async: async (_req, ctx) => {
        const report = await requireEngine().runOnce({ force: true });
        // Each server's push and pull as one verdict, as `neuroward sync run` counts them (run-outcome.ts).
        const servers = report.servers.map((s) => passWithPull(s, report.pulls.find((p) => p.server === s.server)));
        ctx.audit.detail = { servers: servers.map((s) => ({ server: s.server, state: s.state, sent: s.sent, conflicts: s.conflicts, deadLetters: s.deadLetters })) };
        deps.changed();
        return { servers, retired: report.retired };
      },
    },

    'sync.conflicts': (req, ctx) => {
      const session = requireSession(ctx);
      const engine = deps.engine();
      const conflicts = engine ? engine.conflicts({ ...(req.status ? { status: req.status } : {}), ...(req.server ? { server: req.server } : {}) }).map((c) => conflictView(session, c)) : [];
      ctx.audit.detail = { status: req.status ?? null, conflicts: conflicts.length, withheld: conflicts.filter((c) => c.content === null).length };
      return { conflicts };
    },

    'sync.resolveConflict': {
      async: async (req, ctx) => {
        const session = requireSession(ctx);
        const engine = requireEngine();
        const conflict = findConflict(engine, req.id);
        const fields: Record<string, FieldSide> = req.fields ?? {};
        ctx.audit.entityType = 'SyncConflict';
        ctx.audit.entityId = String(conflict.id);
        ctx.audit.patientId = patientOf(conflict.resourceType, conflict.resourceId, parsed(conflict.localJson), parsed(conflict.remoteJson));
        ctx.audit.detail = { server: conflict.server, resource: `${conflict.resourceType}/${conflict.resourceId}`, choice: req.choice, ...(req.choice === 'merge' ? { fields } : {}) };
        const withheld = withheldReason(session, conflict);
        if (withheld) throw new NwError('forbidden', `You cannot resolve this conflict: ${withheld}`);
        if (conflict.status === 'open') {
          // Refused here, before anything reaches the server, when the chosen copy could not become the local record.
          const mine = parsed(conflict.localJson);
          const theirs = parsed(conflict.remoteJson);
          if (req.choice === 'take-theirs') assertWritableBack(conflict, theirs);
          if (req.choice === 'merge' && mine && theirs) assertWritableBack(conflict, mergeByField(sendable(mine), sendable(theirs), fields));
        }
        const outcome = await engine.resolveConflict(conflict.id, req.choice, session.username, fields);
        ctx.audit.detail = { ...ctx.audit.detail, outcome: outcome.status };
        if (outcome.status !== 'resolved') {
          const message =
            outcome.status === 'conflict-again'
              ? `Server "${conflict.server}" changed ${conflict.resourceType}/${conflict.resourceId} again meanwhile: its newest copy is shown now; decide again.`
              : `Server "${conflict.server}" refused: ${outcome.message}`;
          return ctx.commit(() => ({ status: outcome.status, conflict: conflictView(session, outcome.conflict), local: null, message }));
        }
        const local = outcome.choice === 'keep-mine' ? null : writeBack(ctx, outcome.conflict, outcome.choice === 'merge' ? (outcome.merged ?? null) : outcome.remote);
        deps.changed();
        const said = { 'keep-mine': 'Your copy was written to', 'take-theirs': 'The copy of', merge: 'The merged copy was written to' }[outcome.choice];
        return {
          status: 'resolved' as const,
          conflict: conflictView(session, outcome.conflict),
          local,
          message: `${said} server "${conflict.server}"${outcome.choice === 'take-theirs' ? ' was taken' : ''}.`,
        };
      },
    },

    'sync.deadLetters': (req, ctx) => {
      const engine = deps.engine();
      const deadLetters = engine ? engine.deadLetters({ ...(req.status ? { status: req.status } : {}), ...(req.server ? { server: req.server } : {}) }).map(letterView) : [];
      ctx.audit.detail = { status: req.status ?? null, deadLetters: deadLetters.length };
      return { deadLetters };
    },

    'sync.discardDeadLetter': (req, ctx) => letterAction(req.id, ctx, 'discard'),
    'sync.requeueDeadLetter': (req, ctx) => letterAction(req.id, ctx, 'requeue'),
  };

  function letterAction(id: number, ctx: HandlerContext, action: 'discard' | 'requeue'): SyncDeadLetterView {
    const session = requireSession(ctx);
    const engine = requireEngine();
    const letter = engine.deadLetters().find((l) => l.id === id);
    ctx.audit.entityType = 'SyncDeadLetter';
    ctx.audit.entityId = String(id);
    if (!letter) throw new NwError('not-found', `No dead letter ${id}.`);
    ctx.audit.patientId = letter.resourceType === 'Patient' ? letter.resourceId : null;
    ctx.audit.detail = { server: letter.server, resource: `${letter.resourceType}/${letter.resourceId}`, httpStatus: letter.httpStatus };
    if (action === 'discard') engine.discardDeadLetter(id, session.username);
    else engine.requeueDeadLetter(id, session.username);
    if (action === 'requeue') deps.changed();
    return letterView(engine.deadLetters().find((l) => l.id === id)!);
  }
}
