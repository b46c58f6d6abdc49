/** NEWS2 (RCP 2017): every band edge on both sides, the aggregate triggers, incomplete sets, rounding. */
import { describe, expect, it } from 'vitest';
import { NEWS2_PARAMETERS, roundHalfUp, scoreNews2, type Acvpu, type News2Observations } from '../../src/main/vitals/news2.js';

/** A full set of observations that scores 0 everywhere. */
const NORMAL = { rr: 16, spo2: 98, o2: false, sbp: 120, hr: 70, acvpu: 'A', tempC: 37.0 } as const satisfies News2Observations;
const s1 = (obs: News2Observations) => scoreNews2(obs, { spo2Scale: 1 });
const s2 = (obs: News2Observations) => scoreNews2(obs, { spo2Scale: 2 });

describe('NEWS2 band edges (each edge from both sides)', () => {
  it.each([
    [8, 3], [9, 1],
    [11, 1], [12, 0],
    [20, 0], [21, 2],
    [24, 2], [25, 3],
  ])('respiration rate %d /min scores %d', (rr, score) => {
    expect(s1({ rr }).subScores.rr).toBe(score);
  });

  it.each([
    [91, 3], [92, 2],
    [93, 2], [94, 1],
    [95, 1], [96, 0],
  ])('SpO2 scale 1: %d %% scores %d', (spo2, score) => {
    expect(s1({ spo2 }).subScores.spo2).toBe(score);
    // Scale 1 does not depend on air/oxygen for the SpO2 row.
    expect(s1({ spo2, o2: true }).subScores.spo2).toBe(score);
  });

  it.each([
    [83, 3], [84, 2],
    [85, 2], [86, 1],
    [87, 1], [88, 0],
    [92, 0], [93, 0],
    [94, 0], [95, 0],
    [96, 0], [97, 0],
  ])('SpO2 scale 2 on air: %d %% scores %d', (spo2, score) => {
    expect(s2({ spo2, o2: false }).subScores.spo2).toBe(score);
  });

  it.each([
    [83, 3], [84, 2],
    [85, 2], [86, 1],
    [87, 1], [88, 0],
    [92, 0], [93, 1],
    [94, 1], [95, 2],
    [96, 2], [97, 3],
  ])('SpO2 scale 2 on oxygen: %d %% scores %d', (spo2, score) => {
    expect(s2({ spo2, o2: true }).subScores.spo2).toBe(score);
  });

  it.each([
    [false, 0],
    [true, 2],
  ])('air or oxygen: on oxygen %s scores %d', (o2, score) => {
    expect(s1({ o2 }).subScores.o2).toBe(score);
  });

  it.each([
    [90, 3], [91, 2],
    [100, 2], [101, 1],
    [110, 1], [111, 0],
    [219, 0], [220, 3],
  ])('systolic BP %d mmHg scores %d', (sbp, score) => {
    expect(s1({ sbp }).subScores.sbp).toBe(score);
  });

  it.each([
    [40, 3], [41, 1],
    [50, 1], [51, 0],
    [90, 0], [91, 1],
    [110, 1], [111, 2],
    [130, 2], [131, 3],
  ])('pulse %d /min scores %d', (hr, score) => {
    expect(s1({ hr }).subScores.hr).toBe(score);
  });

  it.each([
    ['A', 0],
    ['C', 3],
    ['V', 3],
    ['P', 3],
    ['U', 3],
  ] as [Acvpu, number][])('consciousness %s scores %d', (acvpu, score) => {
    expect(s1({ acvpu }).subScores.acvpu).toBe(score);
  });

  it.each([
    [35.0, 3], [35.1, 1],
    [36.0, 1], [36.1, 0],
    [38.0, 0], [38.1, 1],
    [39.0, 1], [39.1, 2],
  ])('temperature %d °C scores %d', (tempC, score) => {
    expect(s1({ tempC }).subScores.tempC).toBe(score);
  });
});

describe('NEWS2 chart extremes', () => {
  it.each([
    [{ rr: 0 }, 'rr', 3],
    [{ rr: 60 }, 'rr', 3],
    [{ spo2: 0 }, 'spo2', 3],
    [{ spo2: 100 }, 'spo2', 0],
    [{ sbp: 0 }, 'sbp', 3],
    [{ sbp: 300 }, 'sbp', 3],
    [{ hr: 0 }, 'hr', 3],
    [{ hr: 250 }, 'hr', 3],
    [{ tempC: 25 }, 'tempC', 3],
    [{ tempC: 42 }, 'tempC', 2],
  ] as [News2Observations, keyof News2Observations, number][])('%o: %s scores %d', (obs, param, score) => {
    expect(s1(obs).subScores[param]).toBe(score);
  });
});

describe('NEWS2 aggregate, risk and response', () => {
  it.each([
    ['all normal', {}, 0, false, 'low', '0', 'Minimum 12-hourly', 12],
    ['pulse 95', { hr: 95 }, 1, false, 'low', '1-4', 'Minimum 4–6-hourly', 4],
    ['RR 22 + pulse 115', { rr: 22, hr: 115 }, 4, false, 'low', '1-4', 'Minimum 4–6-hourly', 4],
    ['new confusion only', { acvpu: 'C' }, 3, true, 'low-medium', '3-in-single', 'Minimum 1-hourly', 1],
    ['SBP 90 + pulse 95', { sbp: 90, hr: 95 }, 4, true, 'low-medium', '3-in-single', 'Minimum 1-hourly', 1],
    ['RR 22 + oxygen + pulse 95', { rr: 22, o2: true, hr: 95 }, 5, false, 'medium', '5-6', 'Minimum 1-hourly', 1],
    ['RR 25 + pulse 115 + 38.5 °C', { rr: 25, hr: 115, tempC: 38.5 }, 6, true, 'medium', '5-6', 'Minimum 1-hourly', 1],
    ['RR 25 + oxygen + pulse 115', { rr: 25, o2: true, hr: 115 }, 7, true, 'high', '7+', 'Continuous monitoring of vital signs', 0],
    ['every parameter at its worst', { rr: 30, spo2: 85, o2: true, sbp: 80, hr: 140, acvpu: 'U', tempC: 34 }, 20, true, 'high', '7+', 'Continuous monitoring of vital signs', 0],
  ] as [string, News2Observations, number, boolean, string, string, string, number][])(
    '%s: aggregate %d, single 3 %s, risk %s, trigger %s',
    (_name, change, aggregate, single3, risk, trigger, monitoring, hours) => {
      const r = s1({ ...NORMAL, ...change });
      expect(r.complete).toBe(true);
      expect(r.missing).toEqual([]);
      expect(r.aggregate).toBe(aggregate);
      expect(r.anySingleThree).toBe(single3);
      expect(r.risk).toBe(risk);
      expect(r.response).toMatchObject({ trigger, risk, monitoring, maxIntervalHours: hours });
    },
  );

  it.each([
    ['0', /routine NEWS monitoring/],
    ['1-4', /registered nurse, who must assess the patient/],
    ['3-in-single', /inform the medical team caring for the patient, who will review/],
    ['5-6', /urgent assessment by a clinician or team with core competencies/],
    ['7+', /Emergency assessment by a team with critical-care competencies/],
  ])('trigger %s carries the RCP clinical response', (trigger, text) => {
    const change: Record<string, News2Observations> = {
      '0': {},
      '1-4': { hr: 95 },
      '3-in-single': { acvpu: 'V' },
      '5-6': { rr: 22, o2: true, hr: 95 },
      '7+': { rr: 25, o2: true, hr: 115 },
    };
    const r = s1({ ...NORMAL, ...change[trigger] });
    expect(r.response.trigger).toBe(trigger);
    expect(r.response.clinicalResponse.join('\n')).toMatch(text);
  });

  it.each([
    ['3-in-single', /Urgent ward-based response/],
    ['5-6', /Key threshold for urgent response/],
    ['7+', /emergency response/],
  ])('trigger %s has the RCP urgency', (trigger, text) => {
    const change: Record<string, News2Observations> = { '3-in-single': { acvpu: 'P' }, '5-6': { rr: 22, o2: true, hr: 95 }, '7+': { rr: 25, o2: true, hr: 115 } };
    expect(s1({ ...NORMAL, ...change[trigger] }).response.urgency).toMatch(text);
  });
});

describe('NEWS2 incomplete observations', () => {
  it('scores nothing and lists all seven, in chart order, when nothing is given', () => {
    const r = s1({});
    expect(r).toMatchObject({ aggregate: 0, complete: false, anySingleThree: false, missing: [...NEWS2_PARAMETERS] });
    expect(Object.values(r.subScores).every((s) => s === null)).toBe(true);
  });

  it('scores what is present and reports the rest as missing', () => {
    const r = s1({ rr: 25, hr: 115 });
    expect(r.aggregate).toBe(5);
    expect(r.complete).toBe(false);
    expect(r.missing).toEqual(['spo2', 'o2', 'sbp', 'acvpu', 'tempC']);
    expect(r.subScores).toMatchObject({ rr: 3, hr: 2, spo2: null, o2: null });
    expect(r.risk).toBe('medium');
  });

  it('treats null as missing', () => {
    const r = s1({ ...NORMAL, sbp: null, acvpu: null });
    expect(r.missing).toEqual(['sbp', 'acvpu']);
    expect(r.complete).toBe(false);
  });

  it('cannot score SpO2 ≥ 93 on scale 2 without knowing air or oxygen', () => {
    const r = s2({ ...NORMAL, spo2: 95, o2: undefined });
    expect(r.subScores.spo2).toBeNull();
    expect(r.missing).toEqual(['spo2', 'o2']);
  });

  it('scores SpO2 ≤ 92 on scale 2 without air or oxygen', () => {
    const r = s2({ ...NORMAL, spo2: 85, o2: undefined });
    expect(r.subScores.spo2).toBe(2);
    expect(r.missing).toEqual(['o2']);
  });

  it('is complete with all seven', () => {
    expect(s2({ ...NORMAL, spo2: 90 })).toMatchObject({ complete: true, missing: [], aggregate: 0, spo2Scale: 2 });
  });
});

describe('NEWS2 rounding to the chart resolution (round half up)', () => {
  it.each([
    ['rr', 20.49, 20, 0],
    ['rr', 20.5, 21, 2],
    ['hr', 90.4, 90, 0],
    ['hr', 90.5, 91, 1],
    ['sbp', 100.4, 100, 2],
    ['sbp', 100.5, 101, 1],
    ['sbp', 90.5, 91, 2],
    ['spo2', 93.49, 93, 2],
    ['spo2', 93.5, 94, 1],
    ['tempC', 35.04, 35.0, 3],
    ['tempC', 35.05, 35.1, 1],
    ['tempC', 36.05, 36.1, 0],
    ['tempC', 38.05, 38.1, 1],
    ['tempC', 39.05, 39.1, 2],
  ] as ['rr' | 'hr' | 'sbp' | 'spo2' | 'tempC', number, number, number][])('%s %d is banded as %d and scores %d', (param, value, rounded, score) => {
    const r = s1({ [param]: value });
    expect(r.rounded[param]).toBe(rounded);
    expect(r.subScores[param]).toBe(score);
  });

  it('rounds SpO2 on scale 2 before the air/oxygen split (92.5 on oxygen is 93)', () => {
    expect(s2({ spo2: 92.5, o2: true }).subScores.spo2).toBe(1);
    expect(s2({ spo2: 92.4, o2: true }).subScores.spo2).toBe(0);
  });

  it.each([
    [0.5, 0, 1],
    [1.5, 0, 2],
    [2.4999, 0, 2],
    [35.05, 1, 35.1],
    [35.15, 1, 35.2],
    [38.25, 1, 38.3],
    [-0.5, 0, 0],
  ])('roundHalfUp(%d, %d) = %d', (value, decimals, expected) => {
    expect(roundHalfUp(value, decimals)).toBe(expected);
  });
});

describe('NEWS2 input checks', () => {
  it.each([
    [{ hr: Number.NaN }],
    [{ rr: Number.POSITIVE_INFINITY }],
    [{ spo2: 101 }],
    [{ sbp: -1 }],
    [{ tempC: 50 }],
    [{ acvpu: 'X' as Acvpu }],
  ])('rejects %o', (obs) => {
    expect(() => s1(obs)).toThrow(RangeError);
  });

  it('rejects an unknown SpO2 scale', () => {
    expect(() => scoreNews2({}, { spo2Scale: 3 as 1 })).toThrow(RangeError);
  });
});
