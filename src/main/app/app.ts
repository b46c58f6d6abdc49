/**
 * Composition root: reads nothing global, builds every service from config, wires them, and hands
 * the hosts a NeurowardApp. Nothing else in the main process constructs services.
 */
import { readFileSync } from 'node:fs';
import type { AppConfig } from './config.js';
import type { Connection, NeurowardApp, SafeStorageKeyProvider } from './types.js';
import { Dispatcher } from './dispatcher.js';
import { createHandlers } from './handlers.js';
import { StoreService } from '../store/store-service.js';
import { SessionManager } from '../security/sessions.js';
import { AuditLedger } from '../security/audit-ledger.js';
import { ConnectivityMonitor } from '../fhir/connectivity.js';
import { Outbox } from '../store/outbox.js';
import { ImagingService, type ImagingEngines } from '../imaging/imaging-service.js';
import { defaultImagingEngines } from '../imaging/engines.js';
import { WardService } from '../vitals/ward-service.js';
import { roleHasPermission } from '../../shared/roles.js';

export interface CreateAppOptions {
  config: AppConfig;
  host: 'electron' | 'headless';
  safeStorage?: SafeStorageKeyProvider;
  /** Injected clock for tests of idle lock and expiry. */
  now?: () => Date;
  log?: (message: string) => void;
  /** Where lines meant for the operator go (demo passwords at setup); the console by default. */
  announce?: (line: string) => void;
  /** Readers and fit; the real ones unless a test swaps them. */
  imagingEngines?: ImagingEngines;
}

export function appVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
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

  const connectivity = new ConnectivityMonitor(config, (snapshot) => {
    const outboxPending = store.ready ? new Outbox(store.db, now).pendingCount() : 0;
    for (const connection of connections.values()) if (store.ready && sessions.forConnection(connection.id)) connection.send('connectivity.changed', { ...snapshot, outboxPending });
  });
  connectivity.start();

  const imaging = new ImagingService({
    importRoots: config.imaging.importRoots,
    store,
    engines: options.imagingEngines ?? defaultImagingEngines(),
    ledger: () => new AuditLedger(store.db, now),
    now,
    notify: (connectionId, job) => connections.get(connectionId)?.send('imaging.job', job),
    log,
  });

  const ward = new WardService({
    mqttUrl: config.mqttUrl,
    embeddedPort: config.mqttEmbeddedPort,
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
      for (const connection of connections.values()) {
        const session = sessions.forConnection(connection.id);
        if (!session || !roleHasPermission(session.role, 'vitals:read')) continue;
        // A locked screen must still sound alarms, but shows no patient's vitals: alarms and link only.
        connection.send('ward.update', session.locked ? { ...update, beds: [] } : update);
      }
    },
  });
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
    ward,
    onStoreReady: startWard,
    now,
    announce: (lines) => {
      for (const line of lines) (options.announce ?? console.log)(line);
    },
  });
  const dispatcher = new Dispatcher({ store, sessions, ledger: () => new AuditLedger(store.db, now), handlers, log });

  startupNotes.push(`data directory: ${config.dataDir}${config.configFile ? ` (config ${config.configFile})` : ' (built-in defaults)'}`);
  startupNotes.push(
    {
      uninitialized: 'store: not set up yet: open the app to create the administrator',
      locked: 'store: locked: open the app and enter the store passphrase',
      ready: 'store: open',
      error: `store: cannot open: ${store.error?.message ?? 'unknown error'}`,
    }[store.state],
  );
  if (config.demo) startupNotes.push('demo: synthetic demo data will be loaded at first-run setup (records marked SYNTHETIC)');
  if (config.fhirServers.length === 0) startupNotes.push('FHIR: no server configured: changes queue in the outbox');
  startupNotes.push(config.mqttUrl ? `vitals: subscribing to ${config.mqttUrl}` : `vitals: embedded MQTT broker on mqtt://127.0.0.1:${config.mqttEmbeddedPort || '(free port)'} once the store is open`);

  return {
    host,
    startupNotes,
    get vitalsBrokerUrl() {
      return ward.brokerUrl;
    },
    dispatch: (connection, channel, payload, rawBytes) => dispatcher.dispatch(connection, channel, payload, rawBytes),
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
      await imaging.idle();
      await wardStarting;
      await ward.stop();
      connectivity.stop();
      store.close();
    },
  };
}
