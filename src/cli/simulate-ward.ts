/**
 * `neuroward simulate-ward`: bedside monitors for testing, demos and load. Each bed is a device with its
 * own increasing sequence number, publishing message v1 (src/main/vitals/payload.ts) with QoS 1.
 *
 * Scenarios:
 *   stable         normal adult vitals with small noise
 *   deteriorating  sepsis-like drift over --drift-seconds: HR, RR, temperature up; SBP, SpO2 down; confusion late
 *   dropout        every fifth bed goes silent for 45 s out of every 90 s (sensor dropout)
 *   malformed      one message in five is broken: bad JSON, wrong types, HR 900, odd topic (with
 *                  credentials, which allow the bed's own topic only: no deviceId instead)
 *   burst          each interval, a burst of 10 readings per bed at once
 *
 * Credentials: the embedded broker refuses anonymous monitors. `--credentials FILE` takes the file an
 * administrator copies from Admin → Monitors after creating the beds' credentials (monitorCredentialsFileSchema:
 * per bed its user name and password); each simulated bed then connects on its own with its own credential,
 * as a real monitor does. `--username/--password` (one account for all beds) is for a broker such as
 * mosquitto configured that way.
 *
 * Patients: `--patients REF,REF,…` makes bed 1 name the first patient in its messages (`patient`:
 * `mrn:<MRN>` or `Patient/<id>`), bed 2 the second, and so on, as a monitor set up by a hospital ADT
 * system does. The workstation checks it against the bed's admission: the same patient is fine,
 * another raises a "monitor reports a different patient" technical alarm (try it on the demo ward,
 * whose synthetic patients are admitted at setup, by giving their MRNs from the Patients list in
 * another order). Without it the monitors name nobody, and the readings belong to whoever is admitted.
 */
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { monitorCredentialsFileSchema, type MonitorCredentialsFile } from '../shared/ipc.js';
import { mulberry32 } from '../shared/random.js';

export const SCENARIOS = ['stable', 'deteriorating', 'dropout', 'malformed', 'burst'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface SimulateOptions {
  broker: string;
  beds: number;
  intervalSeconds: number;
  scenario: Scenario;
  ward: string;
  /** Stop after this many seconds (0: run until interrupted). */
  durationSeconds: number;
  /** How long the deteriorating scenario takes to reach its worst. */
  driftSeconds: number;
  username?: string | undefined;
  password?: string | undefined;
  /** Per-bed credentials (from Admin → Monitors); every simulated bed of `ward` must have one. */
  credentials?: MonitorCredentialsFile['monitors'] | null | undefined;
  /** Bed n (1-based) names patients[n-1] in its messages; beds past the list name nobody. */
  patients?: readonly string[] | undefined;
  log: (line: string) => void;
}

/** A patient reference as message v1 takes it (src/main/vitals/payload.ts). */
export const PATIENT_REF = /^(Patient\/[0-9a-f-]{36}|mrn:[A-Za-z0-9-]{1,32})$/;

/** Reads and checks a credentials file as Admin → Monitors gives it. */
export function readCredentialsFile(file: string): MonitorCredentialsFile {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read the credentials file ${file}: ${(error as Error).message}`);
  }
  const parsed = monitorCredentialsFileSchema.safeParse(json);
  if (!parsed.success) throw new Error(`${file} is not a NeuroWard monitor credentials file (copy it from Admin → Monitors): ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/** Connects `count` clients, at most 50 at a time. */
async function connectAll<T>(items: readonly T[], connect: (item: T) => Promise<MqttClient>): Promise<MqttClient[]> {
  const clients: MqttClient[] = [];
  try {
    for (let i = 0; i < items.length; i += 50) clients.push(...(await Promise.all(items.slice(i, i + 50).map(connect))));
  } catch (error) {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    throw error;
  }
  return clients;
}

interface Bed {
  id: string;
  deviceId: string;
  seq: number;
  baseline: { hr: number; spo2: number; rr: number; tempC: number; sbp: number; dbp: number };
}

const round1 = (v: number) => Math.round(v * 10) / 10;

export function vitalsAt(bed: Bed, scenario: Scenario, elapsedS: number, driftS: number, noise: () => number): Record<string, unknown> {
  const jitter = (scale: number) => (noise() - 0.5) * 2 * scale;
  const b = bed.baseline;
  const k = scenario === 'deteriorating' ? Math.min(1, elapsedS / Math.max(1, driftS)) : 0;
  const sbp = Math.round(b.sbp - 45 * k + jitter(2));
  return {
    hr: Math.round(b.hr + 60 * k + jitter(2)),
    spo2: Math.round(Math.min(100, b.spo2 - 9 * k + jitter(0.6))),
    rr: Math.round(b.rr + 14 * k + jitter(0.6)),
    tempC: round1(b.tempC + 2.3 * k + jitter(0.05)),
    sbp,
    dbp: Math.min(sbp - 10, Math.round(b.dbp - 25 * k + jitter(2))),
    acvpu: k > 0.8 ? 'C' : 'A',
    o2: k > 0.6,
  };
}

export async function simulateWard(options: SimulateOptions): Promise<{ published: number; malformed: number }> {
  const random = mulberry32(0x5eed ^ options.beds);
  const startSeq = Math.floor(Date.now() / 1000) * 100; // restarts never reuse a (device, seq)
  const beds: Bed[] = Array.from({ length: options.beds }, (_, i) => ({
    id: String(i + 1),
    deviceId: `sim-${options.ward}-${i + 1}`,
    seq: startSeq,
    baseline: { hr: 66 + Math.round(random() * 16), spo2: 97 + Math.round(random() * 2), rr: 13 + Math.round(random() * 4), tempC: round1(36.5 + random() * 0.6), sbp: 118 + Math.round(random() * 16), dbp: 70 + Math.round(random() * 10) },
  }));
  const credentials = options.credentials ?? null;
  let clientOf: (bed: Bed) => MqttClient;
  let clients: MqttClient[];
  if (credentials) {
    const own = beds.map((bed) => {
      const credential = credentials.find((c) => c.ward === options.ward && c.bed === bed.id);
      if (!credential) throw new Error(`the credentials file has no credential for bed ${options.ward}/${bed.id}: create one in Admin → Monitors`);
      return { bed, credential };
    });
    // One connection per bed, as real monitors: each credential may publish to its own bed's topic only.
    clients = await connectAll(own, ({ bed, credential }) =>
      mqtt.connectAsync(options.broker, { clientId: `sim-${options.ward}-${bed.id}-${process.pid}`, clean: true, username: credential.username, password: credential.password, reconnectPeriod: 1000 }),
    );
    const byBed = new Map(own.map(({ bed }, i) => [bed, clients[i]!]));
    clientOf = (bed) => byBed.get(bed)!;
  } else {
    const client = await mqtt.connectAsync(options.broker, {
      clientId: `neuroward-sim-${process.pid}`,
      clean: true,
      username: options.username,
      password: options.password,
      reconnectPeriod: 1000,
    });
    clients = [client];
    clientOf = () => client;
  }
  let published = 0;
  let malformed = 0;
  const started = Date.now();
  const topic = (bed: Bed) => `ward/${options.ward}/bed/${bed.id}/vitals`;
  const send = (bed: Bed, t: string, body: string) =>
    new Promise<void>((resolve) =>
      clientOf(bed).publish(t, body, { qos: 1 }, (error) => {
        if (error) options.log(`publish failed: ${error.message}`);
        resolve();
      }),
    );

  const round = async () => {
    const elapsedS = (Date.now() - started) / 1000;
    const sends: Promise<void>[] = [];
    for (const [index, bed] of beds.entries()) {
      if (options.scenario === 'dropout' && index % 5 === 0 && elapsedS % 90 >= 45) continue;
      const repeats = options.scenario === 'burst' ? 10 : 1;
      for (let r = 0; r < repeats; r++) {
        bed.seq += 1;
        const patient = options.patients?.[index];
        const message = { v: 1, deviceId: bed.deviceId, seq: bed.seq, ...(patient ? { patient } : {}), ts: new Date().toISOString(), ...vitalsAt(bed, options.scenario, elapsedS, options.driftSeconds, random) };
        if (options.scenario === 'malformed' && bed.seq % 5 === 0) {
          malformed += 1;
          const kind = bed.seq % 4;
          if (kind === 0) sends.push(send(bed, topic(bed), '{"v":1,"deviceId":'));
          else if (kind === 1) sends.push(send(bed, topic(bed), JSON.stringify({ ...message, hr: 'fast' })));
          else if (kind === 2) sends.push(send(bed, topic(bed), JSON.stringify({ ...message, hr: 900 })));
          // A monitor's credential allows its own topic only (another would close its connection).
          else if (credentials) sends.push(send(bed, topic(bed), JSON.stringify({ ...message, deviceId: undefined })));
          else sends.push(send(bed, `ward/${options.ward}/bed/${bed.id}/vitals/extra`, JSON.stringify(message)));
          continue;
        }
        sends.push(send(bed, topic(bed), JSON.stringify(message)));
        published += 1;
      }
    }
    await Promise.all(sends);
  };

  await new Promise<void>((resolve) => {
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      resolve();
    };
    const timer = setInterval(() => {
      void round().then(() => {
        if (options.durationSeconds > 0 && Date.now() - started >= options.durationSeconds * 1000) stop();
      });
    }, options.intervalSeconds * 1000);
    void round();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await Promise.all(clients.map((c) => c.endAsync()));
  return { published, malformed };
}
