/**
 * Bedside monitor credentials for tests, made the way a site makes them: an administrator's
 * `monitors.create` call (Admin → Monitors), or, for tests of the ingest alone, the same repository
 * on the test's own store. No test connects to the embedded broker without one.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { MonitorCredentialsFile } from '../../src/shared/ipc.js';
import type { TestConnection } from './harness.js';
import { tempDir } from './harness.js';

export type MonitorSecret = MonitorCredentialsFile['monitors'][number];

/** Creates one credential per bed of `ward` as the administrator signed in on `admin`. */
export async function provisionMonitors(admin: TestConnection, ward: string, beds: string[]): Promise<MonitorCredentialsFile> {
  return (await admin.ok('monitors.create', { ward, beds, label: 'test' })).credentials;
}

/** Writes the credentials file `neuroward simulate-ward --credentials FILE` reads. */
export function writeCredentialsFile(credentials: MonitorCredentialsFile, dir = tempDir('nw-monitor-creds-')): string {
  const file = path.join(dir, 'monitors.json');
  writeFileSync(file, JSON.stringify(credentials), { mode: 0o600 });
  return file;
}

/** Beds "1".."n". */
export const bedRange = (n: number, from = 1): string[] => Array.from({ length: n }, (_, i) => String(from + i));

/** Connects as one monitor with its credential (QoS 1 publishes from then on go to its topic). */
export function connectMonitor(url: string, secret: Pick<MonitorSecret, 'username' | 'password'>, options: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, { clientId: `test-${secret.username}`, clean: true, reconnectPeriod: 0, connectTimeout: 5000, username: secret.username, password: secret.password, ...options });
}

/** A monitor per bed key `<ward>/<bed>`, connected on first use: publishes to its bed's topic. */
export class MonitorFleet {
  private readonly clients = new Map<string, Promise<MqttClient>>();

  constructor(
    private readonly url: () => string,
    private readonly credentials: () => MonitorSecret[],
    private readonly provision: (ward: string, bed: string) => Promise<void>,
    private readonly options: IClientOptions = {},
  ) {}

  client(ward: string, bed: string): Promise<MqttClient> {
    const key = `${ward}/${bed}`;
    let client = this.clients.get(key);
    if (!client) {
      client = (async () => {
        let secret = this.credentials().find((c) => c.ward === ward && c.bed === bed);
        if (!secret) {
          await this.provision(ward, bed);
          secret = this.credentials().find((c) => c.ward === ward && c.bed === bed);
        }
        if (!secret) throw new Error(`no credential for ${key}`);
        return connectMonitor(this.url(), secret, { clientId: `fleet-${ward}-${bed}-${process.pid}`, ...this.options });
      })();
      this.clients.set(key, client);
    }
    return client;
  }

  async end(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map(async (c) => (await c.catch(() => null))?.endAsync().catch(() => undefined)));
  }
}
