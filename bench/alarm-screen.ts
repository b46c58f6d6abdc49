/**
 * Publish → alarm on the nurse's screen, with the real product end to end (issue 8 item 11): simulated
 * bedside monitors (a child process of this bench) → Debian's mosquitto on loopback → the headless host
 * (`node dist/main/headless.js`, a child process with its own empty data dir) → its WebSocket → Debian's
 * Chromium (Playwright) with a nurse signed in on the Ward screen. Run with `node bench/alarm-screen.mjs`
 * (see bench/README.md). Prints figures; never fails on a slow machine.
 *
 * The page records, with a MutationObserver installed before the app loads, the time each new alarm row
 * (`li[data-alarm-id]`, src/renderer/features/ward/AlarmList.tsx) first enters the DOM and the next
 * animation frame after it; the publisher records the payload `ts` of every reading of the beds that
 * deteriorate. The raising reading of an alarm is that bed's last reading published at or before the
 * row's `data-raised-at` (the host's clock when its engine raised it; a bed's readings are 1 s apart).
 * All three processes read the same machine clock (Date.now()).
 *
 * With `--import=DIR` (or `--import=synthetic`, a 100 MB series this bench writes) a radiologist in a
 * second browser context scans and imports that series through the Viewer's import panel during the
 * window, as a person would; the figures are then for that run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from '@playwright/test';
import mqtt, { type MqttClient } from 'mqtt';
import { vitalsAt } from '../src/cli/simulate-ward.js';
import { launchCookieName, launchFilePath, type LaunchInfo } from '../src/main/hosts/launch-secret.js';
import { appRoot } from '../src/main/workers/locate.js';
import { mulberry32 } from '../src/shared/random.js';
import { canConnect, freePort } from '../test/support/net.js';

const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--enable-unsafe-swiftshader', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
const PYTHON = '/usr/bin/python3';
const BEDS_PER_CONNECTION = 100;
/** Alarm beds: 10 s deteriorated, 20 s normal (as bench/ward-load.ts). */
const CYCLE_MS = 30_000;
const DETERIORATED_MS = 10_000;
const GOAL_P99_MS = 250;
const GOAL = `goal (issue 8 item 11): publish → alarm on the nurse's screen p99 ≤ ${GOAL_P99_MS} ms at 2000 beds at 1 Hz (a new alarm is pushed at once: WardService.pushUrgently, not with the 1 s board push)`;
const STORE_PASSPHRASE = 'alarm-screen bench store passphrase';
const ADMIN = { username: 'admin.bench', displayName: 'Bench Admin', password: 'bench admin password' };
interface Account {
  username: string;
  displayName: string;
  roleLabel: string;
  temporaryPassword: string;
  password: string;
}
const NURSE: Account = { username: 'nurse.bench', displayName: 'Nia Bench', roleLabel: 'Ward nurse', temporaryPassword: 'temporary nurse pass 1', password: 'bench nurse password' };
const RADIOLOGIST: Account = { username: 'radiologist.bench', displayName: 'Dr Rae Bench', roleLabel: 'Radiologist', temporaryPassword: 'temporary radiologist pass 1', password: 'bench radiologist password' };
const ACK_REASON = 'Patient assessed at bedside';

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

/** Beds are spread over wards L0… (one per ~BEDS_PER_CONNECTION beds); bed index i is bed i + 1. */
function wardOf(i: number, beds: number): string {
  return `L${i % Math.max(1, Math.ceil(beds / BEDS_PER_CONNECTION))}`;
}

interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}
function summarise(values: readonly number[]): Summary {
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! : Number.NaN);
  return { n: sorted.length, p50: at(50), p95: at(95), p99: at(99), max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN };
}

// ---------------------------------------------------------------------------------------------
// The publisher process: one MQTT connection per ~100 beds, QoS 1, message v1 without a patient reference.

interface PublisherPlan {
  url: string;
  beds: number;
  intervalMs: number;
  alarmFraction: number;
}
/** All times in ms since the epoch; the publishers stop at `stopAt` (the window's end plus a tail). */
interface Schedule {
  startAt: number;
  warmupEnd: number;
  measureEnd: number;
  stopAt: number;
}
type ToChild = { type: 'plan'; plan: PublisherPlan } | { type: 'go'; schedule: Schedule };
type ToParent =
  | { type: 'ready' }
  | {
      type: 'done';
      published: number;
      acked: number;
      errors: number;
      firstError: string | null;
      /** Deterioration onsets (normal → deteriorated) whose first deteriorated reading was published in the window. */
      windowEpisodes: number;
      maxLagMs: number;
      cpuPercent: number;
      /** Bed key (`L3/17`) → payload ts (ms) of every reading published for the beds that deteriorate. */
      history: Record<string, number[]>;
    };

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
  const send = (m: ToParent) => new Promise<void>((resolve) => process.send!(m, () => resolve()));
  // The parent owns this process: when it goes, so do we.
  process.on('disconnect', () => process.exit(0));
  process.on('SIGINT', () => undefined);
  const { plan } = await next('plan');

  const connections = Math.max(1, Math.ceil(plan.beds / BEDS_PER_CONNECTION));
  const clients: MqttClient[] = [];
  let firstError: string | null = null;
  for (let c = 0; c < connections; c++) {
    const client = await mqtt.connectAsync(plan.url, { clientId: `alarm-screen-${process.pid}-${c}`, clean: true, protocolVersion: 4, keepalive: 30, reconnectPeriod: 1000 });
    client.on('error', (error) => (firstError ??= error.message));
    clients.push(client);
  }

  const random = mulberry32(0x5eed ^ plan.beds);
  const alarmBeds = plan.alarmFraction > 0 ? Math.max(1, Math.round(plan.beds * plan.alarmFraction)) : 0;
  const alarmStep = alarmBeds > 0 ? plan.beds / alarmBeds : Number.POSITIVE_INFINITY;
  interface Bed {
    id: string;
    key: string;
    deviceId: string;
    seq: number;
    topic: string;
    client: MqttClient;
    phaseMs: number;
    alarmOffsetMs: number | null;
    wasDeteriorated: boolean;
    history: number[] | null;
    baseline: { hr: number; spo2: number; rr: number; tempC: number; sbp: number; dbp: number };
  }
  const history: Record<string, number[]> = {};
  const beds: Bed[] = Array.from({ length: plan.beds }, (_, i) => {
    const ward = wardOf(i, plan.beds);
    const alarmIndex = Math.floor(i / alarmStep);
    const isAlarmBed = Math.floor(alarmIndex * alarmStep) === i && alarmIndex < alarmBeds;
    const key = `${ward}/${i + 1}`;
    if (isAlarmBed) history[key] = [];
    return {
      id: String(i + 1),
      key,
      deviceId: `alarm-screen-${i + 1}`,
      seq: 0,
      topic: `ward/${ward}/bed/${i + 1}/vitals`,
      client: clients[i % connections]!,
      // Independent monitors: phases spread evenly over the interval.
      phaseMs: (i * plan.intervalMs) / plan.beds,
      alarmOffsetMs: isAlarmBed ? (alarmIndex * CYCLE_MS) / alarmBeds : null,
      wasDeteriorated: false,
      history: history[key] ?? null,
      baseline: { hr: 66 + Math.round(random() * 16), spo2: 97 + Math.round(random() * 2), rr: 13 + Math.round(random() * 4), tempC: Math.round((36.5 + random() * 0.6) * 10) / 10, sbp: 118 + Math.round(random() * 16), dbp: 70 + Math.round(random() * 10) },
    };
  });

  let published = 0;
  let acked = 0;
  let errors = 0;
  let windowEpisodes = 0;
  let maxLagMs = 0;
  let schedule: Schedule = { startAt: 0, warmupEnd: 0, measureEnd: 0, stopAt: 0 };
  const publish = (bed: Bed, now: number) => {
    const deteriorated = bed.alarmOffsetMs !== null && (now - schedule.startAt + bed.alarmOffsetMs) % CYCLE_MS < DETERIORATED_MS;
    // Normal: the simulator's 'stable' vitals (NEWS2 0). Deteriorated: its sepsis drift at 70 %, NEWS2 ≥ 7 (high, no onset delay)
    // without crossing a hard limit, so one alarm per episode (as bench/ward-load.ts).
    const vitals = deteriorated ? vitalsAt(bed, 'deteriorating', 70, 100, random) : vitalsAt(bed, 'stable', 0, 100, random);
    bed.seq += 1;
    if (deteriorated && !bed.wasDeteriorated && now >= schedule.warmupEnd && now < schedule.measureEnd) windowEpisodes += 1;
    bed.wasDeteriorated = deteriorated;
    bed.history?.push(now);
    published += 1;
    bed.client.publish(bed.topic, JSON.stringify({ v: 1, deviceId: bed.deviceId, seq: bed.seq, ts: new Date(now).toISOString(), ...vitals }), { qos: 1 }, (error) => {
      if (error) {
        errors += 1;
        firstError ??= error.message;
      } else acked += 1;
    });
  };

  await send({ type: 'ready' });
  schedule = (await next('go')).schedule;
  await sleep(schedule.startAt - Date.now());
  let cpuAtWindow: NodeJS.CpuUsage | null = null;
  let cpuPercent = Number.NaN;
  setTimeout(() => (cpuAtWindow = process.cpuUsage()), schedule.warmupEnd - Date.now());
  setTimeout(() => {
    if (cpuAtWindow) {
      const used = process.cpuUsage(cpuAtWindow);
      cpuPercent = ((used.user + used.system) / 1000 / (schedule.measureEnd - schedule.warmupEnd)) * 100;
    }
  }, schedule.measureEnd - Date.now());

  const order = [...beds].sort((a, b) => a.phaseMs - b.phaseMs);
  await new Promise<void>((resolve) => {
    let round = 0;
    let slot = 0;
    const due = () => schedule.startAt + round * plan.intervalMs + order[slot]!.phaseMs;
    const pump = () => {
      const now = Date.now();
      while (due() <= now) {
        if (due() >= schedule.stopAt) return resolve();
        if (due() >= schedule.warmupEnd && due() < schedule.measureEnd) maxLagMs = Math.max(maxLagMs, now - due());
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
  const deadline = Date.now() + 5000;
  while (acked + errors < published && Date.now() < deadline) await sleep(20);
  await send({ type: 'done', published, acked, errors, firstError, windowEpisodes, maxLagMs, cpuPercent, history });
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  beds: number;
  seconds: number;
  warmup: number;
  /** Seconds the monitors go on publishing after the window, so alarms raised at its end still reach the screen. */
  tail: number;
  alarmFraction: number;
  /** null: no import; 'synthetic': the bench writes a 100 MB series; else a DICOM folder. */
  importDir: string | null;
  importDelay: number;
  /** How many times the radiologist scans and imports the series, one after the other. */
  imports: number;
  ack: boolean;
}

function parseOptions(args: string[]): Options {
  const known = /^--(beds|seconds|warmup|tail|alarm-fraction|import|import-delay|imports)=|^--(no-ack)$/;
  const value = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const number = (name: string, fallback: number, ok: (v: number) => boolean): number => {
    const raw = value(name);
    const v = raw === undefined ? fallback : Number(raw);
    if (!Number.isFinite(v) || !ok(v)) throw new Error(`bad --${name}=${raw ?? ''}; see bench/README.md`);
    return v;
  };
  for (const a of args) if (!known.test(a)) throw new Error(`unknown option ${a}; see bench/README.md`);
  const importArg = value('import');
  return {
    beds: number('beds', 2000, (v) => Number.isInteger(v) && v >= 1 && v <= 20_000),
    seconds: number('seconds', 60, (v) => v > 0),
    warmup: number('warmup', 20, (v) => v >= 0),
    tail: number('tail', 5, (v) => v >= 0),
    alarmFraction: number('alarm-fraction', 0.02, (v) => v > 0 && v <= 1),
    importDir: importArg === undefined || importArg === '' ? null : importArg === 'synthetic' ? 'synthetic' : path.resolve(importArg),
    importDelay: number('import-delay', 5, (v) => v >= 0),
    imports: number('imports', 1, (v) => Number.isInteger(v) && v >= 1 && v <= 100),
    ack: !args.includes('--no-ack'),
  };
}

// ---------------------------------------------------------------------------------------------
// Cleanup: every child process and temp dir goes, also on errors and Ctrl-C.

const live = { children: new Set<ChildProcess>(), pids: new Set<number>(), dirs: new Set<string>() };
function cleanUpNow(): void {
  for (const child of live.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const pid of live.pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of live.dirs) rmSync(dir, { recursive: true, force: true });
}
function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  live.dirs.add(dir);
  return dir;
}
function track(child: ChildProcess): ChildProcess {
  live.children.add(child);
  child.once('exit', () => live.children.delete(child));
  return child;
}
async function stopChild(child: ChildProcess | null, waitMs = 5000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(waitMs)]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

// ---------------------------------------------------------------------------------------------
// CPU of processes (Linux /proc)

let clockTicks = 100;
try {
  clockTicks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
} catch {
  // keep 100
}
interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  cpuSeconds: number;
}
function procStat(pid: number): ProcStat | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    return { pid, ppid: Number(fields[1]), comm: stat.slice(stat.indexOf('(') + 1, close), cpuSeconds: (Number(fields[11]) + Number(fields[12])) / clockTicks };
  } catch {
    return null;
  }
}
/** Every process below `root`. */
function descendants(root: number): ProcStat[] {
  const all: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(Number(name));
    if (s) all.push(s);
  }
  const below = new Set([root]);
  const found: ProcStat[] = [];
  for (let grew = true; grew; ) {
    grew = false;
    for (const s of all) {
      if (!below.has(s.pid) && below.has(s.ppid)) {
        below.add(s.pid);
        found.push(s);
        grew = true;
      }
    }
  }
  return found;
}
function machineBusySeconds(): number {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu;
    return (user + nice + system + irq + softirq + steal) / clockTicks;
  } catch {
    return Number.NaN;
  }
}
type CpuGroup = 'host' | 'mosquitto' | 'publisher' | 'chromium' | 'bench' | 'machine';
interface CpuSnapshot {
  at: number;
  perPid: Map<number, { group: CpuGroup; seconds: number }>;
  bench: number;
  machine: number;
}
function cpuSnapshot(pids: { host: number; mosquitto: number; publisher: number }): CpuSnapshot {
  const perPid = new Map<number, { group: CpuGroup; seconds: number }>();
  for (const s of descendants(process.pid)) {
    let group: CpuGroup | null = null;
    if (s.pid === pids.host) group = 'host';
    else if (s.pid === pids.mosquitto) group = 'mosquitto';
    else if (s.pid === pids.publisher) group = 'publisher';
    else if (/chrom/i.test(s.comm)) group = 'chromium';
    if (group) perPid.set(s.pid, { group, seconds: s.cpuSeconds });
  }
  const used = process.cpuUsage();
  return { at: Date.now(), perPid, bench: (used.user + used.system) / 1e6, machine: machineBusySeconds() };
}
/** CPU as % of one core per group between two snapshots (a process started in between counts from 0). */
function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): Record<CpuGroup, number> {
  const wall = Math.max(1, b.at - a.at) / 1000;
  const out: Record<CpuGroup, number> = { host: 0, mosquitto: 0, publisher: 0, chromium: 0, bench: 0, machine: 0 };
  for (const [pid, { group, seconds }] of b.perPid) out[group] += seconds - (a.perPid.get(pid)?.seconds ?? 0);
  out.bench = b.bench - a.bench;
  out.machine = b.machine - a.machine;
  for (const key of Object.keys(out) as CpuGroup[]) out[key] = (out[key] / wall) * 100;
  return out;
}

// ---------------------------------------------------------------------------------------------
// mosquitto and the host

interface Mosquitto {
  url: string;
  child: ChildProcess;
  version: string;
  log(): string;
}
async function startMosquitto(): Promise<Mosquitto> {
  const dir = tempDir('nw-alarm-screen-mosquitto-');
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
    'connection_messages false',
  ];
  writeFileSync(path.join(dir, 'mosquitto.conf'), `${lines.join('\n')}\n`);
  const child = track(spawn(MOSQUITTO_BIN, ['-c', path.join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-4000)));
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
  // `mosquitto -h` prints its version and exits with 3.
  const version = (spawnSync(MOSQUITTO_BIN, ['-h'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? '').trim();
  return { url: `mqtt://127.0.0.1:${port}`, child, version, log };
}

interface Host {
  child: ChildProcess;
  info: LaunchInfo;
  log(): string[];
}
/** `node dist/main/headless.js --port 0` on an empty data dir; waits for the launch file this pid writes. */
async function startHost(root: string, dataDir: string, mqttUrl: string, importRoot: string): Promise<Host> {
  const env: NodeJS.ProcessEnv = {};
  // Nothing of the caller's own NeuroWard settings leaks in (a config file, FHIR servers, another broker).
  for (const [name, v] of Object.entries(process.env)) if (!name.startsWith('NEUROWARD_')) env[name] = v;
  Object.assign(env, {
    NEUROWARD_DATA_DIR: dataDir,
    NEUROWARD_PASSPHRASE_SOURCE: 'env',
    NEUROWARD_STORE_PASSPHRASE: STORE_PASSPHRASE,
    NEUROWARD_MQTT_URL: mqttUrl,
    NEUROWARD_DEMO: 'false',
    NEUROWARD_IMPORT_ROOTS: importRoot,
    NEUROWARD_IDLE_LOCK_MINUTES: '60',
  });
  const child = track(spawn(process.execPath, [path.join(root, 'dist/main/headless.js'), '--port', '0'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(line);
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid!));
    child.once('error', reject);
  });
  const file = launchFilePath(dataDir);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the host exited at start (code ${child.exitCode}):\n${lines.slice(-20).join('\n')}`);
    if (Date.now() > deadline) throw new Error(`the host did not write ${file} within 60 s:\n${lines.slice(-20).join('\n')}`);
    if (existsSync(file)) {
      try {
        const info = JSON.parse(readFileSync(file, 'utf8')) as LaunchInfo;
        if (info.pid === pid) return { child, info, log: () => lines };
      } catch {
        // being written
      }
    }
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------
// The pages: what a person does, through the UI

/** Installed before the app's own scripts: the first time each alarm row enters the DOM, and the next frame. */
function installAlarmRecorder(): void {
  interface Seen {
    id: string;
    bed: string;
    priority: string;
    kind: string;
    raisedAt: string;
    seenAt: number;
    frameAt: number | null;
  }
  const seen = new Map<string, Seen>();
  Reflect.set(window, '__nwAlarmsSeen', seen);
  const record = (el: Element, at: number) => {
    const id = el.getAttribute('data-alarm-id');
    if (id === null || seen.has(id)) return;
    const entry: Seen = {
      id,
      bed: el.getAttribute('data-bed') ?? '',
      priority: el.getAttribute('data-priority') ?? '',
      kind: el.getAttribute('data-kind') ?? '',
      raisedAt: el.getAttribute('data-raised-at') ?? '',
      seenAt: at,
      frameAt: null,
    };
    seen.set(id, entry);
    requestAnimationFrame(() => (entry.frameAt = Date.now()));
  };
  new MutationObserver((records) => {
    const at = Date.now();
    for (const r of records) {
      for (const node of r.addedNodes) {
        if (!(node instanceof Element)) continue;
        if (node.hasAttribute('data-alarm-id')) record(node, at);
        else if (node.firstElementChild) for (const el of node.querySelectorAll('[data-alarm-id]')) record(el, at);
      }
    }
  }).observe(document, { childList: true, subtree: true });
}
interface SeenAlarm {
  id: string;
  bed: string;
  priority: string;
  kind: string;
  raisedAt: string;
  seenAt: number;
  frameAt: number | null;
}
async function seenAlarms(page: Page): Promise<SeenAlarm[]> {
  return page.evaluate(() => {
    const seen = Reflect.get(window, '__nwAlarmsSeen') as Map<string, SeenAlarm> | undefined;
    return seen ? [...seen.values()].map((s) => ({ ...s })) : [];
  });
}

async function newPage(browser: Browser, info: LaunchInfo): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'dark' });
  // The launch file's key as the page's cookie, as test/e2e/global-setup.ts does (the address the host printed would set it too).
  await context.addCookies([{ name: launchCookieName(info.port), value: info.secret, domain: '127.0.0.1', path: '/', expires: -1, httpOnly: true, secure: false, sameSite: 'Strict' }]);
  const page = await context.newPage();
  return { context, page };
}

async function firstRunSetup(page: Page, url: string): Promise<void> {
  await page.goto(url);
  const setup = page.getByRole('button', { name: 'Set up workstation' });
  await setup.waitFor({ timeout: 60_000 });
  const passphrase = page.getByLabel('Store passphrase', { exact: true });
  if (await passphrase.isVisible()) {
    await passphrase.fill(STORE_PASSPHRASE);
    await page.getByLabel('Confirm store passphrase').fill(STORE_PASSPHRASE);
  }
  await page.getByLabel('Username').fill(ADMIN.username);
  await page.getByLabel('Display name').fill(ADMIN.displayName);
  await page.getByLabel('Password', { exact: true }).fill(ADMIN.password);
  await page.getByLabel('Confirm password').fill(ADMIN.password);
  await setup.click();
  const done = page.getByTestId('screen-setup-done');
  const signIn = page.getByRole('button', { name: 'Sign in' });
  await done.or(signIn).first().waitFor({ timeout: 60_000 });
  if (await done.isVisible()) await page.getByRole('button', { name: 'Continue to sign-in' }).click();
  await signIn.waitFor();
}

/** Signs in from the sign-in screen; with `change`, replaces the temporary password on the forced change screen. */
async function signIn(page: Page, username: string, password: string, change?: string): Promise<void> {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const home = page.getByTestId('home');
  const changeScreen = page.getByTestId('screen-change-password');
  const refused = page.getByRole('alert');
  await home.or(changeScreen).or(refused).first().waitFor({ timeout: 30_000 });
  if (await changeScreen.isVisible()) {
    if (!change) throw new Error(`${username} must change the password first`);
    await page.getByLabel('Current password').fill(password);
    await page.getByLabel('New password').fill(change);
    await page.getByLabel('Confirm password').fill(change);
    await page.getByRole('button', { name: 'Change password' }).click();
  } else if (!(await home.isVisible())) {
    throw new Error(`sign-in of ${username} refused: ${await refused.first().innerText()}`);
  }
  await home.waitFor({ timeout: 30_000 });
}

async function signOut(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
}

/** The administrator (signed in) creates an account in Admin → Users. */
async function createAccount(page: Page, account: Account): Promise<void> {
  await page.getByTestId('nav').getByTestId('nav-admin').click();
  await page.getByRole('tab', { name: 'Users' }).click();
  const form = page.getByTestId('create-user-form');
  await form.getByLabel('Username').fill(account.username);
  await form.getByLabel('Display name').fill(account.displayName);
  await form.getByLabel('Role').selectOption({ label: account.roleLabel });
  await form.getByLabel('Temporary password').fill(account.temporaryPassword);
  await form.getByRole('button', { name: 'Create user' }).click();
  await page.getByTestId('users-table').locator(`[data-username="${account.username}"]`).waitFor({ timeout: 30_000 });
}

interface AckStats {
  acknowledged: number;
  failed: number;
  firstFailure: string | null;
}
/**
 * The nurse acknowledges each unacknowledged physiological alarm through the alarm list (Acknowledge →
 * reason → Acknowledge), so it clears once the patient recovers instead of latching, and the next
 * episode raises a new alarm, as bench/ward-load.ts does in-process.
 */
async function acknowledgeLoop(page: Page, until: number, stats: AckStats, signal: AbortSignal): Promise<void> {
  const dialog = page.getByRole('dialog');
  const pending = page.locator('[data-testid="alarm-row"][data-kind="physiological"][data-acknowledged="false"]');
  while (Date.now() < until && !signal.aborted) {
    let id: string | null = null;
    try {
      id = (await pending.count()) ? await pending.first().getAttribute('data-alarm-id', { timeout: 1000 }) : null;
    } catch {
      id = null;
    }
    if (id === null) {
      await sleep(250, signal);
      continue;
    }
    const row = page.locator(`[data-testid="alarm-row"][data-alarm-id="${id.replace(/["\\]/g, '\\$&')}"]`);
    try {
      await row.getByRole('button', { name: 'Acknowledge' }).click({ timeout: 5000 });
      await dialog.getByLabel('Reason').fill(ACK_REASON, { timeout: 5000 });
      await dialog.getByRole('button', { name: 'Acknowledge' }).click({ timeout: 5000 });
      await dialog.waitFor({ state: 'hidden', timeout: 15_000 });
      stats.acknowledged += 1;
    } catch (error) {
      stats.failed += 1;
      stats.firstFailure ??= (error as Error).message.split('\n')[0] ?? 'failed';
      if (await dialog.isVisible().catch(() => false)) await dialog.getByRole('button', { name: 'Cancel' }).click({ timeout: 5000 }).catch(() => undefined);
      await sleep(250, signal);
    }
  }
}

interface ImportTiming {
  dir: string;
  scanStart: number;
  scanEnd: number;
  importStart: number;
  importEnd: number;
  state: string;
  message: string;
  /** When each stage shown by the progress (Reading, Fitting tensors, Saving, …) was first seen. */
  stages: { stage: string; at: number }[];
  error: string | null;
}
/** The radiologist imports DIR `count` times, one after the other, the first at `at`; stops at a failure. */
async function radiologistImports(page: Page, dir: string, at: number, count: number, signal: AbortSignal): Promise<ImportTiming[]> {
  const all: ImportTiming[] = [];
  for (let i = 0; i < count && !signal.aborted; i++) {
    const t = await radiologistImportsOnce(page, dir, i === 0 ? at : Date.now(), signal);
    all.push(t);
    if (t.state !== 'done') break;
  }
  return all;
}

/** The radiologist scans DIR in the Viewer's import panel, imports its series without a patient and waits for the outcome. */
async function radiologistImportsOnce(page: Page, dir: string, at: number, signal: AbortSignal): Promise<ImportTiming> {
  const t: ImportTiming = { dir, scanStart: Number.NaN, scanEnd: Number.NaN, importStart: Number.NaN, importEnd: Number.NaN, state: 'not started', message: '', stages: [], error: null };
  try {
    await sleep(at - Date.now(), signal);
    if (signal.aborted) return t;
    t.scanStart = Date.now();
    await page.getByLabel('Folder path').fill(dir);
    await page.getByRole('button', { name: 'Scan' }).click();
    const results = page.getByTestId('scan-results');
    const alert = page.getByTestId('import-panel').getByRole('alert');
    await results.or(alert).first().waitFor({ timeout: 600_000 });
    t.scanEnd = Date.now();
    if (!(await results.isVisible())) throw new Error(`scan refused: ${await alert.first().innerText()}`);
    const decision = page.getByTestId('patient-decision');
    await decision.waitFor({ timeout: 10_000 });
    await decision.getByLabel(/Import without a patient/).check();
    t.importStart = Date.now();
    await page.getByRole('button', { name: 'Import', exact: true }).click();
    // This import's job (a previous import's outcome may still be shown until the new job replaces it).
    const progress = page.getByTestId('import-progress');
    await page.locator('[data-testid="import-progress"][data-state="running"]').waitFor({ timeout: 60_000 });
    t.state = 'running';
    // The outcome, and the stages on the way (polled: a few calls a second in the radiologist's page).
    for (;;) {
      const snapshot = await progress.evaluate((el) => ({
        state: el.getAttribute('data-state') ?? '',
        stage: el.querySelector('.progress__stage')?.textContent ?? '',
        message: [...el.querySelectorAll('.progress__message, [role="alert"]')].map((m) => m.textContent ?? '').join(' '),
      }));
      if (snapshot.stage && t.stages[t.stages.length - 1]?.stage !== snapshot.stage) t.stages.push({ stage: snapshot.stage, at: Date.now() });
      if (snapshot.state === 'done' || snapshot.state === 'failed') {
        t.importEnd = Date.now();
        t.state = snapshot.state;
        t.message = snapshot.message.replace(/\s+/g, ' ').trim().slice(0, 300);
        break;
      }
      if (signal.aborted) break;
      await sleep(250);
    }
  } catch (error) {
    t.error = (error as Error).message.split('\n')[0] ?? 'failed';
    if (Number.isNaN(t.importEnd) && !Number.isNaN(t.importStart)) t.importEnd = Date.now();
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Figures

const f0 = (v: number) => (Number.isFinite(v) ? Math.round(v).toString() : 'n/a');
const fs1 = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : 'n/a');
const signed = (ms: number) => (Number.isFinite(ms) ? `${ms >= 0 ? '+' : '−'}${(Math.abs(ms) / 1000).toFixed(1)} s` : 'n/a');

interface Measured {
  alarm: SeenAlarm;
  publishedAt: number;
  raisedAt: number;
}
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => (i < 2 ? `-${'-'.repeat(w)}-` : `-${'-'.repeat(w)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}
function latencyRows(label: string, set: Measured[]): string[][] {
  const parts: [string, (m: Measured) => number][] = [
    ['publish → on screen (DOM)', (m) => m.alarm.seenAt - m.publishedAt],
    ['  host: publish → raised', (m) => m.raisedAt - m.publishedAt],
    ['  screen: raised → DOM', (m) => m.alarm.seenAt - m.raisedAt],
    ['publish → next frame', (m) => (m.alarm.frameAt ?? Number.NaN) - m.publishedAt],
  ];
  return parts.map(([part, of]) => {
    const s = summarise(set.map(of).filter(Number.isFinite));
    return [label, part, String(s.n), f0(s.p50), f0(s.p95), f0(s.p99), f0(s.max)];
  });
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help')) {
    console.log('node bench/alarm-screen.mjs [--beds=2000] [--seconds=60] [--warmup=20] [--tail=5] [--alarm-fraction=0.02] [--import=DIR|synthetic] [--import-delay=5] [--no-ack]');
    return;
  }
  const options = parseOptions(args);
  const root = appRoot(path.dirname(fileURLToPath(import.meta.url)));
  if (!root) throw new Error('cannot find the project root (a folder with package.json) above this script');
  const headless = path.join(root, 'dist/main/headless.js');
  if (!existsSync(headless) || !existsSync(path.join(root, 'dist/renderer/index.html'))) throw new Error('dist/main/headless.js or dist/renderer is missing: run `npm run build`');
  for (const [what, file] of [
    ['mosquitto', MOSQUITTO_BIN],
    ['Chromium', CHROMIUM_PATH],
  ] as const) {
    if (!existsSync(file)) throw new Error(`${what}: ${file} not found`);
  }

  const controller = new AbortController();
  const signal = controller.signal;
  let interrupts = 0;
  const onSignal = (name: string) => {
    interrupts += 1;
    if (interrupts === 1) {
      console.log(`\n${name}: stopping and cleaning up (again to quit at once)`);
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

  const cores = os.availableParallelism();
  console.log(
    `Alarm to screen: ${options.beds} beds at 1 Hz, ${options.alarmFraction * 100} % of them deteriorating 10 s of every 30 s; warm-up ${options.warmup} s, window ${options.seconds} s` +
      `${options.importDir ? `; a radiologist imports ${options.importDir === 'synthetic' ? 'a synthetic 100 MB series' : options.importDir} ${options.importDelay} s into the window` : ''}`,
  );
  console.log(`host ${path.relative(process.cwd(), headless) || headless} built ${new Date(statSync(headless).mtimeMs).toISOString()}; ${cores} cores shared by the host, mosquitto, the publishers, Chromium and this bench`);
  console.log(GOAL);
  // What else runs: figures to quote need an idle machine.
  const busy0 = machineBusySeconds();
  await sleep(1000);
  const busyBefore = (machineBusySeconds() - busy0) * 100;
  console.log(`machine busy ${f0(busyBefore)} % (of ${cores * 100} %) in the second before this bench started anything${busyBefore > 30 ? ': other work is running, the figures include it' : ''}`);

  let browser: Browser | null = null;
  let host: Host | null = null;
  let mosquitto: Mosquitto | null = null;
  let publisher: ChildProcess | null = null;
  try {
    // The series to import, and the import root the host is configured with (its parent).
    const work = tempDir('nw-alarm-screen-');
    let importDir: string | null = null;
    let importNote = '';
    if (options.importDir === 'synthetic') {
      importDir = path.join(work, 'import', 'synthetic-series');
      const t0 = Date.now();
      const args = [path.join(root, 'bench/write-dicom-series.py'), importDir, '--size', '96x96x40', '--volumes', '130', '--b0', '10', '--vendor', 'siemens', '--seed', '1'];
      const child = track(spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
      let out = '';
      child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-2000)));
      child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-2000)));
      const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
      if (code !== 0) throw new Error(`write-dicom-series.py failed (${code}): ${out}`);
      const files = readdirSync(importDir);
      const bytes = files.reduce((n, f) => n + statSync(path.join(importDir!, f)).size, 0);
      importNote = `synthetic series: ${files.length} files, ${(bytes / 1e6).toFixed(0)} MB (write-dicom-series.py --size 96x96x40 --volumes 130 --b0 10 --vendor siemens), written in ${fs1(Date.now() - t0)}`;
      console.log(importNote);
    } else if (options.importDir) {
      if (!existsSync(options.importDir) || !statSync(options.importDir).isDirectory()) throw new Error(`--import: ${options.importDir} is not a folder`);
      importDir = options.importDir;
    }
    const importRoot = importDir ? path.dirname(importDir) : path.join(work, 'no-imports');
    if (!importDir) writeFileSync(path.join(work, 'no-imports'), '');

    mosquitto = await startMosquitto();
    const dataDir = tempDir('nw-alarm-screen-data-');
    host = await startHost(root, dataDir, mosquitto.url, importRoot);
    console.log(`host pid ${host.info.pid} on ${host.info.url} (data dir ${dataDir}); mosquitto ${mosquitto.version.replace(/^mosquitto /, '')} on ${mosquitto.url} (anonymous, no persistence)`);

    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
    for (const p of descendants(process.pid)) if (/chrom/i.test(p.comm) && p.ppid === process.pid) live.pids.add(p.pid);

    // The nurse's window: the administrator sets the workstation up and creates the accounts, the nurse signs in and opens the ward.
    const nurse = await newPage(browser, host.info);
    await nurse.page.addInitScript(installAlarmRecorder);
    const t0 = Date.now();
    await firstRunSetup(nurse.page, host.info.url);
    await signIn(nurse.page, ADMIN.username, ADMIN.password);
    await createAccount(nurse.page, NURSE);
    if (importDir) await createAccount(nurse.page, RADIOLOGIST);
    await signOut(nurse.page);
    await signIn(nurse.page, NURSE.username, NURSE.temporaryPassword, NURSE.password);
    await nurse.page.getByTestId('nav').getByTestId('nav-ward').click();
    await nurse.page.getByTestId('ward-board').waitFor({ timeout: 30_000 });
    const linkDeadline = Date.now() + 30_000;
    while ((await nurse.page.getByTestId('link-status').innerText()) !== 'Broker connected') {
      if (Date.now() > linkDeadline) throw new Error(`the host did not connect to ${mosquitto.url}: ${host.log().slice(-5).join(' | ')}`);
      await sleep(200);
    }
    // The radiologist's window (its own browser context, as another workstation's browser would be).
    let radiologist: { context: BrowserContext; page: Page } | null = null;
    if (importDir) {
      radiologist = await newPage(browser, host.info);
      await radiologist.page.goto(host.info.url);
      await radiologist.page.getByRole('button', { name: 'Sign in' }).waitFor({ timeout: 30_000 });
      await signIn(radiologist.page, RADIOLOGIST.username, RADIOLOGIST.temporaryPassword, RADIOLOGIST.password);
      await radiologist.page.getByTestId('nav').getByTestId('nav-viewer').click();
      await radiologist.page.getByTestId('import-panel').waitFor({ timeout: 30_000 });
    }
    console.log(`set up through the UI in ${fs1(Date.now() - t0)}: administrator, ${importDir ? 'nurse and radiologist accounts' : 'nurse account'} (Admin → Users), nurse on the Ward screen${importDir ? ', radiologist on the Viewer import panel' : ''}`);

    // The monitors.
    publisher = track(spawn(process.execPath, [fileURLToPath(import.meta.url), '--publisher'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    const messages: ToParent[] = [];
    let wake: (() => void) | null = null;
    publisher.on('message', (m: ToParent) => {
      messages.push(m);
      wake?.();
    });
    const theChild = publisher;
    const receive = async <T extends ToParent['type']>(type: T, timeoutMs: number): Promise<Extract<ToParent, { type: T }> | null> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.find((m): m is Extract<ToParent, { type: T }> => m.type === type);
        if (found) return found;
        if (theChild.exitCode !== null || Date.now() > deadline) return null;
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 200);
        });
      }
    };
    publisher.send({ type: 'plan', plan: { url: mosquitto.url, beds: options.beds, intervalMs: 1000, alarmFraction: options.alarmFraction } } satisfies ToChild);
    if (!(await receive('ready', 30_000))) throw new Error('the publisher process did not connect');
    const startAt = Date.now() + 500;
    const warmupEnd = startAt + options.warmup * 1000;
    const measureEnd = warmupEnd + options.seconds * 1000;
    const stopAt = measureEnd + options.tail * 1000;
    publisher.send({ type: 'go', schedule: { startAt, warmupEnd, measureEnd, stopAt } } satisfies ToChild);
    console.log(`${Math.ceil(options.beds / BEDS_PER_CONNECTION)} publisher connections up; publishing ${options.warmup} s warm-up + ${options.seconds} s window + ${options.tail} s tail`);

    const pids = { host: host.info.pid, mosquitto: mosquitto.child.pid ?? -1, publisher: publisher.pid ?? -1 };
    const ack: AckStats = { acknowledged: 0, failed: 0, firstFailure: null };
    const acking = options.ack ? acknowledgeLoop(nurse.page, stopAt, ack, signal) : Promise.resolve();
    const importing = radiologist && importDir ? radiologistImports(radiologist.page, importDir, warmupEnd + options.importDelay * 1000, options.imports, signal) : Promise.resolve([]);
    let cpuStart: CpuSnapshot | null = null;
    let cpu: Record<CpuGroup, number> | null = null;
    let lastProgress = Date.now();
    while (!signal.aborted && Date.now() < stopAt) {
      const now = Date.now();
      if (!cpuStart && now >= warmupEnd) cpuStart = cpuSnapshot(pids);
      if (cpuStart && !cpu && now >= measureEnd) cpu = cpuBetween(cpuStart, cpuSnapshot(pids));
      if (now - lastProgress >= 10_000) {
        lastProgress = now;
        const shown = await nurse.page.evaluate(() => (Reflect.get(window, '__nwAlarmsSeen') as Map<string, unknown> | undefined)?.size ?? 0).catch(() => Number.NaN);
        const phase = now < warmupEnd ? `warm-up ${Math.round((now - startAt) / 1000)}/${options.warmup} s` : now < measureEnd ? `window ${Math.round((now - warmupEnd) / 1000)}/${options.seconds} s` : 'tail';
        console.log(`  ${phase}: ${shown} alarm rows seen so far, ${ack.acknowledged} acknowledged by the nurse${ack.failed ? ` (${ack.failed} attempts failed)` : ''}`);
      }
      const nextEdge = [warmupEnd, measureEnd, stopAt, lastProgress + 10_000].filter((t) => t > now);
      await sleep(Math.min(1000, Math.max(10, Math.min(...nextEdge) - now)), signal);
    }
    if (cpuStart && !cpu) cpu = cpuBetween(cpuStart, cpuSnapshot(pids));
    const done = await receive('done', 15_000);
    await acking;
    // The import may still run after the window: its figures say so.
    const imported = await importing;
    // Rows raised by the last readings still on their way.
    await sleep(1000);
    const seen = await seenAlarms(nurse.page);
    const board = await nurse.page.evaluate(() => ({
      beds: Number(document.querySelector('[data-testid="bed-board"]')?.getAttribute('data-beds') ?? Number.NaN),
      tiles: document.querySelectorAll('[data-testid="bed-tile"]').length,
      visibility: document.visibilityState,
    }));

    // --- Figures
    const history = done?.history ?? {};
    const measured: Measured[] = [];
    let noReading = 0;
    let otherBeds = 0;
    let technical = 0;
    for (const alarm of seen) {
      if (alarm.kind !== 'physiological') {
        technical += 1;
        continue;
      }
      const times = history[alarm.bed];
      const raisedAt = Date.parse(alarm.raisedAt);
      if (!times) {
        otherBeds += 1;
        continue;
      }
      let publishedAt = Number.NaN;
      for (const t of times) {
        if (t <= raisedAt) publishedAt = t;
        else break;
      }
      if (!Number.isFinite(publishedAt)) {
        noReading += 1;
        continue;
      }
      measured.push({ alarm, publishedAt, raisedAt });
    }
    const inWindow = measured.filter((m) => m.publishedAt >= warmupEnd && m.publishedAt < measureEnd);
    const high = inWindow.filter((m) => m.alarm.priority === 'high');
    const rows = [...latencyRows('all', inWindow), ...latencyRows('high', high)];
    const others = inWindow.filter((m) => m.alarm.priority !== 'high');
    if (others.length) rows.push(...latencyRows('medium/low', others));
    let during: Measured[] = [];
    // Scan start → import end of each import (an unfinished one: to the window's end).
    const importSpans = imported.filter((t) => Number.isFinite(t.scanStart)).map((t) => ({ from: t.scanStart, to: Number.isFinite(t.importEnd) ? t.importEnd : measureEnd }));
    if (importSpans.length) {
      during = inWindow.filter((m) => importSpans.some((span) => m.publishedAt >= span.from && m.publishedAt < span.to));
      rows.push(...latencyRows('during scan+import', during));
    }

    console.log('');
    console.log(
      `Alarm → nurse's screen, ${options.beds} beds at 1 Hz${importDir ? ', radiologist importing meanwhile' : ''}: alarms whose raising reading was published in the ${options.seconds} s window (after ${options.warmup} s warm-up); ms`,
    );
    console.log(table(['alarms', 'part', 'n', 'p50', 'p95', 'p99', 'max'], rows));
    if (inWindow.length < 100) console.log(`(n < 100: p99 is the largest value; a longer --seconds gives more alarms, ${Math.round(options.beds * options.alarmFraction * 2)} per minute)`);
    console.log('');
    const slowest = [...inWindow].sort((a, b) => b.alarm.seenAt - b.publishedAt - (a.alarm.seenAt - a.publishedAt)).slice(0, 5);
    if (slowest.length) {
      const list = slowest.map((m) => {
        const busy = importSpans.some((span) => m.publishedAt >= span.from && m.publishedAt < span.to) ? ', import running' : '';
        return `${f0(m.alarm.seenAt - m.publishedAt)} ms at ${signed(m.publishedAt - warmupEnd)} (${m.alarm.bed}: host ${f0(m.raisedAt - m.publishedAt)}, screen ${f0(m.alarm.seenAt - m.raisedAt)}${busy})`;
      });
      console.log(`slowest: ${list.join('; ')}`);
    }
    const all = summarise(inWindow.map((m) => m.alarm.seenAt - m.publishedAt));
    const highS = summarise(high.map((m) => m.alarm.seenAt - m.publishedAt));
    const verdict = (s: Summary) => (s.n === 0 ? 'no alarms measured' : `p99 ${f0(s.p99)} ms ${s.p99 <= GOAL_P99_MS ? '≤' : '>'} ${GOAL_P99_MS}: ${s.p99 <= GOAL_P99_MS ? 'meets' : 'MISSES'} the goal`);
    const goalLoad = options.beds === 2000 ? 'at the goal load' : `at ${options.beds} beds (the goal is for 2000)`;
    console.log(`${GOAL}`);
    console.log(`  all alarms ${goalLoad}: ${verdict(all)}; high-priority: ${verdict(highS)}${importDir ? ' (with the import running)' : ''}`);
    console.log(
      `counts: ${inWindow.length} alarms measured in the window / ${f0(done?.windowEpisodes ?? Number.NaN)} deterioration onsets published in it; ${seen.length} alarm rows seen in the whole run` +
        ` (${technical} technical, ${otherBeds} on beds that do not deteriorate, ${noReading} raised before the bed's first reading, ${measured.length - inWindow.length} outside the window)` +
        `; nurse acknowledged ${ack.acknowledged} through the UI${ack.failed ? `, ${ack.failed} attempts failed (first: ${ack.firstFailure})` : ''}${options.ack ? '' : ' (--no-ack: alarms latch, each bed raises once)'}`,
    );
    console.log(
      `publishers: ${f0(done?.published ?? Number.NaN)} readings published, ${f0(done?.acked ?? Number.NaN)} PUBACKed${done?.errors ? `, ${done.errors} errors (${done.firstError})` : ''}; fell at most ${f0(done?.maxLagMs ?? Number.NaN)} ms behind schedule in the window`,
    );
    console.log(
      `Ward screen: the board holds ${f0(board.beds)} beds (${board.beds === options.beds ? `all ${options.beds}` : `NOT all ${options.beds}`}); ${board.tiles} tiles in the DOM (virtualised: only the rows in view at 1280×800); page visibility ${board.visibility}`,
    );
    if (cpu) {
      const known = cpu.host + cpu.mosquitto + cpu.publisher + cpu.chromium + cpu.bench;
      console.log(
        `CPU in the window (% of one core; ${cores} cores = ${cores * 100} %): host ${f0(cpu.host)} %, mosquitto ${f0(cpu.mosquitto)} %, publishers ${f0(cpu.publisher)} %, Chromium (all its processes) ${f0(cpu.chromium)} %, this bench (Playwright driver) ${f0(cpu.bench)} %, rest of the machine ${f0(Math.max(0, cpu.machine - known))} %; machine busy ${f0(cpu.machine)} %`,
      );
    }
    console.log(`  (the ${cores} cores are shared by all of these: the figures include their competition for the CPU, as on a ward PC that also runs the browser)`);
    if (importDir) {
      const w0 = warmupEnd;
      let overlap = 0;
      for (const [i, t] of imported.entries()) {
        const name = imported.length > 1 ? `import ${i + 1}/${options.imports}` : 'import';
        console.log(
          `${name} (${t.dir}): scan ${signed(t.scanStart - w0)} → ${signed(t.scanEnd - w0)} (${fs1(t.scanEnd - t.scanStart)}), import ${signed(t.importStart - w0)} → ${signed(t.importEnd - w0)} ` +
            `(${fs1(t.importEnd - t.importStart)}), relative to the window's start (the window is +0.0 s → ${signed(measureEnd - w0)}); outcome ${t.state}${t.error ? ` (${t.error})` : ''}`,
        );
        if (t.stages.length) console.log(`  stages: ${t.stages.map((st) => `${st.stage} ${signed(st.at - w0)}`).join(', ')}; ${t.message.replace(/\s+/g, ' ').trim()}`);
        if (Number.isFinite(t.scanStart)) overlap += Math.max(0, Math.min(Number.isFinite(t.importEnd) ? t.importEnd : measureEnd, measureEnd) - Math.max(t.scanStart, warmupEnd));
      }
      if (importNote) console.log(`  ${importNote}`);
      const complete = imported.length === options.imports && imported.every((t) => t.state === 'done');
      const inside = imported.every((t) => t.scanStart >= warmupEnd && Number.isFinite(t.importEnd) && t.importEnd <= measureEnd);
      const busyShare = `${fs1(overlap)} of the ${options.seconds} s window (${f0((overlap / (options.seconds * 1000)) * 100)} %)`;
      if (overlap <= 0) console.log('  NOTE: the import did NOT overlap the window: these are NOT figures of a ward during an import');
      else if (!complete) console.log(`  NOTE: ${imported.length ? `the import ended ${imported[imported.length - 1]!.state}` : 'no import ran'}: the scan+import overlapped ${busyShare}, not a completed import`);
      else if (!inside) console.log(`  NOTE: the scan+import ran partly outside the window; it overlapped ${busyShare}: "during scan+import" are the alarms of that overlap`);
      else console.log(`  the scan+import ran wholly inside the window, busy ${busyShare}; "during scan+import" are the ${during.length} alarms published meanwhile (the rest of the window ran without an import)`);
    }
    console.log('');
    console.log('publish = the publisher\'s publish() call (payload ts) of the bed\'s last reading at or before the alarm\'s data-raised-at; raised = data-raised-at (host clock when its');
    console.log('AlarmEngine raised it); DOM = a MutationObserver in the nurse\'s page saw the alarm row added (React committed it); next frame = the requestAnimationFrame after that.');
    const warnings = host.log().filter((l) => /error|warn|fail|behind/i.test(l)).slice(0, 5);
    for (const line of warnings) console.log(`host log: ${line}`);
    for (const line of mosquitto.log().split('\n').filter((l) => /warn|error/i.test(l) && !/run as root/.test(l)).slice(0, 3)) console.log(`mosquitto: ${line}`);
    if (!done) console.log('NOTE: the publisher process did not report: no publish times, no figures');
  } finally {
    if (browser) await Promise.race([browser.close().catch(() => undefined), sleep(10_000)]);
    await stopChild(publisher);
    await stopChild(host?.child ?? null, 15_000);
    await stopChild(mosquitto?.child ?? null);
    cleanUpNow();
  }
}

if (process.argv.includes('--publisher')) {
  await publisherMain();
} else {
  try {
    await main();
  } catch (error) {
    console.error(`alarm-screen: ${(error as Error).stack ?? String(error)}`);
    process.exitCode = 1;
  }
  // Everything is closed; should a library still hold a handle, do not hang.
  setTimeout(() => process.exit(process.exitCode ?? 0), 5000).unref();
}
