/**
 * Ward monitoring load benchmark: simulated bedside monitors (a child process) → MQTT broker (a real
 * mosquitto started here on loopback, or the embedded aedes the app starts itself) → the workstation's
 * real pipeline in THIS process: WardService = VitalsIngest → VitalsRepo (encrypted SQLite, WAL,
 * synchronous=FULL) → AlarmEngine, composed as src/main/app/app.ts does. Run with
 * `node bench/ward-load.mjs` (see bench/README.md). Prints figures; never fails on a slow machine.
 *
 * Per run: a fresh encrypted store in a temp dir, a fresh broker, a fresh WardService, a fresh
 * publisher process. Publishers run for `--warmup` + `--seconds`; only readings published (payload
 * `ts`) inside the `--seconds` window count for latency, CPU and timer lag; delivery counts
 * every reading of the run.
 *
 * --import=DIR (or --import=synthetic: a 5,200-file, 102 MB classic series written here with pydicom):
 * 1 s into each window a radiologist's import of that DICOM series runs in the same process (with
 * --imports=N, N imports one after the other),
 * through the app's ImagingService (reads, mask and checks on the imaging-io worker, the fit on its
 * workers, the volumes written in chunks to the same store), and the figures are also given for the
 * readings published while it ran.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { vitalsAt } from '../src/cli/simulate-ward.js';
import { mulberry32 } from '../src/shared/random.js';
import { canConnect, freePort } from '../test/support/net.js';
import { WalCheckpointer } from '../src/main/store/checkpointer.js';
import { openEncryptedDatabase, type Db } from '../src/main/store/database.js';
import { applyMigrations } from '../src/main/store/migrations.js';
import { AlarmEngine, type AlarmEvent, type VitalsReading } from '../src/main/vitals/alarms.js';
import { MonitorCredentialsRepo } from '../src/main/vitals/monitor-credentials.js';
import { VitalsRepo } from '../src/main/vitals/vitals-repo.js';
import { WardService } from '../src/main/vitals/ward-service.js';
import { ImagingService } from '../src/main/imaging/imaging-service.js';
import { defaultImagingEngines } from '../src/main/imaging/engines.js';
import { AuditLedger } from '../src/main/security/audit-ledger.js';
import type { ImagingJob } from '../src/shared/ipc.js';
import { appRoot } from '../src/main/workers/locate.js';

const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';
const BEDS_PER_CONNECTION = 100;
/** Alarm beds: 10 s deteriorated, 20 s normal. The engine clears an acknowledged alarm after 10 s of absence (clearDelayS), so 20 s leaves margin for a new occurrence each cycle. */
const CYCLE_MS = 30_000;
const DETERIORATED_MS = 10_000;
const REFERENCE = 'published reference: 180 ms mean latency and 98.5 % delivery at 500 patients; goal: p99 ≤ 50 ms and 100 % delivery at 2000 beds at 1 Hz';
const GOAL_P99_MS = 50;
const TIMER_PERIOD_MS = 50;

type Broker = 'mosquitto' | 'aedes';
interface RunSpec {
  beds: number;
  intervalS: number;
}

interface PublisherPlan {
  url: string;
  tag: string;
  beds: number;
  intervalMs: number;
  alarmFraction: number;
  burst: boolean;
  patient: boolean;
  /** After the last publish, how long to wait for the broker's outstanding PUBACKs before reporting. */
  ackWaitMs: number;
  /**
   * The embedded broker: one credential per bed (index i), each allowed its own bed's topic only, so
   * one connection per bed, as real monitors. Null (mosquitto, anonymous here): BEDS_PER_CONNECTION.
   */
  credentials: { username: string; password: string }[] | null;
}

/** Ward of bed index `i` (beds spread over wards L0…, one per ~BEDS_PER_CONNECTION beds); its bed name is i + 1. */
function wardOf(i: number, beds: number): string {
  return `L${i % Math.max(1, Math.ceil(beds / BEDS_PER_CONNECTION))}`;
}
/** Sent once the publishers are connected; all times in ms since the epoch (both processes read the same clock). */
interface Schedule {
  startAt: number;
  warmupEnd: number;
  measureEnd: number;
}

type ToParent =
  | { type: 'ready' }
  | {
      type: 'done';
      published: number;
      acked: number;
      errors: number;
      windowPublished: number;
      /** Deterioration onsets (normal → deteriorated) whose first deteriorated reading was published in the window. */
      windowEpisodes: number;
      maxLagMs: number;
      cpuPercent: number;
      firstError: string | null;
    };
type ToChild = { type: 'plan'; plan: PublisherPlan } | { type: 'go'; schedule: Schedule };

// ---------------------------------------------------------------------------------------------
// Shared helpers

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, ms));
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

class Samples {
  private data = new Float64Array(4096);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }
  summary(): { n: number; mean: number; p50: number; p95: number; p99: number; max: number } {
    const sorted = this.data.slice(0, this.length).sort();
    let sum = 0;
    for (const v of sorted) sum += v;
    return { n: sorted.length, mean: sorted.length ? sum / sorted.length : Number.NaN, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN };
  }
}

// ---------------------------------------------------------------------------------------------
// The publisher process: one MQTT connection per ~100 beds, QoS 1, each bed a device with its own seq.

async function publisherMain(): Promise<void> {
  const inbox: ToChild[] = [];
  let arrived: (() => void) | null = null;
  process.on('message', (m: ToChild) => {
    inbox.push(m);
    arrived?.();
  });
  const next = async <T extends ToChild['type']>(type: T): Promise<Extract<ToChild, { type: T }>> => {
    for (;;) {
      const found = inbox.find((m): m is Extract<ToChild, { type: T }> => m.type === type);
      if (found) return found;
      await new Promise<void>((resolve) => (arrived = resolve));
    }
  };
  const { plan } = await next('plan');
  const send = (m: ToParent) => new Promise<void>((resolve) => process.send!(m, () => resolve()));
  // The parent owns this process: when it goes, so do we. Ctrl-C reaches the whole group; the parent decides.
  process.on('disconnect', () => process.exit(0));
  process.on('SIGINT', () => undefined);

  const connections = Math.max(1, Math.ceil(plan.beds / BEDS_PER_CONNECTION));
  const clients: MqttClient[] = [];
  let firstError: string | null = null;
  if (plan.credentials) {
    // One connection per bed with its own credential, 50 CONNECTs at a time.
    for (let i = 0; i < plan.beds; i += 50) {
      const batch = plan.credentials.slice(i, Math.min(plan.beds, i + 50));
      clients.push(
        ...(await Promise.all(
          batch.map((credential, k) => mqtt.connectAsync(plan.url, { clientId: `bench-${plan.tag}-b${i + k}`, clean: true, protocolVersion: 4, keepalive: 30, reconnectPeriod: 1000, ...credential })),
        )),
      );
    }
    for (const client of clients) client.on('error', (error) => (firstError ??= error.message));
  } else {
    for (let c = 0; c < connections; c++) {
      const client = await mqtt.connectAsync(plan.url, { clientId: `bench-${plan.tag}-${c}`, clean: true, protocolVersion: 4, keepalive: 30, reconnectPeriod: 1000 });
      client.on('error', (error) => (firstError ??= error.message));
      clients.push(client);
    }
  }

  const random = mulberry32(0x5eed ^ plan.beds);
  const alarmBeds = plan.alarmFraction > 0 ? Math.max(1, Math.round(plan.beds * plan.alarmFraction)) : 0;
  const alarmStep = alarmBeds > 0 ? plan.beds / alarmBeds : Number.POSITIVE_INFINITY;
  interface Bed {
    id: string;
    deviceId: string;
    seq: number;
    topic: string;
    patient: string;
    client: MqttClient;
    phaseMs: number;
    /** Alarm beds: offset into the deterioration cycle; null for stable beds. */
    alarmOffsetMs: number | null;
    wasDeteriorated: boolean;
    baseline: { hr: number; spo2: number; rr: number; tempC: number; sbp: number; dbp: number };
  }
  const beds: Bed[] = Array.from({ length: plan.beds }, (_, i) => {
    const ward = wardOf(i, plan.beds);
    const alarmIndex = Math.floor(i / alarmStep);
    const isAlarmBed = Math.floor(alarmIndex * alarmStep) === i && alarmIndex < alarmBeds;
    return {
      id: String(i + 1),
      deviceId: `bench-${plan.tag}-${i + 1}`,
      seq: 0,
      topic: `ward/${ward}/bed/${i + 1}/vitals`,
      patient: `Patient/${randomUUID()}`,
      // Beds on the same connection are interleaved with the others (bed i → connection i % connections); with credentials, its own.
      client: plan.credentials ? clients[i]! : clients[i % connections]!,
      // Independent monitors: phases spread evenly over the interval (or all at once with --burst).
      phaseMs: plan.burst ? 0 : (i * plan.intervalMs) / plan.beds,
      alarmOffsetMs: isAlarmBed ? (alarmIndex * CYCLE_MS) / alarmBeds : null,
      wasDeteriorated: false,
      baseline: { hr: 66 + Math.round(random() * 16), spo2: 97 + Math.round(random() * 2), rr: 13 + Math.round(random() * 4), tempC: Math.round((36.5 + random() * 0.6) * 10) / 10, sbp: 118 + Math.round(random() * 16), dbp: 70 + Math.round(random() * 10) },
    };
  });

  let published = 0;
  let acked = 0;
  let errors = 0;
  let windowPublished = 0;
  let windowEpisodes = 0;
  let maxLagMs = 0;
  let cpuAtWindow: NodeJS.CpuUsage | null = null;
  let cpuPercent = Number.NaN;

  let schedule: Schedule = { startAt: 0, warmupEnd: 0, measureEnd: 0 };
  const publish = (bed: Bed, now: number) => {
    let deteriorated = false;
    if (bed.alarmOffsetMs !== null) deteriorated = (now - schedule.startAt + bed.alarmOffsetMs) % CYCLE_MS < DETERIORATED_MS;
    // Normal: the simulator's 'stable' vitals (NEWS2 0). Deteriorated: its sepsis drift at 70 %, NEWS2 ≥ 7 (high, no onset
    // delay) without crossing a hard limit (HR < 150, RR ≤ 30, SpO2 ≥ 85, SBP ≥ 80), so one alarm per episode.
    const vitals = deteriorated ? vitalsAt(bed, 'deteriorating', 70, 100, random) : vitalsAt(bed, 'stable', 0, 100, random);
    bed.seq += 1;
    const inWindow = now >= schedule.warmupEnd && now < schedule.measureEnd;
    if (deteriorated && !bed.wasDeteriorated && inWindow) windowEpisodes += 1;
    bed.wasDeteriorated = deteriorated;
    const message = { v: 1, deviceId: bed.deviceId, seq: bed.seq, ...(plan.patient ? { patient: bed.patient } : {}), ts: new Date(now).toISOString(), ...vitals };
    published += 1;
    if (inWindow) windowPublished += 1;
    bed.client.publish(bed.topic, JSON.stringify(message), { qos: 1 }, (error) => {
      if (error) {
        errors += 1;
        firstError ??= error.message;
      } else acked += 1;
    });
  };

  await send({ type: 'ready' });
  schedule = (await next('go')).schedule;
  await sleep(schedule.startAt - Date.now());
  setTimeout(() => (cpuAtWindow = process.cpuUsage()), schedule.warmupEnd - Date.now());

  const order = [...beds].sort((a, b) => a.phaseMs - b.phaseMs);
  await new Promise<void>((resolve) => {
    let round = 0;
    let slot = 0;
    const due = () => schedule.startAt + round * plan.intervalMs + order[slot]!.phaseMs;
    const pump = () => {
      const now = Date.now();
      while (due() <= now) {
        if (due() >= schedule.measureEnd) {
          if (cpuAtWindow) {
            const used = process.cpuUsage(cpuAtWindow);
            cpuPercent = ((used.user + used.system) / 1000 / (now - schedule.warmupEnd)) * 100;
          }
          resolve();
          return;
        }
        maxLagMs = Math.max(maxLagMs, now - due());
        publish(order[slot]!, now);
        slot += 1;
        if (slot === order.length) {
          slot = 0;
          round += 1;
        }
      }
      setTimeout(pump, due() - Date.now());
    };
    pump();
  });

  const deadline = Date.now() + plan.ackWaitMs;
  while (acked + errors < published && Date.now() < deadline) await sleep(20);
  await send({ type: 'done', published, acked, errors, windowPublished, windowEpisodes, maxLagMs, cpuPercent, firstError });
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// The workstation side

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

interface Options {
  seconds: number;
  warmup: number;
  runs: RunSpec[];
  brokers: Broker[];
  alarmFraction: number;
  burst: boolean;
  patient: boolean;
  mosquittoQueue: number | null;
  /** Seconds after the last publish during which readings still count as delivered. */
  drain: number;
  /** A DICOM series folder to import during each window, 'synthetic', or null. */
  importDir: string | null;
  /** Imports one after the other in each window (--imports=N, default 1). */
  imports: number;
}

function parseOptions(): Options {
  const seconds = Number(arg('seconds') ?? 60);
  const warmup = Number(arg('warmup') ?? 3);
  const drain = Number(arg('drain') ?? 30);
  const runs = (arg('beds') ?? '50,200,500,1000,2000,500@5').split(',').map((item): RunSpec => {
    const [beds, every] = item.trim().split('@');
    return { beds: Number(beds), intervalS: Number(every ?? 1) };
  });
  const brokers = (arg('brokers') ?? 'mosquitto,aedes').split(',').map((b) => b.trim()) as Broker[];
  const alarmFraction = Number(arg('alarm-fraction') ?? 0.02);
  const queue = arg('mosquitto-queue');
  const imports = Number(arg('imports') ?? 1);
  const bad = (what: string) => {
    throw new Error(`bad ${what}; see bench/README.md`);
  };
  if (!(seconds > 0)) bad('--seconds');
  if (!(warmup >= 0)) bad('--warmup');
  if (!(drain >= 1)) bad('--drain');
  if (!(Number.isInteger(imports) && imports >= 1)) bad('--imports');
  if (runs.some((r) => !Number.isInteger(r.beds) || r.beds < 1 || !(r.intervalS > 0))) bad('--beds (e.g. 50,200,500@5)');
  if (brokers.some((b) => b !== 'mosquitto' && b !== 'aedes')) bad('--brokers (mosquitto,aedes)');
  if (!(alarmFraction >= 0 && alarmFraction <= 1)) bad('--alarm-fraction');
  if (queue !== undefined && !(Number.isInteger(Number(queue)) && Number(queue) >= 0)) bad('--mosquitto-queue');
  const known = /^--(seconds|beds|brokers|warmup|drain|alarm-fraction|mosquitto-queue|import|imports)=|^--(burst|no-patient)$/;
  for (const a of args) if (!known.test(a)) bad(`option ${a}`);
  return { seconds, warmup, runs, brokers, alarmFraction, burst: args.includes('--burst'), patient: !args.includes('--no-patient'), mosquittoQueue: queue === undefined ? null : Number(queue), drain, importDir: arg('import') ?? null, imports };
}

/** Everything to undo, also from a `process.on('exit')` after a second Ctrl-C. */
const live = { children: new Set<ChildProcess>(), dirs: new Set<string>() };
function cleanUpNow(): void {
  for (const child of live.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of live.dirs) rmSync(dir, { recursive: true, force: true });
}

function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  live.dirs.add(dir);
  return dir;
}
function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  live.dirs.delete(dir);
}

let clockTicks = 100;
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // keep 100
}

/** user + system CPU seconds of another process (Linux /proc), or NaN. */
function processCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return Number.NaN;
  }
}

/** Busy CPU seconds of the whole machine (all cores, Linux /proc/stat), or NaN. */
function machineBusySeconds(): number {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu;
    return (user + nice + system + irq + softirq + steal) / clockTicks;
  } catch {
    return Number.NaN;
  }
}

interface Mosquitto {
  url: string;
  pid: number | undefined;
  config: string;
  log(): string;
  stop(): Promise<void>;
}

/** Debian's mosquitto on a free loopback port, its own temp dir and config (the stock defaults otherwise). */
async function startMosquitto(queue: number | null): Promise<Mosquitto> {
  const dir = tempDir('nw-bench-mosquitto-');
  const port = await freePort();
  const lines = [
    // Running as root, mosquitto would switch to the `mosquitto` user and lose access to this dir.
    `user ${os.userInfo().username}`,
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence false',
    `log_dest file ${path.join(dir, 'mosquitto.log')}`,
    'log_type error',
    'log_type warning',
    'log_type notice',
    'connection_messages false',
    ...(queue !== null ? [`max_queued_messages ${queue}`] : []),
  ];
  writeFileSync(path.join(dir, 'mosquitto.conf'), `${lines.join('\n')}\n`);
  const child = spawn(MOSQUITTO_BIN, ['-c', path.join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  live.children.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const log = () => {
    const file = path.join(dir, 'mosquitto.log');
    return `${existsSync(file) ? readFileSync(file, 'utf8') : ''}${stderr}`;
  };
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited at start:\n${log()}`);
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port}:\n${log()}`);
    await sleep(25);
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    pid: child.pid,
    config: lines.filter((l) => /^(listener|allow_anonymous|persistence|max_)/.test(l)).join('; ').replace(String(port), '<free port>'),
    log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(5000)]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      live.children.delete(child);
      removeDir(dir);
    },
  };
}

interface RunResult {
  broker: Broker;
  spec: RunSpec;
  interrupted: boolean;
  /** An exception escaped into the workstation process (the app would have died): what and when. */
  crashed: string | null;
  published: number;
  acked: number;
  publishErrors: number;
  stored: number;
  duplicates: number;
  rejected: number;
  windowPublished: number;
  readings: ReturnType<Samples['summary']>;
  alarms: ReturnType<Samples['summary']>;
  expectedAlarms: number;
  /** Alarms other than the expected NEWS2 ones (e.g. no-data for beds whose readings were dropped), by condition. */
  otherAlarms: Map<string, number>;
  cpuPercent: number;
  rssPeakMb: number;
  /** How late a 50 ms JS interval ran (ms beyond its period): what WardService's 1 s alarm tick and board push suffer. */
  timerLagP99Ms: number;
  timerLagMaxMs: number;
  /** Service times in the window: VitalsRepo.storeBatch (one transaction incl. commit) and AlarmEngine.ingest. */
  storeMs: ReturnType<Samples['summary']>;
  /** Readings per stored batch in the window. */
  batchSize: ReturnType<Samples['summary']>;
  engineMs: ReturnType<Samples['summary']>;
  /** Longest gap between two runs of WardService's 1 s alarm tick in the window. */
  tickGapMaxMs: number;
  brokerCpuPercent: number;
  /** The rest of the machine (other processes, kernel) during the window, % of one core. */
  otherCpuPercent: number;
  loadAverage: number;
  publisherCpuPercent: number;
  publisherMaxLagMs: number;
  drainMs: number;
  /** The import run meanwhile (--import), or null. */
  importRun: ImportRun | null;
  notes: string[];
}

interface ImportRun {
  /** When the first import started, ms after the window opened. */
  startedAfterMs: number;
  /** Imports run (one after the other) and stored. */
  count: number;
  stored: number;
  /** Duration of each. */
  seconds: number[];
  /** ms of the window during which an import ran. */
  coveredMs: number;
  /** The last import's outcome. */
  outcome: string;
  /** Readings and NEWS2 alarms published while the import ran, and the timer lag meanwhile. */
  readings: ReturnType<Samples['summary']>;
  alarms: ReturnType<Samples['summary']>;
  timerLag: ReturnType<Samples['summary']>;
  /** The longest store transaction (readings) while it ran, ms. */
  storeMaxMs: number;
}

interface Probes {
  /** After AlarmEngine.ingest returned for a stored reading: the reading, its events, the time, and how long the engine took (ms). */
  ingest(reading: VitalsReading, events: AlarmEvent[], at: number, engineMs: number): void;
  /** WardService's 1 s timer ran the engine's tick. */
  tick(events: AlarmEvent[], at: number): void;
  /** VitalsRepo.storeBatch (one transaction, committed) took this long (ms) for this many readings. */
  store(ms: number, readings: number): void;
}

/**
 * The WardService keeps its AlarmEngine and VitalsRepo private; the bench wraps those instances'
 * `ingest`, `tick` and `store` to see, for each reading, when it was evaluated (the store has committed
 * it by then), what it raised, and where the time went. Call after `start` (which makes the repo).
 */
function instrument(ward: WardService, probes: Probes): void {
  const inside = ward as unknown as { engine: unknown; repo: unknown };
  const { engine, repo } = inside;
  if (!(engine instanceof AlarmEngine) || !(repo instanceof VitalsRepo)) throw new Error('WardService no longer keeps its AlarmEngine in `engine` and VitalsRepo in `repo`: update bench/ward-load.ts');
  const ingest = engine.ingest.bind(engine);
  const tick = engine.tick.bind(engine);
  const storeBatch = repo.storeBatch.bind(repo);
  engine.ingest = (bedId, reading, now) => {
    const t0 = performance.now();
    const events = ingest(bedId, reading, now);
    probes.ingest(reading, events, Date.now(), performance.now() - t0);
    return events;
  };
  engine.tick = (now) => {
    const events = tick(now);
    probes.tick(events, Date.now());
    return events;
  };
  repo.storeBatch = (readings, receivedAt) => {
    const t0 = performance.now();
    try {
      return storeBatch(readings, receivedAt);
    } finally {
      probes.store(performance.now() - t0, readings.length);
    }
  };
}

/**
 * CPU, RSS, JS timer lag over the measuring window. `poll` is called from a timer AND for every
 * reading: when the workstation falls behind, the ingest can starve timers for seconds, and the window
 * must still open and close on time.
 */
class Meter {
  started = false;
  ended = false;
  private cpu0: NodeJS.CpuUsage = process.cpuUsage();
  /** When the window opened and closed (ms since the epoch), as seen by this process. */
  wall0 = 0;
  wall1 = 0;
  private broker0 = Number.NaN;
  private machine0 = Number.NaN;
  private lastRss = 0;
  /**
   * A JS interval like WardService's, not perf_hooks' monitorEventLoopDelay: under a backlog the native
   * histogram kept reporting a few ms while JS timers (the progress line, WardService's tick) waited 30 s.
   */
  private timer: NodeJS.Timeout | null = null;
  private lastFire = 0;
  private readonly lag = new Samples();
  /** The lag samples taken while `during()` held (the import ran). */
  readonly lagDuring = new Samples();
  during: () => boolean = () => false;
  cpuPercent = Number.NaN;
  brokerCpuPercent = Number.NaN;
  /** All cores, as % of one core (200 % = both cores of a 2-core machine busy). */
  machineCpuPercent = Number.NaN;
  rssPeak = 0;
  timerLagP99Ms = Number.NaN;
  timerLagMaxMs = Number.NaN;
  wallMs = 0;

  constructor(
    private readonly from: number,
    private readonly to: number,
    private readonly brokerPid: number | undefined,
  ) {}

  poll(now: number, stop = false): void {
    if (!this.started && (now >= this.from || stop)) {
      this.started = true;
      this.lastFire = performance.now();
      this.timer = setInterval(() => {
        const t = performance.now();
        const late = Math.max(0, t - this.lastFire - TIMER_PERIOD_MS);
        this.lag.push(late);
        if (this.during()) this.lagDuring.push(late);
        this.lastFire = t;
      }, TIMER_PERIOD_MS);
      this.cpu0 = process.cpuUsage();
      this.broker0 = processCpuSeconds(this.brokerPid);
      this.machine0 = machineBusySeconds();
      this.wall0 = now;
      this.lastRss = now;
      this.rssPeak = process.memoryUsage.rss();
    }
    if (!this.started || this.ended) return;
    if (now - this.lastRss >= 1000) {
      this.lastRss = now;
      this.rssPeak = Math.max(this.rssPeak, process.memoryUsage.rss());
    }
    if (now >= this.to || stop) {
      this.ended = true;
      this.wall1 = now;
      if (this.timer) clearInterval(this.timer);
      // A timer still waiting at the end is late by now.
      this.lag.push(Math.max(0, performance.now() - this.lastFire - TIMER_PERIOD_MS));
      const cpu = process.cpuUsage(this.cpu0);
      this.wallMs = Math.max(1, now - this.wall0);
      this.cpuPercent = ((cpu.user + cpu.system) / 1000 / this.wallMs) * 100;
      this.brokerCpuPercent = ((processCpuSeconds(this.brokerPid) - this.broker0) * 1000 * 100) / this.wallMs;
      this.machineCpuPercent = ((machineBusySeconds() - this.machine0) * 1000 * 100) / this.wallMs;
      this.rssPeak = Math.max(this.rssPeak, process.memoryUsage.rss());
      const lag = this.lag.summary();
      this.timerLagP99Ms = lag.p99;
      this.timerLagMaxMs = lag.max;
    }
  }
}

/**
 * An exception thrown out of a library inside the workstation process (seen: aedes' mqemitter overflowing
 * the stack under a backlog) would kill the app. The bench records it against the run, stops that run
 * and goes on with a fresh broker and store.
 */
let currentRun: { crash: Error | null; crashAt: number; phase: string; crashPhase: string; abort: AbortController } | null = null;
process.on('uncaughtException', (error) => {
  if (currentRun && !process.argv.includes('--publisher')) {
    if (!currentRun.crash) {
      currentRun.crash = error;
      currentRun.crashAt = Date.now();
      currentRun.crashPhase = currentRun.phase;
    }
    currentRun.abort.abort();
    return;
  }
  console.error(error);
  cleanUpNow();
  process.exit(1);
});

async function runOnce(broker: Broker, spec: RunSpec, options: Options, label: string, outer: AbortSignal): Promise<RunResult> {
  const run = { crash: null as Error | null, crashAt: 0, phase: 'starting', crashPhase: '', abort: new AbortController() };
  currentRun = run;
  const stopRun = () => run.abort.abort();
  outer.addEventListener('abort', stopRun, { once: true });
  const signal = run.abort.signal;
  const notes: string[] = [];
  let warmupEnd = Number.POSITIVE_INFINITY;
  let measureEnd = Number.POSITIVE_INFINITY;
  const crashReport = (): string | null => {
    if (!run.crash) return null;
    const where = (run.crash.stack ?? '').split('\n')[1]?.trim() ?? '';
    const when = Number.isFinite(measureEnd) ? `, ${f1((run.crashAt - warmupEnd) / 1000)} s after the window opened` : '';
    return `${run.crash.name}: ${run.crash.message} ${where}, while ${run.crashPhase}${when}`;
  };
  let result: RunResult | null = null;
  const dir = tempDir('nw-bench-ward-');
  const logLines: string[] = [];
  const key = randomBytes(32);
  const db: Db = openEncryptedDatabase(path.join(dir, 'neuroward.db'), key, { create: true });
  applyMigrations(db, () => new Date().toISOString());
  // As StoreService does in the app: WAL checkpoints on a worker thread.
  const checkpointer = WalCheckpointer.start(db, path.join(dir, 'neuroward.db'), key, { log: (message) => logLines.push(message) });
  let mosquitto: Mosquitto | null = null;
  let ward: WardService | null = null;
  let child: ChildProcess | null = null;
  try {
    if (broker === 'mosquitto') mosquitto = await startMosquitto(options.mosquittoQueue);
    ward = new WardService({
      mqttUrl: mosquitto?.url ?? null,
      embeddedPort: 0,
      clientSeed: dir,
      now: () => new Date(),
      broadcast: () => undefined,
      log: (message) => {
        if (!/link (up|down)|listening on/.test(message)) logLines.push(message);
      },
    });
    const theWard = ward;
    await ward.start(db);

    let meter: Meter | null = null;
    const readings = new Samples();
    const alarms = new Samples();
    const storeMs = new Samples();
    const batchSize = new Samples();
    const engineMs = new Samples();
    let evaluated = 0;
    let lastAt = 0;
    const otherAlarms = new Map<string, number>();
    const other = (event: AlarmEvent) => otherAlarms.set(event.alarm.condition, (otherAlarms.get(event.alarm.condition) ?? 0) + 1);
    let lastTick = 0;
    let tickGapMax = 0;
    // The imports meanwhile (--import), one after the other through the window: when each ran (wall
    // ms; end is Infinity while it runs).
    const importSpans: { start: number; end: number }[] = [];
    let importsDone = 0;
    let importError: string | null = null;
    let importJob: ImagingJob | null = null;
    const importReadings = new Samples();
    const importAlarms = new Samples();
    let importStoreMax = 0;
    const importing = (t: number) => importSpans.some((span) => t >= span.start && t < span.end);
    let startImport: () => void = () => undefined;
    const ledger = new AuditLedger(db, () => new Date());
    const importDir = options.importDir;
    const imaging = importDir
      ? new ImagingService({
          importRoots: [path.dirname(importDir)],
          store: { db, transaction: <T>(fn: () => T): T => db.transaction(fn)() },
          engines: defaultImagingEngines(),
          ledger: () => ledger,
          now: () => new Date(),
          notify: (_connection, job) => {
            importJob = job;
            if (job.state === 'running') return;
            const span = importSpans[importSpans.length - 1];
            if (span && span.end === Number.POSITIVE_INFINITY) span.end = Date.now();
            if (job.state === 'done') importsDone += 1;
            // The next import (--imports=N), if it can finish inside the window.
            if (job.state === 'done' && span && importSpans.length < options.imports && Date.now() + (span.end - span.start) < measureEnd) setImmediate(startImport);
          },
          log: (message) => logLines.push(message),
        })
      : null;
    instrument(ward, {
      ingest: (reading, events, at, ms) => {
        evaluated += 1;
        lastAt = at;
        meter?.poll(at);
        const sent = Date.parse(reading.ts ?? '');
        const inWindow = sent >= warmupEnd && sent < measureEnd;
        if (inWindow) {
          readings.push(at - sent);
          engineMs.push(ms);
        }
        const duringImport = importing(sent);
        if (duringImport) importReadings.push(at - sent);
        for (const event of events) {
          if (event.type !== 'raised') continue;
          if (event.alarm.condition === 'news2') {
            if (inWindow) alarms.push(at - sent);
            if (duringImport) importAlarms.push(at - sent);
            // The nurse acknowledges at once: the alarm then clears 10 s after the patient recovers instead of latching.
            setImmediate(() => {
              try {
                theWard.acknowledge(event.alarmId, 'load-bench', 'benchmark: nurse at the bedside');
              } catch {
                // already cleared
              }
            });
          } else other(event);
        }
      },
      tick: (events, at) => {
        for (const event of events) if (event.type === 'raised') other(event);
        if (meter?.started && !meter.ended) tickGapMax = Math.max(tickGapMax, at - Math.max(lastTick, meter.wall0));
        lastTick = at;
      },
      store: (ms, count) => {
        if (importing(Date.now())) importStoreMax = Math.max(importStoreMax, ms);
        if (!meter?.started || meter.ended) return;
        storeMs.push(ms);
        batchSize.push(count);
      },
    });
    const linkDeadline = Date.now() + 15_000;
    while (!ward.board().link.up) {
      if (Date.now() > linkDeadline) throw new Error(`the ingest did not connect to ${ward.brokerUrl}: ${logLines.join('; ')}`);
      await sleep(20);
    }
    const url = ward.brokerUrl;
    if (!url) throw new Error('no broker URL');
    // The embedded broker refuses anonymous monitors: provision each bed's credential, as an administrator would.
    let credentials: PublisherPlan['credentials'] = null;
    if (broker === 'aedes') {
      const repo = new MonitorCredentialsRepo(db, () => new Date());
      credentials = db.transaction(() => {
        const all: { username: string; password: string }[] = [];
        for (let i = 0; i < spec.beds; i++) {
          const [secret] = repo.create({ ward: wardOf(i, spec.beds), beds: [String(i + 1)], createdBy: 'ward-load bench' }).secrets;
          all.push({ username: secret!.username, password: secret!.password });
        }
        return all;
      })();
    }

    const brokerPid = mosquitto?.pid;
    child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--publisher'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    live.children.add(child);
    const theChild = child;
    const messages: ToParent[] = [];
    let wake: (() => void) | null = null;
    child.on('message', (m: ToParent) => {
      messages.push(m);
      wake?.();
    });
    const childExit = new Promise<void>((resolve) => theChild.once('exit', () => resolve()));
    void childExit.then(() => wake?.());
    const receive = async (type: ToParent['type'], timeoutMs: number): Promise<ToParent | null> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.find((m) => m.type === type);
        if (found) return found;
        if (signal.aborted || theChild.exitCode !== null || Date.now() > deadline) return null;
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 200);
        });
      }
    };

    const plan: PublisherPlan = {
      url,
      tag: `${broker[0]}${spec.beds}x${spec.intervalS}`,
      beds: spec.beds,
      intervalMs: spec.intervalS * 1000,
      alarmFraction: options.alarmFraction,
      burst: options.burst,
      patient: options.patient,
      ackWaitMs: Math.max(1000, options.drain * 1000 - 2000),
      credentials,
    };
    child.send({ type: 'plan', plan } satisfies ToChild);
    if (!(await receive('ready', 30_000))) throw new Error(signal.aborted ? 'interrupted' : 'the publisher process did not connect');
    const startAt = Date.now() + 300;
    warmupEnd = startAt + options.warmup * 1000;
    measureEnd = warmupEnd + options.seconds * 1000;
    child.send({ type: 'go', schedule: { startAt, warmupEnd, measureEnd } } satisfies ToChild);
    console.log(`${label}: ${credentials ? `${spec.beds} publisher connections (one per bed, each with its credential)` : `${Math.ceil(spec.beds / BEDS_PER_CONNECTION)} publisher connections`} up; warm-up ${options.warmup} s, then measuring ${options.seconds} s`);

    run.phase = 'publishing';
    const theMeter = new Meter(warmupEnd, measureEnd, brokerPid);
    meter = theMeter;
    theMeter.during = () => importing(Date.now());
    // The first import starts 1 s into the window, as a radiologist's would while the ward runs.
    startImport = () => {
      if (!imaging || !importDir || signal.aborted) return;
      const span = { start: Date.now(), end: Number.POSITIVE_INFINITY };
      importSpans.push(span);
      imaging
        .startImport({ path: importDir, mask: true, unlinked: true }, { userId: 'bench', username: 'bench.radiologist', role: 'radiologist' }, 'bench', { seeRestricted: false, canCreatePatient: false })
        .catch((error: unknown) => {
          importError = (error as Error).message;
          span.end = Date.now();
        });
    };
    const importTimer = imaging ? setTimeout(startImport, Math.max(0, warmupEnd + 1000 - Date.now())) : null;
    let lastReport = Date.now();
    let lastEvaluated = evaluated;
    let lastCpu = process.cpuUsage();
    while (!signal.aborted && !theMeter.ended) {
      await sleep(Math.min(1000, Math.max(0, measureEnd - Date.now())), signal);
      const now = Date.now();
      theMeter.poll(now, signal.aborted);
      // Progress every ~10 s (the ingest may starve this timer when the workstation falls behind: that shows too).
      if (now - lastReport >= 10_000 && !theMeter.ended) {
        const cpu = process.cpuUsage(lastCpu);
        console.log(
          `${label}:   ${Math.round((now - warmupEnd) / 1000)}/${options.seconds} s: ${Math.round(((evaluated - lastEvaluated) * 1000) / (now - lastReport))} readings/s evaluated (published ${Math.round(spec.beds / spec.intervalS)}/s), workstation CPU ${Math.round(((cpu.user + cpu.system) / 1000 / (now - lastReport)) * 100)} %, RSS ${Math.round(process.memoryUsage.rss() / 2 ** 20)} MB`,
        );
        lastReport = now;
        lastEvaluated = evaluated;
        lastCpu = process.cpuUsage();
      }
    }
    theMeter.poll(Date.now(), true);
    tickGapMax = Math.max(tickGapMax, theMeter.wall1 - Math.max(lastTick, theMeter.wall0));

    run.phase = 'draining (publishers done, waiting for their PUBACKs and the workstation)';
    const done = (await receive('done', options.drain * 1000 + 5000)) as Extract<ToParent, { type: 'done' }> | null;
    if (!done && !signal.aborted) notes.push('the publisher process did not report');
    // Wait until the workstation has evaluated every published reading, stops progressing (the rest is lost) or the drain ends.
    const drainEnd = measureEnd + options.drain * 1000;
    let seen = evaluated;
    let progressAt = Date.now();
    while (!signal.aborted && done && evaluated < done.published && Date.now() - progressAt < 5000 && Date.now() < drainEnd) {
      await sleep(100);
      if (evaluated !== seen) {
        seen = evaluated;
        progressAt = Date.now();
      }
    }
    const drainMs = lastAt - measureEnd;
    if (importTimer) clearTimeout(importTimer);
    if (imaging) {
      run.phase = 'waiting for the import to finish';
      await imaging.idle();
    }
    const job = importJob as ImagingJob | null;
    const first = importSpans[0];
    const last = importSpans[importSpans.length - 1];
    const importRun: ImportRun | null = first && last
      ? {
          startedAfterMs: first.start - warmupEnd,
          count: importSpans.length,
          stored: importsDone,
          seconds: importSpans.map((span) => (Math.min(span.end, Date.now()) - span.start) / 1000),
          coveredMs: importSpans.reduce((n, span) => n + Math.min(span.end, measureEnd) - span.start, 0),
          outcome: importError ? `refused: ${importError}` : job?.state === 'done' ? `stored (${job.message})` : `failed: ${job?.error ?? 'no job'}`,
          readings: importReadings.summary(),
          alarms: importAlarms.summary(),
          timerLag: theMeter.lagDuring.summary(),
          storeMaxMs: importStoreMax,
        }
      : null;
    if (last && last.end > measureEnd) notes.push('the last import outlasted the window');
    if (done && evaluated < done.published) {
      notes.push(
        Date.now() >= drainEnd && Date.now() - progressAt < 5000
          ? `still ${done.published - evaluated} behind when the ${options.drain} s drain ended (readings were still arriving)`
          : `${done.published - evaluated} readings never arrived (nothing new for 5 s)`,
      );
    }
    const counters = ward.board().counters;
    const stored = new VitalsRepo(db, () => new Date()).count();
    const rejected = Object.entries(counters.rejected).reduce((n, [reason, count]) => (reason === 'duplicate' ? n : n + count), 0);
    if (done?.firstError) notes.push(`publisher: ${done.firstError}`);
    for (const line of logLines.slice(0, 3)) notes.push(line);
    if (logLines.length > 3) notes.push(`… ${logLines.length - 3} more log lines`);
    if (mosquitto) for (const line of mosquitto.log().split('\n').filter((l) => /warn|error|drop/i.test(l) && !/run as root/.test(l)).slice(0, 3)) notes.push(`mosquitto: ${line}`);
    result = {
      broker,
      spec,
      interrupted: outer.aborted,
      crashed: crashReport(),
      published: done?.published ?? Number.NaN,
      acked: done?.acked ?? Number.NaN,
      publishErrors: done?.errors ?? Number.NaN,
      stored,
      duplicates: counters.rejected.duplicate ?? 0,
      rejected,
      windowPublished: done?.windowPublished ?? Number.NaN,
      readings: readings.summary(),
      alarms: alarms.summary(),
      expectedAlarms: done?.windowEpisodes ?? Number.NaN,
      otherAlarms,
      cpuPercent: theMeter.cpuPercent,
      rssPeakMb: theMeter.rssPeak / 2 ** 20,
      timerLagP99Ms: theMeter.timerLagP99Ms,
      timerLagMaxMs: theMeter.timerLagMaxMs,
      brokerCpuPercent: theMeter.brokerCpuPercent,
      otherCpuPercent: theMeter.machineCpuPercent - theMeter.cpuPercent - (broker === 'mosquitto' ? theMeter.brokerCpuPercent : 0) - (done?.cpuPercent ?? 0),
      loadAverage: os.loadavg()[0] ?? Number.NaN,
      storeMs: storeMs.summary(),
      batchSize: batchSize.summary(),
      engineMs: engineMs.summary(),
      tickGapMaxMs: tickGapMax,
      publisherCpuPercent: done?.cpuPercent ?? Number.NaN,
      publisherMaxLagMs: done?.maxLagMs ?? Number.NaN,
      drainMs,
      importRun,
      notes,
    };
    return result;
  } finally {
    run.phase = 'stopping: publisher process ends (its connections drop)';
    if (child) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child!.once('exit', () => resolve()));
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(3000)]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      live.children.delete(child);
    }
    run.phase = 'stopping: WardService.stop() (ingest disconnects, embedded broker closes)';
    if (ward) await Promise.race([ward.stop().catch(() => undefined), sleep(5000)]);
    await mosquitto?.stop();
    checkpointer.stop();
    db.close();
    removeDir(dir);
    if (result && run.crash && !result.crashed) result.crashed = crashReport();
    currentRun = null;
    outer.removeEventListener('abort', stopRun);
  }
}

// ---------------------------------------------------------------------------------------------
// Printing

const f0 = (v: number) => (Number.isFinite(v) ? Math.round(v).toString() : 'n/a');
const f1 = (v: number) => (Number.isFinite(v) ? (v < 10 ? v.toFixed(1) : Math.round(v).toString()) : 'n/a');
const f2 = (v: number) => (Number.isFinite(v) ? (v < 1 ? v.toFixed(2) : f1(v)) : 'n/a');
const pct = (v: number) => (Number.isFinite(v) ? `${v >= 99.995 && v < 100 ? '99.99' : v.toFixed(2)} %` : 'n/a');
const every = (s: RunSpec) => (s.intervalS === 1 ? '1 Hz' : `${s.intervalS} s`);

function delivery(r: RunResult): number {
  return (r.stored / r.published) * 100;
}

function verdict(r: RunResult): string {
  if (r.crashed) return `CRASHED (an exception escaped into the workstation process; the app would have died): ${r.crashed}`;
  if (r.interrupted) return 'interrupted: partial figures, no verdict';
  const p99 = r.readings.p99;
  const d = delivery(r);
  const ok = p99 <= GOAL_P99_MS && r.stored === r.published;
  const parts = [`p99 ${f1(p99)} ms ${p99 <= GOAL_P99_MS ? '≤' : '>'} ${GOAL_P99_MS}`, `delivery ${pct(d)}`];
  const load = r.spec.beds === 2000 && r.spec.intervalS === 1 ? 'GOAL LOAD' : 'at this load';
  return `${ok ? 'meets' : 'misses'} goal ${load} (${parts.join(', ')})`;
}

const COLUMNS = [
  'broker',
  'beds',
  'rate',
  'msg/s',
  'published',
  'stored',
  'delivered',
  'read mean',
  'read p50',
  'read p95',
  'read p99',
  'alarms',
  'alarm p50',
  'alarm p95',
  'alarm p99',
  'alarm max',
  'WS CPU',
  'WS RSS',
  'timer lag p99',
  'broker CPU',
  'pub CPU',
  'other CPU',
] as const;

function row(r: RunResult): string[] {
  return [
    r.broker + (r.crashed ? ' (CRASHED)' : r.interrupted ? ' (interrupted)' : ''),
    String(r.spec.beds),
    every(r.spec),
    f0(r.spec.beds / r.spec.intervalS),
    f0(r.published),
    f0(r.stored),
    pct(delivery(r)),
    f1(r.readings.mean),
    f1(r.readings.p50),
    f1(r.readings.p95),
    f1(r.readings.p99),
    `${r.alarms.n}/${f0(r.expectedAlarms)}`,
    f1(r.alarms.p50),
    f1(r.alarms.p95),
    f1(r.alarms.p99),
    f1(r.alarms.max),
    `${f0(r.cpuPercent)} %`,
    `${f0(r.rssPeakMb)} MB`,
    f1(r.timerLagP99Ms),
    r.broker === 'aedes' ? '(in WS)' : `${f0(r.brokerCpuPercent)} %`,
    `${f0(r.publisherCpuPercent)} %`,
    `${f0(Math.max(0, r.otherCpuPercent))} %`,
  ];
}

function printTable(results: RunResult[]): void {
  const rows = results.map(row);
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  console.log(line(COLUMNS));
  console.log(`|${widths.map((w, i) => (i < 3 ? `-${'-'.repeat(w)}-` : `-${'-'.repeat(w)}:`)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

function printReport(results: RunResult[], options: Options, mosquittoConfig: string | null): void {
  console.log('');
  console.log(`Ward load: ${options.seconds} s measured per run after ${options.warmup} s warm-up; latencies in ms; ${os.availableParallelism()} cores, node ${process.version}`);
  printTable(results);
  console.log('');
  console.log(REFERENCE);
  for (const r of results) {
    const reference = r.spec.beds === 500 && r.spec.intervalS === 1 ? `; vs reference (500 patients): mean ${f1(r.readings.mean)} ms vs 180 ms, delivery ${pct(delivery(r))} vs 98.5 %` : '';
    console.log(`  ${r.broker.padEnd(9)} ${String(r.spec.beds).padStart(4)} beds @ ${every(r.spec).padEnd(4)}: ${verdict(r)}${reference}`);
  }
  console.log('');
  console.log('read = publisher publish() call (payload ts) → AlarmEngine.ingest returned in WardService (store transaction committed; PUBACK follows);');
  console.log('alarm = the same, for the reading that raised a NEWS2 alarm; alarms = raised/expected onsets in the window; delivered = distinct (device, seq)');
  console.log(`stored in the run's store by the end of the drain (≤ ${options.drain} s after the window) / published, all readings of the run;`);
  console.log('WS = workstation process (CPU as % of one core over the window, peak RSS of the process);');
  console.log(`timer lag = how late a ${TIMER_PERIOD_MS} ms JS interval in WS ran (as WardService's 1 s alarm tick and board push would);`);
  console.log('broker CPU = mosquitto process (aedes runs inside the workstation); pub = publisher process;');
  console.log(`other = everything else on the machine meanwhile (${os.availableParallelism()} cores = ${os.availableParallelism() * 100} %): figures to quote need it near 0.`);
  if (mosquittoConfig) console.log(`mosquitto ${mosquittoConfig}`);
  for (const r of results) {
    const extras: string[] = [];
    if (r.publishErrors) extras.push(`${r.publishErrors} publish errors`);
    if (Number.isFinite(r.published) && r.acked !== r.published) extras.push(`${f0(r.acked)} PUBACKed of ${f0(r.published)}`);
    if (r.duplicates) extras.push(`${r.duplicates} duplicates dropped`);
    if (r.rejected) extras.push(`${r.rejected} rejected`);
    if (r.otherAlarms.size) extras.push(`other alarms raised: ${[...r.otherAlarms].map(([condition, n]) => `${n} ${condition}`).join(', ')}`);
    if (Number.isFinite(r.windowPublished) && r.readings.n !== r.windowPublished) extras.push(`${r.readings.n} of ${f0(r.windowPublished)} window readings evaluated`);
    if (r.drainMs > 1500) extras.push(`last reading evaluated ${f1(r.drainMs / 1000)} s after the window`);
    if (r.publisherMaxLagMs > 50) extras.push(`publisher fell ${f0(r.publisherMaxLagMs)} ms behind schedule`);
    extras.push(`read max ${f0(r.readings.max)} ms`, `timer lag max ${f0(r.timerLagMaxMs)} ms`, `load average ${r.loadAverage.toFixed(1)}`);
    extras.push(
      `store: ${f0(r.storeMs.n)} transactions, ${f2(r.batchSize.mean)} readings each (max ${f0(r.batchSize.max)}), ${f2(r.storeMs.mean)} ms mean, ${f2(r.storeMs.p99)} p99, ${f0(r.storeMs.max)} max; engine per reading ${f2(r.engineMs.mean)} ms mean, ${f2(r.engineMs.p99)} p99`,
    );
    if (r.tickGapMaxMs > 1500) extras.push(`WardService 1 s timers (alarm tick, board push) starved up to ${f1(r.tickGapMaxMs / 1000)} s`);
    extras.push(...r.notes);
    console.log(`  ${r.broker} ${r.spec.beds}@${every(r.spec)}: ${extras.join('; ')}`);
  }
  const imported = results.filter((r) => r.importRun);
  if (imported.length === 0) return;
  console.log('');
  console.log(`During imports of ${options.importDir} (same process, same store; one after the other from 1 s into the window): goal alarm p99 ≤ ${GOAL_P99_MS} ms`);
  for (const r of imported) {
    const i = r.importRun!;
    const ratio = (during: number, all: number) => (Number.isFinite(during) && all > 0 ? ` (${(during / all).toFixed(2)}× the whole window's)` : '');
    console.log(
      `  ${r.broker} ${r.spec.beds}@${every(r.spec)}: ${i.stored} of ${i.count} imports stored (last: ${i.outcome}), ${i.seconds.map((v) => f1(v)).join(', ')} s each, from +${f1(i.startedAfterMs / 1000)} s, importing ${f0((i.coveredMs / (options.seconds * 1000)) * 100)} % of the window; ` +
        `while it ran: ${i.readings.n} readings p50 ${f1(i.readings.p50)} / p99 ${f1(i.readings.p99)} / max ${f0(i.readings.max)} ms${ratio(i.readings.p99, r.readings.p99)}; ` +
        `${i.alarms.n} NEWS2 alarms p99 ${f1(i.alarms.p99)} / max ${f0(i.alarms.max)} ms ${i.alarms.p99 <= GOAL_P99_MS ? '≤' : '>'} ${GOAL_P99_MS}; ` +
        `timer lag p99 ${f1(i.timerLag.p99)} / max ${f0(i.timerLag.max)} ms; longest readings transaction ${f1(i.storeMaxMs)} ms`,
    );
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (args.includes('--help')) {
    console.log('node bench/ward-load.mjs [--seconds=60] [--beds=50,200,500,1000,2000,500@5] [--brokers=mosquitto,aedes] [--warmup=3] [--alarm-fraction=0.02] [--burst] [--no-patient] [--mosquitto-queue=N] [--import=DIR|synthetic] [--imports=N]');
    return;
  }
  const options = parseOptions();
  if (options.importDir === 'synthetic') {
    const out = path.join(tempDir('nw-bench-import-'), 'series');
    const written = spawnSync('/usr/bin/python3', [path.join(appRoot(path.dirname(fileURLToPath(import.meta.url)))!, 'bench', 'write-dicom-series.py'), out, '--size', '96x96x40', '--volumes', '130', '--b0', '10', '--vendor', 'siemens', '--seed', '1'], { encoding: 'utf8' });
    if (written.status !== 0) throw new Error(`write-dicom-series.py failed: ${written.stderr}`);
    console.log(`import series: ${written.stdout.trim()}`);
    options.importDir = out;
  } else if (options.importDir !== null) options.importDir = path.resolve(options.importDir);
  const brokers = options.brokers.filter((b) => {
    if (b === 'mosquitto' && !existsSync(MOSQUITTO_BIN)) {
      console.log(`mosquitto: ${MOSQUITTO_BIN} not found (Debian package mosquitto): skipped`);
      return false;
    }
    return true;
  });
  const plan = brokers.flatMap((broker) => options.runs.map((spec) => ({ broker, spec })));
  const perRun = options.warmup + options.seconds + 4;
  console.log(`Ward load benchmark: ${plan.length} runs × ~${perRun} s ≈ ${Math.ceil((plan.length * perRun) / 60)} min (a run whose workstation falls behind drains up to ${options.drain} s more); ${options.alarmFraction * 100} % of beds deteriorate 10 s of every 30 s; ${options.burst ? 'all beds publish at once' : 'bed phases spread over the interval'}${options.patient ? '' : '; no patient references'}`);
  console.log(REFERENCE);

  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (name: string) => {
    interrupts += 1;
    if (interrupts === 1) {
      console.log(`\n${name}: stopping the current run and cleaning up (again to quit at once)`);
      controller.abort();
      process.exitCode = 130;
    } else {
      cleanUpNow();
      process.exit(130);
    }
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('exit', cleanUpNow);

  let mosquittoConfig: string | null = null;
  if (brokers.includes('mosquitto')) {
    const probe = await startMosquitto(options.mosquittoQueue);
    // `mosquitto -h` prints its version and exits with 3.
    const version = spawnSync(MOSQUITTO_BIN, ['-h'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim() ?? '';
    mosquittoConfig = `${version.replace(/^mosquitto /, '')}; config: ${probe.config}${options.mosquittoQueue === null ? ' (max_queued_messages, max_inflight_messages: the defaults, 1000 and 20)' : ''}`;
    await probe.stop();
  }

  const results: RunResult[] = [];
  for (const [i, { broker, spec }] of plan.entries()) {
    if (controller.signal.aborted) break;
    const label = `[${i + 1}/${plan.length} ${broker} ${spec.beds} beds @ ${every(spec)}]`;
    try {
      const result = await runOnce(broker, spec, options, label, controller.signal);
      results.push(result);
      console.log(`${label} ${verdict(result)}; alarms ${result.alarms.n}/${f0(result.expectedAlarms)}, alarm p99 ${f1(result.alarms.p99)} ms; WS CPU ${f0(result.cpuPercent)} %`);
    } catch (error) {
      console.log(`${label} failed: ${(error as Error).message}`);
    }
    await sleep(1000, controller.signal);
  }
  if (results.length) printReport(results, options, mosquittoConfig);
  if (controller.signal.aborted) console.log('(interrupted)');
}

if (process.argv.includes('--publisher')) {
  await publisherMain();
} else {
  await main();
  // Everything is closed; should a library still hold a handle, do not hang.
  setTimeout(() => process.exit(process.exitCode ?? 0), 5000).unref();
}
