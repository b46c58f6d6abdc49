/**
 * A screen's copy of a bed's hour of trend from `ward.update` (shared/ward-trend.ts): the newest point
 * alone replaces the last point of the same minute; anything it cannot place asks for the board.
 */
import { describe, expect, it } from 'vitest';
import type { BedUpdate, BedView } from '../../src/shared/ipc.js';
import { mergeBedUpdate } from '../../src/shared/ward-trend.js';

const hour = (last: number | null): (number | null)[] => [...Array<number | null>(59).fill(null), last];
const board: BedView = {
  key: 'A/1',
  ward: 'A',
  bed: '1',
  patientRef: null,
  latest: null,
  news2: null,
  trend: { hr: hour(70), spo2: hour(97), rr: hour(14), sbp: hour(120) },
  trendMinute: 29_000_000,
  technical: [],
  spo2Scale: 1,
  spo2ScaleSetBy: null,
  admission: null,
};
const update = (changes: Partial<BedUpdate>): BedUpdate => ({ ...board, trend: null, trendNow: { hr: 70, spo2: 97, rr: 14, sbp: 120 }, ...changes });

describe('mergeBedUpdate', () => {
  it('puts the newest point in the last place of the same minute, and keeps the trend object when no point moved', () => {
    const moved = mergeBedUpdate(board, update({ trendNow: { hr: 88, spo2: 95, rr: 14, sbp: null } }));
    expect(moved.complete).toBe(true);
    expect(moved.bed.trend.hr.slice(-2)).toEqual([null, 88]);
    expect(moved.bed.trend.spo2.at(-1)).toBe(95);
    expect(moved.bed.trend.sbp.at(-1)).toBeNull();
    expect(moved.bed.trend.hr).toHaveLength(60);
    expect(board.trend.hr.at(-1)).toBe(70); // the previous view is not changed
    const still = mergeBedUpdate(board, update({}));
    expect(still.bed.trend).toBe(board.trend);
    expect(still.bed).not.toHaveProperty('trendNow');
  });

  it('takes a whole trend as it comes', () => {
    const whole = { hr: hour(1), spo2: hour(2), rr: hour(3), sbp: hour(4) };
    const next = mergeBedUpdate(board, update({ trend: whole, trendMinute: board.trendMinute + 1 }));
    expect(next).toMatchObject({ complete: true, bed: { trend: whole, trendMinute: board.trendMinute + 1 } });
  });

  it('a point of another minute than the screen has, or of a bed it never saw: that point alone, and incomplete (fetch the board)', () => {
    const later = mergeBedUpdate(board, update({ trendMinute: board.trendMinute + 2, trendNow: { hr: 90, spo2: 96, rr: 18, sbp: 110 } }));
    expect(later.complete).toBe(false);
    expect(later.bed.trend.hr).toEqual(hour(90));
    expect(later.bed.trendMinute).toBe(board.trendMinute + 2);
    expect(mergeBedUpdate(undefined, update({})).complete).toBe(false);
  });
});
