/** One handler per channel of the contract. The dispatcher has already validated, authorised and opened the transaction. */
import { NwError } from '../../shared/errors.js';
import type { AppStatus } from '../../shared/ipc.js';
import type { AppConfig } from './config.js';
import { requireSession, type HandlerContext, type HandlerTable } from './dispatcher.js';
import { demoAccounts, DEMO_PATIENTS } from './demo-data.js';
import type { StoreService } from '../store/store-service.js';
import type { Db } from '../store/database.js';
import type { SessionManager } from '../security/sessions.js';
import { AuditLedger } from '../security/audit-ledger.js';
import { publicUser, UsersRepository, type UserWithHash } from '../security/users-repo.js';
import { decoyHash, hashPassword, verifyPassword } from '../security/passwords.js';
import { PatientsRepository } from '../patients/patients-repo.js';
import { Outbox } from '../store/outbox.js';
import { toFhirPatient } from '../fhir/resources.js';
import type { ConnectivityMonitor } from '../fhir/connectivity.js';
import type { ImagingService } from '../imaging/imaging-service.js';
import type { WardService } from '../vitals/ward-service.js';
import { StudiesRepository } from '../imaging/studies-repo.js';

export interface HandlerDeps {
  config: AppConfig;
  host: 'electron' | 'headless';
  version: string;
  store: StoreService;
  sessions: SessionManager;
  connectivity: ConnectivityMonitor;
  liveConnections: ReadonlySet<string>;
  imaging: ImagingService;
  ward: WardService;
  /** Called once the store has just been opened or created (starts what needs it, like the ward). */
  onStoreReady: () => void;
  now: () => Date;
  /** Lines for the console, e.g. the demo passwords printed once. */
  announce: (lines: string[]) => void;
}

/** Repositories over whatever database is open now (they are cheap to build). */
export function repositories(db: Db, now: () => Date) {
  return { users: new UsersRepository(db, now), patients: new PatientsRepository(db, now), ledger: new AuditLedger(db, now), outbox: new Outbox(db, now) };
}

export function createHandlers(deps: HandlerDeps): HandlerTable {
  const { store, sessions, config, now } = deps;
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

  const assertNotLocked = (user: UserWithHash): void => {
    if (user.lockedUntil && Date.parse(user.lockedUntil) > now().getTime()) {
      throw new NwError('account-locked', `This account is locked after ${config.security.maxFailedSignIns} failed sign-ins until ${new Date(user.lockedUntil).toLocaleTimeString('en-GB')}. An administrator can unlock it sooner.`);
    }
  };

  return {
    'app.status': (_req, ctx) => status(ctx),

    'store.unlock': {
      async: async (req, ctx) => {
        await store.unlock(req.passphrase);
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
          for (const account of demo) {
            const user = users.create({ username: account.username, displayName: account.displayName, role: account.role, passwordHash: account.passwordHash, synthetic: true });
            ledger.append({ actor, action: 'user.create', outcome: 'success', entityType: 'User', entityId: user.id, detail: { synthetic: true, role: user.role } });
          }
          if (req.demoData) {
            for (const input of DEMO_PATIENTS) {
              const patient = patients.create(input);
              outbox.enqueue('create', toFhirPatient(patient));
              ledger.append({ actor, action: 'patient.create', outcome: 'success', entityType: 'Patient', entityId: patient.id, patientId: patient.id, detail: { synthetic: true } });
            }
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
        const { users } = repos();
        const user = users.byUsername(req.username);
        ctx.audit.detail = { username: req.username };
        // Verify against a decoy when the user does not exist, so timing does not reveal who has an account.
        const passwordOk = await verifyPassword(req.password, user?.passwordHash ?? (await decoyHash()));
        if (!user) throw ctx.refuse(new NwError('unauthenticated', 'Wrong username or password.'));
        ctx.audit.actor = { userId: user.id, username: user.username, role: user.role };
        ctx.audit.entityType = 'User';
        ctx.audit.entityId = user.id;
        const fresh = users.require(user.id);
        assertNotLockedOrRefuse(fresh, ctx);
        if (fresh.disabled) throw ctx.refuse(new NwError('unauthenticated', 'Wrong username or password.'), () => undefined);
        if (!passwordOk) {
          let lockedNow = false;
          const error = new NwError('unauthenticated', 'Wrong username or password.');
          ctx.refuse(error, () => {
            const after = repos().users.recordFailedSignIn(user.id, config.security.maxFailedSignIns, config.security.lockoutMs);
            lockedNow = after.lockedUntil !== null && after.failedSignIns === 0 && Date.parse(after.lockedUntil) > now().getTime();
          });
          if (lockedNow) {
            ctx.commit(() => repos().ledger.append({ actor: ctx.audit.actor ?? null, connection: ctx.connection.id, action: 'auth.account-locked', outcome: 'denied', entityType: 'User', entityId: user.id, detail: { failures: config.security.maxFailedSignIns } }));
          }
          throw error;
        }
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
        const user = repos().users.byId(session.userId);
        if (!user || user.disabled) {
          sessions.end(session, 'account disabled');
          throw new NwError('session-expired', 'This account is no longer active.');
        }
        assertNotLockedOrRefuse(user, ctx);
        if (!(await verifyPassword(req.password, user.passwordHash))) {
          const error = new NwError('unauthenticated', 'Wrong password.');
          let lockedOut = false;
          ctx.refuse(error, () => {
            const after = repos().users.recordFailedSignIn(user.id, config.security.maxFailedSignIns, config.security.lockoutMs);
            lockedOut = after.lockedUntil !== null && Date.parse(after.lockedUntil) > now().getTime();
          });
          // Too many wrong passwords on a locked screen: the session ends, as a sign-in would lock out.
          if (lockedOut) sessions.end(session, 'too many wrong passwords');
          throw error;
        }
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
        const user = repos().users.require(session.userId);
        if (!(await verifyPassword(req.currentPassword, user.passwordHash))) throw ctx.refuse(new NwError('unauthenticated', 'The current password is wrong.'));
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
      if (patient.restricted && !session.breakGlass) {
        throw new NwError('forbidden', 'This record is restricted. Open it with break-glass access, giving your reason.');
      }
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

    'imaging.browse': { async: (req) => deps.imaging.browse(req.path) },

    'imaging.scan': {
      async: async (req, ctx) => {
        ctx.audit.detail = { path: req.path };
        return deps.imaging.scan(req.path);
      },
    },

    'imaging.import': {
      async: async (req, ctx) => {
        const session = requireSession(ctx);
        ctx.audit.detail = { path: req.path, seriesInstanceUid: req.seriesInstanceUid ?? null, mask: req.mask };
        if (req.patientId) ctx.audit.patientId = req.patientId;
        return deps.imaging.startImport(req, { userId: session.userId, username: session.username, role: session.role }, ctx.connection.id);
      },
    },

    'imaging.jobs': (_req, ctx) => ({ jobs: deps.imaging.jobsFor(requireSession(ctx).userId) }),

    'imaging.studies': () => ({ studies: new StudiesRepository(store.db, now).list() }),

    'imaging.volume': (req, ctx) => {
      const key = typeof req.volume === 'string' ? req.volume : `dwi:${req.volume.dwi}`;
      const studies = new StudiesRepository(store.db, now);
      const study = studies.get(req.studyId);
      ctx.audit.entityType = 'ImagingStudy';
      ctx.audit.entityId = req.studyId;
      ctx.audit.patientId = study?.patientId ?? null;
      ctx.audit.detail = { volume: key };
      return studies.volume(req.studyId, key);
    },

    'ward.board': (_req, ctx) => {
      const board = deps.ward.board();
      ctx.audit.detail = { beds: board.beds.length, alarms: board.alarms.length };
      return board;
    },

    'ward.bedHistory': (req, ctx) => {
      ctx.audit.entityType = 'Bed';
      ctx.audit.entityId = req.bedKey;
      ctx.audit.detail = { minutes: req.minutes };
      return deps.ward.history(req.bedKey, req.minutes);
    },

    'ward.setSpo2Scale': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'Bed';
      ctx.audit.entityId = req.bedKey;
      ctx.audit.detail = { bed: req.bedKey, scale: req.scale, reason: req.reason };
      const previous = deps.ward.spo2ScaleOfBed(req.bedKey);
      const bed = deps.ward.setSpo2Scale(req.bedKey, req.scale, session.displayName, req.reason);
      // The monitor names the patient as `Patient/<id>` or `mrn:<MRN>`; the entry's patient id is a record id.
      const recordId = bed.patientRef?.startsWith('Patient/') ? bed.patientRef.slice('Patient/'.length) : null;
      ctx.audit.patientId = recordId;
      ctx.audit.detail = { bed: req.bedKey, patientRef: bed.patientRef, scale: req.scale, previousScale: previous, reason: req.reason };
      return bed;
    },

    'alarms.acknowledge': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'Alarm';
      ctx.audit.entityId = req.alarmId;
      ctx.audit.detail = { reason: req.reason };
      const alarm = deps.ward.acknowledge(req.alarmId, session.displayName, req.reason);
      ctx.audit.detail = { reason: req.reason, bed: alarm.bedKey, priority: alarm.priority, condition: alarm.condition };
      return alarm;
    },

    'alarms.pause': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'Alarm';
      ctx.audit.entityId = req.alarmId;
      ctx.audit.detail = { reason: req.reason, seconds: req.seconds };
      const alarm = deps.ward.pause(req.alarmId, session.displayName, req.reason, req.seconds);
      ctx.audit.detail = { reason: req.reason, seconds: req.seconds, bed: alarm.bedKey, priority: alarm.priority, condition: alarm.condition };
      return alarm;
    },

    'audit.list': (req) => repos().ledger.list(req),

    'audit.verify': (_req, ctx) => {
      const result = repos().ledger.verify();
      ctx.audit.detail = { ok: result.ok, entries: result.entries, problem: result.problem?.kind ?? null };
      return result;
    },
  };

  function assertNotLockedOrRefuse(user: UserWithHash, ctx: HandlerContext): void {
    try {
      assertNotLocked(user);
    } catch (error) {
      throw ctx.refuse(error as NwError);
    }
  }
}
