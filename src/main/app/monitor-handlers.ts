/**
 * Handlers of the `monitors.*` channels: bedside monitor credentials for the embedded MQTT broker
 * (administrator, `users:manage`). The dispatcher audits each call with the channel's action
 * (monitor.list / monitor.create / monitor.revoke); the handlers add what was done, never a password.
 */
import { NwError } from '../../shared/errors.js';
import type { MonitorCredential } from '../../shared/ipc.js';
import { requireSession, type HandlerTable } from './dispatcher.js';
import type { StoreService } from '../store/store-service.js';
import type { WardService } from '../vitals/ward-service.js';
import { MonitorCredentialsRepo, type StoredMonitorCredential } from '../vitals/monitor-credentials.js';

export interface MonitorHandlerDeps {
  store: StoreService;
  ward: WardService;
  now: () => Date;
}

export function createMonitorHandlers(deps: MonitorHandlerDeps): Pick<HandlerTable, 'monitors.list' | 'monitors.create' | 'monitors.revoke'> {
  const repo = () => new MonitorCredentialsRepo(deps.store.db, deps.now);
  const view = (credential: StoredMonitorCredential, connected: ReadonlySet<string>): MonitorCredential => ({ ...credential, connected: connected.has(credential.id) });

  return {
    'monitors.list': (_req, ctx) => {
      const connected = deps.ward.connectedMonitors();
      const monitors = repo()
        .list()
        .map((c) => view(c, connected));
      ctx.audit.detail = { credentials: monitors.length, active: monitors.filter((m) => !m.revokedAt).length };
      return { monitors, embedded: deps.ward.embeddedBroker };
    },

    'monitors.create': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'MonitorCredential';
      ctx.audit.detail = { ward: req.ward, beds: req.beds, label: req.label ?? null };
      if (!deps.ward.embeddedBroker) {
        throw new NwError('conflict', `This workstation subscribes to the ward's own broker (${deps.ward.brokerUrl ?? 'mqtt.url'}): monitors' credentials are made on that broker, not here.`);
      }
      const { credentials, secrets } = repo().create({ ward: req.ward, beds: req.beds, label: req.label || null, createdBy: session.username });
      ctx.audit.entityId = credentials.length === 1 ? credentials[0]!.id : null;
      ctx.audit.detail = { ward: req.ward, beds: req.beds, label: req.label ?? null, credentials: credentials.map((c) => ({ id: c.id, username: c.username, topic: c.topic })) };
      return { monitors: credentials.map((c) => view(c, new Set())), credentials: { v: 1 as const, broker: deps.ward.brokerUrl, monitors: secrets } };
    },

    'monitors.revoke': (req, ctx) => {
      const session = requireSession(ctx);
      ctx.audit.entityType = 'MonitorCredential';
      ctx.audit.entityId = req.id;
      const revoked = repo().revoke(req.id, session.username);
      // Closed at once; a reconnect finds the credential revoked. Should the transaction not commit, the monitor just reconnects.
      const closed = deps.ward.monitorRevoked(revoked.id);
      ctx.audit.detail = { username: revoked.username, topic: revoked.topic, connectionsClosed: closed };
      return view(revoked, new Set());
    },
  };
}
