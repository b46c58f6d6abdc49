/**
 * The embedded MQTT broker's authentication and ACL (security finding 5 of issue 7), inside the real
 * app: anonymous CONNECTs are refused; a monitor connects with the credential an administrator made
 * for its bed and may publish to that bed's topic only (nothing else, its will included, and no
 * subscriptions); only the workstation's own account subscribes; a revoked credential is refused at
 * once and its connection closed; TLS when configured. And (finding 8) a broker URL with
 * `user:pass@` is refused by the configuration and never appears in logs, startup notes or on the
 * ward board.
 */
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/main/app/config.js';
import { createApp } from '../../src/main/app/app.js';
import type { NeurowardApp } from '../../src/main/app/types.js';
import { openEncryptedDatabase } from '../../src/main/store/database.js';
import { derivePassphraseKey, readKeyInfo } from '../../src/main/store/keys.js';
import { ADMIN, STORE_PASSPHRASE, connect, setUpWorkstation, tempDir, testConfig, type TestConnection, type Workstation } from '../support/harness.js';
import { connectMonitor, provisionMonitors, type MonitorSecret } from '../support/monitors.js';
import { Mosquitto, makeTlsMaterial } from '../support/mosquitto.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let seq = 1;
const reading = (deviceId: string, vitals: Record<string, unknown> = {}) =>
  JSON.stringify({ v: 1, deviceId, seq: seq++, ts: new Date().toISOString(), hr: 72, spo2: 98, rr: 14, tempC: 36.8, sbp: 128, dbp: 76, acvpu: 'A', o2: false, ...vitals });
/** NEWS2 well above 7: a real high alarm if it were accepted. */
const SEPTIC = { hr: 138, spo2: 86, rr: 30, tempC: 39.6, sbp: 84, dbp: 50, acvpu: 'V', o2: true };

/** The refusal a client gets (a CONNACK code, a TLS error, or the connection just closing), or null when it connected. */
function refusal(url: string, options: mqtt.IClientOptions): Promise<{ code: unknown; message: string } | null> {
  return new Promise((resolve) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 3000, clientId: `probe-${Math.random().toString(36).slice(2, 8)}`, ...options });
    const settle = (result: { code: unknown; message: string } | null) => {
      client.removeAllListeners();
      client.on('error', () => undefined);
      client.end(true);
      resolve(result);
    };
    client.once('connect', () => settle(null));
    client.once('error', (error) => settle({ code: (error as { code?: unknown }).code, message: error.message }));
    client.once('close', () => settle({ code: null, message: 'connection closed before a CONNACK' }));
  });
}

/** Resolves when the client's connection closes (true), or after `ms` (false). */
function closesWithin(client: MqttClient, ms: number): Promise<boolean> {
  if (!client.connected) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    client.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** The bytes of an MQTT 3.1.1 CONNECT without user name, and the broker's raw answer. */
function rawAnonymousConnect(port: number): Promise<Buffer> {
  const clientId = Buffer.from('raw-probe');
  const variable = Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c]); // "MQTT", level 4, clean session, keepalive 60
  const payload = Buffer.concat([Buffer.from([0x00, clientId.length]), clientId]);
  const packet = Buffer.concat([Buffer.from([0x10, variable.length + payload.length]), variable, payload]);
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(packet));
    let answer = Buffer.alloc(0);
    socket.on('data', (chunk) => (answer = Buffer.concat([answer, chunk])));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    setTimeout(() => socket.destroy(), 3000);
  });
}

async function auditRows(workstation: Workstation, action: string): Promise<{ outcome: string; detail_json: string | null }[]> {
  const key = await derivePassphraseKey(STORE_PASSPHRASE, readKeyInfo(`${workstation.config.dataDir}/neuroward.keyinfo.json`)!);
  const db = openEncryptedDatabase(`${workstation.config.dataDir}/neuroward.db`, key, { create: false });
  try {
    return db.prepare('SELECT outcome, detail_json FROM audit_log WHERE action = ? ORDER BY seq').all(action) as { outcome: string; detail_json: string | null }[];
  } finally {
    db.close();
  }
}

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('embedded broker: authentication and ACL', () => {
  let ws: Workstation;
  let admin: TestConnection;
  let nurse: TestConnection;
  let url: string;
  let beds: MonitorSecret[];
  const secret = (bed: string) => beds.find((b) => b.bed === bed)!;
  const clients: MqttClient[] = [];
  const monitor = async (bed: string, options: mqtt.IClientOptions = {}) => {
    const client = await connectMonitor(url, secret(bed), options);
    client.on('error', () => undefined);
    clients.push(client);
    return client;
  };
  const board = () => nurse.ok('ward.board', {});

  beforeAll(async () => {
    ws = await setUpWorkstation();
    ({ connection: admin } = await ws.signInAs('admin'));
    ({ connection: nurse } = await ws.signInAs('nurse'));
    url = await until(() => ws.app.vitalsBrokerUrl ?? undefined, 'the embedded broker');
    await until(async () => ((await board()).link.up ? true : undefined), 'the ingest link up');
    beds = (await provisionMonitors(admin, 'SEC', ['1', '2', '3', '4', '5', '6'])).monitors;
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await ws?.app.close();
  });

  it('refuses an anonymous CONNECT (CONNACK 5, not authorized) and a wrong password (CONNACK 4)', async () => {
    const port = Number(new URL(url).port);
    // On the wire: CONNACK (0x20), remaining length 2, no session, return code 5.
    expect([...(await rawAnonymousConnect(port))]).toEqual([0x20, 0x02, 0x00, 0x05]);
    expect(await refusal(url, {})).toEqual({ code: 5, message: 'Connection refused: Not authorized' });
    expect(await refusal(url, { username: secret('1').username })).toEqual({ code: 4, message: 'Connection refused: Bad username or password' });
    expect(await refusal(url, { username: secret('1').username, password: `${secret('1').password}x` })).toMatchObject({ code: 4 });
    expect(await refusal(url, { username: 'nw-workstation', password: 'guessed' })).toMatchObject({ code: 4 });
    expect(await refusal(url, { username: 'mon-SEC-1-000000', password: secret('1').password })).toMatchObject({ code: 4 });
    // MQTT 5 is not spoken here: refused too, whatever the credentials.
    expect(await refusal(url, { protocolVersion: 5 })).not.toBeNull();
    expect(await refusal(url, { protocolVersion: 5, username: secret('1').username, password: secret('1').password })).not.toBeNull();
  });

  it('lets a monitor publish to its own bed: the workstation ingests it (stored, scored, on the board)', async () => {
    const client = await monitor('1');
    await client.publishAsync(secret('1').topic, reading('sec-mon-1'), { qos: 1 });
    const bed = await until(async () => (await board()).beds.find((b) => b.key === 'SEC/1' && b.latest), 'bed SEC/1 on the board');
    expect(bed.news2).toMatchObject({ aggregate: 0, complete: true });
    expect((await nurse.ok('ward.bedHistory', { bedKey: 'SEC/1', minutes: 5 })).readings).toHaveLength(1);
    const listed = (await admin.ok('monitors.list', {})).monitors.find((m) => m.username === secret('1').username)!;
    expect(listed).toMatchObject({ ward: 'SEC', bed: '1', topic: 'ward/SEC/bed/1/vitals', connected: true, revokedAt: null });
    expect(listed.lastConnectedAt).not.toBeNull();
  });

  it("closes a monitor that publishes to another bed's topic: nothing stored, no alarm", async () => {
    const before = await board();
    for (const topic of ['ward/SEC/bed/3/vitals', 'ward/SEC/bed/1/vitals', 'ward/SEC/bed/2/vitals/extra', '$SYS/neuroward-embedded/x', 'ward/OTHER/bed/2/vitals']) {
      const client = await monitor('2');
      let acked = false;
      client.publish(topic, reading('sec-forger', SEPTIC), { qos: 1 }, (error) => (acked = !error));
      expect(await closesWithin(client, 3000), `connection closed after publishing to ${topic}`).toBe(true);
      expect(acked).toBe(false);
    }
    // Its own topic still works on a new connection.
    const honest = await monitor('2');
    await honest.publishAsync(secret('2').topic, reading('sec-mon-2'), { qos: 1 });
    await until(async () => (await board()).beds.find((b) => b.key === 'SEC/2' && b.latest), 'bed SEC/2 on the board');
    await sleep(1500);
    const after = await board();
    expect(after.beds.find((b) => b.key === 'SEC/3')).toBeUndefined();
    expect(after.beds.find((b) => b.key === 'SEC/1')!.latest!.hr).toBe(72);
    expect(after.beds.find((b) => b.key === 'OTHER/2')).toBeUndefined();
    expect(after.alarms.filter((a) => a.bedKey?.startsWith('SEC/') || a.bedKey?.startsWith('OTHER/'))).toEqual([]);
    expect(after.counters.accepted).toBe(before.counters.accepted + 1);
    expect((await nurse.ok('ward.bedHistory', { bedKey: 'SEC/3', minutes: 5 })).readings).toEqual([]);
  });

  it("does not publish a monitor's will to another bed's topic", async () => {
    const client = await monitor('4', { will: { topic: 'ward/SEC/bed/5/vitals', payload: Buffer.from(reading('sec-will', SEPTIC)), qos: 1, retain: false } });
    client.stream.destroy(); // no DISCONNECT: the broker would publish the will now
    await sleep(1500);
    const after = await board();
    expect(after.beds.find((b) => b.key === 'SEC/5')).toBeUndefined();
    expect(after.alarms.filter((a) => a.bedKey === 'SEC/5')).toEqual([]);
  });

  it('refuses every subscription of a monitor (ward/#, $SYS/#, its own topic): it receives nothing', async () => {
    const spy = await monitor('3');
    // SUBACK 0x80 (failure) for each topic; MQTT.js reports it as an error carrying the SUBACK.
    const suback = await spy.subscribeAsync(['ward/#', '$SYS/#', secret('3').topic, 'ward/+/bed/+/vitals'], { qos: 1 }).then(
      () => null,
      (error: { packet?: { granted?: number[] } }) => error.packet,
    );
    expect(suback?.granted).toEqual([128, 128, 128, 128]);
    const received: string[] = [];
    spy.on('message', (topic) => received.push(topic));
    const other = await monitor('6');
    await other.publishAsync(secret('6').topic, reading('sec-mon-6'), { qos: 1 });
    await until(async () => (await board()).beds.find((b) => b.key === 'SEC/6' && b.latest), 'bed SEC/6 on the board');
    await sleep(500);
    expect(received).toEqual([]);
    expect(spy.connected).toBe(true);
  });

  it("keeps client ids apart: no monitor may use the workstation's (nw-vitals-…) or take over another account's session", async () => {
    expect(await refusal(url, { username: secret('1').username, password: secret('1').password, clientId: 'nw-vitals-0123456789abc' })).toMatchObject({ code: 2 });
    const first = await monitor('1', { clientId: 'bedside-shared-id' });
    expect(await refusal(url, { username: secret('2').username, password: secret('2').password, clientId: 'bedside-shared-id' })).toMatchObject({ code: 2 });
    expect(first.connected).toBe(true);
    // The ingest is still subscribed and storing.
    await first.publishAsync(secret('1').topic, reading('sec-mon-1', { hr: 75 }), { qos: 1 });
    await until(async () => ((await board()).beds.find((b) => b.key === 'SEC/1')?.latest?.hr === 75 ? true : undefined), 'the next SEC/1 reading');
  });

  it('revokes a credential: its connection is closed at once and the next CONNECT refused; audited without the password', async () => {
    const [credential] = (await provisionMonitors(admin, 'SEC', ['9'])).monitors;
    const client = await connectMonitor(url, credential!);
    client.on('error', () => undefined);
    clients.push(client);
    await client.publishAsync(credential!.topic, reading('sec-mon-9'), { qos: 1 });
    const listed = (await admin.ok('monitors.list', {})).monitors.find((m) => m.username === credential!.username)!;
    expect(listed.connected).toBe(true);
    const closed = closesWithin(client, 3000);
    const revoked = await admin.ok('monitors.revoke', { id: listed.id });
    expect(revoked).toMatchObject({ id: listed.id, revokedBy: ADMIN.username, connected: false });
    expect(revoked.revokedAt).not.toBeNull();
    expect(await closed).toBe(true);
    expect(await refusal(url, { username: credential!.username, password: credential!.password })).toMatchObject({ code: 4 });
    expect((await admin.fail('monitors.revoke', { id: listed.id })).code).toBe('conflict');
    expect((await nurse.fail('monitors.create', { ward: 'SEC', beds: ['10'] })).code).toBe('forbidden');

    const created = await auditRows(ws, 'monitor.create');
    expect(created.filter((e) => e.outcome === 'success').length).toBeGreaterThanOrEqual(2);
    const revokes = await auditRows(ws, 'monitor.revoke');
    expect(revokes.map((e) => e.outcome)).toEqual(['success', 'error']);
    expect(JSON.parse(revokes[0]!.detail_json!)).toMatchObject({ username: credential!.username, connectionsClosed: 1 });
    // No password anywhere in the ledger or in the credentials table; only its SHA-256.
    const key = await derivePassphraseKey(STORE_PASSPHRASE, readKeyInfo(`${ws.config.dataDir}/neuroward.keyinfo.json`)!);
    const db = openEncryptedDatabase(`${ws.config.dataDir}/neuroward.db`, key, { create: false });
    try {
      const everything = JSON.stringify([db.prepare('SELECT * FROM audit_log').all(), db.prepare('SELECT * FROM vitals_monitor_credentials').all()]);
      for (const m of [...beds, credential!]) expect(everything).not.toContain(m.password);
      const row = db.prepare('SELECT secret_sha256 FROM vitals_monitor_credentials WHERE username = ?').get(credential!.username) as { secret_sha256: string };
      expect(row.secret_sha256).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      db.close();
    }
    // The passwords are random: 192 bits, base64url.
    expect(credential!.password).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });
});

describe('embedded broker over TLS', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('listens with TLS only (certificate from a CA): the ingest and a monitor connect over mqtts, a plain CONNECT to the port fails', async () => {
    const dir = tempDir('nw-broker-tls-');
    dirs.push(dir);
    const tls = makeTlsMaterial(dir);
    const ws = await setUpWorkstation({ mqttEmbeddedTls: { certFile: tls.serverCertFile, keyFile: tls.serverKeyFile, caFile: tls.caFile } });
    try {
      const { connection: admin } = await ws.signInAs('admin');
      const { connection: nurse } = await ws.signInAs('nurse');
      const url = await until(() => ws.app.vitalsBrokerUrl ?? undefined, 'the embedded broker');
      expect(url).toMatch(/^mqtts:\/\/127\.0\.0\.1:\d+$/);
      await until(async () => ((await nurse.ok('ward.board', {})).link.up ? true : undefined), 'the ingest link up over TLS');
      const [credential] = (await provisionMonitors(admin, 'TLS', ['1'])).monitors;
      const client = await connectMonitor(url, credential!, { ca: readFileSync(tls.caFile) });
      try {
        await client.publishAsync(credential!.topic, reading('tls-mon-1'), { qos: 1 });
        await until(async () => (await nurse.ok('ward.board', {})).beds.find((b) => b.key === 'TLS/1' && b.latest), 'bed TLS/1 on the board');
      } finally {
        await client.endAsync(true);
      }
      const port = new URL(url).port;
      expect(await refusal(`mqtt://127.0.0.1:${port}`, { username: credential!.username, password: credential!.password })).not.toBeNull();
      // Nor does a client that does not trust the certificate get in.
      expect(await refusal(url, { username: credential!.username, password: credential!.password })).toMatchObject({ message: expect.stringMatching(/certificate/i) });
    } finally {
      await ws.app.close();
    }
  });

  it("verifies a self-signed certificate made for the ward network's name, not 127.0.0.1", async () => {
    const dir = tempDir('nw-broker-selfsigned-');
    dirs.push(dir);
    const cert = path.join(dir, 'broker.crt');
    const key = path.join(dir, 'broker.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=nw-ws-4a.ward.example', '-addext', 'subjectAltName=DNS:nw-ws-4a.ward.example'], { stdio: 'pipe' });
    const ws = await setUpWorkstation({ mqttEmbeddedTls: { certFile: cert, keyFile: key, caFile: null } });
    try {
      const { connection: nurse } = await ws.signInAs('nurse');
      await until(async () => ((await nurse.ok('ward.board', {})).link.up ? true : undefined), 'the ingest link up over TLS (self-signed)');
      const { connection: admin } = await ws.signInAs('admin');
      const [credential] = (await provisionMonitors(admin, 'TLS', ['2'])).monitors;
      const client = await connectMonitor(ws.app.vitalsBrokerUrl!, credential!, { ca: readFileSync(cert), servername: 'nw-ws-4a.ward.example' });
      await client.endAsync(true);
    } finally {
      await ws.app.close();
    }
  });

  it('refuses an embedded broker on a network interface without TLS', () => {
    const dir = tempDir('nw-broker-host-');
    dirs.push(dir);
    expect(() => loadConfig(['--data-dir', dir], { HOME: dir, NEUROWARD_MQTT_PORT: '0', NEUROWARD_CONFIG: writeConfig(dir, { mqtt: { embeddedHost: '0.0.0.0' } }) })).toThrow(
      /"mqtt.embeddedHost" is 0.0.0.0, reachable from the network: it needs "mqtt.embeddedTls"/,
    );
    const ok = loadConfig(['--data-dir', dir], { HOME: dir, NEUROWARD_CONFIG: writeConfig(dir, { mqtt: { embeddedHost: '0.0.0.0', embeddedTls: { certFile: 'b.crt', keyFile: 'b.key' } } }) });
    expect(ok).toMatchObject({ mqttEmbeddedHost: '0.0.0.0', mqttEmbeddedTls: { certFile: path.resolve('b.crt'), keyFile: path.resolve('b.key'), caFile: null } });
  });
});

function writeConfig(dir: string, settings: unknown): string {
  const file = path.join(dir, `config-${Math.random().toString(36).slice(2, 8)}.json`);
  writeFileSync(file, JSON.stringify(settings));
  return file;
}

describe('a broker URL with user:pass@ (finding 8)', () => {
  it('is refused by the configuration, without repeating the password', () => {
    const dir = tempDir('nw-url-creds-');
    let error: unknown;
    try {
      loadConfig(['--data-dir', dir], { HOME: dir, NEUROWARD_MQTT_URL: 'mqtts://ws-4a:hunter2-secret@broker.ward:8883' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('setting "mqtt.url" (from environment variable NEUROWARD_MQTT_URL): must not hold a user name or password');
    expect((error as Error).message).not.toContain('hunter2');
    expect(() => loadConfig(['--data-dir', dir], { HOME: dir, NEUROWARD_CONFIG: writeConfig(dir, { mqtt: { url: 'mqtt://ws@broker.ward:1883' } }) })).toThrow(/must not hold a user name or password/);
  });

  it('never reaches a log line, the startup notes, the ward board or the monitors list when given anyway', async () => {
    const password = 'url-secret-Pa55';
    const mosquitto = await Mosquitto.start({ users: { 'nw-ingest': password } });
    const logs: string[] = [];
    let app: NeurowardApp | null = null;
    try {
      // Past the config's check (as a caller building the config itself would): the app splits the URL.
      const config = { ...testConfig({ passphrase: { source: 'prompt', env: 'UNUSED', fromEnv: null, file: null } }), mqttUrl: `mqtt://nw-ingest:${password}@127.0.0.1:${mosquitto.port}` };
      app = await createApp({ config, host: 'headless', log: (line) => logs.push(line), announce: (line) => logs.push(line) });
      const setup = await connect(app).ok('setup.initialize', { storePassphrase: STORE_PASSPHRASE, admin: ADMIN, demoData: true });
      const admin = connect(app);
      await admin.ok('auth.signIn', { username: ADMIN.username, password: ADMIN.password });
      const physician = connect(app);
      const demo = setup.demoAccounts.find((a) => a.role === 'physician')!;
      await physician.ok('auth.signIn', { username: demo.username, password: demo.password });
      // The credentials in the URL work (the link comes up), yet appear nowhere.
      const board = await until(async () => {
        const b = await physician.ok('ward.board', {});
        return b.link.up ? b : undefined;
      }, 'the link up with the URL credentials');
      expect(board.link.broker).toBe(`mqtt://127.0.0.1:${mosquitto.port}`);
      expect(app.vitalsBrokerUrl).toBe(`mqtt://127.0.0.1:${mosquitto.port}`);
      const conflict = await admin.fail('monitors.create', { ward: 'EXT', beds: ['1'] });
      expect(conflict.code).toBe('conflict');
      expect(conflict.message).toContain(`mqtt://127.0.0.1:${mosquitto.port}`);
      expect((await admin.ok('monitors.list', {})).embedded).toBe(false);
      const everything = JSON.stringify({ logs, notes: app.startupNotes, board, conflict, events: physician.events });
      expect(logs.some((l) => l.includes(`127.0.0.1:${mosquitto.port}`))).toBe(true);
      expect(everything).not.toContain(password);
      expect(everything).not.toContain('nw-ingest:');
    } finally {
      await app?.close();
      await mosquitto.stop();
    }
  });
});
