/**
 * Availability templates (crm/availability.ts): wall-clock hours in the resource's zone, expanded to
 * UTC. Expected instants come from the published daylight-saving rules, not from the code: the UK
 * changes from GMT (UTC+0) to BST (UTC+1) at 01:00 UTC on the last Sunday of March (28 March 2027) and
 * back at 01:00 UTC on the last Sunday of October (31 October 2027); the US Eastern zone goes from EST
 * (UTC−5) to EDT (UTC−4) on the second Sunday of March (14 March 2027).
 */
import { describe, expect, it } from 'vitest';
import { covers, expandTemplate, intersect, normalise, subtract, templatesOverlap, type AvailabilityTemplate } from '../../src/main/crm/availability.js';

const weekdays: AvailabilityTemplate = { rrule: 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR', startTime: '09:00', endTime: '17:00', validFrom: '2027-01-04', validUntil: null };
const iso = (ms: number) => new Date(ms).toISOString();

describe('expandTemplate', () => {
  it('keeps 09:00–17:00 on the clinic clock across the UK spring change: 09:00Z the week before, 08:00Z the week after', () => {
    const week = expandTemplate(weekdays, 'Europe/London', Date.parse('2027-03-22T00:00:00Z'), Date.parse('2027-04-03T00:00:00Z'));
    expect(week.map((w) => `${iso(w.start)} ${iso(w.end)}`)).toEqual([
      '2027-03-22T09:00:00.000Z 2027-03-22T17:00:00.000Z',
      '2027-03-23T09:00:00.000Z 2027-03-23T17:00:00.000Z',
      '2027-03-24T09:00:00.000Z 2027-03-24T17:00:00.000Z',
      '2027-03-25T09:00:00.000Z 2027-03-25T17:00:00.000Z',
      '2027-03-26T09:00:00.000Z 2027-03-26T17:00:00.000Z',
      '2027-03-29T08:00:00.000Z 2027-03-29T16:00:00.000Z',
      '2027-03-30T08:00:00.000Z 2027-03-30T16:00:00.000Z',
      '2027-03-31T08:00:00.000Z 2027-03-31T16:00:00.000Z',
      '2027-04-01T08:00:00.000Z 2027-04-01T16:00:00.000Z',
      '2027-04-02T08:00:00.000Z 2027-04-02T16:00:00.000Z',
    ]);
  });

  it('and back in the autumn; New York changes on its own date', () => {
    const autumn = expandTemplate(weekdays, 'Europe/London', Date.parse('2027-10-29T00:00:00Z'), Date.parse('2027-11-02T00:00:00Z'));
    expect(autumn.map((w) => iso(w.start))).toEqual(['2027-10-29T08:00:00.000Z', '2027-11-01T09:00:00.000Z']);
    const ny = expandTemplate(weekdays, 'America/New_York', Date.parse('2027-03-12T00:00:00Z'), Date.parse('2027-03-16T00:00:00Z'));
    expect(ny.map((w) => iso(w.start))).toEqual(['2027-03-12T14:00:00.000Z', '2027-03-15T13:00:00.000Z']);
  });

  it('a day inside a range of days only; a template past its last day opens no more', () => {
    const ended = { ...weekdays, validFrom: '2027-03-01', validUntil: '2027-03-03' };
    expect(expandTemplate(ended, 'Europe/London', Date.parse('2027-02-25T00:00:00Z'), Date.parse('2027-03-10T00:00:00Z')).map((w) => iso(w.start))).toEqual([
      '2027-03-01T09:00:00.000Z',
      '2027-03-02T09:00:00.000Z',
      '2027-03-03T09:00:00.000Z',
    ]);
  });

  it('an opening inside the spring-forward gap (01:30 does not exist in London on 28 March 2027) moves forward an hour', () => {
    const night = { rrule: 'FREQ=DAILY', startTime: '01:30', endTime: '03:00', validFrom: '2027-03-27', validUntil: '2027-03-28' };
    const [before, gap] = expandTemplate(night, 'Europe/London', Date.parse('2027-03-26T00:00:00Z'), Date.parse('2027-03-29T00:00:00Z'));
    expect(iso(before!.start)).toBe('2027-03-27T01:30:00.000Z');
    expect(iso(gap!.start)).toBe('2027-03-28T01:30:00.000Z'); // 02:30 BST
    expect(iso(gap!.end)).toBe('2027-03-28T02:00:00.000Z'); // 03:00 BST
  });

  it('refuses rules that are not templates of whole days, with the reason', () => {
    const bad = (changes: Partial<AvailabilityTemplate>) => () => expandTemplate({ ...weekdays, ...changes }, 'Europe/London', 0, 1);
    expect(bad({ rrule: 'FREQ=HOURLY' })).toThrow(/repeats by days/);
    expect(bad({ rrule: 'FREQ=WEEKLY;BYHOUR=9' })).toThrow(/may not set BYHOUR/);
    expect(bad({ rrule: 'FREQ=WEEKLY;UNTIL=20270101T000000Z' })).toThrow(/may not set UNTIL/);
    expect(bad({ rrule: 'BYDAY=MO' })).toThrow(/needs FREQ/);
    expect(bad({ rrule: 'hello' })).toThrow(/recurrence rule/);
    expect(bad({ startTime: '17:00', endTime: '09:00' })).toThrow(/must be after the opening time/);
    expect(bad({ startTime: '25:00' })).toThrow(/HH:MM/);
    expect(bad({ validFrom: '2027-02-30' })).toThrow(/YYYY-MM-DD/);
    expect(bad({ validUntil: '2026-01-01' })).toThrow(/before the first day/);
  });
});

describe('templatesOverlap', () => {
  it('sees a clash on a shared day and none on separate days or hours', () => {
    expect(templatesOverlap(weekdays, { rrule: 'FREQ=WEEKLY;BYDAY=WE', startTime: '16:00', endTime: '18:00', validFrom: '2027-06-01', validUntil: null }, 'Europe/London')).toBe(true);
    expect(templatesOverlap(weekdays, { rrule: 'FREQ=WEEKLY;BYDAY=SA,SU', startTime: '09:00', endTime: '17:00', validFrom: '2027-01-01', validUntil: null }, 'Europe/London')).toBe(false);
    expect(templatesOverlap(weekdays, { rrule: 'FREQ=DAILY', startTime: '17:00', endTime: '20:00', validFrom: '2027-01-01', validUntil: null }, 'Europe/London')).toBe(false);
    // The same hours after the first template ended.
    expect(templatesOverlap({ ...weekdays, validUntil: '2027-02-26' }, { ...weekdays, validFrom: '2027-03-01' }, 'Europe/London')).toBe(false);
  });
});

describe('interval lists', () => {
  it('merge, subtract, intersect and cover', () => {
    const open = normalise([{ start: 10, end: 20 }, { start: 0, end: 5 }, { start: 18, end: 30 }]);
    expect(open).toEqual([{ start: 0, end: 5 }, { start: 10, end: 30 }]);
    const free = subtract(open, [{ start: 3, end: 12 }, { start: 15, end: 16 }]);
    expect(free).toEqual([{ start: 0, end: 3 }, { start: 12, end: 15 }, { start: 16, end: 30 }]);
    expect(intersect(free, [{ start: 2, end: 20 }])).toEqual([{ start: 2, end: 3 }, { start: 12, end: 15 }, { start: 16, end: 20 }]);
    expect(covers(free, 16, 30)).toBe(true);
    expect(covers(free, 14, 17)).toBe(false);
    expect(covers(free, 30, 31)).toBe(false);
  });
});
