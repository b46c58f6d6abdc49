/**
 * Composition root: reads nothing global, builds every service from config, wires them, and hands
 * the hosts a NeurowardApp. Nothing else in the main process constructs services.
 */
import type { AppConfig } from './config.js';
import { appVersion } from './version.js';
import type { Connection, HostRefusal, NeurowardApp, SafeStorageKeyProvider } from './types.js';
import { Dispatcher } from './dispatcher.js';
import { createHandlers } from './handlers.js';
import { StoreService } from '../store/store-service.js';
import { SessionManager } from '../security/sessions.js';
import { AuditLedger, type AuditInput } from '../security/audit-ledger.js';
import { ConnectivityMonitor } from '../fhir/connectivity.js';
import { Outbox } from '../store/outbox.js';
import { ImagingService, type ImagingEngines } from '../imaging/imaging-service.js';
import { defaultImagingEngines } from '../imaging/engines.js';
import { WardService, hideRestrictedNames } from '../vitals/ward-service.js';
import { AdtService } from '../adt/adt-service.js';
import { PatientsRepository } from '../patients/patients-repo.js';
import { redactBrokerUrl } from '../vitals/broker.js';
import { roleHasPermission } from '../../shared/roles.js';
import { RefusalAudit } from '../security/refusal-audit.js';
import { SignInGuard } from '../security/sign-in-guard.js';
import { PatientAccess } from '../security/patient-access.js';
import type { Envelope } from '../../shared/errors.js';
import { FhirSyncEngine } from '../fhir/sync/sync-engine.js';
import { FhirValidator } from '../fhir/validation.js';
import type { SyncServer } from '../fhir/sync/settings.js';
import { AiReadService } from '../analysis/ai-read-service.js';
import { FileChannel, ReminderService, SmtpChannel } from '../crm/reminders.js';

/** How often due reminders are sent. */
const REMINDER_PASS_MS = 30_000;

/** One line per server for the start-up log: where it is and what it receives. */
export function describeSyncServer(server: SyncServer): string {
  const routing = server.resourceTypes === '*' ? 'all resource types' : server.resourceTypes.join(', ');
  return `FHIR server "${server.name}" ${server.baseUrl}: ${routing}; ${server.bundleType} Bundles of <= ${server.maxBundleEntries}; auth ${server.auth.kind}${server.tls ? '; own TLS settings' : ''}`;
}

export interface CreateAppOptions {
  config: AppConfig;
  host: 'electron' | 'headless';
  safeStorage?: SafeStorageKeyProvider;
  /** Injected clock for tests of idle lock and expiry. */
  now?: () => Date;
  log?: (message: string) => void;
  /**
   * Where lines meant for the operator go (demo passwords at setup). By default the console, but only
   * when it is a terminal: a service's stdout ends up in log files, and the passwords must not.
   */
  announce?: (line: string) => void;
  /** Readers and fit; the real ones unless a test swaps them. */
  imagingEngines?: ImagingEngines;
}

export async function createApp(options: CreateAppOptions): Promise<NeurowardApp> {
  const { config, host } = options;
  const now = options.now ?? (() => new Date());
  const log = options.log ?? ((message: string) => console.error(`[neuroward] ${message}`));
  const connections = new Map<string, Connection>();
  const liveConnections = new Set<string>();
  const startupNotes: string[] = [];

  const store = new StoreService(config, options.safeStorage, now, { backgroundCheckpoints: true, log });
  await store.start();

  const sessions = new SessionManager({ idleLockMs: config.security.idleLockMs, sessionMs: config.security.sessionMs, now: () => now().getTime() }, (connectionId, session, reason) => {
    connections.get(connectionId)?.send('session.changed', { session: session ? sessions.info(session) : null, reason });
  });
  const sessionTimer = setInterval(() => sessions.tick(), 1000);
  sessionTimer.unref();

  let refusalWriteFailed = false;
  const refusalBudget = (perWindow: number) => ({
    perWindow,
    windowMs: 60_000,
    maxPending: 500,
    now: () => now().getTime(),
    write: (entries: AuditInput[]) => {
      if (!store.ready) return false;
      try {
        store.transaction(() => {
          const ledger = new AuditLedger(store.db, now);
          for (const entry of entries) ledger.append(entry);
        });
        refusalWriteFailed = false;
        return true;
      } catch (error) {
        if (!refusalWriteFailed) log(`could not audit refusals (kept in memory, retried): ${(error as Error).message}`);
        refusalWriteFailed = true;
        return false;
      }
    },
  });
  // Calls refused by the dispatcher: each audited, up to the per-source budget.
  const refusals = new RefusalAudit(refusalBudget(config.security.auditedRefusalsPerMinute));
  // Refusals at the host's door (no launch key, bad frames): one entry per source and minute, the rest counted.
  const doorRefusals = new RefusalAudit(refusalBudget(1));
  const flushRefusals = (all = false) => {
    refusals.flush(all);
    doorRefusals.flush(all);
  };
  const refusalTimer = setInterval(() => flushRefusals(), 5_000);
  refusalTimer.unref();
  const signInGuard = new SignInGuard({ maxFailedSignIns: config.security.maxFailedSignIns, lockoutMs: config.security.lockoutMs, now: () => now().getTime() });
  const patientAccess = new PatientAccess(() => new PatientsRepository(store.db, now));

  // The top bar's link state and queued-changes count: pushed when either changed (after a pass, after a change was queued).
  let publishedPending = -1;
  const publishConnectivity = (force = false) => {
    if (!store.ready) return;
    const outboxPending = new Outbox(store.db, now).pendingCount();
    if (!force && outboxPending === publishedPending) return;
    publishedPending = outboxPending;
    const snapshot = connectivity.snapshot();
    for (const connection of connections.values()) if (sessions.forConnection(connection.id)) connection.send('connectivity.changed', { ...snapshot, outboxPending });
  };
  const connectivity = new ConnectivityMonitor(config.fhirServers, () => publishConnectivity(true));

  // FHIR sync: one engine once the store is open (at start, or after setup / unlock) and servers are configured.
  const validator = new FhirValidator();
  let syncEngine: FhirSyncEngine | null = null;
  let lastQueuedId = 0;
  const startSync = () => {
    if (syncEngine || !store.ready || config.fhirServers.length === 0) return;
    try {
      const engine: FhirSyncEngine = new FhirSyncEngine({
        db: store.db,
        servers: config.fhirServers,
        validator,
        now,
        log,
        // Patients pulled from a server become (or update) local records; never queued back out (pull.ts).
        pulledPatients: new PatientsRepository(store.db, now),
        onPass: () => {
          connectivity.update(engine.status());
          publishConnectivity();
        },
      });
      syncEngine = engine;
      lastQueuedId = new Outbox(store.db, now).lastId();
      connectivity.update(engine.status());
      engine.start();
      log(`FHIR sync started: ${config.fhirServers.map((s) => s.name).join(', ')}`);
    } catch (error) {
      log(`FHIR sync could not start: ${(error as Error).message}`);
    }
  };
  /** After a call: if it queued something, ask for a pass now rather than at the next idle pass. */
  const afterQueued = () => {
    if (!store.ready) return;
    const last = new Outbox(store.db, now).lastId();
    if (last === lastQueuedId) return;
    lastQueuedId = last;
    syncEngine?.kick();
    publishConnectivity();
  };

  const imaging = new ImagingService({
    importRoots: config.imaging.importRoots,
    store,
    engines: options.imagingEngines ?? defaultImagingEngines(),
    ledger: () => new AuditLedger(store.db, now),
    now,
    notify: (connectionId, job) => connections.get(connectionId)?.send('imaging.job', job),
    log,
  });

  const aiReads = new AiReadService({
    store,
    modelDir: config.analysis.modelDir,
    validator,
    ledger: () => new AuditLedger(store.db, now),
    now,
    notify: (connectionId, job) => connections.get(connectionId)?.send('analysis.job', job),
    notifyRole: (role, unread) => {
      for (const connection of connections.values()) if (sessions.forConnection(connection.id)?.role === role) connection.send('notifications.changed', { unread });
    },
    log,
  });

  // Who is in which bed: the ward stores each reading under the admitted patient and shows them on the board.
  const adt = new AdtService({ db: () => store.db, patients: (db) => new PatientsRepository(db, now), now, log });
  const smtp = config.reminders.smtp ? new SmtpChannel(config.reminders.smtp) : null;
  const reminders = new ReminderService({
    db: () => store.db,
    now,
    channels: { email: smtp, sms: null, file: new FileChannel(config.reminders.messagesDir) },
    quiet: config.reminders.quietHours,
    log,
  });
  let remindersStarted = false;
  const sendReminders = () => {
    if (!store.ready) return;
    if (!remindersStarted) {
      remindersStarted = true;
      const inDoubt = reminders.recoverInDoubt();
      if (inDoubt) log(`reminders: ${inDoubt} left mid-send at the last stop are marked failed (in doubt), not sent again`);
    }
    reminders.runOnce().catch((error: unknown) => log(`reminders: a pass failed: ${(error as Error).message}`));
  };
  const reminderTimer = setInterval(sendReminders, REMINDER_PASS_MS);
  reminderTimer.unref();
  const ward = new WardService({
    occupancy: adt,
    mqttUrl: config.mqttUrl,
    embeddedPort: config.mqttEmbeddedPort,
    embeddedHost: config.mqttEmbeddedHost,
    embeddedTls: config.mqttEmbeddedTls,
    clientSeed: config.dataDir,
    keepaliveSeconds: config.mqtt.keepaliveSeconds,
    username: config.mqtt.username,
    password: config.mqtt.password,
    tls: config.mqtt.caFile || config.mqtt.certFile
      ? { ...(config.mqtt.caFile ? { caFile: config.mqtt.caFile } : {}), ...(config.mqtt.certFile ? { certFile: config.mqtt.certFile } : {}), ...(config.mqtt.keyFile ? { keyFile: config.mqtt.keyFile } : {}) }
      : null,
    now,
    log,
    broadcast: (update) => {
      // A restricted patient's name only under break-glass: the redacted copy is made once per update.
      let withoutRestricted: typeof update | null = null;
      for (const connection of connections.values()) {
        const session = sessions.forConnection(connection.id);
        if (!session || !roleHasPermission(session.role, 'vitals:read')) continue;
        // A locked screen must still sound alarms, but shows no patient's vitals: alarms and link only.
        if (session.locked) connection.send('ward.update', { ...update, beds: [] });
        else if (patientAccess.canReadRestricted(session)) connection.send('ward.update', update);
        else connection.send('ward.update', (withoutRestricted ??= { ...update, beds: hideRestrictedNames(update.beds) }));
      }
    },
  });
  adt.onChange((bedKeys) => ward.occupancyChanged(bedKeys));
  let wardStarting: Promise<void> | null = null;
  const startWard = () => {
    if (!store.ready || wardStarting) return;
    wardStarting = ward.start(store.db).catch((error: unknown) => {
      log(`ward monitoring could not start: ${(error as Error).message}`);
      wardStarting = null;
    });
  };
  startWard();

  const handlers = createHandlers({
    config,
    host,
    version: appVersion(),
    store,
    sessions,
    connectivity,
    liveConnections,
    imaging,
    aiReads,
    ward,
    adt,
    reminders,
    signInGuard,
    patientAccess,
    onStoreReady: () => {
      startWard();
      startSync();
      // What was refused while the store was closed (wrong store passphrases among them) is written now.
      flushRefusals();
    },
    now,
    sync: {
      servers: config.fhirServers,
      engine: () => syncEngine,
      changed: () => {
        if (syncEngine) connectivity.update(syncEngine.status());
        afterQueued();
        publishConnectivity(true);
      },
    },
    announce: (lines) => {
      if (options.announce) for (const line of lines) options.announce(line);
      else if (process.stdout.isTTY) for (const line of lines) console.log(line);
      else console.log('neuroward: demo account passwords were shown once on the setup screen (not printed here: standard output is not a terminal)');
    },
  });
  const dispatcher = new Dispatcher({ store, sessions, ledger: () => new AuditLedger(store.db, now), handlers, refusals, log });
  const inFlight = new Map<string, number>();
  const maxInFlight = config.security.maxCallsInFlight;

  startupNotes.push(`data directory: ${config.dataDir}${config.configFile ? ` (config ${config.configFile})` : ' (built-in defaults)'}`);
  startupNotes.push(
    {
      uninitialized: 'store: not set up yet: open the app to create the administrator',
      locked: 'store: locked: open the app and enter the store passphrase',
      ready: 'store: open',
      error: `store: cannot open: ${store.error?.message ?? 'unknown error'}`,
    }[store.state],
  );
  if (config.demo && store.state === 'uninitialized') startupNotes.push('demo: synthetic demo data will be loaded at first-run setup (records marked SYNTHETIC)');
  startupNotes.push(`imaging: import roots ${config.imaging.importRoots.join(', ')}`);
  if (config.fhirServers.length === 0) startupNotes.push('FHIR: no server configured: changes queue in the outbox');
  for (const server of config.fhirServers) startupNotes.push(describeSyncServer(server));
  startSync();
  if (config.fhirServers.length > 0 && !syncEngine) startupNotes.push('FHIR sync: waits for the store to be opened');
  startupNotes.push(
    config.mqttUrl
      ? `vitals: subscribing to ${redactBrokerUrl(config.mqttUrl)}`
      : `vitals: embedded MQTT broker on ${config.mqttEmbeddedTls ? 'mqtts' : 'mqtt'}://${config.mqttEmbeddedHost}:${config.mqttEmbeddedPort || '(free port)'} once the store is open; monitors connect with the credentials an administrator creates (Admin → Monitors)`,
  );

  return {
    host,
    startupNotes,
    get vitalsBrokerUrl() {
      return ward.brokerUrl;
    },
    sendDueReminders() {
      if (!store.ready) return Promise.resolve({ sent: 0, failed: 0, retried: 0 });
      sendReminders();
      return reminders.runOnce();
    },
    async dispatch(connection, channel, payload, rawBytes): Promise<Envelope<unknown>> {
      const running = inFlight.get(connection.id) ?? 0;
      if (running >= maxInFlight) {
        const message = `Too many calls in flight from this window (at most ${maxInFlight}): wait for answers before sending more.`;
        refusals.record(connection.source, { actor: null, connection: connection.id, action: 'ipc.too-many-in-flight', outcome: 'denied', outcomeDetail: `rate-limited: ${message}` });
        return { ok: false, error: { code: 'rate-limited', message } };
      }
      inFlight.set(connection.id, running + 1);
      try {
        const envelope = await dispatcher.dispatch(connection, channel, payload, rawBytes);
        if (envelope.ok && channel !== 'system.connectivity' && channel !== 'sync.status') afterQueued();
        return envelope;
      } finally {
        const left = (inFlight.get(connection.id) ?? 1) - 1;
        if (left > 0) inFlight.set(connection.id, left);
        else inFlight.delete(connection.id);
      }
    },
    hostRefusal(refusal: HostRefusal) {
      // One entry per source, kind of refusal and minute: a 401 flood does not hide a bad frame, nor the reverse.
      doorRefusals.record(`${refusal.source} ${refusal.action}`, { actor: null, connection: refusal.connection, action: refusal.action, outcome: 'denied', outcomeDetail: `${refusal.code}: ${refusal.message}` });
    },
    connectionOpened(connection) {
      connections.set(connection.id, connection);
      liveConnections.add(connection.id);
    },
    connectionClosed(connectionId) {
      connections.delete(connectionId);
      liveConnections.delete(connectionId);
      sessions.connectionClosed(connectionId);
    },
    async close() {
      clearInterval(sessionTimer);
      clearInterval(reminderTimer);
      await reminders.runOnce().catch(() => undefined);
      smtp?.close();
      clearInterval(refusalTimer);
      flushRefusals(true);
      await imaging.idle();
      await aiReads.idle();
      await wardStarting;
      await ward.stop();
      // A pass in progress finishes and records its outcome before the store closes.
      await syncEngine?.close();
      syncEngine = null;
      store.close();
    },
  };
}
