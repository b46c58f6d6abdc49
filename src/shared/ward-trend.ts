/**
 * A bed's hour of trend as `ward.update` carries it: the whole hour only when more than the current
 * minute's point changed since the previous update (the minute moved on, an earlier minute's reading
 * arrived, a new patient's fresh trend); otherwise that point alone, `trendNow`. An hour of four vitals
 * is 240 numbers a bed: at 2,000 beds a second the full hours were 2.5 MB of JSON per screen per second,
 * two thirds of the update, for points that had not changed (issue 8 item 11).
 */
import type { BedUpdate, BedView } from './ipc.js';

/** Points per trend: one per minute of the last hour. */
export const TREND_MINUTES = 60;
export const TREND_VITALS = ['hr', 'spo2', 'rr', 'sbp'] as const;
export type TrendVital = (typeof TREND_VITALS)[number];

/**
 * The board's bed after an update. `complete` is false when the update's point cannot be placed (no
 * earlier view of the bed, or one of another minute: updates were missed, e.g. while the screen was
 * locked): the trend then holds that point alone and the caller fetches the board again.
 */
export function mergeBedUpdate(prev: BedView | undefined, update: BedUpdate): { bed: BedView; complete: boolean } {
  const { trend, trendNow, ...rest } = update;
  if (trend) return { bed: { ...rest, trend }, complete: true };
  if (prev && prev.trendMinute === update.trendMinute) {
    const last = prev.trend.hr.length - 1;
    const unchanged = TREND_VITALS.every((v) => prev.trend[v][last] === trendNow[v]);
    // The same object when nothing moved: the tile's sparklines redraw only when their points change.
    return { bed: { ...rest, trend: unchanged ? prev.trend : withLast(prev.trend, trendNow) }, complete: true };
  }
  const empty = (): (number | null)[] => Array<number | null>(TREND_MINUTES).fill(null);
  return { bed: { ...rest, trend: withLast({ hr: empty(), spo2: empty(), rr: empty(), sbp: empty() }, trendNow) }, complete: false };
}

function withLast(trend: BedView['trend'], now: BedUpdate['trendNow']): BedView['trend'] {
  const next = { ...trend };
  for (const v of TREND_VITALS) {
    const series = [...trend[v]];
    series[series.length - 1] = now[v];
    next[v] = series;
  }
  return next;
}
