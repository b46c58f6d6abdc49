/**
 * Crash-durability benchmark (issue 7): does every write the workstation acknowledged survive a
 * `kill -9`? Run with `node bench/crash-durability.mjs` (see bench/README.md).
 *
 * The real headless host (`node dist/main/headless.js`, a child process) runs on one data dir for the
 * whole run, its store opened by a passphrase from the environment. Per trial:
 *  1. `--writers` WebSockets, each signed in as its own physician, create patients as fast as replies
 *     come (`--depth` calls in flight each), every one with a unique name; each `ok: true` reply is an
 *     acknowledged write (its id and MRN are kept);
 *  2. after a random time (`--seconds`, uniform), the host gets SIGKILL;
 *  3. the host starts again on the same data dir (its own crash recovery), the bench opens the store file
 *     through a second handle with the app's own code (openEncryptedDatabase + derivePassphraseKey) and
 *     counts, by id: acknowledged but missing (lost), stored but never acknowledged (in flight at the
 *     kill: allowed), rows of any trial without their `patient.create` audit entry or outbox entry;
 *     reads a sample back through the app (`patients.get`, physician) and runs `audit.verify` (admin);
 *  4. the restarted host is the next trial's host: each trial writes on top of a store recovered from the
 *     previous kill.
 * After the last trial the host is stopped with SIGTERM and `neuroward audit verify --json` checks the
 * chain from the command line. Exit status 1 when anything acknowledged was lost or any check failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket, { type RawData } from 'ws';
import type { Envelope } from '../src/shared/errors.js';
import type { AuditVerifyResult, ChannelName, RequestOf, ResponseOf } from '../src/shared/ipc.js';
import { WS_PATH } from '../src/shared/bridge.js';
import { mulberry32 } from '../src/shared/random.js';
import { launchFilePath, type LaunchInfo } from '../src/main/hosts/launch-secret.js';
import { openEncryptedDatabase } from '../src/main/store/database.js';
import { derivePassphraseKey, readKeyInfo } from '../src/main/store/keys.js';
import { KEY_FILE, STORE_FILE } from '../src/main/store/store-service.js';

const STORE_PASSPHRASE = 'crash durability bench: a fixed, long store passphrase for an unattended host';
const ADMIN = { username: 'crash.admin', displayName: 'Crash Bench Admin', password: 'crash bench admin password' };
const FIRST_PASSWORD = 'first password, to be changed';
const physician = (w: number) => ({ username: `crash.physician${w + 1}`, displayName: `Crash Bench Physician ${w + 1}`, password: `crash bench physician ${w + 1} password` });

const HOST_START_TIMEOUT_MS = 90_000;
const CALL_TIMEOUT_MS = 60_000;
const EXIT_TIMEOUT_MS = 20_000;
/** Writers stop by themselves this long after the planned kill, whatever happens to the host. */
const WRITER_GRACE_MS = 30_000;
const LOG_LINES_KEPT = 200;

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  trials: number;
  minSeconds: number;
  maxSeconds: number;
  writers: number;
  depth: number;
  appReads: number;
  seed: number;
  keep: boolean;
}

const USAGE = 'node bench/crash-durability.mjs [--trials=30] [--seconds=1-4] [--writers=4] [--depth=4] [--app-reads=50] [--seed=N] [--keep]';

function parseOptions(argv: string[]): Options {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const bad = (what: string): never => {
    console.error(`crash-durability: bad ${what}\nusage: ${USAGE}`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match) bad(`argument ${arg}`);
    const [, name, inline] = match!;
    if (name === 'keep' || name === 'help') {
      flags.add(name);
      continue;
    }
    if (!['trials', 'seconds', 'writers', 'depth', 'app-reads', 'seed'].includes(name!)) bad(`option --${name}`);
    const value = inline ?? argv[++i];
    if (value === undefined) bad(`option --${name} (needs a value)`);
    values.set(name!, value!);
  }
  if (flags.has('help')) {
    console.log(USAGE);
    process.exit(0);
  }
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = values.get(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) bad(`--${name} (an integer from ${min} to ${max})`);
    return n;
  };
  const seconds = values.get('seconds') ?? '1-4';
  const range = /^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?$/.exec(seconds);
  if (!range) bad('--seconds (S or MIN-MAX, e.g. 1-4)');
  const minSeconds = Number(range![1]);
  const maxSeconds = range![2] === undefined ? minSeconds : Number(range![2]);
  if (!(minSeconds >= 0.1 && maxSeconds >= minSeconds && maxSeconds <= 600)) bad('--seconds (0.1 ≤ MIN ≤ MAX ≤ 600)');
  return {
    trials: integer('trials', 30, 1, 1000),
    minSeconds,
    maxSeconds,
    writers: integer('writers', 4, 1, 16),
    // The host answers at most security.maxCallsInFlight (32) calls in flight per socket.
    depth: integer('depth', 4, 1, 32),
    appReads: integer('app-reads', 50, 0, 100_000),
    seed: integer('seed', Date.now() % 2 ** 31, 0, 2 ** 32 - 1),
    keep: flags.has('keep'),
  };
}

// ---------------------------------------------------------------------------------------------
// Cleanup: children and the data dir go away on every exit, also on failure and Ctrl-C.

const live = { children: new Set<ChildProcess>(), dirs: new Set<string>() };

function cleanUpNow(): void {
  for (const child of live.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of live.dirs) rmSync(dir, { recursive: true, force: true });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The project root: the folder whose package.json is NeuroWard's (the bundle runs from build/bench-*). */
function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 10; i++) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown }).name === 'neuroward') return dir;
    dir = path.dirname(dir);
  }
  throw new Error('cannot find the NeuroWard project root above this script');
}

/** Sources changed since dist was built (a stale build benchmarks old code). Bounded walk of src/. */
function newerSources(root: string, than: number): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 8 || found.length >= 20) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full, depth + 1);
      else if (/\.tsx?$/.test(entry.name) && !full.includes(`${path.sep}renderer${path.sep}`) && statSync(full).mtimeMs > than) found.push(path.relative(root, full));
    }
  };
  walk(path.join(root, 'src'), 0);
  return found;
}

// ---------------------------------------------------------------------------------------------
// The host process

class Host {
  private readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly child: ChildProcess,
    readonly info: LaunchInfo,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
      else child.once('exit', (code, signal) => resolve({ code, signal }));
    });
  }

  get pid(): number {
    return this.info.pid;
  }

  log(): string {
    return this.lines.join('\n');
  }

  /** Starts `node dist/main/headless.js --port 0` and waits for the launch file this pid writes when it listens. */
  static async start(root: string, dataDir: string, notes: Set<string>): Promise<Host> {
    const env: NodeJS.ProcessEnv = {};
    // Nothing of the caller's own NeuroWard settings leaks in (a config file, FHIR servers, a broker URL).
    for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('NEUROWARD_')) env[name] = value;
    Object.assign(env, {
      NEUROWARD_DATA_DIR: dataDir,
      NEUROWARD_PASSPHRASE_SOURCE: 'env',
      NEUROWARD_STORE_PASSPHRASE: STORE_PASSPHRASE,
      NEUROWARD_MQTT_PORT: '0',
      NEUROWARD_DEMO: 'false',
    });
    // Port 0: the kernel picks a free loopback port (no race with other processes); the launch file names it.
    const child = spawn(process.execPath, [path.join(root, 'dist/main/headless.js'), '--port', '0'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.children.add(child);
    child.once('exit', () => live.children.delete(child));
    const lines: string[] = [];
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(line);
      if (lines.length > LOG_LINES_KEPT) lines.splice(0, lines.length - LOG_LINES_KEPT);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const spawned = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', reject);
    });

    const file = launchFilePath(dataDir);
    const deadline = Date.now() + HOST_START_TIMEOUT_MS;
    while (true) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`the host exited at start (code ${child.exitCode}, signal ${child.signalCode}):\n${lines.slice(-20).join('\n')}`);
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the host did not write ${file} for pid ${spawned} within ${HOST_START_TIMEOUT_MS / 1000} s:\n${lines.slice(-20).join('\n')}`);
      }
      let info: LaunchInfo | null = null;
      try {
        info = JSON.parse(readFileSync(file, 'utf8')) as LaunchInfo;
      } catch {
        info = null; // not there yet, or the previous (killed) host's
      }
      // After a kill -9 the previous host's file is still there: only this pid's counts.
      if (info && info.pid === spawned) {
        const mode = statSync(file).mode & 0o777;
        if (mode !== 0o600) notes.add(`launch file ${file} has mode ${mode.toString(8)}, not 600`);
        const host = new Host(child, info);
        host.lines.push(...lines);
        child.stdout?.off('data', keep);
        child.stderr?.off('data', keep);
        const more = (chunk: Buffer) => {
          for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) host.lines.push(line);
          if (host.lines.length > LOG_LINES_KEPT) host.lines.splice(0, host.lines.length - LOG_LINES_KEPT);
        };
        child.stdout?.on('data', more);
        child.stderr?.on('data', more);
        return host;
      }
      await sleep(25);
    }
  }

  async kill9(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    const result = await withTimeout(this.exited, EXIT_TIMEOUT_MS, `pid ${this.pid} after SIGKILL`);
    if (result.signal !== 'SIGKILL') throw new Error(`the host (pid ${this.pid}) ended with code ${result.code} before the kill:\n${this.lines.slice(-20).join('\n')}`);
  }

  /** SIGTERM (the host closes its store), SIGKILL if it has not ended after EXIT_TIMEOUT_MS. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    try {
      return await withTimeout(this.exited, EXIT_TIMEOUT_MS, `pid ${this.pid} after SIGTERM`);
    } catch {
      this.child.kill('SIGKILL');
      return this.exited;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The WebSocket protocol of the headless host

class ClosedError extends Error {}

interface PendingCall {
  resolve(envelope: Envelope<unknown>): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

class IpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, PendingCall>();
  private isOpen = true;
  readonly closed: Promise<void>;

  private constructor(private readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on('close', () => {
        this.isOpen = false;
        for (const [id, call] of this.pending) {
          clearTimeout(call.timer);
          call.reject(new ClosedError(`socket closed with call ${id} unanswered`));
        }
        this.pending.clear();
        resolve();
      });
    });
    ws.on('message', (data: RawData) => this.onMessage(data));
    ws.on('error', () => undefined); // a reset at the kill; 'close' follows
  }

  static open(info: LaunchInfo): Promise<IpcClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${info.port}${WS_PATH}`, {
      headers: { origin: `http://127.0.0.1:${info.port}`, cookie: `${info.cookieName}=${info.secret}` },
      perMessageDeflate: false,
    });
    return withTimeout(
      new Promise<IpcClient>((resolve, reject) => {
        ws.once('open', () => resolve(new IpcClient(ws)));
        ws.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket upgrade refused: HTTP ${res.statusCode}`)));
        ws.once('error', reject);
      }),
      CALL_TIMEOUT_MS,
      'WebSocket open',
    );
  }

  get open(): boolean {
    return this.isOpen;
  }

  private onMessage(data: RawData): void {
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null || 'event' in message) return;
    const { id } = message as { id?: unknown };
    if (typeof id !== 'number') return;
    const call = this.pending.get(id);
    if (!call) return;
    this.pending.delete(id);
    clearTimeout(call.timer);
    call.resolve(message as Envelope<unknown>);
  }

  call<C extends ChannelName>(channel: C, payload: RequestOf<C>, timeoutMs = CALL_TIMEOUT_MS): Promise<Envelope<ResponseOf<C>>> {
    if (!this.isOpen) return Promise.reject(new ClosedError('socket already closed'));
    const id = this.nextId++;
    return new Promise<Envelope<ResponseOf<C>>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${channel}: no answer within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (envelope: Envelope<unknown>) => void, reject, timer });
      this.ws.send(JSON.stringify({ id, channel, payload }), (error) => {
        if (!error) return;
        const call = this.pending.get(id);
        if (!call) return;
        this.pending.delete(id);
        clearTimeout(call.timer);
        call.reject(new ClosedError(`send failed: ${error.message}`));
      });
    });
  }

  async ok<C extends ChannelName>(channel: C, payload: RequestOf<C>): Promise<ResponseOf<C>> {
    const envelope = await this.call(channel, payload);
    if (!envelope.ok) throw new Error(`${channel} refused: ${envelope.error.code}: ${envelope.error.message}`);
    return envelope.value;
  }

  /** Closes the socket and waits for it (bounded: a dead peer gets terminate()). */
  async close(): Promise<void> {
    if (this.isOpen) this.ws.close();
    try {
      await withTimeout(this.closed, 5_000, 'WebSocket close');
    } catch {
      this.ws.terminate();
      await this.closed;
    }
  }

  terminate(): void {
    this.ws.terminate();
  }
}

interface Clients {
  admin: IpcClient;
  writers: IpcClient[];
}

/** First start: the store and its accounts (admin, one physician per writer, each password changed once). */
async function setUp(host: Host, writers: number): Promise<Clients> {
  const admin = await IpcClient.open(host.info);
  await admin.ok('setup.initialize', { admin: ADMIN, demoData: false });
  await admin.ok('auth.signIn', { username: ADMIN.username, password: ADMIN.password });
  const clients: IpcClient[] = [];
  for (let w = 0; w < writers; w++) {
    const account = physician(w);
    const user = await admin.ok('users.create', { username: account.username, displayName: account.displayName, role: 'physician', password: FIRST_PASSWORD });
    if (!user.mustChangePassword) throw new Error(`users.create returned ${account.username} without mustChangePassword`);
    const client = await IpcClient.open(host.info);
    await client.ok('auth.signIn', { username: account.username, password: FIRST_PASSWORD });
    const refused = await client.call('patients.create', { givenName: 'Before', familyName: 'Password Change', birthDate: '1970-01-01', sex: 'unknown' });
    if (refused.ok) throw new Error(`${account.username} wrote a patient before changing the first password`);
    await client.ok('auth.changePassword', { currentPassword: FIRST_PASSWORD, newPassword: account.password });
    clients.push(client);
  }
  return { admin, writers: clients };
}

/** Every later start: admin and the physicians sign in on new sockets. */
async function signIn(host: Host, writers: number): Promise<Clients> {
  const admin = await IpcClient.open(host.info);
  await admin.ok('auth.signIn', { username: ADMIN.username, password: ADMIN.password });
  const clients = await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const client = await IpcClient.open(host.info);
      const session = await client.ok('auth.signIn', { username: physician(w).username, password: physician(w).password });
      if (session.mustChangePassword || session.user.role !== 'physician') throw new Error(`${physician(w).username}: unexpected session ${JSON.stringify(session.user)}`);
      return client;
    }),
  );
  return { admin, writers: clients };
}

async function closeAll(clients: Clients | null): Promise<void> {
  if (!clients) return;
  await Promise.all([clients.admin, ...clients.writers].map((c) => c.close()));
}

// ---------------------------------------------------------------------------------------------
// One trial

interface Acked {
  mrn: string;
  familyName: string;
}

interface WriteOutcome {
  acked: Map<string, Acked>;
  sent: Set<string>;
  /** Calls whose socket closed (the kill) before an answer came. */
  unanswered: number;
  /** Answers `ok: false`. */
  refused: number;
  firstRefusal: string | null;
  killAfterMs: number;
  /** Time from the first write to the kill signal. */
  writingMs: number;
  /** Answers that arrived after the kill signal was sent (sent by the host before it died). */
  ackedAfterKill: number;
}

const givenNameOf = (trial: number) => `CrashTrial${trial}`;

async function writeUntilKilled(host: Host, clients: Clients, trial: number, killAfterMs: number, depth: number): Promise<WriteOutcome> {
  const outcome: WriteOutcome = { acked: new Map(), sent: new Set(), unanswered: 0, refused: 0, firstRefusal: null, killAfterMs, writingMs: 0, ackedAfterKill: 0 };
  let killed = false;
  let stop = false;
  const started = Date.now();
  const hardStop = setTimeout(() => {
    stop = true;
  }, killAfterMs + WRITER_GRACE_MS);

  const lane = async (client: IpcClient, w: number, laneIndex: number, counter: { n: number }) => {
    while (!stop && client.open) {
      const familyName = `Crash-${trial}-${w + 1}-${counter.n++}`;
      outcome.sent.add(familyName);
      try {
        const envelope = await client.call('patients.create', { givenName: givenNameOf(trial), familyName, birthDate: '1970-01-01', sex: 'unknown' });
        if (envelope.ok) {
          outcome.acked.set(envelope.value.id, { mrn: envelope.value.mrn, familyName });
          if (killed) outcome.ackedAfterKill += 1;
        } else {
          outcome.refused += 1;
          outcome.firstRefusal ??= `writer ${w + 1} lane ${laneIndex + 1}: ${envelope.error.code}: ${envelope.error.message}`;
        }
      } catch (error) {
        if (error instanceof ClosedError) outcome.unanswered += 1;
        else throw error;
      }
    }
  };
  const writers = Promise.all(
    clients.writers.map((client, w) => {
      const counter = { n: 0 };
      return Promise.all(Array.from({ length: depth }, (_, l) => lane(client, w, l, counter)));
    }),
  );
  // Observed below, after the kill; until then a failure must not count as an unhandled rejection.
  writers.catch(() => undefined);

  await sleep(killAfterMs);
  outcome.writingMs = Date.now() - started;
  killed = true;
  await host.kill9();
  // The host is gone: its sockets close (RST/FIN). Bounded: should one linger, it is terminated.
  try {
    await withTimeout(writers, WRITER_GRACE_MS, 'writers after the kill');
  } catch {
    for (const client of clients.writers) client.terminate();
    await writers;
  } finally {
    clearTimeout(hardStop);
  }
  await Promise.all([clients.admin, ...clients.writers].map((c) => c.close()));
  return outcome;
}

interface StoreCheck {
  /** Acknowledged, no row with that id. */
  lost: number;
  /** A row with the acknowledged id, but another MRN or name than the reply said. */
  mismatched: number;
  /** This trial's rows no reply acknowledged (in flight at the kill). */
  unackedStored: number;
  /** This trial's rows for a name never sent, or acknowledged under another id (a write applied twice). */
  phantom: number;
  rowsThisTrial: number;
  rowsTotal: number;
  withoutAudit: number;
  withoutOutbox: number;
  /** `patient.create` success entries naming no row. */
  auditWithoutRow: number;
  examples: string[];
}

function checkStore(dataDir: string, key: Buffer, trial: number, outcome: WriteOutcome): StoreCheck {
  // Opened only for the check and closed at once: a second handle held across the kill would keep the
  // WAL index alive and change the recovery the host does on its own.
  const db = openEncryptedDatabase(path.join(dataDir, STORE_FILE), key, { create: false });
  try {
    const check: StoreCheck = { lost: 0, mismatched: 0, unackedStored: 0, phantom: 0, rowsThisTrial: 0, rowsTotal: 0, withoutAudit: 0, withoutOutbox: 0, auditWithoutRow: 0, examples: [] };
    const note = (line: string) => {
      if (check.examples.length < 5) check.examples.push(line);
    };
    const byId = db.prepare('SELECT mrn, family_name AS familyName FROM patients WHERE id = ?');
    for (const [id, acked] of outcome.acked) {
      const row = byId.get(id) as { mrn: string; familyName: string } | undefined;
      if (!row) {
        check.lost += 1;
        note(`LOST: acknowledged ${id} (${acked.mrn}, ${acked.familyName}) is not in the store`);
      } else if (row.mrn !== acked.mrn || row.familyName !== acked.familyName) {
        check.mismatched += 1;
        note(`MISMATCH: ${id} acknowledged as ${acked.mrn}/${acked.familyName}, stored as ${row.mrn}/${row.familyName}`);
      }
    }
    const ackedNames = new Map<string, string>();
    for (const [id, acked] of outcome.acked) ackedNames.set(acked.familyName, id);
    const rows = db.prepare('SELECT id, family_name AS familyName FROM patients WHERE given_name = ?').all(givenNameOf(trial)) as { id: string; familyName: string }[];
    check.rowsThisTrial = rows.length;
    for (const row of rows) {
      if (outcome.acked.has(row.id)) continue;
      const ackedAs = ackedNames.get(row.familyName);
      if (!outcome.sent.has(row.familyName) || ackedAs !== undefined) {
        check.phantom += 1;
        note(`PHANTOM: row ${row.id} (${row.familyName}) ${ackedAs ? `duplicates acknowledged ${ackedAs}` : 'was never sent'}`);
      } else check.unackedStored += 1;
    }

    const patientIds = (db.prepare('SELECT id FROM patients').pluck().all() as string[]);
    check.rowsTotal = patientIds.length;
    const audited = new Set(db.prepare(`SELECT entity_id FROM audit_log WHERE action = 'patient.create' AND outcome = 'success' AND entity_type = 'Patient'`).pluck().all() as string[]);
    const queued = new Set(db.prepare(`SELECT resource_id FROM outbox WHERE resource_type = 'Patient' AND operation = 'create'`).pluck().all() as string[]);
    const present = new Set(patientIds);
    for (const id of patientIds) {
      if (!audited.has(id)) {
        check.withoutAudit += 1;
        note(`NO AUDIT: patient ${id} has no patient.create entry`);
      }
      if (!queued.has(id)) {
        check.withoutOutbox += 1;
        note(`NO OUTBOX: patient ${id} has no outbox entry`);
      }
    }
    for (const id of audited) {
      if (!present.has(id)) {
        check.auditWithoutRow += 1;
        note(`AUDIT WITHOUT ROW: patient.create entry for ${id}, no such patient`);
      }
    }
    return check;
  } finally {
    db.close();
  }
}

interface AppCheck {
  reads: number;
  readsOk: number;
  verify: AuditVerifyResult;
}

/** Through the restarted host: a sample of acknowledged writes read back by the physicians, audit.verify by the admin. */
async function checkThroughApp(clients: Clients, outcome: WriteOutcome, sampleSize: number, random: () => number): Promise<AppCheck> {
  const ids = [...outcome.acked.keys()];
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  const sample = ids.slice(0, sampleSize);
  let readsOk = 0;
  await Promise.all(
    clients.writers.map(async (client, w) => {
      for (let i = w; i < sample.length; i += clients.writers.length) {
        const id = sample[i]!;
        const envelope = await client.call('patients.get', { id });
        if (envelope.ok && envelope.value.mrn === outcome.acked.get(id)?.mrn) readsOk += 1;
      }
    }),
  );
  const verify = await clients.admin.ok('audit.verify', {});
  return { reads: sample.length, readsOk, verify };
}

interface TrialResult {
  trial: number;
  outcome: WriteOutcome;
  store: StoreCheck;
  app: AppCheck;
  restartMs: number;
}

// ---------------------------------------------------------------------------------------------
// Report

const pad = (s: string | number, n: number) => String(s).padStart(n);

function trialLine(r: TrialResult, trials: number): string {
  const o = r.outcome;
  const s = r.store;
  const rate = o.acked.size / Math.max(0.001, o.writingMs / 1000);
  const problems = [
    s.mismatched ? `${s.mismatched} MISMATCHED` : '',
    s.phantom ? `${s.phantom} PHANTOM` : '',
    s.auditWithoutRow ? `${s.auditWithoutRow} audit entries without row` : '',
    o.refused ? `${o.refused} refused (${o.firstRefusal})` : '',
  ].filter(Boolean);
  return (
    `trial ${pad(r.trial, String(trials).length)}/${trials}: kill -9 after ${(o.writingMs / 1000).toFixed(2)} s; ` +
    `acknowledged ${pad(o.acked.size, 5)} (${rate.toFixed(0)}/s${o.ackedAfterKill ? `, ${o.ackedAfterKill} read after the signal` : ''}), unanswered ${pad(o.unanswered, 2)}; ` +
    `after restart (${(r.restartMs / 1000).toFixed(1)} s): lost ${s.lost}, stored unacknowledged ${s.unackedStored}, ` +
    `rows ${s.rowsThisTrial} (store ${s.rowsTotal}), without audit ${s.withoutAudit}, without outbox ${s.withoutOutbox}; ` +
    `app reads ${r.app.readsOk}/${r.app.reads}; audit verify ${r.app.verify.ok ? 'ok' : 'BROKEN'} (${r.app.verify.entries} entries)` +
    (problems.length ? `; ${problems.join('; ')}` : '')
  );
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------

async function runCliVerify(root: string, dataDir: string): Promise<{ ok: boolean; entries: number; detail: string }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('NEUROWARD_')) env[name] = value;
  Object.assign(env, { NEUROWARD_DATA_DIR: dataDir, NEUROWARD_PASSPHRASE_SOURCE: 'env', NEUROWARD_STORE_PASSPHRASE: STORE_PASSPHRASE });
  const child = spawn(process.execPath, [path.join(root, 'dist/cli/neuroward.js'), 'audit', 'verify', '--json'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const code = await withTimeout(
    new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c))),
    120_000,
    'neuroward audit verify',
  ).finally(() => live.children.delete(child));
  try {
    const result = JSON.parse(stdout) as AuditVerifyResult;
    return { ok: result.ok && code === 0, entries: result.entries, detail: result.ok ? `exit ${code}` : `exit ${code}: ${result.problems[0]?.message ?? 'broken'}` };
  } catch {
    return { ok: false, entries: 0, detail: `exit ${code}, no JSON: ${(stderr || stdout).slice(0, 300)}` };
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const root = projectRoot();
  const headless = path.join(root, 'dist/main/headless.js');
  const cliJs = path.join(root, 'dist/cli/neuroward.js');
  if (!existsSync(headless) || !existsSync(cliJs)) throw new Error(`${path.relative(root, headless)} or ${path.relative(root, cliJs)} is missing: run \`node scripts/build.mjs --no-renderer\` (bench/crash-durability.mjs does it when they are missing)`);
  const builtAt = statSync(headless).mtimeMs;
  const stale = newerSources(root, builtAt);

  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'nw-crash-'));
  if (!options.keep) live.dirs.add(dataDir);
  const random = mulberry32(options.seed);
  const notes = new Set<string>();

  console.log(
    `Crash-durability benchmark: ${options.trials} trials; per trial ${options.writers} writers × ${options.depth} calls in flight create patients through the real headless host ` +
      `(${path.relative(root, headless)}, built ${new Date(builtAt).toISOString()}), kill -9 after ${options.minSeconds === options.maxSeconds ? `${options.minSeconds} s` : `U(${options.minSeconds}, ${options.maxSeconds}) s`}, restart, check; seed ${options.seed}`,
  );
  console.log(`data dir ${dataDir}${options.keep ? ' (kept)' : ' (removed at the end)'}`);
  if (stale.length) console.log(`note: ${stale.length}${stale.length >= 20 ? '+' : ''} source file(s) changed since that build (e.g. ${stale.slice(0, 3).join(', ')}): run \`npm run build\` to measure them`);

  let host: Host | null = null;
  let clients: Clients | null = null;
  const results: TrialResult[] = [];
  let cli: { ok: boolean; entries: number; detail: string } | null = null;
  let failure: string | null = null;
  try {
    host = await Host.start(root, dataDir, notes);
    clients = await setUp(host, options.writers);
    const keyInfo = readKeyInfo(path.join(dataDir, KEY_FILE));
    if (!keyInfo) throw new Error('the store has no key file after setup');
    const key = await derivePassphraseKey(STORE_PASSPHRASE, keyInfo);

    for (let trial = 1; trial <= options.trials; trial++) {
      const killAfterMs = Math.round(1000 * (options.minSeconds + random() * (options.maxSeconds - options.minSeconds)));
      const outcome = await writeUntilKilled(host, clients, trial, killAfterMs, options.depth);
      clients = null;
      const restarted = Date.now();
      host = await Host.start(root, dataDir, notes);
      clients = await signIn(host, options.writers);
      const restartMs = Date.now() - restarted;
      const store = checkStore(dataDir, key, trial, outcome);
      const app = await checkThroughApp(clients, outcome, options.appReads, random);
      const result: TrialResult = { trial, outcome, store, app, restartMs };
      results.push(result);
      console.log(trialLine(result, options.trials));
      for (const example of store.examples) console.log(`  ${example}`);
      if (!app.verify.ok) for (const problem of app.verify.problems.slice(0, 3)) console.log(`  audit: ${problem.kind} at #${problem.seq}: ${problem.message}`);
    }

    await closeAll(clients);
    clients = null;
    const stopped = await host.stop();
    if (stopped.code !== 0) notes.add(`the last host ended with code ${stopped.code} signal ${stopped.signal} after SIGTERM`);
    host = null;
    cli = await runCliVerify(root, dataDir);
  } catch (error) {
    failure = error instanceof Error ? (error.stack ?? error.message) : String(error);
    if (host) {
      const log = host.log();
      if (log) failure += `\nlast host output:\n${log.split('\n').slice(-15).join('\n')}`;
    }
  } finally {
    if (clients) for (const c of [clients.admin, ...clients.writers]) c.terminate();
    if (host) await host.kill9().catch(() => undefined);
  }

  // Summary
  const sum = (f: (r: TrialResult) => number) => results.reduce((a, r) => a + f(r), 0);
  const acked = sum((r) => r.outcome.acked.size);
  const lost = sum((r) => r.store.lost);
  const mismatched = sum((r) => r.store.mismatched);
  const phantom = sum((r) => r.store.phantom);
  const unacked = sum((r) => r.store.unackedStored);
  const last = results.at(-1);
  // Each trial checks every row in the store (all trials so far): the worst trial is the figure.
  const maxWithoutAudit = Math.max(0, ...results.map((r) => r.store.withoutAudit));
  const maxWithoutOutbox = Math.max(0, ...results.map((r) => r.store.withoutOutbox));
  const auditWithoutRow = Math.max(0, ...results.map((r) => r.store.auditWithoutRow));
  const verified = results.filter((r) => r.app.verify.ok).length;
  const reads = sum((r) => r.app.reads);
  const readsOk = sum((r) => r.app.readsOk);
  const refused = sum((r) => r.outcome.refused);
  const writingS = sum((r) => r.outcome.writingMs) / 1000;

  console.log('');
  console.log(
    table(
      ['trials', 'acknowledged writes', 'lost (acknowledged, missing)', 'unacknowledged stored', 'rows without audit entry', 'rows without outbox entry', 'audit verify ok'],
      [[`${results.length}/${options.trials}`, String(acked), String(lost), String(unacked), String(maxWithoutAudit), String(maxWithoutOutbox), `${verified}/${results.length}`]],
    ),
  );
  console.log('');
  console.log(`unanswered at the kill: ${sum((r) => r.outcome.unanswered)} calls (${unacked} of them stored); refused answers: ${refused}; acknowledged but stored differently: ${mismatched}; rows never sent or stored twice: ${phantom}; audit entries without a row: ${auditWithoutRow}`);
  console.log(`rows in the store at the end: ${last?.store.rowsTotal ?? 0}; read back through the app (patients.get, physician): ${readsOk}/${reads}; writing ${writingS.toFixed(1)} s in all, ${(acked / Math.max(0.001, writingS)).toFixed(0)} acknowledged writes/s`);
  if (results.length) console.log(`restart to signed-in sockets: mean ${(sum((r) => r.restartMs) / results.length / 1000).toFixed(1)} s, max ${(Math.max(...results.map((r) => r.restartMs)) / 1000).toFixed(1)} s`);
  if (cli) console.log(`neuroward audit verify --json after the last trial (host stopped with SIGTERM): ${cli.ok ? 'ok' : 'BROKEN'}, ${cli.entries} entries (${cli.detail})`);
  for (const n of notes) console.log(`note: ${n}`);

  const failed =
    failure !== null || results.length < options.trials || lost > 0 || mismatched > 0 || phantom > 0 || maxWithoutAudit > 0 || maxWithoutOutbox > 0 || auditWithoutRow > 0 || verified < results.length || !cli?.ok;
  if (failure) console.log(`\nFAILED to complete: ${failure}`);
  console.log(failed ? 'RESULT: FAIL' : 'RESULT: PASS (every acknowledged write survived every kill; audit chain intact)');
  process.exitCode = failed ? 1 : 0;
}

process.on('exit', cleanUpNow);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.log(`\n${signal}: killing the host and removing the data dir`);
    cleanUpNow();
    process.exit(130);
  });
}

try {
  await main();
} catch (error) {
  console.error(`crash-durability: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
// Everything is closed; should a handle linger, do not hang.
setTimeout(() => process.exit(process.exitCode ?? 0), 3000).unref();
