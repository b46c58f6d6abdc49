/**
 * Saying plainly what the ward screen counts and shows (issue 8 item 7): one definition per counter,
 * and a latched priority never shown as if it were the condition now.
 */
import { describe, expect, it } from 'vitest';
import type { AlarmView } from '../../src/shared/ipc.js';
import { AlarmEngine } from '../../src/main/vitals/alarms.js';
import { alarmCounts, priorityLabel } from '../../src/renderer/features/ward/alarm-counts.js';

const T0 = Date.UTC(2026, 10, 21, 5, 0, 0);
const NORMAL = { rr: 16, spo2: 98, o2: false, sbp: 120, hr: 70, acvpu: 'A', tempC: 37.0 } as const;
/** NEWS2 5 (RR 22, oxygen, pulse 95): medium. */
const NEWS_5 = { ...NORMAL, rr: 22, o2: true, hr: 95 } as const;
/** NEWS2 7 (RR 25, oxygen, pulse 115): high. */
const NEWS_7 = { ...NORMAL, rr: 25, o2: true, hr: 115 } as const;

const view = (over: Partial<AlarmView>): AlarmView => ({
  id: 'x',
  bedKey: '4A/1',
  kind: 'physiological',
  condition: 'news2',
  priority: 'high',
  state: 'active',
  message: 'NEWS2 7',
  raisedAt: new Date(T0).toISOString(),
  acknowledged: null,
  pausedUntil: null,
  escalationLevel: 0,
  currentSeverity: 'high',
  ...over,
});

describe('the latched priority beside the score now', () => {
  it('the engine keeps the priority reached and reports the condition now', () => {
    const engine = new AlarmEngine();
    engine.ingest('b1', NEWS_7, T0);
    engine.ingest('b1', NEWS_5, T0 + 5_000);
    const [alarm] = engine.active();
    expect(alarm).toMatchObject({ priority: 'high', currentSeverity: 'medium', state: 'active' });
    expect(alarm!.message).toMatch(/^NEWS2 5: medium risk/);
    engine.ingest('b1', NORMAL, T0 + 10_000);
    expect(engine.active()[0]?.currentSeverity).toBeNull();
  });

  it('says "latched high · now medium", not HIGH beside a medium score', () => {
    expect(priorityLabel(view({ currentSeverity: 'medium' }))).toBe('latched high · now medium');
    expect(priorityLabel(view({ currentSeverity: 'high' }))).toBe('high');
    expect(priorityLabel(view({ state: 'latched', currentSeverity: null }))).toBe('latched high · condition over');
    expect(priorityLabel(view({ priority: 'medium', currentSeverity: 'high' }))).toBe('medium');
  });
});

describe('one definition of each counter', () => {
  const now = T0 + 60_000;
  const alarms = [
    view({ id: 'a' }),
    view({ id: 'b', acknowledged: { by: 'N', reason: 'seen', at: new Date(T0).toISOString() } }),
    view({ id: 'c', priority: 'medium' }),
    view({ id: 'd', pausedUntil: new Date(now + 30_000).toISOString() }),
    view({ id: 'e', state: 'latched', currentSeverity: null }),
  ];
  it('active counts every alarm not cleared; unacknowledged those nobody acknowledged; high and paused are parts of unacknowledged', () => {
    expect(alarmCounts(alarms, now)).toEqual({ active: 5, unacknowledged: 4, highUnacknowledged: 3, pausedUnacknowledged: 1 });
  });
  it('a pause that ended is not counted as paused', () => {
    expect(alarmCounts(alarms, now + 31_000).pausedUnacknowledged).toBe(0);
  });
});
