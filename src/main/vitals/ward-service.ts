/**
 * The ward: MQTT ingest → stored reading → alarm engine → bed state, pushed to nurses' windows at most
 * once a second. Starts when the encrypted store opens (readings are stored before anything else sees
 * them); the embedded broker starts with it when no hospital broker is configured.
 *
 * NEWS2 SpO2 scale 2 (RCP 2017: hypercapnic respiratory failure) is a physician's setting for a
 * PATIENT (vitals_spo2_scale, migration 5), not for a bed: each reading is scored on the scale of the
 * patient it names, so the setting follows the patient to another bed and the next patient in the bed
 * is back on scale 1.
 */
import type { AlarmView, BedView, Spo2Scale, Vitals, WardBoard } from '../../shared/ipc.js';
import { NwError } from '../../shared/errors.js';
import type { Db } from '../store/database.js';
import { AlarmEngine, type Alarm, type AlarmEvent } from './alarms.js';
import { resolveVitalsBroker, type EmbeddedBroker } from './broker.js';
import { VitalsIngest, workstationClientId, type BedKey, type RejectReason } from './ingest.js';
import { scoreNews2, type News2Result } from './news2.js';
import type { VitalsPayload } from './payload.js';
import { VitalsRepo, type StoredReading } from './vitals-repo.js';

const TREND_MINUTES = 60;
const TREND_KEYS = ['hr', 'spo2', 'rr', 'sbp'] as const;
const RETENTION_EVERY_MS = 3_600_000;
/** Due minute bundles are written over this many seconds (one run per second). */
const BUNDLES_SPREAD_S = 20;
const BUNDLES_PER_TRANSACTION = 25;
/** ~0.5 ms each: at most ~0.1 s of work a second. */
const BUNDLES_MAX_PER_S = 200;

interface BedState {
  key: BedKey;
  ward: string;
  bed: string;
  patientRef: string | null;
  latest: Vitals | null;
  /** Minute number (ms / 60 000) of trend[59]; older minutes shift left. */
  trendMinute: number;
  trend: Record<(typeof TREND_KEYS)[number], (number | null)[]>;
  technical: Map<string, string>;
  /** The NEWS2 SpO2 scale the engine scores this bed on: always that of `patientRef` (1 without a patient). */
  spo2Scale: Spo2Scale;
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
  now: () => Date;
  /** Sends a ward update to every window allowed to see it. */
  broadcast: (update: { beds: BedView[]; alarms: AlarmView[] | null; link: WardBoard['link']; counters: WardBoard['counters'] }) => void;
  log: (message: string) => void;
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

  constructor(private readonly options: WardServiceOptions) {
    this.link = { up: false, since: null, broker: options.mqttUrl ?? 'embedded' };
  }

  get brokerUrl(): string | null {
    return this.broker?.url ?? this.options.mqttUrl;
  }

  async start(db: Db): Promise<void> {
    if (this.ingest) return;
    this.repo = new VitalsRepo(db, this.options.now);
    this.db = db;
    this.loadSpo2Scales(db);
    let resolved: Awaited<ReturnType<typeof resolveVitalsBroker>>;
    try {
      resolved = await resolveVitalsBroker(this.options.mqttUrl, { port: this.options.embeddedPort, log: this.options.log });
    } catch (error) {
      // Another broker already holds the port (often a local mosquitto): take a free one and say where.
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      resolved = await resolveVitalsBroker(null, { port: 0, log: this.options.log });
    }
    const { url, embedded } = resolved;
    if (embedded) this.options.log(`vitals: embedded MQTT broker listening on ${url}`);
    this.broker = embedded;
    this.link = { up: false, since: null, broker: url };
    this.ingest = new VitalsIngest({
      url,
      clientId: workstationClientId(this.options.clientSeed),
      sink: this.repo,
      keepaliveSeconds: this.options.keepaliveSeconds ?? 10,
      ...(this.options.username ? { username: this.options.username } : {}),
      ...(this.options.password ? { password: this.options.password } : {}),
      ...(this.options.tls ? { tls: this.options.tls } : {}),
      onReading: (bedKey, payload) => this.reading(bedKey, payload),
      onRejected: (bedKey, reason) => this.rejected(bedKey, reason),
      onLink: (up, at) => this.linkChanged(up, at),
      now: this.options.now,
      log: this.options.log,
    });
    this.ingest.start();
    this.timers.push(
      setInterval(() => this.apply(this.engine.tick(this.nowMs())), 1000),
      setInterval(() => this.flush(), 1000),
      setInterval(() => this.queueMinuteBundles(), 1000),
      setInterval(() => {
        try {
          this.repo?.applyRetention();
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
    await this.ingest?.stop();
    this.ingest = null;
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
        technical: new Map(),
        // The engine's default for a bed it has not seen.
        spo2Scale: 1,
      };
      this.beds.set(bedKey, state);
    }
    return state;
  }

  private reading(bedKey: BedKey, payload: VitalsPayload): void {
    const bed = this.bedState(bedKey);
    bed.patientRef = payload.patient ?? bed.patientRef;
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
      for (const key of TREND_KEYS) bed.trend[key] = [...bed.trend[key].slice(Math.min(shift, TREND_MINUTES)), ...Array(Math.min(shift, TREND_MINUTES)).fill(null)];
      bed.trendMinute = minute;
    }
    const slot = TREND_MINUTES - 1 - (bed.trendMinute - minute);
    if (slot >= 0) for (const key of TREND_KEYS) if (payload[key] !== undefined) bed.trend[key][slot] = payload[key]!;
    bed.technical.delete('impossible-value');
    this.dirty.add(bedKey);
    // Scored on the scale of the patient this reading is for: a patient on scale 2 keeps it in another
    // bed, and the next patient in this bed is back on scale 1.
    this.syncSpo2Scale(bed);
    this.apply(this.engine.ingest(engineBed(bedKey), payload, this.nowMs()));
  }

  private rejected(bedKey: BedKey, reason: RejectReason): void {
    if (reason === 'duplicate') return;
    this.apply(this.engine.rejected(engineBed(bedKey), reason, this.nowMs()));
  }

  private linkChanged(up: boolean, at: Date): void {
    this.link = { ...this.link, up, since: at.toISOString() };
    this.linkDirty = true;
    this.apply(up ? this.engine.linkUp(at.getTime()) : this.engine.linkDown(at.getTime()));
  }

  /** Alarm events change the board: technical conditions of beds, the alarm list. */
  private apply(events: AlarmEvent[]): void {
    for (const event of events) {
      this.alarmsDirty = true;
      const alarm = event.alarm;
      if (alarm.kind !== 'technical' || !event.bedId || event.bedId === '*') continue;
      const bed = this.bedState(bedKeyOfEngine(event.bedId));
      if (event.type === 'cleared') bed.technical.delete(alarm.condition);
      else bed.technical.set(alarm.condition, alarm.message);
      this.dirty.add(bed.key);
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
    const setting = bed.spo2Scale === 2 && bed.patientRef !== null ? this.spo2Scales.get(bed.patientRef) : undefined;
    return {
      key: bed.key,
      ward: bed.ward,
      bed: bed.bed,
      patientRef: bed.patientRef,
      latest: bed.latest,
      news2: news2View(this.engine.news2(engineBed(bed.key))),
      trend: { hr: [...bed.trend.hr], spo2: [...bed.trend.spo2], rr: [...bed.trend.rr], sbp: [...bed.trend.sbp] },
      technical: [...bed.technical.values()],
      spo2Scale: bed.spo2Scale,
      spo2ScaleSetBy: setting ? { by: setting.by, reason: setting.reason, at: setting.at } : null,
    };
  }

  private flush(): void {
    const counters = this.counters();
    const countersChanged = JSON.stringify(counters) !== this.lastCounters;
    if (!this.dirty.size && !this.alarmsDirty && !this.linkDirty && !countersChanged) return;
    const beds = [...this.dirty].map((key) => this.view(this.bedState(key)));
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

  history(bedKey: BedKey, minutes: number): { bedKey: string; readings: (Vitals & { news2: number | null })[] } {
    const [ward, bed] = bedKey.split('/');
    if (!ward || !bed || !this.repo) throw new NwError('not-found', `No bed ${bedKey}.`);
    const since = new Date(this.nowMs() - minutes * 60_000).toISOString();
    const readings = this.repo.readings({ ward, bed, since, limit: 20_000 }).map((r) => {
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
    return { bedKey, readings };
  }

  /** The scale bed `bedKey` is scored on now (that of its patient), or null for a bed not on the board. */
  spo2ScaleOfBed(bedKey: string): Spo2Scale | null {
    return this.beds.get(bedKey)?.spo2Scale ?? null;
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
        `No patient is known in bed ${bedKey}: the scale is set for a patient. The bedside monitor must send the patient's reference with its readings first.`,
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
      other.spo2Scale = scale;
      this.dirty.add(other.key);
      this.apply(this.engine.configureBed(engineBed(other.key), { spo2Scale: scale }, this.nowMs()));
    }
    this.flush();
    return this.view(bed);
  }

  acknowledge(alarmId: string, by: string, reason: string): AlarmView {
    return this.silence(alarmId, this.engine.acknowledge(alarmId, by, reason, this.nowMs()));
  }

  pause(alarmId: string, by: string, reason: string, seconds: number): AlarmView {
    return this.silence(alarmId, this.engine.pause(alarmId, by, reason, seconds, this.nowMs()));
  }

  private silence(alarmId: string, events: AlarmEvent[]): AlarmView {
    const event = events.find((e) => e.alarmId === alarmId);
    if (!event) {
      const alarm = this.engine.get(alarmId);
      if (!alarm) throw new NwError('not-found', 'No such active alarm (it may have cleared).');
      throw new NwError('conflict', alarm.acknowledged ? 'This alarm is already acknowledged.' : 'This alarm cannot be silenced now.');
    }
    this.apply(events);
    this.flush();
    return alarmView(event.alarm);
  }
}
