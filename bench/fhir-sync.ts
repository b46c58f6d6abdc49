/**
 * FHIR sync benchmark (issue 10 item 7): drains 10,000 queued vital-signs Observations to a real FHIR
 * server on loopback (@medplum/fhir-router + MemoryRepository behind test/support/fhir-server.ts, in a
 * child process of its own, so its CPU is not the workstation's), once in batch Bundles and once with one
 * HTTP request per resource, in the same run, and prints resources/s, the ratio and the memory peak.
 * Run with `node bench/fhir-sync.mjs` (see bench/README.md). Prints figures; never fails on a slow machine.
 *
 * Per mode: a fresh encrypted store (SQLCipher, WAL, synchronous=FULL, its WAL checkpoints on a worker
 * thread as the app's StoreService runs them) in a temp dir, a fresh server
 * process, the same Observations queued the way the ward queues them (one transaction Bundle per patient
 * minute, vitals/observations.ts vitalsMinuteBundle, through ValidatingOutbox: each row checked against
 * the R4 definitions and the vital-signs profiles once, at enqueue), then FhirSyncEngine.runOnce() until
 * drained, timed from the first claim to the last recorded outcome. Afterwards the server is asked how
 * many Observations it holds and how many versions it stored (each must be exactly the count queued).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Bundle } from '@medplum/fhirtypes';
import { openEncryptedDatabase } from '../src/main/store/database.js';
import { applyMigrations } from '../src/main/store/migrations.js';
import { WalCheckpointer } from '../src/main/store/checkpointer.js';
import { Outbox } from '../src/main/store/outbox.js';
import { FhirValidator, ValidatingOutbox } from '../src/main/fhir/validation.js';
import { FhirSyncEngine } from '../src/main/fhir/sync/sync-engine.js';
import { DEFAULT_PIPELINE_DEPTH, syncServer } from '../src/main/fhir/sync/settings.js';
import { vitalsMinuteBundle, VITAL_KINDS } from '../src/main/vitals/observations.js';
import type { StoredReading } from '../src/main/vitals/vitals-repo.js';
import { serveFhirServerChild, startFhirServerChild } from './fhir-server-child.js';

interface Options {
  count: number;
  bundle: number;
  perResource: number;
  depth: number;
}

const USAGE = 'node bench/fhir-sync.mjs [--count=10000] [--bundle=100] [--per-resource=N (default: --count)] [--depth=2]';

function parseOptions(argv: string[]): Options {
  const options: Options = { count: 10_000, bundle: 100, perResource: -1, depth: DEFAULT_PIPELINE_DEPTH };
  for (const arg of argv) {
    const match = /^--(count|bundle|per-resource|depth)=(\d+)$/.exec(arg);
    if (!match) {
      console.error(`fhir-sync: bad argument ${arg}\nusage: ${USAGE}`);
      process.exit(2);
    }
    const value = Number(match[2]);
    if (match[1] === 'count') options.count = value;
    else if (match[1] === 'bundle') options.bundle = value;
    else if (match[1] === 'depth') options.depth = Math.max(1, value);
    else options.perResource = value;
  }
  if (options.perResource < 0) options.perResource = options.count;
  return options;
}

// ---------------------------------------------------------------------------------------------
// The server child (fhir-server-child.ts): Observations on it, versions stored, its CPU.

interface ServerStats {
  observations: number;
  versions: number;
  maxRssMb: number;
  cpuSeconds: number;
}

interface ServerChild {
  baseUrl: string;
  stats(): Promise<ServerStats>;
  stop(): Promise<void>;
}

async function startServerChild(): Promise<ServerChild> {
  const child = await startFhirServerChild(import.meta.url);
  return {
    baseUrl: child.baseUrl,
    stats: async () => {
      const s = await child.stats();
      return { observations: s.current.Observation ?? 0, versions: s.versions.Observation ?? 0, maxRssMb: s.maxRssMb, cpuSeconds: s.cpuSeconds };
    },
    stop: () => child.stop(),
  };
}

// ---------------------------------------------------------------------------------------------
// The workload: vital-signs minute bundles, as the ward queues them.

function reading(patient: number, minute: number, seq: number): StoredReading {
  const ts = new Date(Date.UTC(2026, 2, 1, 8, 0, 0) + minute * 60_000 + 20_000).toISOString();
  return {
    id: seq,
    ward: '4A',
    bed: String(patient + 1),
    deviceId: `mon-${patient + 1}`,
    seq,
    patientRef: `Patient/bench-patient-${patient}`,
    ts,
    receivedAt: ts,
    hr: 60 + ((patient + minute) % 50),
    spo2: 90 + (minute % 10),
    rr: 12 + (patient % 10),
    tempC: 36 + (minute % 20) / 10,
    sbp: 110 + (patient % 30),
    dbp: 70 + (minute % 15),
    acvpu: 'A',
    o2: minute % 7 === 0,
    fault: null,
    monitorPatientRef: null,
    patientConflict: null,
  };
}

/** Minute bundles holding exactly `count` Observations (7 vitals a minute; the last bundle may hold fewer). */
function minuteBundles(count: number): (Bundle & { id: string })[] {
  const bundles: (Bundle & { id: string })[] = [];
  let left = count;
  for (let i = 0; left > 0; i++) {
    const patient = i % 50;
    const minute = Math.floor(i / 50);
    const bundle = vitalsMinuteBundle([reading(patient, minute, i + 1)], `Patient/bench-patient-${patient}`, new Date(Date.UTC(2026, 2, 1, 8, minute)).toISOString().slice(0, 16), new Date())!;
    if (left < VITAL_KINDS.length) bundle.entry = bundle.entry!.slice(0, left);
    left -= bundle.entry!.length;
    bundles.push(bundle);
  }
  return bundles;
}

// ---------------------------------------------------------------------------------------------

interface ModeResult {
  mode: string;
  queued: number;
  seconds: number;
  perSecond: number;
  requests: number;
  sent: number;
  enqueuePerSecond: number;
  peakRssMb: number;
  peakHeapMb: number;
  /** CPU seconds during the drain: the workstation process (all its threads) and the server process. */
  workstationCpuSeconds: number;
  serverCpuSeconds: number;
  server: ServerStats;
}

async function runMode(mode: 'bundle' | 'per-resource', count: number, bundleEntries: number, depth: number, validator: FhirValidator): Promise<ModeResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nw-fhir-sync-bench-'));
  const server = await startServerChild();
  try {
    const key = randomBytes(32);
    const file = path.join(dir, 'bench.db');
    const db = openEncryptedDatabase(file, key, { create: true });
    applyMigrations(db, () => new Date().toISOString());
    // WAL checkpoints on a worker thread, as the app's StoreService runs them (store/checkpointer.ts).
    const checkpointer = WalCheckpointer.start(db, file, key, { log: (message) => console.log(`  checkpointer: ${message}`) });
    const outbox = new ValidatingOutbox(new Outbox(db, () => new Date()), validator);
    const bundles = minuteBundles(count);
    const enqueueStarted = performance.now();
    for (let i = 0; i < bundles.length; i += 200) db.transaction(() => bundles.slice(i, i + 200).forEach((b) => outbox.enqueue('create', b)))();
    const enqueueSeconds = (performance.now() - enqueueStarted) / 1000;

    const engine = new FhirSyncEngine({ db, servers: [syncServer({ name: 'loopback', baseUrl: server.baseUrl, maxBundleEntries: bundleEntries, requestMode: mode, pipelineDepth: depth })], validator });
    global.gc?.();
    let peakRss = process.memoryUsage().rss;
    let peakHeap = process.memoryUsage().heapUsed;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed);
    }, 20);
    const serverBefore = await server.stats();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    let requests = 0;
    let sent = 0;
    for (;;) {
      const report = await engine.runOnce({ force: true });
      const s = report.servers[0]!;
      requests += s.requests;
      sent += s.sent + s.adopted;
      if (s.state === 'drained') break;
      console.log(`  ${mode}: ${s.state}: ${s.error ?? ''} (trying again)`);
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    clearInterval(sampler);
    const stats = await server.stats();
    await engine.close();
    checkpointer.stop();
    db.close();
    return {
      mode: mode === 'bundle' ? `batch Bundles of ${bundleEntries}, ${depth} on the wire` : `one request per resource, ${depth} on the wire`,
      queued: count,
      seconds,
      perSecond: count / seconds,
      requests,
      sent,
      enqueuePerSecond: count / enqueueSeconds,
      peakRssMb: peakRss / 1048576,
      peakHeapMb: peakHeap / 1048576,
      workstationCpuSeconds: (cpu.user + cpu.system) / 1e6,
      serverCpuSeconds: stats.cpuSeconds - serverBefore.cpuSeconds,
      server: stats,
    };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The server's own ceiling: the same Observations sent by a bare HTTP client (pre-serialised bodies,
 * nothing recorded, no store), as batch Bundles and as one PUT per resource at 1 and 32 requests on
 * the wire. Shows how much of the drain time is the server's, and what ratio this server allows at all.
 */
async function serverCeiling(count: number, bundleEntries: number): Promise<{ mode: string; perSecond: number; serverCpuSeconds: number }[]> {
  const observations = minuteBundles(count).flatMap((b) => b.entry!.map((e) => e.resource!));
  const results: { mode: string; perSecond: number; serverCpuSeconds: number }[] = [];
  const measure = async (mode: string, send: (baseUrl: string) => Promise<void>): Promise<void> => {
    const server = await startServerChild();
    try {
      const before = await server.stats();
      const started = performance.now();
      await send(server.baseUrl);
      const seconds = (performance.now() - started) / 1000;
      const after = await server.stats();
      if (after.observations !== count) throw new Error(`${mode}: the server holds ${after.observations} Observations, ${count} sent`);
      results.push({ mode, perSecond: count / seconds, serverCpuSeconds: after.cpuSeconds - before.cpuSeconds });
    } finally {
      await server.stop();
    }
  };
  const fhirJson = { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' };
  const post = async (url: string, init: RequestInit): Promise<void> => {
    const response = await fetch(url, init);
    if (!response.ok) throw new Error(`${init.method} ${url}: HTTP ${response.status}`);
    await response.arrayBuffer();
  };
  /** Runs `tasks` with at most `depth` in flight. */
  const pool = async (tasks: (() => Promise<void>)[], depth: number): Promise<void> => {
    let next = 0;
    await Promise.all(Array.from({ length: depth }, async () => {
      while (next < tasks.length) await tasks[next++]!();
    }));
  };
  const bodies: string[] = [];
  for (let i = 0; i < observations.length; i += bundleEntries) {
    const entry = observations.slice(i, i + bundleEntries).map((r) => ({ resource: r, request: { method: 'PUT', url: `Observation/${r.id}` } }));
    bodies.push(JSON.stringify({ resourceType: 'Bundle', type: 'batch', entry }));
  }
  await measure(`bare client, batch Bundles of ${bundleEntries}, 2 on the wire`, (base) => pool(bodies.map((body) => () => post(base, { method: 'POST', headers: fhirJson, body })), 2));
  // The engine's form of the same Bundles (each entry with its fullUrl, as server-client.ts sends them):
  // shows whether the form costs the server anything.
  await measure(`bare client, the same with fullUrl per entry`, (base) => {
    const withFullUrl: string[] = [];
    for (let i = 0; i < observations.length; i += bundleEntries) {
      const entry = observations.slice(i, i + bundleEntries).map((r) => ({ fullUrl: `${base}/Observation/${r.id}`, resource: r, request: { method: 'PUT', url: `Observation/${r.id}` } }));
      withFullUrl.push(JSON.stringify({ resourceType: 'Bundle', type: 'batch', entry }));
    }
    return pool(withFullUrl.map((body) => () => post(base, { method: 'POST', headers: fhirJson, body })), 2);
  });
  for (const depth of [1, 32]) {
    await measure(`bare client, one PUT per resource, ${depth} on the wire`, (base) =>
      pool(observations.map((r) => () => post(`${base}/Observation/${r.id}`, { method: 'PUT', headers: fhirJson, body: JSON.stringify(r) })), depth),
    );
  }
  return results;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2).filter((a) => a !== '--server'));
  const validator = new FhirValidator();
  const heapBefore = process.memoryUsage().heapUsed;
  validator.validate({ resourceType: 'Patient' }); // loads the definitions before anything is timed
  global.gc?.();
  const definitionsMb = (process.memoryUsage().heapUsed - heapBefore) / 1048576;
  console.log(`fhir-sync: ${options.count} Observations (vital-signs minute Bundles, ≤ 7 each) → loopback FHIR server (Medplum router + MemoryRepository, own process); Node ${process.version}, ${os.availableParallelism()} CPUs, load average ${os.loadavg()[0]!.toFixed(2)}`);
  const bundled = await runMode('bundle', options.count, options.bundle, options.depth, validator);
  // One request per resource, with the same engine settings (the same number of requests on the wire),
  // and as a plain client sends them: one at a time.
  const single = await runMode('per-resource', options.perResource, options.bundle, options.depth, validator);
  const sequential = options.depth > 1 ? await runMode('per-resource', options.perResource, options.bundle, 1, validator) : single;
  const rows = options.depth > 1 ? [bundled, single, sequential] : [bundled, single];
  const pad = (s: string, n: number) => s.padEnd(n);
  console.log('');
  console.log(`${pad('mode', 46)}${pad('resources', 11)}${pad('seconds', 9)}${pad('res/s', 9)}${pad('requests', 10)}${pad('on server', 11)}${pad('versions', 10)}${pad('peak RSS', 10)}${pad('peak heap', 11)}${pad('server RSS', 12)}CPU s workstation / server`);
  for (const r of rows) {
    console.log(
      `${pad(r.mode, 46)}${pad(String(r.queued), 11)}${pad(r.seconds.toFixed(2), 9)}${pad(r.perSecond.toFixed(0), 9)}${pad(String(r.requests), 10)}${pad(String(r.server.observations), 11)}${pad(String(r.server.versions), 10)}${pad(`${r.peakRssMb.toFixed(0)} MB`, 10)}${pad(`${r.peakHeapMb.toFixed(0)} MB`, 11)}${pad(`${r.server.maxRssMb.toFixed(0)} MB`, 12)}${r.workstationCpuSeconds.toFixed(2)} / ${r.serverCpuSeconds.toFixed(2)}`,
    );
  }
  const ratio = bundled.perSecond / single.perSecond;
  const ratioSequential = bundled.perSecond / sequential.perSecond;
  console.log('');
  console.log(`ratio bundles / one-by-one with the same ${options.depth} request(s) on the wire: ${ratio.toFixed(1)}×`);
  if (options.depth > 1) console.log(`ratio bundles / one-by-one, one request at a time: ${ratioSequential.toFixed(1)}×`);
  console.log(`queueing (validate + enqueue, not in the drain figures): ${bundled.enqueuePerSecond.toFixed(0)} Observations/s`);
  console.log(`goal ≥ 1,000 resources/s with bundles: ${bundled.perSecond >= 1000 ? 'met' : 'NOT met'} (${bundled.perSecond.toFixed(0)}); goal ≥ 10× one-by-one: ${ratio >= 10 ? 'met' : 'NOT met'} at equal concurrency (${ratio.toFixed(1)}×)${options.depth > 1 ? `, ${ratioSequential >= 10 ? 'met' : 'NOT met'} against one request at a time (${ratioSequential.toFixed(1)}×)` : ''}`);
  for (const r of rows) {
    if (r.server.observations !== r.queued || r.server.versions !== r.queued) console.log(`WARNING ${r.mode}: the server holds ${r.server.observations} Observations in ${r.server.versions} versions for ${r.queued} queued`);
  }
  const ceiling = await serverCeiling(options.count, options.bundle);
  console.log('');
  console.log(`${pad('the server alone (bare HTTP client, nothing recorded)', 58)}${pad('res/s', 9)}server CPU s`);
  for (const c of ceiling) console.log(`${pad(c.mode, 58)}${pad(c.perSecond.toFixed(0), 9)}${c.serverCpuSeconds.toFixed(2)}`);
  const [bareBundles, , bareOne, bare32] = ceiling as [(typeof ceiling)[0], (typeof ceiling)[0], (typeof ceiling)[0], (typeof ceiling)[0]];
  console.log(`ratio the server allows, bundles / one PUT at a time: ${(bareBundles.perSecond / bareOne.perSecond).toFixed(1)}×; bundles / 32 PUTs on the wire: ${(bareBundles.perSecond / bare32.perSecond).toFixed(1)}×`);
  console.log(`engine drain in Bundles vs the bare client's Bundles: ${((100 * bundled.perSecond) / bareBundles.perSecond).toFixed(0)} %`);
  console.log(`workstation process max RSS over the whole run: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB; of the heap, the R4 definitions the validator loads take about ${definitionsMb.toFixed(0)} MB`);
}

if (process.argv.includes('--server')) await serveFhirServerChild();
else await main();
