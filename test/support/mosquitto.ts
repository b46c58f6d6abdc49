/**
 * A real mosquitto for integration tests: its own temp dir and config, a free loopback port, and the
 * faults the tests need (kill, restart on the same port with the same persistence, freeze/thaw).
 * Also: a throw-away CA with server and client certificates (openssl) for the TLS test.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { canConnect, freePort } from './net.js';

export const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';
export const MOSQUITTO_PASSWD_BIN = process.env.MOSQUITTO_PASSWD_BIN ?? '/usr/bin/mosquitto_passwd';

/**
 * The tests that need mosquitto fail without it, saying why, rather than passing by skipping: the
 * embedded aedes legs need nothing and always run.
 */
export function requireMosquitto(): void {
  if (!existsSync(MOSQUITTO_BIN)) throw new Error(`mosquitto is needed at ${MOSQUITTO_BIN} for this test (Debian package mosquitto; .ci/run installs it; MOSQUITTO_BIN names another path)`);
}

export interface TlsMaterial {
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
}

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all EC P-256, valid one day. */
export function makeTlsMaterial(dir: string): TlsMaterial {
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ecKey = (name: string) => openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file(name));
  ecKey('ca.key');
  openssl('req', '-x509', '-new', '-key', file('ca.key'), '-out', file('ca.crt'), '-days', '1', '-subj', '/CN=NeuroWard test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const leaf = (name: string, cn: string, ext: string) => {
    ecKey(`${name}.key`);
    openssl('req', '-new', '-key', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/CN=${cn}`);
    writeFileSync(file(`${name}.ext`), ext);
    openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial',
      '-out', file(`${name}.crt`), '-days', '1', '-extfile', file(`${name}.ext`));
  };
  leaf('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'nw-vitals-test', 'extendedKeyUsage=clientAuth\n');
  return {
    caFile: file('ca.crt'),
    serverCertFile: file('server.crt'),
    serverKeyFile: file('server.key'),
    clientCertFile: file('client.crt'),
    clientKeyFile: file('client.key'),
  };
}

export interface MosquittoOptions {
  /** Keep sessions and queued messages across restarts (saved on every change). */
  persistence?: boolean;
  /** user → password; anonymous clients are then refused. */
  users?: Record<string, string>;
  /** TLS listener (mutual TLS when requireCertificate). */
  tls?: TlsMaterial & { requireCertificate?: boolean };
}

export class Mosquitto {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private stderr = '';

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly tls: boolean,
  ) {}

  static async start(options: MosquittoOptions = {}): Promise<Mosquitto> {
    requireMosquitto();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'nw-mosquitto-'));
    const port = await freePort();
    const lines = [
      // Running as root, mosquitto would switch to the `mosquitto` user and lose access to this dir.
      `user ${os.userInfo().username}`,
      `listener ${port} 127.0.0.1`,
      `log_dest file ${path.join(dir, 'mosquitto.log')}`,
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      'connection_messages true',
      'max_queued_messages 100000',
      `persistence ${options.persistence ? 'true' : 'false'}`,
    ];
    if (options.persistence) lines.push(`persistence_location ${dir}/`, 'persistence_file mosquitto.db', 'autosave_on_changes true', 'autosave_interval 1');
    if (options.users) {
      const passwd = path.join(dir, 'passwd');
      for (const [i, [user, password]] of Object.entries(options.users).entries()) {
        execFileSync(MOSQUITTO_PASSWD_BIN, [...(i === 0 ? ['-c'] : []), '-b', passwd, user, password], { stdio: 'pipe' });
      }
      lines.push(`password_file ${passwd}`, 'allow_anonymous false');
    } else {
      lines.push('allow_anonymous true');
    }
    if (options.tls) {
      lines.push(`cafile ${options.tls.caFile}`, `certfile ${options.tls.serverCertFile}`, `keyfile ${options.tls.serverKeyFile}`, 'tls_version tlsv1.2');
      if (options.tls.requireCertificate) lines.push('require_certificate true');
    }
    writeFileSync(path.join(dir, 'mosquitto.conf'), `${lines.join('\n')}\n`);
    const broker = new Mosquitto(dir, port, Boolean(options.tls));
    await broker.launch();
    return broker;
  }

  get url(): string {
    return `${this.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  log(): string {
    const file = path.join(this.dir, 'mosquitto.log');
    return `${existsSync(file) ? readFileSync(file, 'utf8') : ''}${this.stderr}`;
  }

  private async launch(): Promise<void> {
    if (this.child) throw new Error('mosquitto already running');
    const child = spawn(MOSQUITTO_BIN, ['-c', path.join(this.dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr?.on('data', (chunk: Buffer) => (this.stderr += chunk.toString('utf8')));
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        if (this.child === child) this.child = null;
        resolve();
      }),
    );
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (this.child !== child) throw new Error(`mosquitto exited at start:\n${this.log()}`);
      if (await canConnect(this.port)) return;
      if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${this.port}:\n${this.log()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** SIGKILL (a crash: nothing flushed beyond what autosave wrote) or SIGTERM (clean stop); waits for the exit. */
  async kill(signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill(signal);
    await this.exited;
  }

  /** Starts again with the same config, port and persistence file. */
  async restart(): Promise<void> {
    await this.launch();
  }

  /** SIGSTOP: the sockets stay open but nothing answers: a silent link loss. */
  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  thaw(): void {
    this.child?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    this.thaw();
    await this.kill('SIGTERM');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Polls until `check` is true; fails with `what` and the last state after `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs: number, what: string, state: () => unknown = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} ${JSON.stringify(state())}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface PublisherOptions {
  username?: string;
  password?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  keepalive?: number;
}

/**
 * A bedside monitor: its own persistent session (clean: false) and QoS 1, so MQTT.js keeps every
 * unacknowledged reading and resends it after a reconnect. `acked` holds the seqs the broker took.
 */
export class TestPublisher {
  readonly issued = new Set<number>();
  readonly acked = new Set<number>();
  errors = 0;
  private nextSeq: number;
  private timer: NodeJS.Timeout | null = null;

  private constructor(
    readonly client: MqttClient,
    readonly deviceId: string,
    firstSeq: number,
  ) {
    this.nextSeq = firstSeq;
  }

  static async connect(url: string, deviceId: string, options: PublisherOptions & { firstSeq?: number } = {}): Promise<TestPublisher> {
    const client = await mqtt.connectAsync(url, {
      clientId: `pub-${deviceId}`,
      clean: false,
      protocolVersion: 4,
      reconnectPeriod: 200,
      connectTimeout: 2000,
      keepalive: options.keepalive ?? 2,
      reconnectOnConnackError: true,
      ...(options.username ? { username: options.username, password: options.password } : {}),
      ...(options.ca ? { ca: options.ca, cert: options.cert, key: options.key } : {}),
    });
    client.on('error', () => undefined);
    return new TestPublisher(client, deviceId, options.firstSeq ?? 1);
  }

  /** Publishes raw bytes/text to any topic, QoS 1; resolves on PUBACK. */
  async raw(topic: string, payload: string | Buffer): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos: 1 });
  }

  /** Publishes the reading with `seq` (QoS 1), tracking issued/acked. */
  publish(topic: string, reading: Record<string, unknown>): Promise<void> {
    const seq = reading.seq as number;
    this.issued.add(seq);
    return new Promise((resolve) => {
      this.client.publish(topic, JSON.stringify(reading), { qos: 1 }, (error) => {
        if (error) this.errors += 1;
        else this.acked.add(seq);
        resolve();
      });
    });
  }

  /** Publishes one reading every `intervalMs`, seq increasing by one, until `stopStream`. */
  startStream(topic: string, intervalMs: number, make: (deviceId: string, seq: number) => Record<string, unknown>): void {
    this.timer = setInterval(() => {
      const seq = this.nextSeq++;
      void this.publish(topic, make(this.deviceId, seq));
    }, intervalMs);
  }

  stopStream(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Waits until the broker has acknowledged everything issued. */
  async settled(timeoutMs: number): Promise<void> {
    await waitFor(() => this.acked.size + this.errors >= this.issued.size, timeoutMs, `${this.deviceId}: PUBACK for all`, () => ({ issued: this.issued.size, acked: this.acked.size }));
  }

  async end(): Promise<void> {
    this.stopStream();
    await this.client.endAsync(true);
  }
}
