/**
 * When a bookable resource is open: its recurring availability templates expanded into UTC intervals,
 * and the interval arithmetic the slot search and the booking checks share.
 *
 * A template is an RFC 5545 RRULE over *local dates* (rrule, the well-kept recurrence library; its
 * dates are used as floating calendar days) plus a wall-clock opening time in the resource's IANA time
 * zone. Each occurrence's opening is turned into UTC with luxon for that day, so "Mondays 09:00–17:00
 * Europe/London" is 09:00 UTC in winter and 08:00 UTC in summer: the grid stays put on the clinic's
 * clock across a daylight-saving change. A wall time that does not exist on that day (inside a
 * spring-forward gap) moves forward as luxon does; one that exists twice takes the earlier offset.
 */
import { createRequire } from 'node:module';
import { DateTime } from 'luxon';
import type { Options as RRuleOptions, RRule as RRuleClass } from 'rrule';
import { NwError } from '../../shared/errors.js';

// rrule is CommonJS without an "exports" map: Node's ESM loader cannot see its named exports (the built
// host and the test drivers load it unbundled), so it is required.
const { RRule } = createRequire(import.meta.url)('rrule') as { RRule: typeof RRuleClass };

/** A half-open interval [start, end) in ms since the epoch (UTC). */
export interface Interval {
  start: number;
  end: number;
}

export interface AvailabilityTemplate {
  rrule: string;
  /** 'HH:MM' local. */
  startTime: string;
  /** 'HH:MM' local, after startTime (a template does not run past midnight). */
  endTime: string;
  /** 'YYYY-MM-DD' local: the first day the template applies. */
  validFrom: string;
  /** 'YYYY-MM-DD' local, inclusive; null: open-ended. */
  validUntil: string | null;
}

const DAY_MS = 86_400_000;
const LOCAL_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const WALL_TIME = /^([01]\d|2[0-3]):([0-5]\d)$/;
/** Parts of an RRULE that would put times or a start of their own into a template of whole days. */
const NOT_IN_A_TEMPLATE: (keyof RRuleOptions)[] = ['byhour', 'byminute', 'bysecond', 'dtstart', 'tzid', 'until'];

export function assertTimeZone(zone: string): void {
  if (!DateTime.now().setZone(zone).isValid) throw new NwError('bad-request', `Unknown time zone "${zone}": use an IANA name such as Europe/London.`);
}

function localDate(text: string, what: string): { year: number; month: number; day: number } {
  const m = LOCAL_DATE.exec(text);
  const parsed = m ? DateTime.fromObject({ year: Number(m[1]), month: Number(m[2]), day: Number(m[3]) }, { zone: 'UTC' }) : null;
  if (!m || !parsed?.isValid) throw new NwError('bad-request', `${what} must be a date as YYYY-MM-DD, not "${text}".`);
  return { year: parsed.year, month: parsed.month, day: parsed.day };
}

function wallTime(text: string, what: string): { hour: number; minute: number } {
  const m = WALL_TIME.exec(text);
  if (!m) throw new NwError('bad-request', `${what} must be a time as HH:MM (24-hour), not "${text}".`);
  return { hour: Number(m[1]), minute: Number(m[2]) };
}

/** Checks a template (a clear error for each wrong part) and returns its recurrence. */
export function parseTemplate(template: AvailabilityTemplate): { rule: RRuleClass; open: { hour: number; minute: number }; close: { hour: number; minute: number } } {
  const open = wallTime(template.startTime, 'The opening time');
  const close = wallTime(template.endTime, 'The closing time');
  if (close.hour * 60 + close.minute <= open.hour * 60 + open.minute) throw new NwError('bad-request', `The closing time ${template.endTime} must be after the opening time ${template.startTime} (a template does not run past midnight).`);
  const from = localDate(template.validFrom, 'The first day');
  const until = template.validUntil === null ? null : localDate(template.validUntil, 'The last day');
  if (until && template.validUntil! < template.validFrom) throw new NwError('bad-request', `The last day ${template.validUntil} is before the first day ${template.validFrom}.`);
  let options: Partial<RRuleOptions>;
  try {
    options = RRule.parseString(template.rrule.replace(/^RRULE:/i, ''));
  } catch (error) {
    throw new NwError('bad-request', `Not a recurrence rule (RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=MO,WE,FR): ${(error as Error).message}`);
  }
  if (options.freq === undefined || options.freq === null) throw new NwError('bad-request', 'The recurrence rule needs FREQ (e.g. FREQ=WEEKLY;BYDAY=MO,WE,FR).');
  if (options.freq > RRule.DAILY) throw new NwError('bad-request', 'Availability repeats by days (FREQ=DAILY, WEEKLY, MONTHLY or YEARLY): the hours are the template\'s opening and closing times.');
  const extra = NOT_IN_A_TEMPLATE.filter((k) => options[k] !== undefined && options[k] !== null);
  if (extra.length) throw new NwError('bad-request', `The recurrence rule may not set ${extra.map((k) => k.toUpperCase()).join(', ')}: the template's first and last day and its hours do.`);
  const rule = new RRule({
    ...options,
    dtstart: new Date(Date.UTC(from.year, from.month - 1, from.day)),
    ...(until ? { until: new Date(Date.UTC(until.year, until.month - 1, until.day, 23, 59, 59)) } : {}),
  });
  return { rule, open, close };
}

/**
 * A template's openings in UTC from its first day, computed once and kept (per template and zone) up to
 * a horizon that grows when a later range is asked for. rrule counts every occurrence from the first
 * day, so expanding a range afresh cost more the older the template (0.7 ms for a 3-day range of a
 * template a few months old, 4.2 ms for one six years old: bench/crm-schedule); kept, a range is a
 * binary search.
 */
interface Expansion {
  until: number;
  openings: Interval[];
}
const expansions = new Map<string, Expansion>();
const MAX_EXPANSIONS = 5_000;
/** How far past the asked range an expansion reaches (the next searches are usually nearby). */
const AHEAD_MS = 400 * DAY_MS;

function expansionOf(template: AvailabilityTemplate, timeZone: string, toMs: number): Interval[] {
  const key = JSON.stringify([template.rrule, template.startTime, template.endTime, template.validFrom, template.validUntil, timeZone]);
  const known = expansions.get(key);
  if (known && known.until >= toMs) return known.openings;
  const { rule, open, close } = parseTemplate(template);
  const until = toMs + AHEAD_MS;
  const last = DateTime.fromMillis(until + DAY_MS, { zone: timeZone }).startOf('day');
  const days = rule.between(rule.options.dtstart, new Date(Date.UTC(last.year, last.month - 1, last.day)), true);
  const openings: Interval[] = [];
  for (const d of days) {
    const date = { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
    const start = DateTime.fromObject({ ...date, ...open }, { zone: timeZone }).toMillis();
    const end = DateTime.fromObject({ ...date, ...close }, { zone: timeZone }).toMillis();
    if (end > start) openings.push({ start, end });
  }
  if (expansions.size >= MAX_EXPANSIONS) expansions.delete(expansions.keys().next().value as string);
  expansions.set(key, { until, openings });
  return openings;
}

/** The template's openings that overlap [fromMs, toMs), in UTC, in order. */
export function expandTemplate(template: AvailabilityTemplate, timeZone: string, fromMs: number, toMs: number): Interval[] {
  const all = expansionOf(template, timeZone, toMs);
  // The first opening that ends after fromMs (openings are in order and do not overlap).
  let lo = 0;
  let hi = all.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (all[mid]!.end <= fromMs) lo = mid + 1;
    else hi = mid;
  }
  const out: Interval[] = [];
  for (let i = lo; i < all.length && all[i]!.start < toMs; i++) out.push({ start: all[i]!.start, end: all[i]!.end });
  return out;
}

/**
 * Whether two templates of one resource ever open at the same time: both expanded over the days they
 * share (at most 400 of them from the later first day: rules of whole days repeat within a year, but
 * for a yearly rule on 29 February a clash a leap year away is not seen).
 */
export function templatesOverlap(a: AvailabilityTemplate, b: AvailabilityTemplate, timeZone: string): boolean {
  const fromDay = a.validFrom > b.validFrom ? a.validFrom : b.validFrom;
  const untils = [a.validUntil, b.validUntil].filter((u): u is string => u !== null).sort();
  const from = DateTime.fromISO(fromDay, { zone: timeZone }).toMillis();
  const horizon = from + 400 * DAY_MS;
  const to = untils.length ? Math.min(horizon, DateTime.fromISO(untils[0]!, { zone: timeZone }).plus({ days: 1 }).toMillis()) : horizon;
  if (to <= from) return false;
  return intersect(expandTemplate(a, timeZone, from, to), expandTemplate(b, timeZone, from, to)).length > 0;
}

// ---------------------------------------------------------------------------------------------
// Interval lists (sorted by start, not overlapping)
// ---------------------------------------------------------------------------------------------

/** Sorts and merges overlapping or touching intervals. */
export function normalise(intervals: readonly Interval[]): Interval[] {
  const sorted = intervals.filter((i) => i.end > i.start).sort((x, y) => x.start - y.start);
  const out: Interval[] = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && i.start <= last.end) last.end = Math.max(last.end, i.end);
    else out.push({ start: i.start, end: i.end });
  }
  return out;
}

/** `free` minus `taken` (both normalised). */
export function subtract(free: readonly Interval[], taken: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let t = 0;
  for (const f of free) {
    let start = f.start;
    while (t < taken.length && taken[t]!.end <= start) t++;
    let k = t;
    while (k < taken.length && taken[k]!.start < f.end) {
      if (taken[k]!.start > start) out.push({ start, end: taken[k]!.start });
      start = Math.max(start, taken[k]!.end);
      k++;
    }
    if (start < f.end) out.push({ start, end: f.end });
  }
  return out;
}

/** Time in both lists (both normalised). */
export function intersect(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const start = Math.max(a[i]!.start, b[j]!.start);
    const end = Math.min(a[i]!.end, b[j]!.end);
    if (start < end) out.push({ start, end });
    if (a[i]!.end < b[j]!.end) i++;
    else j++;
  }
  return out;
}

/** Whether [start, end) lies wholly inside one interval of the normalised list (binary search). */
export function covers(list: readonly Interval[], start: number, end: number): boolean {
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const i = list[mid]!;
    if (i.end <= start) lo = mid + 1;
    else if (i.start > start) hi = mid - 1;
    else return end <= i.end;
  }
  return false;
}
