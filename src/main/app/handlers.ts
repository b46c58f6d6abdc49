/** One handler per channel of the contract. The dispatcher has already validated, authorised and opened the transaction. */
import { NwError } from '../../shared/errors.js';
import type { AppStatus } from '../../shared/ipc.js';
import type { AppConfig } from './config.js';
import { requireSession, type HandlerContext, type HandlerTable } from './dispatcher.js';
import { admitDemoPatients, demoAccounts, DEMO_PATIENTS } from './demo-data.js';
import type { StoreService } from '../store/store-service.js';
import type { Db } from '../store/database.js';
import type { SessionManager } from '../security/sessions.js';
import { AuditLedger, verifySummary } from '../security/audit-ledger.js';
import { publicUser, UsersRepository, type UserWithHash } from '../security/users-repo.js';
import { decoyHash, hashPassword, verifyPassword } from '../security/passwords.js';
import { PatientsRepository } from '../patients/patients-repo.js';
import { Outbox } from '../store/outbox.js';
import { toFhirPatient } from '../fhir/resources.js';
import type { ConnectivityMonitor } from '../fhir/connectivity.js';
import type { ImagingService } from '../imaging/imaging-service.js';
import type { WardService } from '../vitals/ward-service.js';
import { createAlarmHandlers } from './alarm-handlers.js';
import { createMonitorHandlers } from './monitor-handlers.js';
import { createImagingHandlers } from './imaging-handlers.js';
import { createAdtHandlers } from './adt-handlers.js';
import type { AdtService } from '../adt/adt-service.js';
import { hideRestrictedNames } from '../vitals/ward-service.js';
import type { SignInGuard } from '../security/sign-in-guard.js';
import type { PatientAccess } from '../security/patient-access.js';
import { createSyncHandlers, type SyncHandlerDeps } from './sync-handlers.js';
import { createAnalysisHandlers } from './analysis-handlers.js';
import { createScheduleHandlers } from './schedule-handlers.js';
import type { ReminderService } from '../crm/reminders.js';
import type { AiReadService } from '../analysis/ai-read-service.js';

export interface HandlerDeps {
  config: AppConfig;
  host: 'electron' | 'headless';
  version: string;
  store: StoreService;
  sessions: SessionManager;
  connectivity: ConnectivityMonitor;
  liveConnections: ReadonlySet<string>;
  imaging: ImagingService;
  aiReads: AiReadService;
  ward: WardService;
  /** Admissions: who is in which bed (src/main/adt/). */
  adt: AdtService;
  /** Appointment reminders (src/main/crm/reminders.ts). */
  reminders: ReminderService;
  /** Back-off per source and lockout that does not reveal which usernames exist. */
  signInGuard: SignInGuard;
  /** The one check of whether a session may read a given patient's data. */
  patientAccess: PatientAccess;
  /** Called once the store has just been opened or created (starts what needs it, like the ward). */
  onStoreReady: () => void;
  now: () => Date;
  /** Lines for the console, e.g. the demo passwords printed once. */
  announce: (lines: string[]) => void;
  /** The FHIR sync engine and what the Sync screen needs around it. */
  sync: Pick<SyncHandlerDeps, 'servers' | 'engine' | 'changed'>;
}

/** Repositories over whatever database is open now (they are cheap to build). */
export function repositories(db: Db, now: () => Date) {
  return { users: new UsersRepository(db, now), patients: new PatientsRepository(db, now), ledger: new AuditLedger(db, now), outbox: new Outbox(db, now) };
}

export function createHandlers(deps: HandlerDeps): HandlerTable {
  const { store, sessions, config, now, signInGuard: guard, patientAccess } = deps;
  const repos = () => repositories(store.db, now);

  const status = (ctx: HandlerContext): AppStatus => {
    const session = store.ready ? sessions.forConnection(ctx.connection.id) : null;
    return {
      version: deps.version,
      host: deps.host,
      store: store.state,
      storeError: store.error ? { code: store.error.code, message: store.error.message } : null,
      passphraseSource: store.passphraseSource,
      setupRequired: store.state === 'uninitialized',
      demo: config.demo,
      session: session ? sessions.info(session) : null,
    };
  };

  /** A refusal, audited through the dispatcher's per-source budget (it is thrown, not written here). */
  const assertNotLocked = (user: UserWithHash): void => {
    if (user.lockedUntil && Date.parse(user.lockedUntil) > now().getTime()) throw guard.lockedError(Date.parse(user.lockedUntil));
  };
  const lockoutEntry = (ctx: HandlerContext, userId: string, via: string) =>
    repos().ledger.append({
      actor: ctx.audit.actor ?? (ctx.session ? { userId: ctx.session.userId, username: ctx.session.username, role: ctx.session.role } : null),
      connection: ctx.connection.id,
      action: 'auth.account-locked', outcome: 'denied', entityType: 'User', entityId: userId, detail: { failures: config.security.maxFailedSignIns, via } });

  return {
    ...createAlarmHandlers(deps),
    ...createMonitorHandlers(deps),
    ...createImagingHandlers(deps),
    ...createAdtHandlers(deps),
    ...createSyncHandlers({ store, patientAccess, now, ...deps.sync }),
    ...createAnalysisHandlers({ store, reads: deps.aiReads, patientAccess, now }),
    ...createScheduleHandlers({ store, patientAccess, now, quietHours: config.reminders.quietHours, reminders: deps.reminders }),
    'app.status': (_req, ctx) => status(ctx),

    'store.unlock': {
      async: async (req, ctx) => {
        guard.beforeAttempt(ctx.connection.source);
        try {
          await store.unlock(req.passphrase);
        } catch (error) {
          if (error instanceof NwError && error.code === 'wrong-passphrase') guard.failed(ctx.connection.source);
          throw error;
        }
        guard.succeeded(ctx.connection.source);
        deps.onStoreReady();
        return status(ctx);
      },
    },

    'setup.initialize': {
      async: async (req, ctx) => {
        const adminHash = await hashPassword(req.admin.password);
        const demo = req.demoData ? await demoAccounts() : [];
        await store.initialize(req.storePassphrase, (db) => {
          const { users, patients, ledger, outbox } = repositories(db, now);
          const admin = users.create({ username: req.admin.username, displayName: req.admin.displayName, role: 'admin', passwordHash: adminHash });
          const actor = { userId: admin.id, username: admin.username, role: admin.role };
          ledger.append({ actor, connection: ctx.connection.id, action: 'setup.initialize', channel: 'setup.initialize', outcome: 'success', entityType: 'User', entityId: admin.id, detail: { demoData: req.demoData, passphraseSource: store.passphraseSource } });
          // Demo data is the system's doing (asked for at setup), not the administrator's: no actor.
          const bySetup = { synthetic: true, loadedBy: 'first-run setup (demo data)' };
          for (const account of demo) {
            const user = users.create({ username: account.username, displayName: account.displayName, role: account.role, passwordHash: account.passwordHash, synthetic: true });
            ledger.append({ actor: null, connection: ctx.connection.id, action: 'user.create', outcome: 'success', entityType: 'User', entityId: user.id, detail: { ...bySetup, role: user.role } });
          }
          if (req.demoData) {
            const demoPatientIds: string[] = [];
            for (const input of DEMO_PATIENTS) {
              const patient = patients.create(input);
              demoPatientIds.push(patient.id);
              outbox.enqueue('create', toFhirPatient(patient));
              ledger.append({ actor: null, connection: ctx.connection.id, action: 'patient.create', outcome: 'success', entityType: 'Patient', entityId: patient.id, patientId: patient.id, detail: bySetup });
            }
            // The demo ward: some of them in beds 4A/1… (demo-data.ts).
            admitDemoPatients(deps.adt.records(db), ledger, demoPatientIds, ctx.connection.id);
          }
        });
        ctx.markAudited();
        deps.onStoreReady();
        const accounts = demo.map(({ username, role, password }) => ({ username, role, password }));
        if (accounts.length) {
          deps.announce([
            'Synthetic demo accounts (passwords shown this once; they are stored only as scrypt hashes):',
            ...accounts.map((a) => `  ${a.role.padEnd(13)} ${a.username.padEnd(20)} ${a.password}`),
          ]);
        }
        return { status: status(ctx), demoAccounts: accounts };
      },
    },

    'auth.signIn': {
      async: async (req, ctx) => {
        const source = ctx.connection.source;
        guard.beforeAttempt(source);
        const { users } = repos();
        const user = users.byUsername(req.username);
        // The typed name is kept only when it is an account: a password typed into the username field
        // must never land in the ledger.
        ctx.audit.detail = { username: user ? user.username : 'unknown' };
        // Verify against a decoy when the user does not exist, so timing does not reveal who has an account.
        const passwordOk = await verifyPassword(req.password, user?.passwordHash ?? (await decoyHash()));
        const wrong = new NwError('unauthenticated', 'Wrong username or password.');
        if (!user) {
          guard.failed(source);
          guard.assertUnknownNotLocked(req.username);
          guard.failedUnknown(req.username);
          throw wrong;
        }
        ctx.audit.actor = { userId: user.id, username: user.username, role: user.role };
        ctx.audit.entityType = 'User';
        ctx.audit.entityId = user.id;
        const fresh = users.require(user.id);
        if (!passwordOk || fresh.disabled) guard.failed(source);
        assertNotLocked(fresh);
        if (fresh.disabled) throw ctx.refuse(wrong);
        if (!passwordOk) {
          ctx.refuse(wrong, () => {
            const after = repos().users.recordFailedSignIn(user.id, config.security.maxFailedSignIns, config.security.lockoutMs);
            const lockedNow = after.lockedUntil !== null && after.failedSignIns === 0 && Date.parse(after.lockedUntil) > now().getTime();
            if (lockedNow) lockoutEntry(ctx, user.id, 'auth.signIn');
          });
          throw wrong;
        }
        guard.succeeded(source);
        return ctx.commit(() => {
          repos().users.clearFailures(user.id);
          const session = sessions.create(fresh, ctx.connection.id);
          return sessions.info(session);
        });
      },
    },

    'auth.resume': (req, ctx) => {
      const session = sessions.resume(req.token, ctx.connection.id, deps.liveConnections);
      const user = repos().users.byId(session.userId);
      if (!user || user.disabled) {
        sessions.end(session, 'account disabled');
        throw new NwError('session-expired', 'This account is no longer active.');
      }
      ctx.audit.actor = { userId: session.userId, username: session.username, role: session.role };
      return sessions.info(session);
    },

    'auth.signOut': (_req, ctx) => {
      sessions.end(requireSession(ctx), 'signed out');
      return { ok: true as const };
    },

    'auth.lock': (_req, ctx) => {
      const session = requireSession(ctx);
      sessions.lock(session, 'locked by the user');
      return sessions.info(session);
    },

    'auth.unlock': {
      async: async (req, ctx) => {
        const session = requireSession(ctx);
        const source = ctx.connection.source;
        guard.beforeAttempt(source);
        const user = repos().users.byId(session.userId);
        if (!user || user.disabled) {
          sessions.end(session, 'account disabled');
          throw new NwError('session-expired', 'This account is no longer active.');
        }
        assertNotLocked(user);
        if (!(await verifyPassword(req.password, user.passwordHash))) {
          guard.failed(source);
          const error = new NwError('unauthenticated', 'Wrong password.');
          let lockedOut = false;
          ctx.refuse(error, () => {
            const after = repos().users.recordFailedSignIn(user.id, config.security.maxFailedSignIns, config.security.lockoutMs);
            lockedOut = after.lockedUntil !== null && Date.parse(after.lockedUntil) > now().getTime();
            if (lockedOut) lockoutEntry(ctx, user.id, 'auth.unlock');
          });
          // Too many wrong passwords on a locked screen: the session ends, as a sign-in would lock out.
          if (lockedOut) sessions.end(session, 'too many wrong passwords');
          throw error;
        }
        guard.succeeded(source);
        return ctx.commit(() => {
          repos().users.clearFailures(user.id);
          sessions.unlock(session);
          return sessions.info(session);
        });
      },
    },

    'auth.touch': () => ({ ok: true as const }),

    'auth.changePassword': {
      async: async (req, ctx) => {
        const session = requireSession(ctx);
        guard.beforeAttempt(ctx.connection.source);
        const user = repos().users.require(session.userId);
        if (!(await verifyPassword(req.currentPassword, user.passwordHash))) {
          guard.failed(ctx.connection.source);
          throw ctx.refuse(new NwError('unauthenticated', 'The current password is wrong.'));
        }
        if (req.currentPassword === req.newPassword) throw new NwError('bad-request', 'Choose a password different from the current one.', [{ path: 'newPassword', message: 'same as current' }]);
        const hash = await hashPassword(req.newPassword);
        ctx.audit.entityType = 'User';
        ctx.audit.entityId = user.id;
        return ctx.commit(() => {
          repos().users.setPassword(user.id, hash, false);
          session.mustChangePassword = false;
          return sessions.info(session);
        });
      },
    },

    'auth.breakGlass': (req, ctx) => {
      const session = requireSession(ctx);
      sessions.startBreakGlass(session, req.reason, req.minutes);
      ctx.audit.breakGlass = true;
      ctx.audit.detail = { reason: req.reason, minutes: req.minutes };
      return sessions.info(session);
    },

    'auth.endBreakGlass': (_req, ctx) => {
      const session = requireSession(ctx);
      session.breakGlass = null;
      return sessions.info(session);
    },

    'system.connectivity': () => ({ ...deps.connectivity.snapshot(), outboxPending: repos().outbox.pendingCount() }),

    'patients.update': (req, ctx) => {
      const session = requireSession(ctx);
      const { patients, outbox } = repos();
      ctx.audit.entityType = 'Patient';
      ctx.audit.entityId = req.id;
      ctx.audit.patientId = req.id;
      const before = patients.get(req.id);
      if (!before) throw new NwError('not-found', 'No such patient.');
      patientAccess.assertCanRead(session, before.id);
      if (before.version !== req.version) throw new NwError('conflict', `This record was changed meanwhile (version ${before.version}, you edited ${req.version}): reopen it and edit again.`);
      const changed = (['givenName', 'familyName', 'birthDate', 'sex'] as const).filter((f) => req[f] !== undefined && req[f] !== before[f]);
      // Which elements changed, never their values (the ledger holds no demographics).
      ctx.audit.detail = { changed };
      if (changed.length === 0) return before;
      const after = patients.replaceDemographics(before.id, {
        mrn: before.mrn,
        givenName: req.givenName ?? before.givenName,
        familyName: req.familyName ?? before.familyName,
        birthDate: req.birthDate ?? before.birthDate,
        sex: req.sex ?? before.sex,
      });
      outbox.enqueue('update', toFhirPatient(after));
      return after;
    },

    'patients.list': (req, ctx) => {
      const session = requireSession(ctx);
      const patients = repos().patients.search(req.query, req.limit, session.breakGlass !== null);
      ctx.audit.detail = { query: req.query ?? '', results: patients.length };
      return { patients };
    },

    'patients.get': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'Patient';
      ctx.audit.entityId = req.id;
      ctx.audit.patientId = req.id;
      const patient = repos().patients.get(req.id);
      if (!patient) throw new NwError('not-found', 'No such patient.');
      patientAccess.assertCanRead(session, patient.id);
      return patient;
    },

    'patients.create': (req, ctx) => {
      const { patients, outbox } = repos();
      const patient = patients.create(req);
      outbox.enqueue('create', toFhirPatient(patient));
      ctx.audit.entityType = 'Patient';
      ctx.audit.entityId = patient.id;
      ctx.audit.patientId = patient.id;
      return patient;
    },

    'users.list': () => ({ users: repos().users.list().map(publicUser) }),

    'users.create': {
      async: async (req, ctx) => {
        const hash = await hashPassword(req.password);
        return ctx.commit(() => {
          const user = repos().users.create({ username: req.username, displayName: req.displayName, role: req.role, passwordHash: hash, mustChangePassword: true });
          ctx.audit.entityType = 'User';
          ctx.audit.entityId = user.id;
          ctx.audit.detail = { role: user.role };
          return publicUser(user);
        });
      },
    },

    'users.update': (req, ctx) => {
      const { users } = repos();
      const before = users.require(req.id);
      ctx.audit.entityType = 'User';
      ctx.audit.entityId = before.id;
      const demotesAdmin = before.role === 'admin' && !before.disabled && ((req.role && req.role !== 'admin') || req.disabled === true);
      if (demotesAdmin && users.countActiveAdmins() <= 1) throw new NwError('conflict', 'This is the last active administrator; create another administrator first.');
      const after = users.update(req.id, req);
      ctx.audit.detail = { before: { role: before.role, disabled: before.disabled, displayName: before.displayName }, after: { role: after.role, disabled: after.disabled, displayName: after.displayName } };
      if (after.role !== before.role || (after.disabled && !before.disabled)) sessions.endForUser(after.id, after.disabled ? 'account disabled' : 'role changed');
      return publicUser(after);
    },

    'users.resetPassword': {
      async: async (req, ctx) => {
        const hash = await hashPassword(req.password);
        return ctx.commit(() => {
          const user = repos().users.setPassword(repos().users.require(req.id).id, hash, true);
          ctx.audit.entityType = 'User';
          ctx.audit.entityId = user.id;
          sessions.endForUser(user.id, 'password reset by an administrator');
          return publicUser(user);
        });
      },
    },

    'users.unlock': (req, ctx) => {
      const user = repos().users.clearFailures(repos().users.require(req.id).id);
      ctx.audit.entityType = 'User';
      ctx.audit.entityId = user.id;
      return publicUser(user);
    },

    'ward.board': (_req, ctx) => {
      const board = deps.ward.board();
      ctx.audit.detail = { beds: board.beds.length, alarms: board.alarms.length };
      // A restricted patient's name on a bed only under break-glass (the MRN always).
      return patientAccess.canReadRestricted(requireSession(ctx)) ? board : { ...board, beds: hideRestrictedNames(board.beds) };
    },

    'ward.bedHistory': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'Bed';
      ctx.audit.entityId = req.bedKey;
      ctx.audit.detail = { minutes: req.minutes };
      const history = deps.ward.history(req.bedKey, req.minutes);
      // Past readings are the record of whoever was in the bed then: each patient's own access check.
      const recordIds = [...new Set(history.patientRefs.map((ref) => patientAccess.recordId(ref)).filter((id): id is string => id !== null))];
      if (recordIds.length === 1) ctx.audit.patientId = recordIds[0]!;
      ctx.audit.detail = { minutes: req.minutes, patients: recordIds };
      for (const ref of history.patientRefs) patientAccess.assertCanRead(session, ref);
      return history;
    },

    'ward.setSpo2Scale': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'Bed';
      ctx.audit.entityId = req.bedKey;
      ctx.audit.detail = { bed: req.bedKey, scale: req.scale, reason: req.reason };
      const previous = deps.ward.spo2ScaleOfBed(req.bedKey);
      const bed = deps.ward.setSpo2Scale(req.bedKey, req.scale, session.displayName, req.reason);
      // The monitor names the patient as `Patient/<id>` or `mrn:<MRN>`; the entry's patient id is a record id.
      ctx.audit.patientId = patientAccess.recordId(bed.patientRef);
      ctx.audit.detail = { bed: req.bedKey, patientRef: bed.patientRef, scale: req.scale, previousScale: previous, reason: req.reason };
      return patientAccess.canReadRestricted(session) ? bed : hideRestrictedNames([bed])[0]!;
    },

    'alarms.acknowledge': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'Alarm';
      ctx.audit.entityId = req.alarmId;
      ctx.audit.detail = { reason: req.reason };
      const alarm = deps.ward.acknowledge(req.alarmId, session.displayName, req.reason);
      ctx.audit.detail = { reason: req.reason, bed: alarm.bedKey, priority: alarm.priority, condition: alarm.condition };
      ctx.audit.patientId = patientAccess.recordId(deps.ward.patientRefOfBed(alarm.bedKey));
      return alarm;
    },

    'alarms.pause': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'Alarm';
      ctx.audit.entityId = req.alarmId;
      ctx.audit.detail = { reason: req.reason, seconds: req.seconds };
      const alarm = deps.ward.pause(req.alarmId, session.displayName, req.reason, req.seconds);
      ctx.audit.detail = { reason: req.reason, seconds: req.seconds, bed: alarm.bedKey, priority: alarm.priority, condition: alarm.condition };
      ctx.audit.patientId = patientAccess.recordId(deps.ward.patientRefOfBed(alarm.bedKey));
      return alarm;
    },

    'audit.list': (req) => repos().ledger.list(req),

    'audit.verify': (_req, ctx) => {
      const result = repos().ledger.verify();
      ctx.audit.detail = verifySummary(result);
      return result;
    },
  };
}
