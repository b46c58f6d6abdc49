/**
 * The ward's alarm counters, defined once for every place that shows them (toolbar, alarm panel):
 * - active: raised and not cleared yet (including latched ones, whose condition is over);
 * - unacknowledged: active and nobody has acknowledged it;
 * - high: of those unacknowledged, high priority;
 * - paused: of those unacknowledged, sound paused right now.
 */
import type { AlarmView } from '../../../shared/ipc.js';

export interface AlarmCounts {
  active: number;
  unacknowledged: number;
  highUnacknowledged: number;
  pausedUnacknowledged: number;
}

export const ALARM_COUNT_LEGEND =
  'Active: raised and not cleared yet (a latched alarm stays active until acknowledged). Unacknowledged: active and not yet acknowledged by anyone. High: unacknowledged alarms of high priority. Paused: unacknowledged alarms whose sound is paused now.';

export function alarmCounts(alarms: readonly AlarmView[], now: number): AlarmCounts {
  const counts: AlarmCounts = { active: alarms.length, unacknowledged: 0, highUnacknowledged: 0, pausedUnacknowledged: 0 };
  for (const a of alarms) {
    if (a.acknowledged) continue;
    counts.unacknowledged += 1;
    if (a.priority === 'high') counts.highUnacknowledged += 1;
    if (a.pausedUntil && Date.parse(a.pausedUntil) > now) counts.pausedUnacknowledged += 1;
  }
  return counts;
}

const RANK = { low: 1, medium: 2, high: 3 } as const;

/**
 * The priority label of an alarm, saying plainly when it differs from the condition now: the alarm
 * keeps the highest priority it reached, so "HIGH" beside "NEWS2 5: medium risk" reads as
 * "latched high · now medium".
 */
export function priorityLabel(alarm: Pick<AlarmView, 'priority' | 'state' | 'currentSeverity'>): string {
  if (alarm.state === 'latched' || alarm.currentSeverity === null) return `latched ${alarm.priority} · condition over`;
  if (RANK[alarm.currentSeverity] < RANK[alarm.priority]) return `latched ${alarm.priority} · now ${alarm.currentSeverity}`;
  return alarm.priority;
}
