/**
 * The ward board's state: every bed's latest view, the active alarms and the monitoring link.
 *
 * `ward.board` gives the whole board once (on opening the ward and after a reconnect); `ward.update`
 * events (≤ 1 Hz, and at once for a new alarm) then carry only the beds that changed, each with its
 * trend's newest point unless more changed (shared/ward-trend.ts), and the whole alarm list only when it
 * changed. Beds are kept by key and an unchanged bed keeps its object identity, so a tile that selects
 * `beds[key]` re-renders only when its own bed changed — the board stays smooth with hundreds of beds.
 *
 * `ward.board` is audited (vitals.read): it is fetched when the ward opens, after the connection
 * comes back and when an update shows that earlier ones were missed, never polled.
 */
import { create } from 'zustand';
import type { AdmissionView, AlarmView, BedView, EventPayload, Spo2Scale, WardBoard } from '../../shared/ipc.js';
import { mergeBedUpdate } from '../../shared/ward-trend.js';
import { call, onConnection, subscribe } from '../api/client.js';
import { errorMessage } from '../api/errors.js';
import { navigate } from './route.js';

export type AlarmPriority = AlarmView['priority'];
export type WardLink = WardBoard['link'];
export type BedSort = 'bed' | 'news2';

/** Per bed, what its tile needs of the alarm list, as one comparable string: `<priority>:<unacked 0|1>` or ''. */
export type BedAlarmToken = string;

interface WardState {
  status: 'idle' | 'loading' | 'ready' | 'error';
  error: string | null;
  beds: Record<string, BedView>;
  /** Bed keys in the current sort order. */
  order: string[];
  sort: BedSort;
  /** Sorted: priority (high first), then unacknowledged first, then oldest first. */
  alarms: AlarmView[];
  /** Highest physiological alarm of each bed that has one (see BedAlarmToken). */
  bedAlarm: Record<string, BedAlarmToken>;
  link: WardLink | null;
  counters: WardBoard['counters'] | null;
  /** When the last board or update arrived (renderer clock, ms). */
  receivedAt: number | null;
  /** `ward.update` events applied since the board was fetched. */
  updates: number;
}

const EMPTY = {
  status: 'idle',
  error: null,
  beds: {},
  order: [],
  alarms: [],
  bedAlarm: {},
  link: null,
  counters: null,
  receivedAt: null,
  updates: 0,
} satisfies Omit<WardState, 'sort'>;

export const useWard = create<WardState>()(() => ({ ...EMPTY, sort: 'bed' }));

// ---------------------------------------------------------------------------------------------
// Ordering
// ---------------------------------------------------------------------------------------------

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
const RANK: Record<AlarmPriority, number> = { high: 0, medium: 1, low: 2 };

export function compareAlarms(a: AlarmView, b: AlarmView): number {
  return (
    RANK[a.priority] - RANK[b.priority] ||
    Number(a.acknowledged !== null) - Number(b.acknowledged !== null) ||
    a.raisedAt.localeCompare(b.raisedAt) ||
    a.id.localeCompare(b.id)
  );
}

function sortKeys(beds: Record<string, BedView>, sort: BedSort): string[] {
  const keys = Object.keys(beds);
  if (sort === 'news2') {
    return keys.sort((a, b) => (beds[b]?.news2?.aggregate ?? -1) - (beds[a]?.news2?.aggregate ?? -1) || collator.compare(a, b));
  }
  return keys.sort(collator.compare);
}

function sameOrder(a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function bedAlarmTokens(alarms: AlarmView[], previous: Record<string, BedAlarmToken>): Record<string, BedAlarmToken> {
  const best = new Map<string, AlarmView>();
  for (const a of alarms) {
    if (a.bedKey === null || a.kind !== 'physiological') continue;
    const cur = best.get(a.bedKey);
    if (!cur || compareAlarms(a, cur) < 0) best.set(a.bedKey, a);
  }
  const next: Record<string, BedAlarmToken> = {};
  for (const [key, a] of best) next[key] = `${a.priority}:${a.acknowledged ? 0 : 1}`;
  // Keep the previous object when nothing changed (fewer comparisons downstream).
  const prevKeys = Object.keys(previous);
  if (prevKeys.length === best.size && prevKeys.every((k) => previous[k] === next[k])) return previous;
  return next;
}

/** Parses a BedAlarmToken. */
export function readBedAlarm(token: BedAlarmToken | undefined): { priority: AlarmPriority; unacknowledged: boolean } | null {
  if (!token) return null;
  const [p, u] = token.split(':');
  if (p !== 'high' && p !== 'medium' && p !== 'low') return null;
  return { priority: p, unacknowledged: u === '1' };
}

// ---------------------------------------------------------------------------------------------
// Applying the board and updates
// ---------------------------------------------------------------------------------------------

function applyBoard(board: WardBoard): void {
  const beds: Record<string, BedView> = {};
  for (const b of board.beds) beds[b.key] = b;
  const alarms = [...board.alarms].sort(compareAlarms);
  useWard.setState((s) => ({
    status: 'ready',
    error: null,
    beds,
    order: sortKeys(beds, s.sort),
    alarms,
    bedAlarm: bedAlarmTokens(alarms, s.bedAlarm),
    link: board.link,
    counters: board.counters,
    receivedAt: Date.now(),
    updates: 0,
  }));
}

/** Applies an update; returns true when a bed's trend could not be placed (updates were missed: fetch the board). */
export function applyUpdate(update: EventPayload<'ward.update'>): boolean {
  let stale = false;
  useWard.setState((s) => {
    const patch: Partial<WardState> = { link: sameLink(s.link, update.link) ? s.link : update.link, counters: update.counters, receivedAt: Date.now(), updates: s.updates + 1 };
    if (update.beds.length) {
      const beds = { ...s.beds };
      let added = false;
      let scoreChanged = false;
      for (const u of update.beds) {
        const prev = beds[u.key];
        const { bed: b, complete } = mergeBedUpdate(prev, u);
        if (!complete) stale = true;
        if (!prev) added = true;
        else if ((prev.news2?.aggregate ?? -1) !== (b.news2?.aggregate ?? -1)) scoreChanged = true;
        beds[b.key] = b;
      }
      patch.beds = beds;
      if (added || (scoreChanged && s.sort === 'news2')) {
        const order = sortKeys(beds, s.sort);
        if (!sameOrder(order, s.order)) patch.order = order;
      }
    }
    if (update.alarms) {
      const alarms = [...update.alarms].sort(compareAlarms);
      patch.alarms = alarms;
      patch.bedAlarm = bedAlarmTokens(alarms, s.bedAlarm);
    }
    return patch;
  });
  return stale;
}

function sameLink(a: WardLink | null, b: WardLink): boolean {
  return !!a && a.up === b.up && a.since === b.since && a.broker === b.broker;
}

/** An alarm as a call returned it (acknowledge, pause): replaces the listed one until the next update. */
function applyAlarm(alarm: AlarmView): void {
  useWard.setState((s) => {
    const alarms = s.alarms.map((a) => (a.id === alarm.id ? alarm : a));
    if (!alarms.some((a) => a.id === alarm.id)) alarms.push(alarm);
    // An acknowledged latched alarm is over: the engine clears it.
    const kept = alarms.filter((a) => !(a.id === alarm.id && a.state === 'latched' && a.acknowledged)).sort(compareAlarms);
    return { alarms: kept, bedAlarm: bedAlarmTokens(kept, s.bedAlarm) };
  });
}

/** A bed as a call returned it (SpO2 scale): replaces the board's until the next update. */
function applyBed(bed: BedView): void {
  useWard.setState((s) => {
    const prev = s.beds[bed.key];
    const beds = { ...s.beds, [bed.key]: bed };
    const patch: Partial<WardState> = { beds };
    if (!prev || (s.sort === 'news2' && (prev.news2?.aggregate ?? -1) !== (bed.news2?.aggregate ?? -1))) {
      const order = sortKeys(beds, s.sort);
      if (!sameOrder(order, s.order)) patch.order = order;
    }
    return patch;
  });
}

export function setBedSort(sort: BedSort): void {
  useWard.setState((s) => ({ sort, order: sortKeys(s.beds, sort) }));
}

// ---------------------------------------------------------------------------------------------
// Life cycle: fetch the board, follow updates while the ward is open
// ---------------------------------------------------------------------------------------------

let users = 0;
let unsubscribers: (() => void)[] = [];
/** Updates that arrived while a board fetch was in flight: applied on top of the board. */
let buffered: EventPayload<'ward.update'>[] | null = null;
let generation = 0;

export async function fetchBoard(): Promise<void> {
  const gen = ++generation;
  buffered = [];
  if (useWard.getState().status !== 'ready') useWard.setState({ status: 'loading' });
  try {
    const board = await call('ward.board', {});
    if (gen !== generation) return;
    applyBoard(board);
    for (const u of buffered) applyUpdate(u);
  } catch (error) {
    if (gen !== generation) return;
    useWard.setState((s) => ({ status: s.status === 'ready' ? 'ready' : 'error', error: errorMessage(error) }));
  } finally {
    if (gen === generation) buffered = null;
  }
}

function onUpdate(update: EventPayload<'ward.update'>): void {
  if (buffered) buffered.push(update);
  else if (useWard.getState().status === 'ready') {
    if (applyUpdate(update)) void fetchBoard();
  }
  // No board yet (locked screen, password to change): the alarm list is complete in every update, so
  // alarms still sound; beds wait for the board.
  else applyUpdate({ ...update, beds: [] });
}

/** Starts following the ward (reference-counted; call the returned function to stop). */
export function startWard(): () => void {
  users++;
  if (users === 1) {
    unsubscribers = [
      subscribe('ward.update', onUpdate),
      onConnection((info, reconnected) => {
        if (reconnected && info.state === 'open') void fetchBoard();
      }),
    ];
    void fetchBoard();
  } else if (useWard.getState().status === 'error') void fetchBoard();
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    users--;
    if (users === 0) {
      for (const u of unsubscribers) u();
      unsubscribers = [];
      generation++;
      buffered = null;
      // Not followed any more: forget it rather than show a stale board (or another user's) next time.
      useWard.setState(EMPTY);
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Alarm actions (audited by the host)
// ---------------------------------------------------------------------------------------------

export async function acknowledgeAlarm(alarmId: string, reason: string): Promise<AlarmView> {
  const alarm = await call('alarms.acknowledge', { alarmId, reason });
  applyAlarm(alarm);
  return alarm;
}

export async function pauseAlarm(alarmId: string, reason: string, seconds: number): Promise<AlarmView> {
  const alarm = await call('alarms.pause', { alarmId, reason, seconds });
  applyAlarm(alarm);
  return alarm;
}

// ---------------------------------------------------------------------------------------------
// Monitoring settings (audited by the host; 'vitals:configure', physicians)
// ---------------------------------------------------------------------------------------------

/** Sets the NEWS2 SpO2 scale of the patient now in `bedKey` (it follows the patient to other beds). */
export async function setSpo2Scale(bedKey: string, scale: Spo2Scale, reason: string): Promise<BedView> {
  const bed = await call('ward.setSpo2Scale', { bedKey, scale, reason });
  applyBed(bed);
  return bed;
}

export function openBed(key: string): void {
  navigate(`/ward/${encodeURIComponent(key)}`);
}

export function closeBed(): void {
  navigate('/ward');
}

// ---------------------------------------------------------------------------------------------
// Admissions (ADT; audited by the host; 'adt:write', nurses and physicians)
// ---------------------------------------------------------------------------------------------

/**
 * Admit, transfer, discharge: the host pushes the beds concerned in a `ward.update` right after the
 * change; the call's answer is the stay.
 */
export function admitPatient(patientId: string, bedKey: string, reason: string): Promise<AdmissionView> {
  return call('adt.admit', { patientId, bedKey, ...(reason.trim() ? { reason: reason.trim() } : {}) });
}

export async function transferPatient(patientId: string, admissionId: string, toBedKey: string, reason: string): Promise<AdmissionView> {
  return (await call('adt.transfer', { patientId, admissionId, toBedKey, ...(reason.trim() ? { reason: reason.trim() } : {}) })).to;
}

export function dischargePatient(patientId: string, admissionId: string, reason: string): Promise<AdmissionView> {
  return call('adt.discharge', { patientId, admissionId, ...(reason.trim() ? { reason: reason.trim() } : {}) });
}
