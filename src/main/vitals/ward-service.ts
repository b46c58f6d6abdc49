/**
 * The ward: MQTT ingest → stored reading → alarm engine → bed state, pushed to nurses' windows at most
 * once a second. Starts when the encrypted store opens (readings are stored before anything else sees
 * them); the embedded broker starts with it when no hospital broker is configured.
 *
 * NEWS2 SpO2 scale 2 (RCP 2017: hypercapnic respiratory failure) is a physician's setting for a
 * PATIENT (vitals_spo2_scale, migration 5), not for a bed: each reading is scored on the scale of the
 * patient it names, so the setting follows the patient to another bed and the next patient in the bed
 * is back on scale 1.
 *
 * Patients in beds (ADT, migration 8): with `occupancy` (the admissions, see occupancy.ts), each reading
 * is stored under the patient admitted to its bed at the reading's time, the board shows that patient
 * (name and MRN, made once per admission change, not per reading), NEWS2 uses their scale, and a monitor
 * naming someone else raises the bed's `patient-mismatch` technical alarm; the reading is kept, never
 * silently relinked. Admitted beds are on the board with or without a monitor reporting.
 *
 * Every alarm event goes to the alarm log (alarm_events, migration 7, alarm-log.ts) in the transaction
 * of its audit entry: what the engine does by itself in one transaction per turn of the event loop
 * (writeAlarmLog), acknowledge and pause in the transaction of their audited call (silence).
 */
import type { AlarmView, BedUpdate, BedView, Spo2Scale, Vitals, WardBoard } from '../../shared/ipc.js';
import { TREND_MINUTES, TREND_VITALS, type TrendVital } from '../../shared/ward-trend.js';
import { NwError } from '../../shared/errors.js';
import type { Db } from '../store/database.js';
import { AlarmLog, alarmLogEntry, type AlarmLogEntry } from './alarm-log.js';
import { AlarmEngine, WARD_SCOPE, type Alarm, type AlarmEvent } from './alarms.js';
import { ingestTlsFor, readEmbeddedTls, redactBrokerUrl, resolveVitalsBroker, splitBrokerUrl, type EmbeddedBroker, type EmbeddedTlsFiles } from './broker.js';
import { MonitorCredentialsRepo } from './monitor-credentials.js';
import { VitalsIngest, workstationClientId, type BedKey, type RejectReason } from './ingest.js';
import { scoreNews2, type News2Result } from './news2.js';
import type { VitalsPayload } from './payload.js';
import { VitalsRepo, type StoredReading } from './vitals-repo.js';
import { attributeReading, type BedOccupancy, type BedOccupant } from './occupancy.js';

/** A patient's trend (patientTrend): at most this many bed-minutes in one answer (3 days of one bed). */
const PATIENT_TREND_MAX_MINUTES = 4320;
const RETENTION_EVERY_MS = 3_600_000;
/** Due minute bundles are written over this many seconds (one run per second). */
const BUNDLES_SPREAD_S = 20;
const BUNDLES_PER_TRANSACTION = 25;
/** ~0.5 ms each: at most ~0.1 s of work a second. */
const BUNDLES_MAX_PER_S = 200;
/** Alarm events kept in memory while the store cannot take them (beyond: the oldest are dropped, said in the log). */
const MAX_PENDING_LOG = 50_000;

interface BedState {
  key: BedKey;
  ward: string;
  bed: string;
  patientRef: string | null;
  latest: Vitals | null;
  /** Minute number (ms / 60 000) of trend[59]; older minutes shift left. */
  trendMinute: number;
  trend: Record<TrendVital, (number | null)[]>;
  /** The screens have the whole trend but its last point (the next update sends that point alone; see shared/ward-trend.ts). */
  trendSent: boolean;
  technical: Map<string, string>;
  /** The NEWS2 SpO2 scale the engine scores this bed on: always that of `patientRef` (1 without a patient). */
  spo2Scale: Spo2Scale;
  /** The patient admitted to the bed now (ADT), as the board shows it: made once per admission change. */
  occupant: BedView['admission'];
  /** The engine has a `patient-mismatch` alarm on for this bed (or may have): readings must say when it is over. */
  mismatch: boolean;
  /** A monitor has reported from this bed (the engine watches it): an admitted bed without one is only on the board. */
  monitored: boolean;
}

/** A patient a clinician put on SpO2 scale 2 (scale 1, the default, is the absence of a setting). */
interface Spo2ScaleSetting {
  scale: 2;
  by: string;
  reason: string;
  at: string;
}

interface Spo2ScaleRow {
  patient_ref: string;
  scale: number;
  set_by: string;
  reason: string;
  set_at: string;
}

export interface WardServiceOptions {
  mqttUrl: string | null;
  embeddedPort: number;
  /** Seed of the fixed MQTT client id: the broker keeps this workstation's session and queue under it. */
  clientSeed: string;
  keepaliveSeconds?: number;
  username?: string | null;
  password?: string | null;
  tls?: { caFile?: string; certFile?: string; keyFile?: string } | null;
  /** Interface the embedded broker binds (default 127.0.0.1). */
  embeddedHost?: string;
  /** The embedded broker speaks TLS only, with this certificate and key. */
  embeddedTls?: EmbeddedTlsFiles | null;
  now: () => Date;
  /** Sends a ward update to every window allowed to see it. */
  broadcast: (update: { beds: BedUpdate[]; alarms: AlarmView[] | null; link: WardBoard['link']; counters: WardBoard['counters'] }) => void;
  log: (message: string) => void;
  /**
   * Who is admitted to each bed (ADT; occupancy.ts): readings are stored under, and the board shows, the
   * admitted patient. Without it, the patient the monitor names, as before admissions existed.
   */
  occupancy?: BedOccupancy | null;
}

/** The alarm engine's bed ids cannot hold '/' (it separates the parts of an alarm id); ward and bed names cannot hold ':'. */
const engineBed = (bedKey: BedKey): string => bedKey.replace('/', ':');
const bedKeyOfEngine = (bedId: string): BedKey => bedId.replace(':', '/');

function emptyTrend(): BedState['trend'] {
  return { hr: Array(TREND_MINUTES).fill(null), spo2: Array(TREND_MINUTES).fill(null), rr: Array(TREND_MINUTES).fill(null), sbp: Array(TREND_MINUTES).fill(null) };
}

function news2View(result: News2Result | null): BedView['news2'] {
  if (!result) return null;
  return {
    aggregate: result.aggregate,
    risk: result.risk,
    complete: result.complete,
    anySingleThree: result.anySingleThree,
    response: `${result.response.monitoring}; ${result.response.urgency}`,
  };
}

/** One bed-minute of a patient's trend (patientTrend). */
export type PatientTrendMinute = Vitals & { minute: string; bedKey: string; news2: number | null; readings: number; conflicts: number };

/**
 * The beds as someone may see them who may not read restricted records (no break-glass): a restricted
 * patient's name is left out (the MRN stays, as in every list). The same array when there is nothing to hide.
 */
export function hideRestrictedNames<B extends BedView | BedUpdate>(beds: B[]): B[] {
  if (!beds.some((b) => b.admission?.restricted && b.admission.name !== null)) return beds;
  return beds.map((b) => (b.admission?.restricted && b.admission.name !== null ? { ...b, admission: { ...b.admission, name: null } } : b));
}

/** Shortest time between two urgent board pushes (pushUrgently). */
const URGENT_PUSH_MIN_MS = 100;

/** An event the nurse must see at once: an alarm raised, recurred or risen in priority. */
function needsNurseNow(event: AlarmEvent): boolean {
  return event.type === 'raised' || (event.type === 'updated' && (event.change === 'priority-raised' || event.change === 'recurred'));
}

export function alarmView(alarm: Alarm): AlarmView {
  return {
    id: alarm.id,
    bedKey: alarm.bedId === null || alarm.bedId === '*' ? null : bedKeyOfEngine(alarm.bedId),
    kind: alarm.kind,
    condition: alarm.condition,
    priority: alarm.priority,
    state: alarm.state,
    message: alarm.message,
    raisedAt: new Date(alarm.raisedAt).toISOString(),
    acknowledged: alarm.acknowledged ? { by: alarm.acknowledged.by, reason: alarm.acknowledged.reason, at: new Date(alarm.acknowledged.at).toISOString() } : null,
    pausedUntil: alarm.paused ? new Date(alarm.paused.until).toISOString() : null,
    escalationLevel: alarm.escalationLevel,
    currentSeverity: alarm.currentSeverity,
  };
}

function vitalsOf(reading: Pick<StoredReading, 'ts' | 'hr' | 'spo2' | 'rr' | 'tempC' | 'sbp' | 'dbp' | 'acvpu' | 'o2'>): Vitals {
  const { ts, hr, spo2, rr, tempC, sbp, dbp, acvpu, o2 } = reading;
  return { ts, hr, spo2, rr, tempC, sbp, dbp, acvpu, o2 };
}

export class WardService {
  private readonly engine = new AlarmEngine();
  private readonly beds = new Map<BedKey, BedState>();
  private readonly dirty = new Set<BedKey>();
  private alarmsDirty = false;
  private linkDirty = false;
  private lastCounters = '';
  private link: WardBoard['link'];
  private ingest: VitalsIngest | null = null;
  private broker: EmbeddedBroker | null = null;
  private repo: VitalsRepo | null = null;
  private db: Db | null = null;
  /** NEWS2 SpO2 scale settings by patient reference (migration 5); only scale 2 has an entry. */
  private readonly spo2Scales = new Map<string, Spo2ScaleSetting>();
  private timers: NodeJS.Timeout[] = [];
  /** The alarm log (alarm-log.ts); null until started and once stopping. */
  private alarmLog: AlarmLog | null = null;
  /** Engine events not written yet: one transaction per turn of the event loop (writeAlarmLog). */
  private pendingLog: AlarmLogEntry[] = [];
  private logScheduled = false;
  /** An urgent push is scheduled (see pushUrgently). */
  private urgentPush: { cancel: () => void } | null = null;
  /** The beds of the events the urgent push is for (their tiles change with the alarm). */
  private readonly urgentBeds = new Set<BedKey>();
  private lastUrgentPushAt = 0;
  private logFailures = 0;
  /** The patient of each alarm still on, as when it was raised: its later events belong to that patient. */
  private readonly alarmPatient = new Map<string, string | null>();
  private stopping = false;

  constructor(private readonly options: WardServiceOptions) {
    this.link = { up: false, since: null, broker: options.mqttUrl ? redactBrokerUrl(options.mqttUrl) : 'embedded' };
  }

  /** Where monitors publish; never with a user name or password in it. */
  get brokerUrl(): string | null {
    return this.broker?.url ?? (this.options.mqttUrl ? redactBrokerUrl(this.options.mqttUrl) : null);
  }

  /** True when this workstation runs the embedded broker (monitor credentials apply to it only). */
  get embeddedBroker(): boolean {
    return this.options.mqttUrl === null;
  }

  /** Credential ids of the monitors connected to the embedded broker now. */
  connectedMonitors(): Set<string> {
    return this.broker?.connectedMonitors() ?? new Set();
  }

  /** A monitor credential was revoked: the embedded broker closes its connections (returns how many). */
  monitorRevoked(credentialId: string): number {
    return this.broker?.disconnectMonitor(credentialId) ?? 0;
  }

  async start(db: Db): Promise<void> {
    if (this.ingest) return;
    this.repo = new VitalsRepo(db, this.options.now, { occupancy: this.options.occupancy ?? null });
    this.alarmLog = new AlarmLog(db, this.options.now);
    this.stopping = false;
    this.db = db;
    this.loadSpo2Scales(db);
    let resolved: Awaited<ReturnType<typeof resolveVitalsBroker>>;
    // A configured URL never reaches the ingest (which logs it) with `user:pass@` in it.
    const configured = this.options.mqttUrl ? splitBrokerUrl(this.options.mqttUrl) : null;
    const embeddedTls = this.options.embeddedTls ?? null;
    const monitors = new MonitorCredentialsRepo(db, this.options.now);
    const embeddedOptions = {
      host: this.options.embeddedHost ?? '127.0.0.1',
      monitors: { verify: (username: string, password: Buffer) => monitors.verify(username, password), connected: (monitor: { id: string }) => monitors.noteConnected(monitor.id) },
      tls: embeddedTls ? readEmbeddedTls(embeddedTls) : null,
      log: this.options.log,
    };
    try {
      resolved = await resolveVitalsBroker(configured?.url ?? null, { ...embeddedOptions, port: this.options.embeddedPort });
    } catch (error) {
      // Another broker already holds the port (often a local mosquitto): take a free one and say where.
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      resolved = await resolveVitalsBroker(null, { ...embeddedOptions, port: 0 });
    }
    const { url, embedded } = resolved;
    this.broker = embedded;
    this.link = { up: false, since: null, broker: redactBrokerUrl(url) };
    // The embedded broker: the workstation's own account, made for this launch; TLS checked against its certificate.
    const username = embedded ? embedded.workstationCredentials.username : (this.options.username ?? configured?.username ?? null);
    const password = embedded ? embedded.workstationCredentials.password : (this.options.password ?? configured?.password ?? null);
    const tls = embedded ? (embeddedTls ? ingestTlsFor(embeddedTls, new URL(url).hostname.replace(/^\[|\]$/g, '')) : null) : (this.options.tls ?? null);
    this.ingest = new VitalsIngest({
      url,
      clientId: workstationClientId(this.options.clientSeed),
      sink: this.repo,
      keepaliveSeconds: this.options.keepaliveSeconds ?? 10,
      ...(username ? { username } : {}),
      ...(password ? { password } : {}),
      ...(tls ? { tls } : {}),
      onReading: (bedKey, payload, stored) => this.reading(bedKey, payload, stored),
      onRejected: (bedKey, reason) => this.rejected(bedKey, reason),
      onLink: (up, at) => this.linkChanged(up, at),
      now: this.options.now,
      log: this.options.log,
    });
    // Admitted beds are on the board from the start, with or without a monitor reporting.
    this.occupancyChanged();
    this.ingest.start();
    this.timers.push(
      setInterval(() => {
        this.apply(this.engine.tick(this.nowMs()));
        // Also retries what an earlier write could not store.
        this.writeAlarmLog();
      }, 1000),
      setInterval(() => this.flush(), 1000),
      setInterval(() => this.queueMinuteBundles(), 1000),
      setInterval(() => {
        try {
          this.repo?.applyRetention();
          this.alarmLog?.applyRetention();
        } catch (error) {
          this.options.log(`vitals retention failed: ${(error as Error).message}`);
        }
      }, RETENTION_EVERY_MS),
    );
    for (const timer of this.timers) timer.unref();
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.urgentPush?.cancel();
    this.urgentPush = null;
    // The link "drops" as the ingest stops: that is the workstation closing, not an alarm to log.
    this.stopping = true;
    await this.ingest?.stop();
    this.ingest = null;
    // What the last readings raised, before the store closes.
    this.writeAlarmLog();
    this.alarmLog = null;
    await this.broker?.close();
    this.broker = null;
  }

  /**
   * A share of the due minute bundles each second, so that a large ward's minute is written over
   * BUNDLES_SPREAD_S seconds instead of in one burst (and a backlog, after downtime, at a bounded
   * rate); in small transactions with readings and alarms in between.
   */
  private queueMinuteBundles(): void {
    const repo = this.repo;
    if (!repo) return;
    let left: number;
    try {
      left = Math.min(BUNDLES_MAX_PER_S, Math.ceil(repo.dueMinuteBundles() / BUNDLES_SPREAD_S));
    } catch (error) {
      this.bundleFailure(error);
      return;
    }
    const chunk = (): void => {
      if (left <= 0 || this.repo !== repo || !this.ingest) return;
      const limit = Math.min(left, BUNDLES_PER_TRANSACTION);
      left -= limit;
      try {
        if (repo.queueMinuteBundles(limit) === limit) setImmediate(chunk);
      } catch (error) {
        this.bundleFailure(error);
      }
    };
    chunk();
  }

  private bundleFailure(error: unknown): void {
    this.options.log(`vitals: writing minute bundles to the outbox failed (tried again in a second; the readings are stored): ${(error as Error).message}`);
  }

  private nowMs(): number {
    return this.options.now().getTime();
  }

  private bedState(bedKey: BedKey): BedState {
    let state = this.beds.get(bedKey);
    if (!state) {
      const [ward = '', bed = ''] = bedKey.split('/');
      state = {
        key: bedKey,
        ward,
        bed,
        patientRef: null,
        latest: null,
        trendMinute: Math.floor(this.nowMs() / 60_000),
        trend: emptyTrend(),
        trendSent: false,
        technical: new Map(),
        // The engine's default for a bed it has not seen.
        spo2Scale: 1,
        occupant: null,
        mismatch: false,
        monitored: false,
      };
      this.beds.set(bedKey, state);
    }
    return state;
  }

  private reading(bedKey: BedKey, payload: VitalsPayload, stored?: StoredReading): void {
    const bed = this.bedState(bedKey);
    // The patient the reading was stored under (the admitted one, see occupancy.ts). The board names the
    // patient admitted now; a bed without an admission, the last patient a monitor named there (not the
    // one of an earlier stay that a late reading belongs to).
    const patientRef = stored ? stored.patientRef : (payload.patient ?? null);
    if (!bed.occupant) bed.patientRef = payload.patient ?? bed.patientRef;
    bed.monitored = true;
    bed.latest = vitalsOf({
      ts: new Date(payload.ts).toISOString(),
      hr: payload.hr ?? null,
      spo2: payload.spo2 ?? null,
      rr: payload.rr ?? null,
      tempC: payload.tempC ?? null,
      sbp: payload.sbp ?? null,
      dbp: payload.dbp ?? null,
      acvpu: payload.acvpu ?? null,
      o2: payload.o2 ?? null,
    });
    const minute = Math.floor(Date.parse(payload.ts) / 60_000);
    const shift = minute - bed.trendMinute;
    if (shift > 0) {
      for (const key of TREND_VITALS) bed.trend[key] = [...bed.trend[key].slice(Math.min(shift, TREND_MINUTES)), ...Array(Math.min(shift, TREND_MINUTES)).fill(null)];
      bed.trendMinute = minute;
      bed.trendSent = false;
    }
    const slot = TREND_MINUTES - 1 - (bed.trendMinute - minute);
    if (slot >= 0) for (const key of TREND_VITALS) if (payload[key] !== undefined) bed.trend[key][slot] = payload[key]!;
    // A late reading of an earlier minute: more than the last point changed.
    if (slot >= 0 && slot < TREND_MINUTES - 1) bed.trendSent = false;
    bed.technical.delete('impossible-value');
    this.dirty.add(bedKey);
    // Scored on the scale of the patient this reading is for: a patient on scale 2 keeps it in another
    // bed, and the next patient in this bed is back on scale 1.
    this.syncSpo2Scale(bed);
    // The engine resets a bed's NEWS2 inputs when the patient changes: it is told the attributed one.
    const forEngine = patientRef === (payload.patient ?? null) ? payload : { ...payload, patient: patientRef ?? undefined };
    this.apply(this.engine.ingest(engineBed(bedKey), forEngine, this.nowMs()));
    if (stored?.patientConflict || bed.mismatch) this.checkPatient(bed, payload, stored ?? null);
  }

  /**
   * The monitor named another patient than the admission (occupancy.ts): a technical alarm on the bed,
   * with what is wrong in words, until a reading agrees again. The reading itself is kept (stored
   * under the admitted patient, with what the monitor sent beside it).
   */
  private checkPatient(bed: BedState, payload: VitalsPayload, stored: StoredReading | null): void {
    let problem: string | null = null;
    if (stored?.patientConflict) {
      problem =
        attributeReading(this.options.occupancy ?? null, bed.key, payload.patient, Date.parse(stored.ts)).problem ??
        `Monitor reports a different patient (${stored.monitorPatientRef ?? 'unknown'}) from the admission of bed ${bed.key}`;
    }
    bed.mismatch = problem !== null;
    this.apply(this.engine.patientMismatch(engineBed(bed.key), problem, this.nowMs()));
  }

  /**
   * The admissions changed (ADT): beds `bedKeys` (all when omitted) now show who is admitted there,
   * are scored on that patient's SpO2 scale, and go out with the next update. A bed whose patient left
   * starts a fresh trend: the last hour on a tile is the patient's in the bed, never the previous one's.
   */
  occupancyChanged(bedKeys?: Iterable<string>): void {
    const occupancy = this.options.occupancy;
    if (!occupancy) return;
    const occupied = occupancy.occupied();
    const keys = bedKeys ? [...bedKeys] : [...new Set([...this.beds.keys(), ...occupied.keys()])];
    let changed = false;
    for (const key of keys) {
      const occupant = occupied.get(key) ?? null;
      if (!occupant && !this.beds.has(key)) continue;
      changed = this.setOccupant(this.bedState(key), occupant) || changed;
    }
    // Pushed at once: the nurse who admitted sees the name on the tile with the answer.
    if (changed && this.repo) this.flush();
  }

  private setOccupant(bed: BedState, occupant: BedOccupant | null): boolean {
    if ((bed.occupant?.admissionId ?? null) === (occupant?.admissionId ?? null)) return false;
    const previous = bed.patientRef;
    bed.occupant = occupant
      ? Object.freeze({ admissionId: occupant.admissionId, patientId: occupant.patientId, mrn: occupant.mrn, name: occupant.name, restricted: occupant.restricted, synthetic: occupant.synthetic, since: occupant.since, by: occupant.by })
      : null;
    bed.patientRef = occupant ? `Patient/${occupant.patientId}` : null;
    if (previous !== null && previous !== bed.patientRef) {
      bed.latest = null;
      bed.trend = emptyTrend();
      bed.trendMinute = Math.floor(this.nowMs() / 60_000);
      bed.trendSent = false;
    }
    // Re-scored on the new patient's scale; a bed no monitor reports from is left to its first reading
    // (telling the engine now would start its no-data watch).
    if (bed.monitored) this.syncSpo2Scale(bed);
    this.dirty.add(bed.key);
    return true;
  }

  private rejected(bedKey: BedKey, reason: RejectReason): void {
    if (reason === 'duplicate') return;
    this.apply(this.engine.rejected(engineBed(bedKey), reason, this.nowMs()));
  }

  private linkChanged(up: boolean, at: Date): void {
    this.link = { ...this.link, up, since: at.toISOString() };
    this.linkDirty = true;
    // The link that goes down because the workstation is closing is no alarm for the log.
    this.apply(up ? this.engine.linkUp(at.getTime()) : this.engine.linkDown(at.getTime()), !(this.stopping && !up));
  }

  /**
   * Alarm events change the board (technical conditions of beds, the alarm list) and go to the alarm
   * log (queued: see writeAlarmLog), unless `log` is false (the caller writes them itself).
   */
  private apply(events: AlarmEvent[], log = true): void {
    for (const event of events) {
      this.alarmsDirty = true;
      if (log) this.pendingLog.push(this.logEntry(event));
      const alarm = event.alarm;
      if (alarm.kind !== 'technical' || !event.bedId || event.bedId === '*') continue;
      const bed = this.bedState(bedKeyOfEngine(event.bedId));
      if (event.type === 'cleared') bed.technical.delete(alarm.condition);
      else bed.technical.set(alarm.condition, alarm.message);
      this.dirty.add(bed.key);
    }
    if (log && events.length) this.scheduleAlarmLog();
    const urgent = events.filter(needsNurseNow);
    if (!urgent.length) return;
    for (const event of urgent) if (event.bedId && event.bedId !== WARD_SCOPE) this.urgentBeds.add(bedKeyOfEngine(event.bedId));
    this.pushUrgently();
  }

  /**
   * A new alarm, one that recurred, or one that rose in priority goes to the screens now, not with the
   * next 1 s board push: right after the current turn of the loop (so one push carries everything this
   * batch of readings raised), and at most every URGENT_PUSH_MIN_MS (an alarm storm costs a push per
   * 100 ms, not one per reading). The push carries the alarm list and the alarms' own beds only: the
   * other beds that changed wait for the board push, so a nurse's screen parses and renders a few beds
   * before showing the alarm, not the ~2,000 of a full second (issue 8 item 11).
   */
  private pushUrgently(): void {
    if (this.urgentPush !== null || this.timers.length === 0) return;
    const run = () => {
      this.urgentPush = null;
      this.flushUrgent();
    };
    const wait = this.lastUrgentPushAt + URGENT_PUSH_MIN_MS - performance.now();
    if (wait > 0) {
      const timer = setTimeout(run, wait);
      this.urgentPush = { cancel: () => clearTimeout(timer) };
    } else {
      const immediate = setImmediate(run);
      this.urgentPush = { cancel: () => clearImmediate(immediate) };
    }
  }

  private flushUrgent(): void {
    this.lastUrgentPushAt = performance.now();
    const keys = [...this.urgentBeds].filter((key) => this.beds.has(key));
    this.urgentBeds.clear();
    const beds = keys.map((key) => this.updateView(this.bedState(key)));
    for (const key of keys) this.dirty.delete(key);
    const alarms = this.engine.active().map(alarmView);
    this.alarmsDirty = false;
    this.options.broadcast({ beds, alarms, link: this.link, counters: this.counters() });
  }

  /** The log row of an engine event: the bed, the patient of the alarm (as when it was raised) and the bed's NEWS2 now. */
  private logEntry(event: AlarmEvent): AlarmLogEntry {
    const bedId = event.bedId;
    if (bedId === null || bedId === WARD_SCOPE) return alarmLogEntry(event, { bedKey: null, patientRef: null, news2: null });
    const bedKey = bedKeyOfEngine(bedId);
    if (event.type === 'raised') this.alarmPatient.set(event.alarmId, this.beds.get(bedKey)?.patientRef ?? null);
    const patientRef = this.alarmPatient.has(event.alarmId) ? this.alarmPatient.get(event.alarmId)! : (this.beds.get(bedKey)?.patientRef ?? null);
    if (event.type === 'cleared') this.alarmPatient.delete(event.alarmId);
    return alarmLogEntry(event, { bedKey, patientRef, news2: this.engine.news2(bedId)?.aggregate ?? null });
  }

  private scheduleAlarmLog(): void {
    if (this.logScheduled) return;
    this.logScheduled = true;
    setImmediate(() => this.writeAlarmLog());
  }

  /**
   * Writes the queued engine events in ONE transaction, each with its audit entry (alarm-log.ts):
   * alarm events are rare next to readings, so this is one small transaction per turn of the event
   * loop that has any (all the readings of an ingest batch, a tick). Outside any other transaction
   * (setImmediate, the tick, stop); a failed write keeps the events for the next tick.
   */
  private writeAlarmLog(): void {
    this.logScheduled = false;
    const log = this.alarmLog;
    if (!log || this.pendingLog.length === 0 || this.db?.inTransaction) return;
    const batch = this.pendingLog;
    this.pendingLog = [];
    try {
      log.appendAudited(batch);
      this.logFailures = 0;
    } catch (error) {
      this.pendingLog = [...batch, ...this.pendingLog].slice(-MAX_PENDING_LOG);
      this.logFailures += 1;
      if (this.logFailures === 1 || this.logFailures % 60 === 0) {
        this.options.log(`vitals: ${this.pendingLog.length} alarm event(s) not yet in the alarm log (tried again every second): ${(error as Error).message}`);
      }
    }
  }

  private loadSpo2Scales(db: Db): void {
    this.spo2Scales.clear();
    const rows = db.prepare('SELECT patient_ref, scale, set_by, reason, set_at FROM vitals_spo2_scale').all() as Spo2ScaleRow[];
    for (const row of rows) if (row.scale === 2) this.spo2Scales.set(row.patient_ref, { scale: 2, by: row.set_by, reason: row.reason, at: row.set_at });
  }

  private spo2ScaleOf(patientRef: string | null): Spo2Scale {
    return patientRef !== null && this.spo2Scales.has(patientRef) ? 2 : 1;
  }

  /** Gives the engine the bed's patient's scale when it is not the one the bed is scored on (re-scores NEWS2). */
  private syncSpo2Scale(bed: BedState): void {
    const scale = this.spo2ScaleOf(bed.patientRef);
    if (bed.spo2Scale === scale) return;
    bed.spo2Scale = scale;
    this.dirty.add(bed.key);
    this.apply(this.engine.configureBed(engineBed(bed.key), { spo2Scale: scale }, this.nowMs()));
  }

  private view(bed: BedState): BedView {
    // A bed no monitor has reported from yet is not in the engine: its patient's scale, as it will be scored.
    const scale = bed.monitored ? bed.spo2Scale : this.spo2ScaleOf(bed.patientRef);
    const setting = scale === 2 && bed.patientRef !== null ? this.spo2Scales.get(bed.patientRef) : undefined;
    return {
      key: bed.key,
      ward: bed.ward,
      bed: bed.bed,
      patientRef: bed.patientRef,
      latest: bed.latest,
      news2: news2View(this.engine.news2(engineBed(bed.key))),
      trend: { hr: [...bed.trend.hr], spo2: [...bed.trend.spo2], rr: [...bed.trend.rr], sbp: [...bed.trend.sbp] },
      trendMinute: bed.trendMinute,
      technical: [...bed.technical.values()],
      spo2Scale: scale,
      spo2ScaleSetBy: setting ? { by: setting.by, reason: setting.reason, at: setting.at } : null,
      admission: bed.occupant,
    };
  }

  /** The bed as the next `ward.update` sends it: its whole trend only when more than the last point changed. */
  private updateView(bed: BedState): BedUpdate {
    const view = this.view(bed);
    const last = TREND_MINUTES - 1;
    const trendNow = { hr: view.trend.hr[last] ?? null, spo2: view.trend.spo2[last] ?? null, rr: view.trend.rr[last] ?? null, sbp: view.trend.sbp[last] ?? null };
    const update: BedUpdate = { ...view, trend: bed.trendSent ? null : view.trend, trendNow };
    bed.trendSent = true;
    return update;
  }

  private flush(): void {
    const counters = this.counters();
    const countersChanged = JSON.stringify(counters) !== this.lastCounters;
    if (!this.dirty.size && !this.alarmsDirty && !this.linkDirty && !countersChanged) return;
    const beds = [...this.dirty].map((key) => this.updateView(this.bedState(key)));
    const alarms = this.alarmsDirty ? this.engine.active().map(alarmView) : null;
    this.dirty.clear();
    this.alarmsDirty = false;
    this.linkDirty = false;
    this.lastCounters = JSON.stringify(counters);
    this.options.broadcast({ beds, alarms, link: this.link, counters });
  }

  private counters(): WardBoard['counters'] {
    const stats = this.ingest?.stats;
    return { accepted: stats?.accepted ?? 0, rejected: stats ? { ...stats.rejected } : {} };
  }

  board(): WardBoard {
    return {
      beds: [...this.beds.values()].sort((a, b) => a.key.localeCompare(b.key, undefined, { numeric: true })).map((bed) => this.view(bed)),
      alarms: this.engine.active().map(alarmView),
      link: this.link,
      counters: this.counters(),
    };
  }

  /** The bed's readings of the last `minutes`, and the patients they belong to (for the caller's access check). */
  history(bedKey: BedKey, minutes: number): { bedKey: string; readings: (Vitals & { news2: number | null })[]; patientRefs: string[] } {
    const [ward, bed] = bedKey.split('/');
    if (!ward || !bed || !this.repo) throw new NwError('not-found', `No bed ${bedKey}.`);
    const since = new Date(this.nowMs() - minutes * 60_000).toISOString();
    const stored = this.repo.readings({ ward, bed, since, limit: 20_000 });
    const patientRefs = [...new Set(stored.map((r) => r.patientRef).filter((ref): ref is string => ref !== null))];
    const readings = stored.map((r) => {
      const obs = { rr: r.rr ?? undefined, spo2: r.spo2 ?? undefined, o2: r.o2 ?? undefined, sbp: r.sbp ?? undefined, hr: r.hr ?? undefined, acvpu: r.acvpu ?? undefined, tempC: r.tempC ?? undefined };
      let news2: number | null = null;
      try {
        // On the current scale of the reading's patient (as the live score is).
        const score = scoreNews2(obs, { spo2Scale: this.spo2ScaleOf(r.patientRef) });
        news2 = score.complete ? score.aggregate : null;
      } catch {
        news2 = null;
      }
      return { ...vitalsOf(r), news2 };
    });
    return { bedKey, readings, patientRefs };
  }

  /**
   * A patient's readings of the last `hours` across beds, one per bed and minute (its latest reading),
   * each scored on the patient's current SpO2 scale (as the live score is): for the patient's record.
   * `refs`: the references the patient's readings are stored under (`Patient/<id>`, `mrn:<MRN>`).
   */
  patientTrend(refs: readonly string[], hours: number): { since: string; minutes: PatientTrendMinute[]; truncated: boolean } {
    if (!this.repo) throw new NwError('conflict', 'Ward monitoring is not running: the vitals cannot be read now.');
    const since = new Date(this.nowMs() - hours * 3_600_000).toISOString();
    const { minutes, truncated } = this.repo.patientMinutes(refs, since, PATIENT_TREND_MAX_MINUTES);
    return {
      since,
      truncated,
      minutes: minutes.map((m) => {
        const obs = { rr: m.rr ?? undefined, spo2: m.spo2 ?? undefined, o2: m.o2 ?? undefined, sbp: m.sbp ?? undefined, hr: m.hr ?? undefined, acvpu: m.acvpu ?? undefined, tempC: m.tempC ?? undefined };
        let news2: number | null = null;
        try {
          const score = scoreNews2(obs, { spo2Scale: this.spo2ScaleOf(m.patientRef) });
          news2 = score.complete ? score.aggregate : null;
        } catch {
          news2 = null;
        }
        return { minute: m.minute, bedKey: `${m.ward}/${m.bed}`, ...vitalsOf(m), news2, readings: m.n, conflicts: m.conflicts };
      }),
    };
  }

  /** The scale bed `bedKey` is scored on now (that of its patient), or null for a bed not on the board. */
  spo2ScaleOfBed(bedKey: string): Spo2Scale | null {
    const bed = this.beds.get(bedKey);
    if (!bed) return null;
    return bed.monitored ? bed.spo2Scale : this.spo2ScaleOf(bed.patientRef);
  }

  /** The monitor's reference of the patient now in bed `bedKey`, or null. */
  patientRefOfBed(bedKey: string | null): string | null {
    return bedKey === null ? null : (this.beds.get(bedKey)?.patientRef ?? null);
  }

  /**
   * Sets the NEWS2 SpO2 scale of the patient now in bed `bedKey` (RCP 2017: scale 2 only for
   * hypercapnic respiratory failure, a clinician's recorded decision). Stored per patient, so it
   * follows the patient to another bed; scale 1 removes the setting. Every bed showing that patient is
   * re-scored at once.
   */
  setSpo2Scale(bedKey: string, scale: Spo2Scale, by: string, reason: string): BedView {
    const bed = this.beds.get(bedKey);
    const db = this.db;
    if (!bed || !db) throw new NwError('not-found', `No bed ${bedKey} on the ward board.`);
    const patientRef = bed.patientRef;
    if (patientRef === null) {
      throw new NwError(
        'conflict',
        `No patient is known in bed ${bedKey}: the scale is set for a patient. Admit the patient to the bed first (or have the bedside monitor send the patient's reference).`,
      );
    }
    const at = this.options.now().toISOString();
    db.transaction(() => {
      if (scale === 2) {
        db.prepare(
          `INSERT INTO vitals_spo2_scale (patient_ref, scale, set_by, reason, set_at) VALUES (?, 2, ?, ?, ?)
           ON CONFLICT (patient_ref) DO UPDATE SET scale = excluded.scale, set_by = excluded.set_by, reason = excluded.reason, set_at = excluded.set_at`,
        ).run(patientRef, by, reason, at);
      } else {
        db.prepare('DELETE FROM vitals_spo2_scale WHERE patient_ref = ?').run(patientRef);
      }
    })();
    if (scale === 2) this.spo2Scales.set(patientRef, { scale: 2, by, reason, at });
    else this.spo2Scales.delete(patientRef);
    for (const other of this.beds.values()) {
      if (other.patientRef !== patientRef) continue;
      this.dirty.add(other.key);
      // An admitted bed no monitor reports from yet gets the scale with its first reading (see view).
      if (!other.monitored) continue;
      other.spo2Scale = scale;
      this.apply(this.engine.configureBed(engineBed(other.key), { spo2Scale: scale }, this.nowMs()));
    }
    this.flush();
    return this.view(bed);
  }

  /** Acknowledges an alarm; logged in the caller's transaction (see silence), which must audit it. */
  acknowledge(alarmId: string, by: string, reason: string): AlarmView {
    return this.silence(alarmId, (now) => this.engine.acknowledge(alarmId, by, reason, now));
  }

  /** Pauses an alarm; logged in the caller's transaction (see silence), which must audit it. */
  pause(alarmId: string, by: string, reason: string, seconds: number): AlarmView {
    return this.silence(alarmId, (now) => this.engine.pause(alarmId, by, reason, seconds, now));
  }

  /**
   * An acknowledgement or pause, written to the alarm log in the caller's transaction: the
   * `alarms.acknowledge` / `alarms.pause` handler's, which the dispatcher commits together with the
   * call's audit entry (that entry is this row's). What had fallen due anyway (a tick) and the engine
   * events still queued go first into that transaction, with their own entries, so the log keeps the
   * engine's order. Should that transaction not commit (checked in a microtask, i.e. right after the
   * dispatcher's commit or rollback), the engine's change is undone, so that no alarm is silenced
   * without its log row and audit entry, and the queued events go back to the queue.
   */
  private silence(alarmId: string, change: (now: number) => AlarmEvent[]): AlarmView {
    const now = this.nowMs();
    this.apply(this.engine.tick(now));
    const undo = this.engine.undoPoint(alarmId);
    const hadPatient = this.alarmPatient.has(alarmId);
    const patient = this.alarmPatient.get(alarmId) ?? null;
    const events = change(now);
    const index = events.findIndex((e) => e.alarmId === alarmId && (e.type === 'acknowledged' || e.type === 'paused'));
    const event = events[index];
    if (!event) {
      this.apply(events);
      const alarm = this.engine.get(alarmId);
      if (!alarm) throw new NwError('not-found', 'No such active alarm (it may have cleared).');
      throw new NwError('conflict', alarm.acknowledged ? 'This alarm is already acknowledged.' : 'This alarm cannot be silenced now.');
    }
    const log = this.alarmLog;
    const db = this.db;
    // Engine events before this one (queued, or due at this moment) and the consequences of this one
    // (a latched alarm cleared by its acknowledgement).
    const earlier = [...this.pendingLog, ...events.slice(0, index).map((e) => this.logEntry(e))];
    const own = this.logEntry(event);
    const consequences = events.slice(index + 1).map((e) => this.logEntry(e));
    const revert = (): void => {
      undo?.();
      if (hadPatient) this.alarmPatient.set(alarmId, patient);
      this.pendingLog = [...earlier, ...this.pendingLog].slice(-MAX_PENDING_LOG);
      this.scheduleAlarmLog();
      this.alarmsDirty = true;
      this.flush();
    };
    this.pendingLog = [];
    if (!log || !db) {
      revert();
      throw new NwError('conflict', 'Ward monitoring is not running: the alarm cannot be silenced now.');
    }
    let ownId: number;
    try {
      ownId = db.transaction(() => {
        log.appendAudited(earlier);
        const [id] = log.append([own]);
        log.appendAudited(consequences);
        return id!;
      })();
    } catch (error) {
      revert();
      throw error;
    }
    queueMicrotask(() => {
      if (this.alarmLog !== log) return;
      try {
        if (log.has(ownId)) return;
      } catch {
        // The store is unreadable: the change cannot have been recorded either.
      }
      this.options.log(`vitals: the ${event.type === 'paused' ? 'pause' : 'acknowledgement'} of alarm ${alarmId} was not stored; it is undone`);
      revert();
    });
    this.apply(events, false);
    this.flush();
    return alarmView(event.alarm);
  }
}
