/** Test harness: a real app (real encrypted store, real dispatcher) on a fresh data dir, with test connections. */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type AppConfig } from '../../src/main/app/config.js';
import { createApp } from '../../src/main/app/app.js';
import type { Connection, NeurowardApp } from '../../src/main/app/types.js';
import type { ImagingEngines } from '../../src/main/imaging/imaging-service.js';
import type { ChannelName, EventName, RequestOf, ResponseOf, SessionInfo } from '../../src/shared/ipc.js';
import type { Envelope, WireError } from '../../src/shared/errors.js';
import { openEncryptedDatabase, type Db } from '../../src/main/store/database.js';
import { derivePassphraseKey, readKeyInfo } from '../../src/main/store/keys.js';

export const ADMIN = { username: 'admin.jones', displayName: 'Alex Jones', password: 'correct horse battery' };
export const STORE_PASSPHRASE = 'long enough store passphrase';

export function tempDir(prefix = 'nw-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function testConfig(overrides: Partial<AppConfig> = {}, env: NodeJS.ProcessEnv = {}): AppConfig {
  const dataDir = overrides.dataDir ?? tempDir();
  // Each test app's embedded broker takes a free port, so test files can run side by side.
  const config = loadConfig(['--data-dir', dataDir], { HOME: os.homedir(), NEUROWARD_MQTT_PORT: '0', ...env });
  return { ...config, ...overrides, dataDir };
}

export interface TestConnection extends Connection {
  /** Every event pushed to this connection, with when it was sent (Date.now()). */
  events: { event: EventName; payload: unknown; at: number }[];
  call<C extends ChannelName>(channel: C, request: RequestOf<C>): Promise<Envelope<ResponseOf<C>>>;
  /** Calls and returns the value, failing the test with the server's message otherwise. */
  ok<C extends ChannelName>(channel: C, request: RequestOf<C>): Promise<ResponseOf<C>>;
  fail<C extends ChannelName>(channel: C, request: RequestOf<C>): Promise<WireError>;
  raw(channel: unknown, payload: unknown): Promise<Envelope<unknown>>;
}

let nextId = 1;
/** `launchVerified: false` stands for a local client that connected without this launch's secret. */
export function connect(app: NeurowardApp, options: { launchVerified?: boolean } = {}): TestConnection {
  const events: TestConnection['events'] = [];
  const connection: TestConnection = {
    id: `test:${nextId}`,
    kind: 'ws',
    // Each test connection is its own source, as a separate machine's would be for the throttles.
    source: `test-source:${nextId++}`,
    launchVerified: options.launchVerified ?? true,
    events,
    send(event, payload) {
      events.push({ event, payload, at: Date.now() });
    },
    raw(channel, payload) {
      const rawBytes = Buffer.byteLength(JSON.stringify(payload ?? null));
      return app.dispatch(connection, channel, payload, rawBytes);
    },
    call(channel, request) {
      return connection.raw(channel, request) as never;
    },
    async ok(channel, request) {
      const envelope = await connection.call(channel, request);
      if (!envelope.ok) throw new Error(`${channel} failed: ${envelope.error.code}: ${envelope.error.message}`);
      return envelope.value;
    },
    async fail(channel, request) {
      const envelope = await connection.call(channel, request);
      if (envelope.ok) throw new Error(`${channel} unexpectedly succeeded`);
      return envelope.error;
    },
  };
  app.connectionOpened(connection);
  return connection;
}

export interface Workstation {
  app: NeurowardApp;
  config: AppConfig;
  demoAccounts: { username: string; role: string; password: string }[];
  signIn(username: string, password: string): Promise<{ connection: TestConnection; session: SessionInfo }>;
  signInAs(role: string): Promise<{ connection: TestConnection; session: SessionInfo }>;
  clock: { now: number; advance(ms: number): void };
}

/** A set-up workstation: store created with a passphrase, admin and synthetic demo staff/patients. */
export async function setUpWorkstation(overrides: Partial<AppConfig> = {}, options: { demoData?: boolean; imagingEngines?: ImagingEngines } = {}): Promise<Workstation> {
  const clock = {
    now: Date.now(),
    advance(ms: number) {
      clock.now += ms;
    },
  };
  const config = testConfig({ ...overrides, passphrase: { source: 'prompt', env: 'UNUSED', fromEnv: null, file: null } });
  const app = await createApp({ config, host: 'headless', now: () => new Date(clock.now), log: () => undefined, announce: () => undefined, ...(options.imagingEngines ? { imagingEngines: options.imagingEngines } : {}) });
  const setup = await connect(app).ok('setup.initialize', { storePassphrase: STORE_PASSPHRASE, admin: ADMIN, demoData: options.demoData ?? true });
  const signIn = async (username: string, password: string) => {
    const connection = connect(app);
    const session = await connection.ok('auth.signIn', { username, password });
    return { connection, session };
  };
  return {
    app,
    config,
    clock,
    demoAccounts: setup.demoAccounts,
    signIn,
    signInAs(role: string) {
      if (role === 'admin') return signIn(ADMIN.username, ADMIN.password);
      const account = setup.demoAccounts.find((a) => a.role === role);
      if (!account) throw new Error(`no demo account for ${role}`);
      return signIn(account.username, account.password);
    },
  };
}

/** Runs `fn` on a connection of its own to a workstation's store (what the app wrote, as a reader sees it). */
export type StoreReader = <T>(fn: (db: Db) => T) => T;

/** A StoreReader for `ws` (set up with STORE_PASSPHRASE); the key is derived once. */
export async function storeReader(ws: Pick<Workstation, 'config'>): Promise<StoreReader> {
  const key = await derivePassphraseKey(STORE_PASSPHRASE, readKeyInfo(`${ws.config.dataDir}/neuroward.keyinfo.json`)!);
  return (fn) => {
    const db = openEncryptedDatabase(`${ws.config.dataDir}/neuroward.db`, key, { create: false });
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };
}
