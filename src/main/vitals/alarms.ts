/**
 * Ward alarm engine: one deterministic state machine for the ward's beds. Pure logic: no I/O, no
 * timers, no clock. Every call takes `now` (milliseconds since the epoch, from the caller's
 * clock) and first brings the whole engine up to `now` (onset delays, hysteresis, pause expiry,
 * escalation, no-data), then applies its own change, and returns the resulting events in the
 * order they happened. The caller writes those events to the audit ledger and drives the UI.
 * Time never runs backwards inside the engine: a `now` earlier than one already seen is taken
 * as the latest `now` seen.
 *
 * Conditions (one alarm occurrence at a time per bed and condition; ids are
 * `<bed>/<condition>/<raisedAt ms>`, `*` as bed for the ward, stable for the occurrence):
 *  - physiological `news2`: NEWS2 over the latest value of each parameter no older than
 *    `news2MaxAgeS`, on the bed's SpO2 scale (see `configureBed`). Mapping to IEC 60601-1-8
 *    priorities (high = immediate response, medium = prompt response, low = awareness):
 *      aggregate ≥ 7 (RCP: emergency response, continuous monitoring)          → high
 *      aggregate 5–6, or any single parameter at 3 (RCP: urgent response /
 *      urgent ward-based response, at least hourly review)                   → medium
 *      aggregate 1–4 (RCP: 4–6-hourly observations, a nurse assesses)         → no alarm: an
 *      advisory, read with `news2(bedId)`. Its RCP response is routine ward care on a schedule
 *      of hours, so annunciating it continuously on a monitored ward would make non-actionable
 *      alarms, the main cause of alarm fatigue.
 *    An incomplete score is a lower bound of the true score, so it may raise an alarm. It only
 *    clears the alarm while every parameter that scored when the condition was last present is
 *    still measured: a parameter that stops arriving (or goes stale) cannot prove improvement.
 *    The priority of an occurrence only rises (medium → high is an `updated` event that
 *    re-annunciates: acknowledgement and pause are reset); it never falls until it clears.
 *  - physiological `limit:<parameter>:<below|above>`: configurable hard limits (`limits`),
 *    strict comparison on the raw value; clears only once back inside by `margin`
 *    (SpO2 < 85 raises, ≥ 87 clears with margin 2; 85–86 holds the current state).
 *  - technical `no-data`: no accepted reading from a known bed for `noDataTimeoutS`
 *    (rejected readings are not data); not raised while the ward link is down (the ward-wide
 *    alarm covers it), and each bed gets a fresh `noDataTimeoutS` after the link returns.
 *    Clears on the next accepted reading.
 *  - technical `impossible-value`: a reading rejected by the ingest (`rejected`) or, defensively,
 *    a reading given to `ingest` with a value outside `PLAUSIBLE`; the reading is then ignored.
 *    Raised at once, clears on the next accepted reading.
 *  - technical `device-fault:<code>`: the reading's `fault` field; absent from a reading = cleared
 *    (after the usual hysteresis).
 *  - technical `monitoring-lost` (ward-wide, bed null): between `linkDown` and `linkUp`.
 *  - technical `patient-mismatch`: the monitor names another patient than the one admitted to the bed
 *    (or a patient admitted to another bed), as the caller finds (`patientMismatch`); raised at once,
 *    cleared at once when the caller finds them agreeing again. Never latches (a fact of the system).
 *
 * Alarm fatigue: a condition must persist `onsetDelayS[priority]` before it alarms (a limit may
 * override), and an active alarm clears only after the condition has been absent for
 * `clearDelayS` (no-data, impossible-value and monitoring-lost are facts of the system and clear
 * at once). Between readings a condition keeps the state of the last evidence.
 *
 * Latching: high-priority physiological alarms (with `latchHigh`) stay active as `latched` when
 * their condition clears, until acknowledged. Technical alarms never latch: their end is a fact
 * of the system (the link is back), not a patient state someone must have seen.
 *
 * Acknowledge (who, why) silences for good and stops escalation; acknowledging a latched alarm
 * clears it. Pause (who, why, ≤ `maxPauseS`, at most 120 s per IEC 60601-1-8 practice) silences
 * for a while; escalation waits while paused and, if overdue, fires when the pause ends.
 * Escalation: an active or latched, unacknowledged, unpaused alarm steps up the
 * `escalation[priority]` ladder, timed from when it reached its current priority.
 */
import { PLAUSIBLE, type VitalsPayload } from './payload.js';
import { ACVPU_LEVELS, scoreNews2, type Acvpu, type News2Parameter, type News2Result } from './news2.js';

export type AlarmPriority = 'high' | 'medium' | 'low';
export type AlarmKind = 'physiological' | 'technical';
export type LimitParameter = keyof typeof PLAUSIBLE;

const RANK: Record<AlarmPriority, number> = { low: 1, medium: 2, high: 3 };
const PRIORITIES: readonly AlarmPriority[] = ['high', 'medium', 'low'];
/** Bed id used in alarm ids for ward-wide alarms (cannot be a real bed id: see VITALS_TOPIC). */
export const WARD_SCOPE = '*';

export interface HardLimit {
  parameter: LimitParameter;
  /** 'below': alarms while value < threshold; 'above': while value > threshold. */
  direction: 'below' | 'above';
  threshold: number;
  /** Hysteresis: clears only at ≥ threshold + margin ('below') or ≤ threshold − margin ('above'). */
  margin: number;
  priority: AlarmPriority;
  /** Overrides `onsetDelayS[priority]` for this limit. */
  onsetDelayS?: number;
}

export interface EscalationStep {
  /** Seconds since the alarm reached its current priority. */
  afterS: number;
  /** Whom to call, e.g. 'charge-nurse', 'rapid-response'. */
  to: string;
}

export interface TechnicalPriorities {
  monitoringLost: AlarmPriority;
  noData: AlarmPriority;
  deviceFault: AlarmPriority;
  impossibleValue: AlarmPriority;
  /** The monitor names another patient than the admission: the readings may be the wrong patient's. */
  patientMismatch: AlarmPriority;
}

export interface AlarmConfig {
  /** Seconds a condition must persist before it alarms, by priority. */
  onsetDelayS: Record<AlarmPriority, number>;
  /** Seconds a condition must be absent before its alarm clears (hysteresis in time). */
  clearDelayS: number;
  limits: readonly HardLimit[];
  /** Seconds without an accepted reading before a bed's no-data alarm. */
  noDataTimeoutS: number;
  escalation: Record<AlarmPriority, readonly EscalationStep[]>;
  /** Longest pause, seconds; at most 120. */
  maxPauseS: number;
  /** High-priority physiological alarms latch until acknowledged. */
  latchHigh: boolean;
  /** A parameter's latest value counts for NEWS2 for this many seconds. */
  news2MaxAgeS: number;
  technicalPriority: TechnicalPriorities;
}

export type AlarmConfigInput = Partial<Omit<AlarmConfig, 'onsetDelayS' | 'escalation' | 'technicalPriority'>> & {
  onsetDelayS?: Partial<Record<AlarmPriority, number>>;
  escalation?: Partial<Record<AlarmPriority, readonly EscalationStep[]>>;
  technicalPriority?: Partial<TechnicalPriorities>;
};

export const IEC_MAX_PAUSE_S = 120;

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export const DEFAULT_LIMITS: readonly HardLimit[] = deepFreeze([
  { parameter: 'spo2', direction: 'below', threshold: 85, margin: 2, priority: 'high' },
  { parameter: 'hr', direction: 'below', threshold: 40, margin: 5, priority: 'high' },
  { parameter: 'hr', direction: 'above', threshold: 150, margin: 5, priority: 'high' },
  { parameter: 'rr', direction: 'below', threshold: 8, margin: 2, priority: 'high' },
  { parameter: 'rr', direction: 'above', threshold: 30, margin: 2, priority: 'high' },
  { parameter: 'sbp', direction: 'below', threshold: 80, margin: 5, priority: 'high' },
]);

export const DEFAULT_ALARM_CONFIG: Readonly<AlarmConfig> = deepFreeze({
  onsetDelayS: { high: 0, medium: 10, low: 10 },
  clearDelayS: 10,
  limits: DEFAULT_LIMITS,
  noDataTimeoutS: 30,
  escalation: {
    high: [
      { afterS: 60, to: 'charge-nurse' },
      { afterS: 180, to: 'rapid-response' },
    ],
    medium: [{ afterS: 180, to: 'charge-nurse' }],
    low: [],
  },
  maxPauseS: IEC_MAX_PAUSE_S,
  latchHigh: true,
  news2MaxAgeS: 3600,
  technicalPriority: { monitoringLost: 'high', noData: 'medium', deviceFault: 'medium', impossibleValue: 'low', patientMismatch: 'medium' },
} satisfies AlarmConfig);

export type AlarmState = 'active' | 'latched';

export interface Alarm {
  /** `<bed>/<condition>/<raisedAt ms>` (`#n` appended if one condition is raised twice in one ms). */
  id: string;
  /** null for ward-wide alarms. */
  bedId: string | null;
  /** 'news2', 'limit:spo2:below', 'no-data', 'impossible-value', 'device-fault:<code>', 'monitoring-lost'. */
  condition: string;
  kind: AlarmKind;
  priority: AlarmPriority;
  /** 'latched': the condition has cleared but the alarm waits for acknowledgement. */
  state: AlarmState;
  /** Latest description of the condition. */
  message: string;
  raisedAt: number;
  /** When the alarm reached its current priority (escalation is timed from here). */
  priorityAt: number;
  acknowledged: { by: string; reason: string; at: number } | null;
  paused: { by: string; reason: string; at: number; until: number } | null;
  /** Acknowledged or paused. */
  silenced: boolean;
  /** Escalation steps taken (0 = none). */
  escalationLevel: number;
  /** Limit alarms: the latest value beyond the limit. */
  value?: number;
  /** NEWS2 alarms: the latest score at or above the alarm threshold. */
  news2?: News2Result;
  /**
   * How severe the condition is NOW (the latest evaluation), or null while it is absent. An alarm keeps
   * the highest priority it reached (latching), so this can be lower than `priority`.
   */
  currentSeverity: AlarmPriority | null;
}

interface EventBase {
  at: number;
  alarmId: string;
  bedId: string | null;
  /** The alarm right after the change. */
  alarm: Alarm;
}

export type AlarmUpdate = 'priority-raised' | 'latched' | 'recurred' | 'pause-expired';
export type ClearCause = 'resolved' | 'acknowledged' | 'bed-removed';

export type AlarmEvent =
  | (EventBase & { type: 'raised' })
  | (EventBase & { type: 'updated'; change: AlarmUpdate })
  | (EventBase & { type: 'escalated'; level: number; to: string })
  | (EventBase & { type: 'acknowledged'; by: string; reason: string })
  | (EventBase & { type: 'paused'; by: string; reason: string; until: number })
  | (EventBase & { type: 'cleared'; cause: ClearCause });

type EventBody = AlarmEvent extends infer E ? (E extends AlarmEvent ? Omit<E, keyof EventBase> : never) : never;

/** What the engine reads from a monitor message (the version-1 payload fits as is). */
export type VitalsReading = Partial<Omit<VitalsPayload, 'v'>>;

export interface BedSettings {
  /** NEWS2 SpO2 scale; 2 only when prescribed for a patient with hypercapnic respiratory failure. */
  spo2Scale: 1 | 2;
}

// ---------------------------------------------------------------------------------------------

/** One evaluation of a condition: its severity now (null = absent) and whether absence may clear. */
interface Evidence {
  severity: AlarmPriority | null;
  /** With severity null: true = clearly absent (hysteresis runs), false = dead band (hold). */
  clearOk: boolean;
  message?: string;
  value?: number;
  news2?: News2Result;
}

/** What a tracker keeps of its alarm; the rest of `Alarm` comes from the tracker (see snapshot). */
type InternalAlarm = Omit<Alarm, 'bedId' | 'condition' | 'kind' | 'silenced' | 'currentSeverity'>;

interface Tracker {
  scope: string;
  bedId: string | null;
  condition: string;
  kind: AlarmKind;
  /** Priorities this condition can take. */
  levels: readonly AlarmPriority[];
  onsetS: (p: AlarmPriority) => number;
  clearS: number;
  latches: boolean;
  /** Since when the condition has been continuously present at priority ≥ p. */
  pending: Map<AlarmPriority, number>;
  /** Since when the condition has been clearly absent while an alarm is on. */
  absentSince: number | null;
  last: { message: string; value?: number; news2?: News2Result };
  /** Severity of the latest evaluation; null while the condition is absent. */
  currentSeverity: AlarmPriority | null;
  alarm: InternalAlarm | null;
  lastRaisedAt: number;
  sameMsCount: number;
}

interface BedState {
  id: string;
  spo2Scale: 1 | 2;
  patient: string | undefined;
  /** Accepted reading, registration or link restoration, whichever is latest: no-data runs from here. */
  watchFrom: number;
  latest: Partial<Record<News2Parameter, { value: number | boolean | Acvpu; at: number }>>;
  news2: News2Result | null;
  /** Parameters that scored when NEWS2 was last at alarm level. */
  news2Contributors: News2Parameter[];
  trackers: Map<string, Tracker>;
}

const UNITS: Record<LimitParameter, string> = { hr: '/min', spo2: '%', rr: '/min', tempC: '°C', sbp: 'mmHg', dbp: 'mmHg' };
const LABELS: Record<LimitParameter, string> = { hr: 'Heart rate', spo2: 'SpO2', rr: 'Respiration rate', tempC: 'Temperature', sbp: 'Systolic BP', dbp: 'Diastolic BP' };
const NUMERIC: readonly LimitParameter[] = ['hr', 'spo2', 'rr', 'tempC', 'sbp', 'dbp'];

function nonNegative(name: string, v: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`alarm config ${name}: must be a finite number ≥ 0`);
}

/** `base` with the entries of `over` that are not undefined. */
function merged<T extends object>(base: T, over: Partial<T> | undefined): T {
  const out = { ...base };
  for (const [k, v] of Object.entries(over ?? {})) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

function resolveConfig(input: AlarmConfigInput): AlarmConfig {
  const d = DEFAULT_ALARM_CONFIG;
  const c: AlarmConfig = {
    onsetDelayS: merged(d.onsetDelayS, input.onsetDelayS),
    clearDelayS: input.clearDelayS ?? d.clearDelayS,
    limits: (input.limits ?? d.limits).map((l) => ({ ...l })),
    noDataTimeoutS: input.noDataTimeoutS ?? d.noDataTimeoutS,
    escalation: merged(d.escalation, input.escalation),
    maxPauseS: input.maxPauseS ?? d.maxPauseS,
    latchHigh: input.latchHigh ?? d.latchHigh,
    news2MaxAgeS: input.news2MaxAgeS ?? d.news2MaxAgeS,
    technicalPriority: merged(d.technicalPriority, input.technicalPriority),
  };
  for (const p of PRIORITIES) {
    nonNegative(`onsetDelayS.${p}`, c.onsetDelayS[p]);
    let previous = -1;
    c.escalation[p] = c.escalation[p].map((s) => ({ ...s }));
    for (const s of c.escalation[p]) {
      nonNegative(`escalation.${p}.afterS`, s.afterS);
      if (s.afterS <= previous) throw new RangeError(`alarm config escalation.${p}: steps must be in increasing afterS`);
      if (typeof s.to !== 'string' || s.to.length === 0) throw new RangeError(`alarm config escalation.${p}: each step needs a 'to'`);
      previous = s.afterS;
    }
  }
  nonNegative('clearDelayS', c.clearDelayS);
  nonNegative('noDataTimeoutS', c.noDataTimeoutS);
  if (c.noDataTimeoutS === 0) throw new RangeError('alarm config noDataTimeoutS: must be > 0');
  nonNegative('maxPauseS', c.maxPauseS);
  if (c.maxPauseS === 0 || c.maxPauseS > IEC_MAX_PAUSE_S) throw new RangeError(`alarm config maxPauseS: must be in (0, ${IEC_MAX_PAUSE_S}] s`);
  nonNegative('news2MaxAgeS', c.news2MaxAgeS);
  for (const t of Object.keys(c.technicalPriority) as (keyof TechnicalPriorities)[]) {
    if (!PRIORITIES.includes(c.technicalPriority[t])) throw new RangeError(`alarm config technicalPriority.${t}: unknown priority`);
  }
  const seen = new Set<string>();
  for (const l of c.limits) {
    if (!NUMERIC.includes(l.parameter)) throw new RangeError(`alarm config limit: unknown parameter ${String(l.parameter)}`);
    if (l.direction !== 'below' && l.direction !== 'above') throw new RangeError(`alarm config limit ${l.parameter}: direction must be 'below' or 'above'`);
    if (!Number.isFinite(l.threshold)) throw new RangeError(`alarm config limit ${l.parameter}: threshold must be finite`);
    nonNegative(`limit ${l.parameter} margin`, l.margin);
    if (l.onsetDelayS !== undefined) nonNegative(`limit ${l.parameter} onsetDelayS`, l.onsetDelayS);
    if (!PRIORITIES.includes(l.priority)) throw new RangeError(`alarm config limit ${l.parameter}: unknown priority`);
    const key = `${l.parameter}:${l.direction}`;
    if (seen.has(key)) throw new RangeError(`alarm config limit ${key}: given twice`);
    seen.add(key);
  }
  return c;
}

function requireText(name: string, v: string): void {
  if (typeof v !== 'string' || v.trim().length === 0) throw new TypeError(`${name} is required`);
}

function requireBedId(bedId: string): void {
  if (typeof bedId !== 'string' || bedId.length === 0 || bedId === WARD_SCOPE || bedId.includes('/')) throw new TypeError(`invalid bed id ${JSON.stringify(bedId)}`);
}

/** The reason a reading cannot come from a human body or a working monitor, or null. */
function implausible(r: VitalsReading): string | null {
  for (const p of NUMERIC) {
    const v: unknown = r[p];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) return `${p}: not a number`;
    const [lo, hi] = PLAUSIBLE[p];
    if (v < lo || v > hi) return `${p} ${v} outside ${lo}–${hi}: physically impossible`;
  }
  if (r.sbp !== undefined && r.dbp !== undefined && r.dbp >= r.sbp) return `dbp ${r.dbp} not below sbp ${r.sbp}`;
  if (r.acvpu !== undefined && !ACVPU_LEVELS.includes(r.acvpu)) return `acvpu ${String(r.acvpu)}: unknown level`;
  if (r.o2 !== undefined && typeof r.o2 !== 'boolean') return 'o2: not true/false';
  return null;
}

const byPriorityThenAge = (a: Alarm, b: Alarm): number =>
  RANK[b.priority] - RANK[a.priority] ||
  Number(a.acknowledged !== null) - Number(b.acknowledged !== null) ||
  a.raisedAt - b.raisedAt ||
  (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export class AlarmEngine {
  readonly config: Readonly<AlarmConfig>;
  private clockMs = Number.NEGATIVE_INFINITY;
  private readonly beds = new Map<string, BedState>();
  private readonly ward: Tracker;
  private linkLost = false;
  /**
   * No tracker and no bed's no-data watch can fall due before this time, so a reading may skip the
   * pass over every bed (which made ingest O(beds) per reading: quadratic for a ward). It may be
   * too early (that costs one full pass, which recomputes it) but never too late; `tick` always
   * makes a full pass. -Infinity forces a full pass at the next call.
   */
  private nextDueMs = Number.NEGATIVE_INFINITY;

  constructor(config: AlarmConfigInput = {}) {
    this.config = resolveConfig(config);
    const p = this.config.technicalPriority.monitoringLost;
    this.ward = this.tracker(WARD_SCOPE, null, 'monitoring-lost', 'technical', [p], () => 0, 0);
  }

  /** Sets a bed's NEWS2 SpO2 scale and starts watching it for no-data. Re-scores NEWS2. */
  configureBed(bedId: string, settings: BedSettings, now: number): AlarmEvent[] {
    requireBedId(bedId);
    if (settings.spo2Scale !== 1 && settings.spo2Scale !== 2) throw new RangeError('spo2Scale must be 1 or 2');
    const t = this.time(now);
    const events = this.advance(t);
    this.nextDueMs = Number.NEGATIVE_INFINITY;
    const bed = this.bed(bedId, t);
    if (bed.spo2Scale !== settings.spo2Scale) {
      bed.spo2Scale = settings.spo2Scale;
      if (Object.keys(bed.latest).length > 0) events.push(...this.evaluateNews2(bed, t));
    }
    return events;
  }

  /** Stops watching a bed (patient discharged, monitor removed): its alarms clear with cause 'bed-removed'. */
  removeBed(bedId: string, now: number): AlarmEvent[] {
    const t = this.time(now);
    const events = this.advance(t);
    const bed = this.beds.get(bedId);
    if (!bed) return events;
    for (const tr of bed.trackers.values()) if (tr.alarm) events.push(this.clear(tr, 'bed-removed', t));
    this.beds.delete(bedId);
    return events;
  }

  /** One accepted monitor reading for a bed. */
  ingest(bedId: string, reading: VitalsReading, now: number): AlarmEvent[] {
    requireBedId(bedId);
    const t = this.time(now);
    const events = this.advance(t);
    const bed = this.bed(bedId, t);
    const problem = implausible(reading);
    if (problem !== null) {
      events.push(...this.observe(this.impossibleTracker(bed), { severity: this.config.technicalPriority.impossibleValue, clearOk: false, message: `Reading rejected: ${problem}` }, t));
      return events;
    }

    bed.watchFrom = t;
    if (reading.patient !== undefined) {
      if (bed.patient !== undefined && bed.patient !== reading.patient) {
        bed.latest = {};
        bed.news2Contributors = [];
      }
      bed.patient = reading.patient;
    }
    for (const p of ['rr', 'spo2', 'o2', 'sbp', 'hr', 'acvpu', 'tempC'] as const) {
      const v = reading[p];
      if (v !== undefined) bed.latest[p] = { value: v, at: t };
    }

    events.push(...this.observe(this.noDataTracker(bed), { severity: null, clearOk: true }, t));
    this.nextDueMs = Math.min(this.nextDueMs, this.noDataDue(bed)); // the watch restarts now, also after a no-data alarm cleared
    events.push(...this.observe(this.impossibleTracker(bed), { severity: null, clearOk: true }, t));

    for (const tr of bed.trackers.values()) {
      if (tr.condition.startsWith('device-fault:') && tr.condition !== `device-fault:${reading.fault ?? ''}`) {
        events.push(...this.observe(tr, { severity: null, clearOk: true }, t));
      }
    }
    if (reading.fault !== undefined) {
      events.push(...this.observe(this.faultTracker(bed, reading.fault), { severity: this.config.technicalPriority.deviceFault, clearOk: false, message: `Device fault: ${reading.fault}` }, t));
    }

    for (const limit of this.config.limits) {
      const v = reading[limit.parameter];
      if (v === undefined) continue;
      const below = limit.direction === 'below';
      const present = below ? v < limit.threshold : v > limit.threshold;
      const clearOk = below ? v >= limit.threshold + limit.margin : v <= limit.threshold - limit.margin;
      const unit = UNITS[limit.parameter];
      const message = `${LABELS[limit.parameter]} ${v} ${unit} ${limit.direction} limit ${limit.threshold} ${unit}`;
      events.push(...this.observe(this.limitTracker(bed, limit), { severity: present ? limit.priority : null, clearOk, message, value: v }, t));
    }

    events.push(...this.evaluateNews2(bed, t));
    return events;
  }

  /**
   * The caller's check of the bed's patient: `problem` says how the patient the monitor names differs
   * from the admission, or is null when they agree (or the monitor names nobody). Raises, updates the
   * message of, or clears the bed's `patient-mismatch` alarm; a bed that never had one is not touched.
   */
  patientMismatch(bedId: string, problem: string | null, now: number): AlarmEvent[] {
    requireBedId(bedId);
    const t = this.time(now);
    const events = this.advance(t);
    const bed = this.beds.get(bedId);
    if (problem === null && !bed?.trackers.has('patient-mismatch')) return events;
    const tracker = this.mismatchTracker(bed ?? this.bed(bedId, t));
    const evidence: Evidence = problem === null ? { severity: null, clearOk: true } : { severity: this.config.technicalPriority.patientMismatch, clearOk: false, message: problem };
    events.push(...this.observe(tracker, evidence, t));
    return events;
  }

  /** A reading from this bed was rejected by the ingest (physically impossible value, bad message). */
  rejected(bedId: string, reason: string, now: number): AlarmEvent[] {
    requireBedId(bedId);
    requireText('reason', reason);
    const t = this.time(now);
    const events = this.advance(t);
    const bed = this.bed(bedId, t);
    events.push(...this.observe(this.impossibleTracker(bed), { severity: this.config.technicalPriority.impossibleValue, clearOk: false, message: `Reading rejected: ${reason}` }, t));
    return events;
  }

  /** The broker link dropped: one ward-wide technical alarm; no-data alarms are held back meanwhile. */
  linkDown(now: number): AlarmEvent[] {
    const t = this.time(now);
    const events = this.advance(t);
    this.nextDueMs = Number.NEGATIVE_INFINITY;
    this.linkLost = true;
    events.push(...this.observe(this.ward, { severity: this.config.technicalPriority.monitoringLost, clearOk: false, message: 'Monitoring lost: no connection to the bedside monitors' }, t));
    return events;
  }

  /** The broker link is back: clears 'monitoring lost' and gives every bed a fresh no-data timeout. */
  linkUp(now: number): AlarmEvent[] {
    const t = this.time(now);
    const events = this.advance(t);
    this.nextDueMs = Number.NEGATIVE_INFINITY;
    if (this.linkLost) {
      this.linkLost = false;
      for (const bed of this.beds.values()) bed.watchFrom = Math.max(bed.watchFrom, t);
    }
    events.push(...this.observe(this.ward, { severity: null, clearOk: true }, t));
    return events;
  }

  /** Brings the engine up to `now`: onset, hysteresis, no-data, pause expiry, escalation. */
  tick(now: number): AlarmEvent[] {
    return this.advance(this.time(now), true);
  }

  /**
   * Acknowledges an alarm: silences it for good and stops its escalation; a latched alarm clears.
   * An unknown, cleared or already acknowledged alarm changes nothing.
   */
  acknowledge(alarmId: string, by: string, reason: string, now: number): AlarmEvent[] {
    requireText('by', by);
    requireText('reason', reason);
    const t = this.time(now);
    const events = this.advance(t);
    this.nextDueMs = Number.NEGATIVE_INFINITY;
    const tr = this.find(alarmId);
    if (!tr?.alarm || tr.alarm.acknowledged) return events;
    tr.alarm.acknowledged = { by, reason, at: t };
    tr.alarm.paused = null;
    events.push(this.event(tr, t, { type: 'acknowledged', by, reason }));
    if (tr.alarm.state === 'latched') events.push(this.clear(tr, 'acknowledged', t));
    return events;
  }

  /**
   * Silences an alarm for `seconds` (0 < seconds ≤ maxPauseS). A new pause replaces a running one.
   * An unknown, cleared or acknowledged (already silent) alarm changes nothing.
   */
  pause(alarmId: string, by: string, reason: string, seconds: number, now: number): AlarmEvent[] {
    requireText('by', by);
    requireText('reason', reason);
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0 || seconds > this.config.maxPauseS) {
      throw new RangeError(`pause must last more than 0 and at most ${this.config.maxPauseS} s`);
    }
    const t = this.time(now);
    const events = this.advance(t);
    this.nextDueMs = Number.NEGATIVE_INFINITY;
    const tr = this.find(alarmId);
    if (!tr?.alarm || tr.alarm.acknowledged) return events;
    const until = t + seconds * 1000;
    tr.alarm.paused = { by, reason, at: t, until };
    events.push(this.event(tr, t, { type: 'paused', by, reason, until }));
    return events;
  }

  /**
   * For a caller that records an `acknowledge` or `pause` in a store transaction that may still fail:
   * a function that puts the alarm back exactly as it is now (silencing, state, and its clearing by an
   * acknowledgement), or null when there is no such alarm. Valid only until the engine's next change
   * other than that one acknowledge or pause.
   */
  undoPoint(alarmId: string): (() => void) | null {
    const tr = this.find(alarmId);
    if (!tr?.alarm) return null;
    const alarm = structuredClone(tr.alarm);
    const pending = [...tr.pending];
    const absentSince = tr.absentSince;
    return () => {
      tr.alarm = alarm;
      tr.pending.clear();
      for (const [p, since] of pending) tr.pending.set(p, since);
      tr.absentSince = absentSince;
      this.nextDueMs = Number.NEGATIVE_INFINITY;
    };
  }

  /** Active and latched alarms: high before medium before low, unacknowledged first, then oldest first. */
  active(): Alarm[] {
    return this.trackers()
      .filter((tr) => tr.alarm !== null)
      .map((tr) => this.snapshot(tr))
      .sort(byPriorityThenAge);
  }

  /** One alarm by id, if active or latched. */
  get(alarmId: string): Alarm | undefined {
    const tr = this.find(alarmId);
    return tr?.alarm ? this.snapshot(tr) : undefined;
  }

  /** The bed's latest NEWS2 (including the 1–4 advisory, which is not an alarm), or null. */
  news2(bedId: string): News2Result | null {
    const r = this.beds.get(bedId)?.news2;
    return r ? structuredClone(r) : null;
  }

  /** Whether the broker link is down. */
  get monitoringLost(): boolean {
    return this.linkLost;
  }

  // -------------------------------------------------------------------------------------------

  private time(now: number): number {
    if (typeof now !== 'number' || !Number.isFinite(now)) throw new TypeError('now must be a finite number of milliseconds');
    this.clockMs = Math.max(this.clockMs, now);
    return this.clockMs;
  }

  private trackers(): Tracker[] {
    const all = [this.ward];
    for (const bed of this.beds.values()) all.push(...bed.trackers.values());
    return all;
  }

  private find(alarmId: string): Tracker | undefined {
    return this.trackers().find((tr) => tr.alarm?.id === alarmId);
  }

  private bed(bedId: string, t: number): BedState {
    let bed = this.beds.get(bedId);
    if (!bed) {
      bed = { id: bedId, spo2Scale: 1, patient: undefined, watchFrom: t, latest: {}, news2: null, news2Contributors: [], trackers: new Map() };
      this.beds.set(bedId, bed);
      this.nextDueMs = Math.min(this.nextDueMs, this.noDataDue(bed));
    }
    return bed;
  }

  private tracker(scope: string, bedId: string | null, condition: string, kind: AlarmKind, levels: readonly AlarmPriority[], onsetS: (p: AlarmPriority) => number, clearS: number): Tracker {
    return {
      scope,
      bedId,
      condition,
      kind,
      levels,
      onsetS,
      clearS,
      latches: kind === 'physiological' && this.config.latchHigh,
      pending: new Map(),
      absentSince: null,
      last: { message: condition },
      currentSeverity: null,
      alarm: null,
      lastRaisedAt: Number.NaN,
      sameMsCount: 0,
    };
  }

  private bedTracker(bed: BedState, condition: string, make: () => Tracker): Tracker {
    let tr = bed.trackers.get(condition);
    if (!tr) {
      tr = make();
      bed.trackers.set(condition, tr);
    }
    return tr;
  }

  private byPriority = (p: AlarmPriority): number => this.config.onsetDelayS[p];

  private noDataTracker(bed: BedState): Tracker {
    const p = this.config.technicalPriority.noData;
    return this.bedTracker(bed, 'no-data', () => this.tracker(bed.id, bed.id, 'no-data', 'technical', [p], () => 0, 0));
  }

  private mismatchTracker(bed: BedState): Tracker {
    const p = this.config.technicalPriority.patientMismatch;
    return this.bedTracker(bed, 'patient-mismatch', () => this.tracker(bed.id, bed.id, 'patient-mismatch', 'technical', [p], () => 0, 0));
  }

  private impossibleTracker(bed: BedState): Tracker {
    const p = this.config.technicalPriority.impossibleValue;
    return this.bedTracker(bed, 'impossible-value', () => this.tracker(bed.id, bed.id, 'impossible-value', 'technical', [p], () => 0, 0));
  }

  private faultTracker(bed: BedState, code: string): Tracker {
    const p = this.config.technicalPriority.deviceFault;
    const condition = `device-fault:${code}`;
    return this.bedTracker(bed, condition, () => this.tracker(bed.id, bed.id, condition, 'technical', [p], this.byPriority, this.config.clearDelayS));
  }

  private limitTracker(bed: BedState, limit: HardLimit): Tracker {
    const condition = `limit:${limit.parameter}:${limit.direction}`;
    const onset = limit.onsetDelayS;
    return this.bedTracker(bed, condition, () =>
      this.tracker(bed.id, bed.id, condition, 'physiological', [limit.priority], onset === undefined ? this.byPriority : () => onset, this.config.clearDelayS),
    );
  }

  private news2Tracker(bed: BedState): Tracker {
    return this.bedTracker(bed, 'news2', () => this.tracker(bed.id, bed.id, 'news2', 'physiological', ['medium', 'high'], this.byPriority, this.config.clearDelayS));
  }

  private evaluateNews2(bed: BedState, t: number): AlarmEvent[] {
    const maxAge = this.config.news2MaxAgeS * 1000;
    const fresh = <V>(p: News2Parameter): V | undefined => {
      const e = bed.latest[p];
      return e && t - e.at <= maxAge ? (e.value as V) : undefined;
    };
    const result = scoreNews2(
      { rr: fresh<number>('rr'), spo2: fresh<number>('spo2'), o2: fresh<boolean>('o2'), sbp: fresh<number>('sbp'), hr: fresh<number>('hr'), acvpu: fresh<Acvpu>('acvpu'), tempC: fresh<number>('tempC') },
      { spo2Scale: bed.spo2Scale },
    );
    bed.news2 = result;
    const severity: AlarmPriority | null = result.aggregate >= 7 ? 'high' : result.aggregate >= 5 || result.anySingleThree ? 'medium' : null;
    let clearOk = true;
    if (severity !== null) {
      bed.news2Contributors = (Object.keys(result.subScores) as News2Parameter[]).filter((p) => (result.subScores[p] ?? 0) > 0);
    } else {
      clearOk = bed.news2Contributors.every((p) => result.subScores[p] !== null);
    }
    const incomplete = result.complete ? '' : ` (incomplete, missing ${result.missing.join(', ')})`;
    const message = `NEWS2 ${result.aggregate}${incomplete}${result.anySingleThree ? ', a single parameter at 3' : ''}: ${result.risk} risk, ${result.response.urgency}`;
    return this.observe(this.news2Tracker(bed), { severity, clearOk, message, news2: result }, t);
  }

  /** Records one evaluation of a condition, then applies what it makes due. */
  private observe(tr: Tracker, ev: Evidence, t: number): AlarmEvent[] {
    const events: AlarmEvent[] = [];
    tr.currentSeverity = ev.severity;
    if (ev.severity !== null) {
      const severity = ev.severity;
      for (const p of tr.levels) {
        if (RANK[p] <= RANK[severity]) {
          if (!tr.pending.has(p)) tr.pending.set(p, t);
        } else tr.pending.delete(p);
      }
      tr.absentSince = null;
      tr.last = { message: ev.message ?? tr.condition, ...(ev.value !== undefined && { value: ev.value }), ...(ev.news2 && { news2: ev.news2 }) };
      if (tr.alarm) {
        tr.alarm.message = tr.last.message;
        if (ev.value !== undefined) tr.alarm.value = ev.value;
        if (ev.news2) tr.alarm.news2 = ev.news2;
        if (tr.alarm.state === 'latched') {
          tr.alarm.state = 'active';
          events.push(this.event(tr, t, { type: 'updated', change: 'recurred' }));
        }
      }
    } else {
      tr.pending.clear();
      if (!ev.clearOk || !tr.alarm) tr.absentSince = null;
      else if (tr.absentSince === null) tr.absentSince = t;
    }
    events.push(...this.step(tr, t));
    this.nextDueMs = Math.min(this.nextDueMs, this.trackerDue(tr));
    return events;
  }

  /** When this tracker next has something to do (onset, clear or latch, pause expiry, escalation); Infinity if never by itself. */
  private trackerDue(tr: Tracker): number {
    let due = Number.POSITIVE_INFINITY;
    const alarm = tr.alarm;
    for (const [p, since] of tr.pending) {
      if (!alarm || RANK[p] > RANK[alarm.priority]) due = Math.min(due, since + tr.onsetS(p) * 1000);
    }
    if (!alarm) return due;
    if (alarm.state === 'active' && tr.absentSince !== null) due = Math.min(due, tr.absentSince + tr.clearS * 1000);
    if (alarm.paused) return Math.min(due, alarm.paused.until);
    const next = alarm.acknowledged ? undefined : this.config.escalation[alarm.priority][alarm.escalationLevel];
    return next ? Math.min(due, alarm.priorityAt + next.afterS * 1000) : due;
  }

  /** When the bed's no-data alarm falls due; Infinity while it is on or the link is down. */
  private noDataDue(bed: BedState): number {
    if (this.linkLost || bed.trackers.get('no-data')?.alarm) return Number.POSITIVE_INFINITY;
    return bed.watchFrom + this.config.noDataTimeoutS * 1000;
  }

  /** Onset (raise, or raise priority) and hysteresis (clear or latch) as due at `t`. */
  private step(tr: Tracker, t: number): AlarmEvent[] {
    const events: AlarmEvent[] = [];
    let due: AlarmPriority | null = null;
    for (const [p, since] of tr.pending) {
      if (t - since >= tr.onsetS(p) * 1000 && (due === null || RANK[p] > RANK[due])) due = p;
    }
    if (!tr.alarm) {
      if (due === null) return events;
      if (tr.lastRaisedAt === t) tr.sameMsCount += 1;
      else {
        tr.lastRaisedAt = t;
        tr.sameMsCount = 0;
      }
      tr.alarm = {
        id: `${tr.scope}/${tr.condition}/${t}${tr.sameMsCount > 0 ? `#${tr.sameMsCount + 1}` : ''}`,
        priority: due,
        state: 'active',
        message: tr.last.message,
        raisedAt: t,
        priorityAt: t,
        acknowledged: null,
        paused: null,
        escalationLevel: 0,
        ...(tr.last.value !== undefined && { value: tr.last.value }),
        ...(tr.last.news2 && { news2: tr.last.news2 }),
      };
      tr.absentSince = null;
      events.push(this.event(tr, t, { type: 'raised' }));
      return events;
    }
    const alarm = tr.alarm;
    if (due !== null && RANK[due] > RANK[alarm.priority]) {
      alarm.priority = due;
      alarm.priorityAt = t;
      alarm.escalationLevel = 0;
      alarm.acknowledged = null;
      alarm.paused = null;
      alarm.state = 'active';
      events.push(this.event(tr, t, { type: 'updated', change: 'priority-raised' }));
    }
    if (alarm.state === 'active' && tr.absentSince !== null && t - tr.absentSince >= tr.clearS * 1000) {
      if (tr.latches && alarm.priority === 'high' && !alarm.acknowledged) {
        alarm.state = 'latched';
        events.push(this.event(tr, t, { type: 'updated', change: 'latched' }));
      } else {
        events.push(this.clear(tr, 'resolved', t));
      }
    }
    return events;
  }

  /** Pause expiry, then escalation, for one alarm. */
  private timers(tr: Tracker, t: number): AlarmEvent[] {
    const events: AlarmEvent[] = [];
    const alarm = tr.alarm;
    if (!alarm) return events;
    if (alarm.paused && t >= alarm.paused.until) {
      alarm.paused = null;
      events.push(this.event(tr, t, { type: 'updated', change: 'pause-expired' }));
    }
    if (alarm.acknowledged || alarm.paused) return events;
    const ladder = this.config.escalation[alarm.priority];
    for (let next = ladder[alarm.escalationLevel]; next && t - alarm.priorityAt >= next.afterS * 1000; next = ladder[alarm.escalationLevel]) {
      alarm.escalationLevel += 1;
      events.push(this.event(tr, t, { type: 'escalated', level: alarm.escalationLevel, to: next.to }));
    }
    return events;
  }

  private advance(t: number, full = false): AlarmEvent[] {
    const events: AlarmEvent[] = [];
    if (!full && t < this.nextDueMs) return events;
    if (!this.linkLost) {
      for (const bed of this.beds.values()) {
        if (t - bed.watchFrom >= this.config.noDataTimeoutS * 1000) {
          const tr = this.noDataTracker(bed);
          if (!tr.alarm) {
            const seconds = Math.floor((t - bed.watchFrom) / 1000);
            events.push(...this.observe(tr, { severity: this.config.technicalPriority.noData, clearOk: false, message: `No data from bed ${bed.id} for ${seconds} s` }, t));
          }
        }
      }
    }
    let nextDue = Number.POSITIVE_INFINITY;
    for (const tr of this.trackers()) {
      events.push(...this.step(tr, t));
      events.push(...this.timers(tr, t));
      nextDue = Math.min(nextDue, this.trackerDue(tr));
    }
    for (const bed of this.beds.values()) nextDue = Math.min(nextDue, this.noDataDue(bed));
    this.nextDueMs = nextDue;
    return events;
  }

  private clear(tr: Tracker, cause: ClearCause, t: number): AlarmEvent {
    const ev = this.event(tr, t, { type: 'cleared', cause });
    tr.alarm = null;
    tr.pending.clear();
    tr.absentSince = null;
    return ev;
  }

  private snapshot(tr: Tracker): Alarm {
    const a = tr.alarm;
    if (!a) throw new Error(`no alarm for ${tr.scope}/${tr.condition}`);
    const out: Alarm = {
      id: a.id,
      bedId: tr.bedId,
      condition: tr.condition,
      kind: tr.kind,
      priority: a.priority,
      state: a.state,
      message: a.message,
      raisedAt: a.raisedAt,
      priorityAt: a.priorityAt,
      acknowledged: a.acknowledged ? { ...a.acknowledged } : null,
      paused: a.paused ? { ...a.paused } : null,
      silenced: a.acknowledged !== null || a.paused !== null,
      escalationLevel: a.escalationLevel,
      currentSeverity: tr.currentSeverity,
    };
    if (a.value !== undefined) out.value = a.value;
    if (a.news2) out.news2 = structuredClone(a.news2);
    return out;
  }

  private event(tr: Tracker, t: number, body: EventBody): AlarmEvent {
    const alarm = this.snapshot(tr);
    return { ...body, at: t, alarmId: alarm.id, bedId: alarm.bedId, alarm };
  }
}
