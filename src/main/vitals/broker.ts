/**
 * The embedded MQTT broker (aedes), for a small clinic without one of its own: when no broker URL is
 * configured (`mqtt.url` / NEUROWARD_MQTT_URL), the workstation starts this one and the bedside
 * monitors publish straight to it. It listens on 127.0.0.1 by default; a site that wants monitors on
 * the ward network to reach it sets `host` (e.g. '0.0.0.0') and, then, credentials.
 *
 * Sessions and queued messages live in memory (aedes' default persistence): they survive a monitor's
 * or the ingest's reconnect, not a restart of the workstation. A site that needs queuing across
 * workstation restarts runs a real broker (e.g. mosquitto with persistence) and configures its URL.
 */
import net from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { Aedes, type AuthenticateError } from 'aedes';

export interface EmbeddedBrokerOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to bind; default 127.0.0.1 (this machine only). */
  host?: string;
  /** When set, clients must present exactly these credentials. */
  credentials?: { username: string; password: string } | null;
  /** Broker id (appears in $SYS topics). */
  id?: string;
  log?: (message: string) => void;
}

/** MQTT CONNACK return code 4 (3.1.1): bad user name or password. */
const BAD_USERNAME_OR_PASSWORD = 4;

function sameSecret(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export class EmbeddedBroker {
  private readonly sockets = new Set<net.Socket>();
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly aedes: Aedes,
    private readonly server: net.Server,
    readonly host: string,
    readonly port: number,
  ) {
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  /** Starts aedes and its TCP listener; resolves once it accepts connections. */
  static async start(options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
    const log = options.log ?? (() => undefined);
    const credentials = options.credentials ?? null;
    const aedes = await Aedes.createBroker({
      id: options.id ?? 'neuroward-embedded',
      ...(credentials
        ? {
            authenticate: (_client, username, password, done) => {
              const ok =
                username !== undefined &&
                password !== undefined &&
                sameSecret(Buffer.from(username, 'utf8'), Buffer.from(credentials.username, 'utf8')) &&
                sameSecret(Buffer.from(password), Buffer.from(credentials.password, 'utf8'));
              if (ok) return done(null, true);
              const error = Object.assign(new Error('bad user name or password'), { returnCode: BAD_USERNAME_OR_PASSWORD }) as AuthenticateError;
              return done(error, false);
            },
          }
        : {}),
    });
    aedes.on('clientError', (client, error) => log(`embedded broker: client ${client.id}: ${error.message}`));
    aedes.on('connectionError', (_client, error) => log(`embedded broker: connection error: ${error.message}`));

    const server = net.createServer((socket) => aedes.handle(socket));
    const host = options.host ?? '127.0.0.1';
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
    const broker = new EmbeddedBroker(aedes, server, host, address.port);
    log(`embedded broker listening on ${broker.url}`);
    return broker;
  }

  /** The URL clients (and the ingest) connect to. */
  get url(): string {
    const host = this.host === '0.0.0.0' || this.host === '::' ? '127.0.0.1' : this.host;
    return `mqtt://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  get connectedClients(): number {
    return this.aedes.connectedClients;
  }

  get closed(): boolean {
    return this.closing !== null;
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
