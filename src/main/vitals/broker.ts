/**
 * The embedded MQTT broker (aedes), for a small clinic without one of its own: when no broker URL is
 * configured (`mqtt.url` / NEUROWARD_MQTT_URL), the workstation starts this one and the bedside
 * monitors publish straight to it. It listens on 127.0.0.1 by default; a site that wants monitors on
 * the ward network to reach it sets `mqtt.embeddedHost` and, with it, TLS (`mqtt.embeddedTls`).
 *
 * Nobody connects anonymously. Two kinds of account exist, and nothing else may connect:
 *  - the workstation's own (`nw-workstation`), with a password made at random each time the broker
 *    starts and known only to this process's ingest. It alone may SUBSCRIBE, and only to the vitals
 *    topics (`ward/+/bed/+/vitals` or `ward/#`); it publishes nothing. Its client ids start with
 *    `nw-vitals-` (ingest.ts workstationClientId), which no monitor may use, so no monitor can take
 *    over the workstation's persistent session and its queue;
 *  - bedside monitors, each with a credential an administrator created (monitor-credentials.ts, in the
 *    encrypted store) bound to one bed topic `ward/<ward>/bed/<bed>/vitals`: a monitor may PUBLISH to
 *    that topic only (its will included) and subscribe to nothing ($SYS included). A publish anywhere
 *    else closes its connection (MQTT 3.1.1 has no way to refuse one publish); the message goes nowhere.
 * CONNACK codes: 5 (not authorized) without a user name, 4 (bad user name or password) otherwise,
 * 2 (identifier rejected) for a client id another account holds. MQTT 5 CONNECTs are refused by aedes
 * (code 1). A revoked credential is refused from its next CONNECT, and `disconnectMonitor` closes the
 * connections it has.
 *
 * Sessions and queued messages live in memory (aedes' default persistence): they survive a monitor's
 * or the ingest's reconnect, not a restart of the workstation. A site that needs queuing across
 * workstation restarts runs a real broker (e.g. mosquitto with persistence) and configures its URL.
 */
import net from 'node:net';
import tls from 'node:tls';
import { X509Certificate, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Aedes, type AuthenticateError, type Client, type Subscription } from 'aedes';
import type { AuthenticatedMonitor } from './monitor-credentials.js';
import type { VitalsTlsOptions } from './ingest.js';
import { VITALS_SUBSCRIPTION } from './payload.js';

/** The workstation's own account on the embedded broker. */
export const WORKSTATION_USERNAME = 'nw-workstation';
/** Client ids reserved for the workstation's account (ingest.ts workstationClientId makes them). */
export const WORKSTATION_CLIENT_ID_PREFIX = 'nw-vitals-';
/** What the workstation's account may subscribe to. */
const WORKSTATION_SUBSCRIPTIONS: ReadonlySet<string> = new Set([VITALS_SUBSCRIPTION, 'ward/#']);

/** Who checks a monitor's user name and password: the credentials in the store (MonitorCredentialsRepo). */
export interface MonitorDirectory {
  /** The active credential `username` when `password` is right, else null. */
  verify(username: string, password: Buffer): AuthenticatedMonitor | null;
  /** After the CONNACK went out to that monitor. */
  connected?(monitor: AuthenticatedMonitor): void;
}

export interface EmbeddedBrokerTls {
  /** PEM certificate (chain) and private key of the broker. */
  cert: string | Buffer;
  key: string | Buffer;
}

export interface EmbeddedBrokerOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to bind; default 127.0.0.1 (this machine only). */
  host?: string;
  /** Monitors' credentials; without it only the workstation's own account can connect. */
  monitors?: MonitorDirectory | null;
  /** When set, the broker speaks MQTT over TLS only (mqtts://) on its port. */
  tls?: EmbeddedBrokerTls | null;
  /** Broker id (appears in $SYS topics). */
  id?: string;
  log?: (message: string) => void;
}

type Identity = { kind: 'workstation' } | ({ kind: 'monitor' } & AuthenticatedMonitor);

/** MQTT 3.1.1 CONNACK return codes (§3.2.2.3). */
const IDENTIFIER_REJECTED = 2;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

/** Marks the errors this file hands aedes after logging them itself (aedes repeats them as clientError). */
const LOGGED = Symbol('logged by broker.ts');

function refusal(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode, [LOGGED]: true }) as AuthenticateError;
}

function sameSecret(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A client-chosen string, safe for a log line. */
const quoted = (value: string | undefined): string => JSON.stringify((value ?? '').slice(0, 80));

function peer(client: Client): string {
  const conn = client.conn as Partial<net.Socket> | undefined;
  return conn?.remoteAddress ? `${conn.remoteAddress}:${conn.remotePort ?? '?'}` : 'unknown peer';
}

export class EmbeddedBroker {
  private readonly sockets = new Set<net.Socket>();
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly aedes: Aedes,
    private readonly server: net.Server,
    readonly host: string,
    readonly port: number,
    readonly tls: boolean,
    /** The workstation's own account: for this process's ingest only; never logged, never sent anywhere. */
    readonly workstationCredentials: { readonly username: string; readonly password: string },
    private readonly sessions: BrokerSessions,
  ) {
    server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  /** Starts aedes and its TCP (or TLS) listener; resolves once it accepts connections. */
  static async start(options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
    const log = options.log ?? (() => undefined);
    const workstation = { username: WORKSTATION_USERNAME, password: randomBytes(32).toString('base64url') };
    const sessions = new BrokerSessions(workstation, options.monitors ?? null, log);
    const aedes = await Aedes.createBroker({
      id: options.id ?? 'neuroward-embedded',
      authenticate: (client, username, password, done) => sessions.authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => sessions.authorizePublish(client, packet.topic, done),
      authorizeSubscribe: (client, subscription, done) => sessions.authorizeSubscribe(client, subscription, done),
      authorizeForward: (client, packet) => (sessions.mayReceive(client) ? packet : null),
    });
    sessions.attach(aedes);
    aedes.on('clientError', (client, error) => {
      if (!(LOGGED in error)) log(`embedded broker: client ${quoted(client.id)} (${peer(client)}): ${error.message}`);
    });
    aedes.on('connectionError', (client, error) => log(`embedded broker: connection error (${peer(client)}): ${error.message}`));

    const host = options.host ?? '127.0.0.1';
    const server = options.tls
      ? tls.createServer({ cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' }, (socket) => aedes.handle(socket))
      : net.createServer((socket) => aedes.handle(socket));
    if (options.tls) server.on('tlsClientError', (error: Error, socket: tls.TLSSocket) => log(`embedded broker: TLS handshake with ${socket.remoteAddress ?? '?'} failed: ${error.message}`));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port ?? 0, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      throw error;
    }
    server.on('error', (error) => log(`embedded broker: ${error.message}`));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('embedded broker: no TCP address');
    const broker = new EmbeddedBroker(aedes, server, host, address.port, Boolean(options.tls), workstation, sessions);
    log(`embedded broker listening on ${broker.url} (${options.tls ? 'TLS' : 'plain TCP'}; monitors need a credential, anonymous connections are refused)`);
    return broker;
  }

  /** The URL clients (and the ingest) connect to. Never carries credentials. */
  get url(): string {
    const host = this.host === '0.0.0.0' || this.host === '::' ? '127.0.0.1' : this.host;
    return `${this.tls ? 'mqtts' : 'mqtt'}://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  get connectedClients(): number {
    return this.aedes.connectedClients;
  }

  get closed(): boolean {
    return this.closing !== null;
  }

  /** Credential ids of the monitors connected now. */
  connectedMonitors(): Set<string> {
    return this.sessions.connectedMonitors();
  }

  /**
   * A credential was revoked: refuse it from now on (also a CONNECT already past its password check)
   * and close its connections. Returns how many were closed.
   */
  disconnectMonitor(credentialId: string): number {
    return this.sessions.revoke(credentialId);
  }

  /**
   * Clean shutdown: stop accepting, close every client (they see the connection end and reconnect
   * elsewhere or later), then the broker itself. Safe to call more than once.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
      for (const socket of this.sockets) socket.destroy();
      await serverClosed;
    })();
    return this.closing;
  }
}

/** Authentication and the ACL: who a connection is, and what it may do. */
class BrokerSessions {
  private readonly identities = new WeakMap<Client, Identity>();
  /** Registered clients by client id (aedes' own map is not typed). */
  private readonly byClientId = new Map<string, Client>();
  /** Credentials revoked while this broker runs: guards a CONNECT that passed its check just before. */
  private readonly revoked = new Set<string>();
  /** One log line per connection refused a publish or subscription, not one per packet. */
  private readonly warned = new WeakSet<Client>();

  constructor(
    private readonly workstation: { username: string; password: string },
    private readonly monitors: MonitorDirectory | null,
    private readonly log: (message: string) => void,
  ) {}

  attach(aedes: Aedes): void {
    aedes.on('client', (client) => {
      this.byClientId.set(client.id, client);
      const identity = this.identities.get(client);
      if (identity?.kind === 'monitor' && this.revoked.has(identity.id)) client.close();
    });
    aedes.on('clientReady', (client) => {
      const identity = this.identities.get(client);
      if (identity?.kind !== 'monitor') return;
      try {
        this.monitors?.connected?.(identity);
      } catch (error) {
        this.log(`embedded broker: could not note monitor ${identity.username} connected: ${(error as Error).message}`);
      }
    });
    aedes.on('clientDisconnect', (client) => {
      if (this.byClientId.get(client.id) === client) this.byClientId.delete(client.id);
    });
  }

  authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: (error: AuthenticateError | null, success: boolean | null) => void): void {
    const refuse = (returnCode: number, why: string) => {
      this.log(`embedded broker: refused CONNECT from ${peer(client)} (client id ${quoted(client.id)}, user ${quoted(username)}): ${why}`);
      done(refusal(returnCode, why), false);
    };
    if (username === undefined || username === '') return refuse(NOT_AUTHORIZED, 'anonymous connections are refused: a monitor needs its credential');
    const secret = password ?? Buffer.alloc(0);
    let identity: Identity | null = null;
    if (username === this.workstation.username) {
      if (sameSecret(secret, Buffer.from(this.workstation.password, 'utf8'))) identity = { kind: 'workstation' };
    } else {
      let monitor: AuthenticatedMonitor | null = null;
      try {
        monitor = this.monitors?.verify(username, secret) ?? null;
      } catch (error) {
        this.log(`embedded broker: could not check a monitor credential: ${(error as Error).message}`);
      }
      if (monitor && !this.revoked.has(monitor.id)) identity = { kind: 'monitor', ...monitor };
    }
    if (!identity) return refuse(BAD_USERNAME_OR_PASSWORD, 'bad user name or password');
    const reserved = client.id.startsWith(WORKSTATION_CLIENT_ID_PREFIX);
    if ((identity.kind === 'workstation') !== reserved) {
      return refuse(IDENTIFIER_REJECTED, identity.kind === 'workstation' ? `the workstation's client id starts with ${WORKSTATION_CLIENT_ID_PREFIX}` : `client ids starting with ${WORKSTATION_CLIENT_ID_PREFIX} are the workstation's`);
    }
    // The same client id as another account's live session would close that session and take it over.
    const holder = this.byClientId.get(client.id);
    const holderIdentity = holder && !holder.closed ? this.identities.get(holder) : undefined;
    if (holderIdentity && this.accountOf(holderIdentity) !== this.accountOf(identity)) return refuse(IDENTIFIER_REJECTED, 'the client id is in use by another account');
    this.identities.set(client, identity);
    done(null, true);
  }

  authorizePublish(client: Client | null, topic: string, done: (error?: Error | null) => void): void {
    // client null: a will left by a client no longer connected (not kept by this broker's memory persistence).
    const identity = client ? this.identities.get(client) : undefined;
    if (identity?.kind === 'monitor' && !this.revoked.has(identity.id) && topic === identity.topic) return done(null);
    const who = identity ? (identity.kind === 'monitor' ? `monitor ${identity.username} (may publish to ${identity.topic} only)` : 'the workstation (publishes nothing)') : 'an unknown client';
    if (client && !this.warned.has(client)) {
      this.warned.add(client);
      this.log(`embedded broker: refused PUBLISH to ${quoted(topic)} from ${who}; connection closed`);
    }
    done(Object.assign(new Error(`not allowed to publish to ${topic.slice(0, 80)}`), { [LOGGED]: true }));
  }

  authorizeSubscribe(client: Client, subscription: Subscription, done: (error: Error | null, subscription?: Subscription | null) => void): void {
    const identity = this.identities.get(client);
    if (identity?.kind === 'workstation' && WORKSTATION_SUBSCRIPTIONS.has(subscription.topic)) return done(null, subscription);
    if (!this.warned.has(client)) {
      this.warned.add(client);
      this.log(`embedded broker: refused SUBSCRIBE to ${quoted(subscription.topic)} from ${identity?.kind === 'monitor' ? `monitor ${identity.username}` : identity ? 'the workstation' : 'an unknown client'}`);
    }
    // null: SUBACK 0x80 (failure) for this topic; the connection stays.
    done(null, null);
  }

  /** Only the workstation receives messages (defence in depth: nobody else can subscribe anyway). */
  mayReceive(client: Client): boolean {
    return this.identities.get(client)?.kind === 'workstation';
  }

  connectedMonitors(): Set<string> {
    const ids = new Set<string>();
    for (const client of this.byClientId.values()) {
      const identity = this.identities.get(client);
      if (identity?.kind === 'monitor' && !client.closed) ids.add(identity.id);
    }
    return ids;
  }

  revoke(credentialId: string): number {
    this.revoked.add(credentialId);
    let closed = 0;
    for (const client of [...this.byClientId.values()]) {
      const identity = this.identities.get(client);
      if (identity?.kind === 'monitor' && identity.id === credentialId && !client.closed) {
        client.close();
        closed += 1;
      }
    }
    return closed;
  }

  private accountOf(identity: Identity): string {
    return identity.kind === 'workstation' ? '\0workstation' : identity.id;
  }
}

/** The embedded broker's TLS files, as configured (`mqtt.embeddedTls`). */
export interface EmbeddedTlsFiles {
  certFile: string;
  keyFile: string;
  /** The CA that signed certFile; absent for a self-signed certificate. */
  caFile?: string | null;
}

export function readEmbeddedTls(files: EmbeddedTlsFiles): EmbeddedBrokerTls {
  return { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) };
}

/**
 * How this workstation's own ingest verifies the embedded broker it started: against the configured
 * CA (else the self-signed certificate itself), and by a name the certificate holds, so the check is a
 * real one even when the certificate was made for the ward network's address rather than 127.0.0.1.
 */
export function ingestTlsFor(files: EmbeddedTlsFiles, host: string): VitalsTlsOptions {
  const cert = new X509Certificate(readFileSync(files.certFile));
  const options: VitalsTlsOptions = { caFile: files.caFile ?? files.certFile };
  if (cert.checkIP(host) !== undefined || cert.checkHost(host) !== undefined) return options;
  const names = (cert.subjectAltName ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4));
  const name = names.find((n) => !n.includes('*')) ?? names[0]?.replace('*', 'nw-workstation');
  return name ? { ...options, servername: name } : options;
}

/**
 * The broker the ingest should use: the configured URL, or a freshly started embedded broker when
 * none is configured. The caller closes `embedded` (if any) at shutdown, after stopping the ingest.
 */
export async function resolveVitalsBroker(
  mqttUrl: string | null,
  options: EmbeddedBrokerOptions = {},
): Promise<{ url: string; embedded: EmbeddedBroker | null }> {
  if (mqttUrl) return { url: mqttUrl, embedded: null };
  const embedded = await EmbeddedBroker.start(options);
  return { url: embedded.url, embedded };
}

/** A broker URL without its user name and password, for logs and screens. */
export function redactBrokerUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    // Not a URL: say nothing of what it holds beyond its scheme.
    return url.includes('@') ? `${url.split(':')[0] ?? 'mqtt'}://(redacted)` : url;
  }
}

/** Splits `user:pass@` off a broker URL: the URL to connect and log, and the credentials to pass apart. */
export function splitBrokerUrl(url: string): { url: string; username: string | null; password: string | null } {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return { url, username: null, password: null };
    return { url: redactBrokerUrl(url), username: parsed.username ? decodeURIComponent(parsed.username) : null, password: parsed.password ? decodeURIComponent(parsed.password) : null };
  } catch {
    return { url, username: null, password: null };
  }
}
