/**
 * Vitals ingest against real brokers: Debian's mosquitto (plain, with a password file, with TLS from
 * a throw-away CA) and the embedded aedes. Readings go in through a real MQTT client and come out of
 * the real encrypted store and its outbox.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle, Observation } from '@medplum/fhirtypes';
import { openEncryptedDatabase, type Db } from '../../src/main/store/database.js';
import { applyMigrations } from '../../src/main/store/migrations.js';
import { AuditLedger } from '../../src/main/security/audit-ledger.js';
import { MAX_PAYLOAD_BYTES, type VitalsPayload } from '../../src/main/vitals/payload.js';
import { MINUTE_GRACE_MS, VitalsRepo } from '../../src/main/vitals/vitals-repo.js';
import { REJECT_REASONS, VitalsIngest, classifyMessage, workstationClientId, type RejectReason, type VitalsIngestOptions, type VitalsSink } from '../../src/main/vitals/ingest.js';
import { EmbeddedBroker, resolveVitalsBroker } from '../../src/main/vitals/broker.js';
import { MonitorCredentialsRepo } from '../../src/main/vitals/monitor-credentials.js';
import { VITALS_TOPIC } from '../../src/main/vitals/payload.js';
import { LOINC, UCUM, OBSERVATION_CATEGORY_SYSTEM, observationId } from '../../src/main/vitals/observations.js';
import { MRN_SYSTEM } from '../../src/main/fhir/resources.js';
import { tempDir } from '../support/harness.js';
import { Mosquitto, TestPublisher, makeTlsMaterial, waitFor } from '../support/mosquitto.js';

const PATIENT = `Patient/${randomUUID()}`;

function openStore(dir = tempDir('nw-vitals-')): { db: Db; dir: string; close(): void } {
  const db = openEncryptedDatabase(path.join(dir, 'neuroward.db'), randomBytes(32), { create: true });
  applyMigrations(db, () => new Date().toISOString());
  return {
    db,
    dir,
    close() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function reading(deviceId: string, seq: number, extra: Partial<VitalsPayload> = {}): VitalsPayload {
  return { v: 1, deviceId, seq, patient: PATIENT, ts: new Date().toISOString(), hr: 70 + (seq % 20), spo2: 97, rr: 16, tempC: 36.8, sbp: 121, dbp: 79, acvpu: 'A', o2: false, ...extra };
}

interface Rig {
  ingest: VitalsIngest;
  repo: VitalsRepo;
  db: Db;
  accepted: { bedKey: string; payload: VitalsPayload; storedAtCallback: boolean }[];
  rejected: { bedKey: string; reason: RejectReason }[];
  links: { up: boolean; at: Date }[];
  stop(): Promise<void>;
}

async function startIngest(url: string, extra: Partial<VitalsIngestOptions> = {}, store = openStore()): Promise<Rig> {
  const repo = new VitalsRepo(store.db, () => new Date());
  const rig: Rig = {
    repo,
    db: store.db,
    accepted: [],
    rejected: [],
    links: [],
    ingest: null as unknown as VitalsIngest,
    async stop() {
      await rig.ingest.stop();
      store.close();
    },
  };
  rig.ingest = new VitalsIngest({
    url,
    clientId: workstationClientId(store.dir),
    sink: repo,
    keepaliveSeconds: 5,
    reconnectPeriodMs: 200,
    maxReconnectDelayMs: 1000,
    connectTimeoutMs: 3000,
    onReading: (bedKey, payload) => rig.accepted.push({ bedKey, payload, storedAtCallback: repo.isStored(payload.deviceId, payload.seq) }),
    onRejected: (bedKey, reason) => rig.rejected.push({ bedKey, reason }),
    onLink: (up, at) => rig.links.push({ up, at }),
    ...extra,
  });
  rig.ingest.start();
  return rig;
}

const linkUp = (rig: Rig) => waitFor(() => rig.ingest.stats.linkUp, 10_000, 'the ingest link to come up', () => rig.ingest.stats);

interface StartedBroker {
  url: string;
  stop(): Promise<void>;
  /** The ingest's account (the embedded broker's own workstation account), if the broker wants one. */
  ingestAuth: Partial<Pick<VitalsIngestOptions, 'username' | 'password'>>;
  /** A monitor credential for one bed topic, where the broker binds each monitor to its bed (the embedded one); null: anonymous. */
  provision: ((ward: string, bed: string) => { username: string; password: string }) | null;
}

interface BrokerUnderTest {
  name: string;
  start(): Promise<StartedBroker>;
}

const BROKERS: BrokerUnderTest[] = [
  {
    name: 'mosquitto',
    async start() {
      const broker = await Mosquitto.start();
      return { url: broker.url, stop: () => broker.stop(), ingestAuth: {}, provision: null };
    },
  },
  {
    name: 'embedded aedes',
    async start() {
      // The monitors' credentials live in a store of their own here, as they do in the app's.
      const store = openStore();
      const credentials = new MonitorCredentialsRepo(store.db, () => new Date());
      const broker = await EmbeddedBroker.start({ port: 0, monitors: credentials });
      return {
        url: broker.url,
        async stop() {
          await broker.close();
          store.close();
        },
        ingestAuth: { ...broker.workstationCredentials },
        provision: (ward, bed) => credentials.create({ ward, beds: [bed], createdBy: 'test' }).secrets[0]!,
      };
    },
  },
];

/** What the tests publish through: one TestPublisher, or (embedded broker) one per bed topic, each with its own credential. */
interface Monitor {
  readonly deviceId: string;
  publish(topic: string, reading: Record<string, unknown>): Promise<void>;
  raw(topic: string, payload: string | Buffer): Promise<void>;
  end(): Promise<void>;
}

async function monitorFor(broker: StartedBroker, deviceId: string): Promise<Monitor> {
  const provision = broker.provision;
  if (!provision) return TestPublisher.connect(broker.url, deviceId);
  const perTopic = new Map<string, Promise<TestPublisher>>();
  const via = (topic: string): Promise<TestPublisher> => {
    const match = VITALS_TOPIC.exec(topic);
    if (!match) throw new Error(`the embedded broker gives no monitor a credential for ${topic}`);
    let publisher = perTopic.get(topic);
    if (!publisher) {
      const credential = provision(match[1]!, match[2]!);
      publisher = TestPublisher.connect(broker.url, `${deviceId}-${match[1]}-${match[2]}`, credential);
      perTopic.set(topic, publisher);
    }
    return publisher;
  };
  return {
    deviceId,
    publish: async (topic, reading) => (await via(topic)).publish(topic, reading),
    raw: async (topic, payload) => (await via(topic)).raw(topic, payload),
    end: async () => void (await Promise.all([...perTopic.values()].map(async (p) => (await p).end()))),
  };
}

describe.each(BROKERS)('vitals ingest via $name', (brokerUnderTest) => {
  let broker: StartedBroker;
  let rig: Rig;
  let monitor: Monitor;
  const topic = 'ward/4A/bed/07/vitals';
  const device = `mon-${randomUUID().slice(0, 8)}`;
  let seq = 1;

  /** Publishes a valid reading and waits until it is stored: every message before it has then been handled. */
  async function sentinel(): Promise<void> {
    const r = reading(device, seq++);
    await monitor.publish(topic, r);
    await waitFor(() => rig.repo.isStored(device, r.seq), 10_000, `sentinel ${r.seq} stored`, () => rig.ingest.stats);
  }

  beforeAll(async () => {
    broker = await brokerUnderTest.start();
    rig = await startIngest(broker.url, broker.ingestAuth);
    await linkUp(rig);
    monitor = await monitorFor(broker, device);
  });

  afterAll(async () => {
    await monitor?.end();
    await rig?.stop();
    await broker?.stop();
  });

  it('stores valid readings; the stored rows match what was published; onReading comes after the store', async () => {
    const sent = [reading(device, seq++), reading(device, seq++, { patient: 'mrn:MRN-0042', o2: true, acvpu: 'V', fault: 'leads-off' }), reading(device, seq++, { hr: undefined, sbp: undefined, dbp: undefined, tempC: 38.4 })];
    for (const r of sent) await monitor.publish(topic, r);
    await waitFor(() => sent.every((r) => rig.repo.isStored(device, r.seq)), 10_000, 'three readings stored');

    const rows = rig.repo.readings({ deviceId: device });
    expect(rows).toHaveLength(3);
    for (const r of sent) {
      const row = rows.find((x) => x.seq === r.seq)!;
      expect(row).toMatchObject({
        ward: '4A',
        bed: '07',
        deviceId: device,
        patientRef: r.patient ?? null,
        ts: new Date(r.ts).toISOString(),
        hr: r.hr ?? null,
        spo2: r.spo2 ?? null,
        rr: r.rr ?? null,
        tempC: r.tempC ?? null,
        sbp: r.sbp ?? null,
        dbp: r.dbp ?? null,
        acvpu: r.acvpu ?? null,
        o2: r.o2 ?? null,
        fault: r.fault ?? null,
      });
      expect(Date.parse(row.receivedAt)).toBeGreaterThan(Date.now() - 60_000);
    }
    const calls = rig.accepted.filter((a) => a.payload.deviceId === device);
    expect(calls.map((c) => c.payload.seq)).toEqual(sent.map((r) => r.seq));
    expect(calls.every((c) => c.bedKey === '4A/07' && c.storedAtCallback)).toBe(true);
  });

  it('stores a burst from many monitors in batches, keeps each monitor’s order and acknowledges all of it (nothing redelivered to the same session)', async () => {
    const store = openStore();
    const own = await startIngest(broker.url, broker.ingestAuth, store);
    const monitors = await Promise.all([1, 2, 3, 4].map((n) => monitorFor(broker, `${device}-burst${n}`)));
    try {
      await linkUp(own);
      const perMonitor = 150;
      await Promise.all(
        monitors.map((m, n) =>
          Promise.all([
            ...Array.from({ length: perMonitor }, (_, i) => m.publish(`ward/4B/bed/B${n}/vitals`, reading(m.deviceId, i + 1))),
            m.raw(`ward/4B/bed/B${n}/vitals`, '{"v":1,'), // a bad one in the middle of the burst
          ]),
        ),
      );
      await waitFor(() => own.ingest.stats.accepted === 4 * perMonitor && own.ingest.stats.rejected['malformed-json'] === 4, 20_000, 'the burst stored', () => own.ingest.stats);
      for (const m of monitors) {
        expect(own.repo.count({ deviceId: m.deviceId })).toBe(perMonitor);
        expect(own.accepted.filter((a) => a.payload.deviceId === m.deviceId).map((a) => a.payload.seq)).toEqual(Array.from({ length: perMonitor }, (_, i) => i + 1));
      }
      expect(own.ingest.stats.batches).toBeLessThan(4 * perMonitor); // several readings per transaction

      // Leave (the broker reads the PUBACKs before the DISCONNECT) and come back with the same
      // persistent session: a reading the broker had not seen acknowledged would be redelivered now
      // and counted as a duplicate. (After a crash, PUBACKs still in flight can be lost with the
      // connection: then the readings come again and are dropped as duplicates, see vitals-faults.)
      await own.ingest.stop();
      own.ingest = new VitalsIngest({ url: broker.url, clientId: workstationClientId(store.dir), sink: own.repo, keepaliveSeconds: 5, reconnectPeriodMs: 200, ...broker.ingestAuth });
      own.ingest.start();
      await linkUp(own);
      await monitors[0]!.publish('ward/4B/bed/B0/vitals', reading(monitors[0]!.deviceId, perMonitor + 1));
      await waitFor(() => own.repo.isStored(monitors[0]!.deviceId, perMonitor + 1), 10_000, 'the sentinel stored after the restart');
      expect(own.ingest.stats).toMatchObject({ accepted: 1, rejected: { duplicate: 0, 'malformed-json': 0 } });
    } finally {
      await Promise.all(monitors.map((m) => m.end()));
      await own.stop();
    }
  });

  it('stores a republished duplicate (same deviceId + seq) once and counts it', async () => {
    const r = reading(device, seq++);
    const before = rig.ingest.stats.rejected.duplicate;
    await monitor.publish(topic, r);
    await monitor.publish(topic, r);
    await monitor.publish('ward/4A/bed/08/vitals', { ...r, hr: 99 }); // same identity from another bed: still the same reading
    await sentinel();
    const copies = rig.repo.readings({ deviceId: device }).filter((x) => x.seq === r.seq);
    expect(copies).toHaveLength(1);
    expect(copies[0]).toMatchObject({ bed: '07', hr: r.hr });
    expect(rig.ingest.stats.rejected.duplicate - before).toBe(2);
    expect(rig.rejected.filter((x) => x.reason === 'duplicate').map((x) => x.bedKey)).toEqual(expect.arrayContaining(['4A/07', '4A/08']));
  });

  it('rejects malformed JSON, wrong types, impossible values, odd topics and oversized payloads: counted per reason, never stored, still running', async () => {
    const before = rig.ingest.stats;
    const storedBefore = rig.repo.count();
    const bad = (s: number) => `bad-${device}-${s}`;
    const cases: [string, string | Buffer][] = [
      [topic, '{"v":1,"deviceId":"x",'], // malformed-json
      [topic, Buffer.from([0xff, 0xfe, 0x7b, 0x7d])], // malformed-json (not UTF-8)
      [topic, 'hr=88'], // malformed-json
      [topic, JSON.stringify({ ...reading(bad(1), 1), hr: '88' })], // schema: wrong type
      [topic, JSON.stringify({ ...reading(bad(2), 1), v: 2 })], // schema: unknown version
      [topic, JSON.stringify({ ...reading(bad(3), 1), extra: true })], // schema: unknown field
      [topic, JSON.stringify([1, 2, 3])], // schema
      [topic, JSON.stringify({ ...reading(bad(4), 1), ts: '2026-02-30T00:00:00Z' })], // schema: no such date
      [topic, JSON.stringify({ ...reading(bad(5), 1), hr: 900 })], // impossible-value
      [topic, JSON.stringify({ ...reading(bad(6), 1), spo2: 101 })], // impossible-value
      [topic, JSON.stringify({ ...reading(bad(7), 1), sbp: 80, dbp: 120 })], // impossible-value: diastolic above systolic
      ['ward/../bed/x/vitals', JSON.stringify(reading(bad(8), 1))], // bad-topic
      ['ward/4 A/bed/07/vitals', JSON.stringify(reading(bad(9), 1))], // bad-topic
      [`ward/${'w'.repeat(33)}/bed/07/vitals`, JSON.stringify(reading(bad(10), 1))], // bad-topic: ward name too long
      ['ward/a/bed/b/vitals/extra', JSON.stringify(reading(bad(11), 1))], // outside the subscription: the broker never delivers it
      ['ward/4A/bed/07/vitals/extra', JSON.stringify(reading(bad(12), 1))], // idem
      [topic, JSON.stringify({ ...reading(bad(13), 1), fault: 'x'.repeat(MAX_PAYLOAD_BYTES) })], // oversized
      [topic, Buffer.alloc(64 * 1024, 0x20)], // oversized
    ];
    // The embedded broker lets a monitor publish to its own bed's topic only: the odd topics never get
    // past it (broker-auth.test.ts shows the refusal); the ingest's own topic check is for other brokers.
    const aclBroker = broker.provision !== null;
    for (const [t, payload] of cases) if (!aclBroker || t === topic) await monitor.raw(t, payload);
    await sentinel();

    const after = rig.ingest.stats;
    const delta = Object.fromEntries(REJECT_REASONS.map((r) => [r, after.rejected[r] - before.rejected[r]]));
    expect(delta).toEqual({ 'malformed-json': 3, schema: 5, 'impossible-value': 3, oversized: 2, 'bad-topic': aclBroker ? 0 : 3, duplicate: 0 });
    // 16 delivered (2 topics are outside the subscription; with the embedded broker's ACL 13) + the sentinel.
    expect(after.received - before.received).toBe(aclBroker ? 14 : 17);
    expect(rig.repo.count() - storedBefore).toBe(1);
    for (let s = 1; s <= 13; s++) expect(rig.repo.count({ deviceId: bad(s) })).toBe(0);
    expect(after.linkUp).toBe(true);
    expect(after.storeErrors).toBe(0);
    // Reported per bed where the topic names one (13 of the 16 delivered ones).
    const reported = rig.rejected.filter((x) => x.reason !== 'duplicate');
    expect(reported.filter((x) => x.bedKey === '4A/07').length).toBeGreaterThanOrEqual(13);
    expect(reported.some((x) => x.bedKey.includes('..'))).toBe(false);
  });

  it('queues one FHIR transaction bundle per patient per minute with LOINC/UCUM-coded vital-signs Observations', async () => {
    const patient = `Patient/${randomUUID()}`;
    const minute = '2026-11-21T05:00';
    const dev = `mon-fhir-${randomUUID().slice(0, 6)}`;
    const r1 = reading(dev, 1, { patient, ts: `${minute}:10.000Z`, hr: 80, spo2: 95, rr: 18, tempC: 37.1, sbp: 130, dbp: 85, acvpu: 'A', o2: false });
    const r2 = reading(dev, 2, { patient, ts: `${minute}:40.000Z`, hr: 84, spo2: 94, rr: undefined, tempC: undefined, sbp: undefined, dbp: undefined, acvpu: 'C', o2: true });
    const r3 = reading(dev, 3, { patient, ts: '2026-11-21T05:01:05.000Z', hr: 90 });
    for (const r of [r1, r2, r3]) await monitor.publish('ward/4A/bed/09/vitals', r);
    await waitFor(() => rig.repo.isStored(dev, 3), 10_000, 'fhir readings stored');

    const patientBundles = () => {
      const rows = rig.db.prepare(`SELECT resource_type, operation, resource_json FROM outbox WHERE resource_type = 'Bundle'`).all() as { resource_type: string; operation: string; resource_json: string }[];
      expect(rows.every((r) => r.operation === 'create')).toBe(true);
      return rows.map((r) => JSON.parse(r.resource_json) as Bundle).filter((b) => b.entry?.some((e) => (e.resource as Observation).subject?.reference === patient));
    };
    const heartRate = (b: Bundle) => b.entry!.map((e) => e.resource as Observation).find((o) => o.code.coding![0]!.code === '8867-4')!.valueQuantity!.value;
    // Each reading marked its patient minute in its own transaction; the minutes have ended, so their
    // bundles are written now, each once, with the minute's latest values.
    expect(patientBundles()).toEqual([]);
    expect(rig.repo.queueMinuteBundles()).toBeGreaterThanOrEqual(2);
    const bundles = patientBundles();
    expect(bundles.map(heartRate).sort()).toEqual([84, 90]); // 05:00 (its latest, r2) and 05:01
    const first = bundles.find((b) => b.entry!.some((e) => (e.resource as Observation).effectiveDateTime!.startsWith(minute)))!;
    expect(first.type).toBe('transaction');
    const obs = first.entry!.map((e) => e.resource as Observation);
    const byCode = (code: string) => obs.find((o) => o.code.coding!.some((c) => c.system === LOINC && c.code === code));
    for (const e of first.entry!) expect(e.request).toEqual({ method: 'PUT', url: `Observation/${(e.resource as Observation).id}` });
    for (const o of obs) {
      expect(o.status).toBe('final');
      expect(o.category![0]!.coding![0]).toMatchObject({ system: OBSERVATION_CATEGORY_SYSTEM, code: 'vital-signs' });
      expect(o.subject).toEqual({ reference: patient });
      expect(o.device?.identifier?.value).toBe(dev);
    }
    // Latest value of the minute per vital; identifier names the reading it came from.
    expect(byCode('8867-4')).toMatchObject({ valueQuantity: { value: 84, system: UCUM, code: '/min' }, effectiveDateTime: r2.ts, identifier: [{ value: `${dev}:2` }] });
    expect(byCode('8867-4')!.id).toBe(observationId(patient, minute, 'hr'));
    expect(byCode('59408-5')).toMatchObject({ valueQuantity: { value: 94, system: UCUM, code: '%' } });
    expect(byCode('2708-6')).toBe(byCode('59408-5'));
    expect(byCode('9279-1')).toMatchObject({ valueQuantity: { value: 18, system: UCUM, code: '/min' }, identifier: [{ value: `${dev}:1` }] });
    expect(byCode('8310-5')).toMatchObject({ valueQuantity: { value: 37.1, system: UCUM, code: 'Cel' } });
    const bp = byCode('85354-9')!;
    expect(bp.component!.map((c) => [c.code.coding![0]!.code, c.valueQuantity!.value, c.valueQuantity!.system, c.valueQuantity!.code])).toEqual([
      ['8480-6', 130, UCUM, 'mm[Hg]'],
      ['8462-4', 85, UCUM, 'mm[Hg]'],
    ]);
    expect(byCode('67775-7')!.valueCodeableConcept).toMatchObject({ coding: [{ code: 'C' }], text: 'New confusion' });
    const o2 = obs.find((o) => o.code.text === 'On supplemental oxygen')!;
    expect(o2.valueBoolean).toBe(true);
    expect(obs).toHaveLength(7);

    // MRN subjects are logical references by identifier.
    const dev2 = `mon-mrn-${randomUUID().slice(0, 6)}`;
    await monitor.publish('ward/4A/bed/10/vitals', reading(dev2, 1, { patient: 'mrn:MRN-77', ts: `${minute}:20.000Z` }));
    await waitFor(() => rig.repo.isStored(dev2, 1), 10_000, 'mrn reading stored');
    rig.repo.queueMinuteBundles();
    const mrnBundle = (rig.db.prepare(`SELECT resource_json FROM outbox WHERE resource_type = 'Bundle'`).all() as { resource_json: string }[])
      .map((r) => JSON.parse(r.resource_json) as Bundle)
      .find((b) => (b.entry![0]!.resource as Observation).subject?.identifier?.value === 'MRN-77')!;
    expect((mrnBundle.entry![0]!.resource as Observation).subject).toEqual({ identifier: { system: MRN_SYSTEM, value: 'MRN-77' } });

    // No patient: stored locally, nothing queued.
    const dev3 = `mon-nopt-${randomUUID().slice(0, 6)}`;
    const outboxBefore = (rig.db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;
    await monitor.publish('ward/4A/bed/11/vitals', reading(dev3, 1, { patient: undefined }));
    await waitFor(() => rig.repo.isStored(dev3, 1), 10_000, 'anonymous reading stored');
    rig.repo.queueMinuteBundles();
    expect((rig.db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n).toBe(outboxBefore);
  });
});

describe('vitals ingest: broker credentials and TLS (mosquitto)', () => {
  it('connects with the user name and password from a mosquitto_passwd file; wrong ones never bring the link up', async () => {
    const broker = await Mosquitto.start({ users: { 'nw-ingest': 'ingest secret 1', 'mon-1': 'monitor secret' } });
    const good = await startIngest(broker.url, { username: 'nw-ingest', password: 'ingest secret 1' });
    const bad = await startIngest(broker.url, { username: 'nw-ingest', password: 'wrong' });
    try {
      await linkUp(good);
      const monitor = await TestPublisher.connect(broker.url, 'mon-auth-1', { username: 'mon-1', password: 'monitor secret' });
      await monitor.publish('ward/ICU/bed/1/vitals', reading('mon-auth-1', 1));
      await waitFor(() => good.repo.isStored('mon-auth-1', 1), 10_000, 'reading stored over an authenticated link');
      await monitor.end();
      await new Promise((r) => setTimeout(r, 1000));
      expect(bad.ingest.stats.linkUp).toBe(false);
      expect(bad.links).toEqual([]);
      expect(bad.ingest.stats.lastError).toMatch(/Not authorized|Bad username or password/i);
      expect(bad.repo.count()).toBe(0);
    } finally {
      await good.stop();
      await bad.stop();
      await broker.stop();
    }
  });

  it('connects over TLS to a broker with a certificate from its own CA (mutual TLS) and refuses an unknown CA', async () => {
    const certDir = tempDir('nw-tls-');
    const tls = makeTlsMaterial(certDir);
    const broker = await Mosquitto.start({ tls: { ...tls, requireCertificate: true } });
    const rig = await startIngest(broker.url, { tls: { caFile: tls.caFile, certFile: tls.clientCertFile, keyFile: tls.clientKeyFile } });
    const otherCaDir = tempDir('nw-tls-other-');
    const otherCa = makeTlsMaterial(otherCaDir);
    const untrusting = await startIngest(broker.url, { tls: { caFile: otherCa.caFile, certFile: tls.clientCertFile, keyFile: tls.clientKeyFile } });
    try {
      await linkUp(rig);
      const monitor = await TestPublisher.connect(broker.url, 'mon-tls-1', { ca: readFileSync(tls.caFile), cert: readFileSync(tls.clientCertFile), key: readFileSync(tls.clientKeyFile) });
      await monitor.publish('ward/ICU/bed/2/vitals', reading('mon-tls-1', 1));
      await waitFor(() => rig.repo.isStored('mon-tls-1', 1), 10_000, 'reading stored over TLS');
      await monitor.end();
      expect(untrusting.ingest.stats.linkUp).toBe(false);
      expect(untrusting.ingest.stats.lastError).toMatch(/certificate|self.signed|unable to verify/i);
    } finally {
      await rig.stop();
      await untrusting.stop();
      await broker.stop();
      rmSync(certDir, { recursive: true, force: true });
      rmSync(otherCaDir, { recursive: true, force: true });
    }
  });
});

describe('vitals ingest: acknowledgement after storing (mosquitto)', () => {
  it('a failed store leaves the reading unacknowledged and the broker redelivers it; a store that committed before the failure is not stored twice', async () => {
    const broker = await Mosquitto.start();
    const store = openStore();
    const repo = new VitalsRepo(store.db, () => new Date());
    const plan: ('fail-before' | 'fail-after')[] = [];
    const sink: VitalsSink = {
      storeBatch(readings, at) {
        const step = readings.some((r) => r.payload.deviceId === 'mon-flaky') ? plan.shift() : undefined;
        if (step === 'fail-after') repo.storeBatch(readings, at); // committed, then the process "fails" before the PUBACK
        if (step) throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
        return repo.storeBatch(readings, at);
      },
    };
    const rig = await startIngest(broker.url, { sink }, store);
    try {
      await linkUp(rig);
      const monitor = await TestPublisher.connect(broker.url, 'mon-flaky');
      // One at a time, so that each batch holds one of them.
      plan.push('fail-before');
      await monitor.publish('ward/ICU/bed/3/vitals', reading('mon-flaky', 1)); // fails, redelivered, stored
      await waitFor(() => repo.isStored('mon-flaky', 1), 15_000, 'reading 1 stored on redelivery', () => rig.ingest.stats);
      plan.push('fail-after');
      await monitor.publish('ward/ICU/bed/3/vitals', reading('mon-flaky', 2)); // stored, "fails", redelivered, duplicate
      await waitFor(() => repo.isStored('mon-flaky', 2) && rig.ingest.stats.rejected.duplicate >= 1, 15_000, 'redelivered reading 2 handled', () => rig.ingest.stats);
      await monitor.end();
      expect(repo.count({ deviceId: 'mon-flaky' })).toBe(2);
      // Reading 2 counts as a duplicate, not as accepted: its first store "failed" from the ingest's view.
      expect(rig.ingest.stats).toMatchObject({ storeErrors: 2, accepted: 1 });
      expect(rig.ingest.stats.rejected.duplicate).toBe(1);
      expect(rig.links.filter((l) => !l.up).length).toBeGreaterThanOrEqual(1); // the connection was dropped to get the redelivery
      // The broker redelivers right after CONNACK, before the SUBACK that marks the link up: wait for it.
      await waitFor(() => rig.ingest.stats.linkUp, 10_000, 'link up again after the redelivery');
    } finally {
      await rig.stop();
      await broker.stop();
    }
  });
});

describe('embedded broker (aedes)', () => {
  it('is started only when no broker URL is configured, honours credentials and shuts down cleanly', async () => {
    expect(await resolveVitalsBroker('mqtt://broker.example:1883')).toEqual({ url: 'mqtt://broker.example:1883', embedded: null });
    const credentialStore = openStore();
    const credentials = new MonitorCredentialsRepo(credentialStore.db, () => new Date());
    const { url, embedded } = await resolveVitalsBroker(null, { port: 0, monitors: credentials });
    expect(embedded).not.toBeNull();
    expect(url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
    const rig = await startIngest(url, { ...embedded!.workstationCredentials });
    const intruder = await startIngest(url, { username: embedded!.workstationCredentials.username, password: 'nope' });
    const anonymous = await startIngest(url);
    try {
      await linkUp(rig);
      const monitor = await TestPublisher.connect(url, 'mon-emb-1', credentials.create({ ward: '3B', beds: ['4'], createdBy: 'test' }).secrets[0]!);
      await monitor.publish('ward/3B/bed/4/vitals', reading('mon-emb-1', 1));
      await waitFor(() => rig.repo.isStored('mon-emb-1', 1), 10_000, 'reading stored via the embedded broker');
      await monitor.end();
      expect(intruder.ingest.stats.linkUp).toBe(false);
      expect(anonymous.ingest.stats.linkUp).toBe(false);
      expect(anonymous.ingest.stats.lastError).toMatch(/Not authorized/i);
      // Clean shutdown: the ingest sees the link go down; closing twice is harmless.
      await embedded!.close();
      await embedded!.close();
      await waitFor(() => !rig.ingest.stats.linkUp, 5000, 'link down after the broker closed');
      expect(rig.links.at(-1)?.up).toBe(false);
    } finally {
      await rig.stop();
      await intruder.stop();
      await anonymous.stop();
      await embedded!.close();
      credentialStore.close();
    }
  });
});

describe('vitals store: uniqueness, audit, downsampling and retention', () => {
  it('never stores a (deviceId, seq) twice, even through a second connection or a raw INSERT', () => {
    const store = openStore();
    const key = randomBytes(32);
    store.db.close();
    const file = path.join(store.dir, 'race.db');
    const a = openEncryptedDatabase(file, key, { create: true });
    applyMigrations(a, () => new Date().toISOString());
    const b = openEncryptedDatabase(file, key, { create: false });
    try {
      const repoA = new VitalsRepo(a, () => new Date());
      const repoB = new VitalsRepo(b, () => new Date());
      const r = reading('mon-race', 5);
      expect(repoA.store({ ward: 'W', bed: '1' }, r).status).toBe('stored');
      expect(repoB.store({ ward: 'W', bed: '2' }, r).status).toBe('duplicate');
      expect(() =>
        b.prepare(`INSERT INTO vitals_readings (ward, bed, device_id, seq, ts, received_at) VALUES ('W', '1', 'mon-race', 5, 'x', 'y')`).run(),
      ).toThrow(/UNIQUE/);
      expect(() =>
        b.prepare(`INSERT INTO vitals_readings (ward, bed, device_id, seq, ts, received_at, hr) VALUES ('W', '1', 'mon-race', 6, 'x', 'y', 900)`).run(),
      ).toThrow(/CHECK/);
      expect(repoA.count()).toBe(1);
      expect((a.prepare('SELECT count(*) AS n FROM vitals_bundles_pending').get() as { n: number }).n).toBe(1);
    } finally {
      a.close();
      b.close();
      rmSync(store.dir, { recursive: true, force: true });
    }
  });

  it('appends an audit entry in the same transaction when asked; the ledger stays intact', () => {
    const store = openStore();
    try {
      const ledger = new AuditLedger(store.db, () => new Date());
      const repo = new VitalsRepo(store.db, () => new Date(), { audit: ledger });
      repo.store({ ward: 'W', bed: '1' }, reading('mon-audit', 1));
      repo.store({ ward: 'W', bed: '1' }, reading('mon-audit', 1));
      const entries = [...ledger.iterate()];
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({ action: 'vitals.reading.create', entity_id: 'mon-audit:1', patient_id: PATIENT.slice('Patient/'.length), channel: 'mqtt' });
      expect(ledger.verify().ok).toBe(true);
    } finally {
      store.close();
    }
  });

  it('stores a batch in one transaction: a reading the checks refuse is answered alone; one bundle per patient minute', () => {
    const store = openStore();
    const ts = '2026-11-21T09:30:10.000Z';
    let now = Date.parse(ts);
    try {
      const repo = new VitalsRepo(store.db, () => new Date(now));
      const other = `Patient/${randomUUID()}`;
      const outcomes = repo.storeBatch([
        { bed: { ward: 'W', bed: '1' }, payload: reading('mon-b1', 1, { ts, hr: 71 }) },
        { bed: { ward: 'W', bed: '1' }, payload: reading('mon-b1', 2, { ts, hr: 900 }) }, // past the zod checks only in a test: the table's CHECK refuses it
        { bed: { ward: 'W', bed: '1' }, payload: reading('mon-b1', 3, { ts, hr: 73 }) },
        { bed: { ward: 'W', bed: '1' }, payload: reading('mon-b1', 3, { ts, hr: 73 }) }, // the same reading twice in one batch
        { bed: { ward: 'W', bed: '2' }, payload: reading('mon-b2', 1, { ts, patient: other }) },
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['stored', 'refused', 'stored', 'duplicate', 'stored']);
      expect(outcomes[1]!.status === 'refused' && outcomes[1]!.error.message).toMatch(/CHECK/);
      expect(repo.count()).toBe(3);
      const bundles = () =>
        (store.db.prepare(`SELECT resource_json FROM outbox WHERE resource_type = 'Bundle' ORDER BY id`).all() as { resource_json: string }[]).map((b) => JSON.parse(b.resource_json) as Bundle);
      const heartRates = () =>
        bundles()
          .filter((b) => JSON.stringify(b).includes(PATIENT))
          .map((b) => b.entry!.map((e) => e.resource as Observation).find((o) => o.code.coding?.[0]?.code === '8867-4')!.valueQuantity?.value);
      // The batch marked two patient minutes; their bundles wait for the minute to end.
      expect(store.db.prepare('SELECT count(*) AS n FROM vitals_bundles_pending').get()).toEqual({ n: 2 });
      expect(bundles()).toEqual([]);
      now += 50_000 + MINUTE_GRACE_MS - 1; // the minute has ended, its grace not quite
      expect(repo.dueMinuteBundles()).toBe(0);
      expect(repo.queueMinuteBundles()).toBe(0);
      now += 1;
      expect(repo.dueMinuteBundles()).toBe(2);
      expect(repo.queueMinuteBundles(1)).toBe(1); // in chunks, as the app spreads them
      expect(repo.queueMinuteBundles()).toBe(1);
      expect(bundles()).toHaveLength(2); // one per patient minute, not one per reading
      expect(heartRates()).toEqual([73]); // the minute's latest
      expect(repo.queueMinuteBundles()).toBe(0); // once

      // A reading that comes late for that minute amends its bundle while the sync has not started on it…
      repo.store({ ward: 'W', bed: '1' }, reading('mon-b1', 4, { ts: '2026-11-21T09:30:50.000Z', hr: 75 }));
      expect(repo.queueMinuteBundles()).toBe(1);
      expect(heartRates()).toEqual([75]);
      // …and queues a new one once it has (attempts > 0), with the same Observation ids (PUT: no duplicates on the server).
      store.db.prepare('UPDATE outbox SET attempts = 1').run();
      repo.store({ ward: 'W', bed: '1' }, reading('mon-b1', 5, { ts: '2026-11-21T09:30:55.000Z', hr: 77 }));
      expect(repo.queueMinuteBundles()).toBe(1);
      expect(heartRates()).toEqual([75, 77]);
      const [sent, resent] = bundles().filter((b) => JSON.stringify(b).includes(PATIENT));
      expect(resent!.entry!.map((e) => e.request!.url)).toEqual(sent!.entry!.map((e) => e.request!.url));
    } finally {
      store.close();
    }
  });

  it('rolls a whole batch back when storing fails midway: nothing of it is stored', () => {
    const store = openStore();
    try {
      const ledger = new AuditLedger(store.db, () => new Date());
      const repo = new VitalsRepo(store.db, () => new Date(), { audit: ledger });
      const append = ledger.append.bind(ledger);
      let calls = 0;
      ledger.append = (entry) => {
        calls += 1;
        if (calls === 3) throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
        return append(entry);
      };
      const batch = [1, 2, 3, 4].map((seq) => ({ bed: { ward: 'W', bed: '1' }, payload: reading('mon-rb', seq) }));
      expect(() => repo.storeBatch(batch)).toThrow(/disk I\/O error/);
      expect(repo.count()).toBe(0);
      expect(store.db.prepare('SELECT count(*) AS n FROM outbox').get()).toEqual({ n: 0 });
      expect(store.db.prepare('SELECT count(*) AS n FROM vitals_bundles_pending').get()).toEqual({ n: 0 });
      expect([...ledger.iterate()]).toHaveLength(0);
      expect(repo.storeBatch(batch).map((o) => o.status)).toEqual(['stored', 'stored', 'stored', 'stored']); // the redelivery
      expect(ledger.verify().ok).toBe(true);
    } finally {
      store.close();
    }
  });

  it('classifies messages without a broker', () => {
    expect(classifyMessage('ward/a/bed/b/vitals', Buffer.from(JSON.stringify(reading('d', 1))))).toMatchObject({ ok: true, bedKey: 'a/b' });
    expect(classifyMessage('ward/a/bed/b/vitals/extra', Buffer.from('{}'))).toMatchObject({ ok: false, reason: 'bad-topic', bedKey: null });
    expect(classifyMessage('ward/a/bed/b/vitals', Buffer.from(JSON.stringify({ ...reading('d', 1), rr: 500, hr: 'x' })))).toMatchObject({ ok: false, reason: 'schema' });
  });

  it('downsamples per bed per minute (late readings included) and applies retention: raw 7 days, minutes 90 days', () => {
    const store = openStore();
    let now = Date.parse('2026-11-21T12:00:00Z');
    const repo = new VitalsRepo(store.db, () => new Date(now));
    try {
      const bed = { ward: 'W', bed: '1' };
      const at = (iso: string, seq: number, extra: Partial<VitalsPayload> = {}) => repo.store(bed, reading('mon-ds', seq, { ts: iso, ...extra }), new Date(now));
      at('2026-11-21T11:58:10Z', 1, { hr: 60, acvpu: 'A', o2: false });
      at('2026-11-21T11:58:40Z', 2, { hr: 80, acvpu: 'V', o2: true, fault: 'leads-off' });
      at('2026-11-21T11:59:05Z', 3, { hr: 100, sbp: undefined, dbp: undefined });
      expect(repo.downsample()).toBe(2);
      let minutes = repo.minutes(bed);
      expect(minutes.map((m) => [m.minute, m.n, m.hr])).toEqual([
        ['2026-11-21T11:58', 2, { min: 60, max: 80, avg: 70 }],
        ['2026-11-21T11:59', 1, { min: 100, max: 100, avg: 100 }],
      ]);
      expect(minutes[0]).toMatchObject({ acvpuWorst: 'V', o2Any: true, faults: 1, patientRef: PATIENT });
      expect(minutes[1]!.sbp).toBeNull();
      // A late reading for 11:58 (queued during a link loss) is folded into that minute at the next run.
      at('2026-11-21T11:58:50Z', 4, { hr: 90, acvpu: 'A' });
      expect(repo.downsample()).toBe(1);
      minutes = repo.minutes(bed);
      expect(minutes[0]).toMatchObject({ n: 3, hr: { min: 60, max: 90, avg: 230 / 3 }, acvpuWorst: 'V' });
      expect(repo.downsample()).toBe(0);

      // 8 days later: raw readings go, their minutes stay; 91 days later the minutes go too.
      now += 8 * 86_400_000;
      at('2026-11-29T12:00:00Z', 5);
      const r1 = repo.applyRetention();
      expect(r1).toEqual({ downsampled: 1, rawDeleted: 4, minutesDeleted: 0 });
      expect(repo.count()).toBe(1);
      expect(repo.minutes(bed)).toHaveLength(3);
      now += 91 * 86_400_000;
      const r2 = repo.applyRetention({ rawDays: 7, aggregateDays: 90 });
      expect(r2).toEqual({ downsampled: 0, rawDeleted: 1, minutesDeleted: 3 });
      expect(repo.minutes(bed)).toHaveLength(0);
    } finally {
      store.close();
    }
  });
});
