/**
 * National Early Warning Score 2 (NEWS2), Royal College of Physicians, December 2017.
 * Pure: no I/O, no clock. Bands are exactly those of RCP Chart 1 (scoring), risk and triggers
 * of Chart 3 (thresholds and triggers) and responses of Chart 4 (clinical response).
 *
 * Resolution and rounding. The chart is written on whole numbers for respiration rate, SpO2,
 * systolic pressure and pulse, and on one decimal for temperature, so a measurement between two
 * chart values (RR 20.5, HR 90.4, SBP 100.5, SpO2 93.5, temperature 35.05) has no band of its own.
 * Every such value is first rounded to the chart's resolution with ROUND HALF UP (towards +∞ at
 * exactly .5: RR 20.5 → 21, HR 90.4 → 90, SBP 100.5 → 101, SpO2 93.5 → 94, 35.05 °C → 35.1 °C)
 * and only then banded, so the bands leave no gaps. Rounding is done on the decimal value as
 * written (35.05 is 35.05, not the binary 35.04999…): see `roundHalfUp`. The values used for
 * banding are returned in `rounded`.
 *
 * Missing parameters. The score is computed over the parameters present; the others are listed
 * in `missing` (chart order) with a sub-score of null, and `complete` is false. NEWS2 is only a
 * valid aggregate with all 7 parameters; an incomplete aggregate is a LOWER BOUND of the true
 * score (a missing parameter can only add points), and its risk is that of the lower bound.
 * On SpO2 scale 2, a saturation of 93 % or more scores by air/oxygen: without `o2` it cannot be
 * scored, so both `o2` and `spo2` are then listed as missing.
 *
 * Input outside the physically possible ranges of the monitor payload (`PLAUSIBLE`), a
 * non-finite number, or an unknown ACVPU letter is a programming or device error, not a patient
 * state, and throws a RangeError. `null` counts as missing.
 */
import { PLAUSIBLE } from './payload.js';

export type Acvpu = 'A' | 'C' | 'V' | 'P' | 'U';
export const ACVPU_LEVELS: readonly Acvpu[] = ['A', 'C', 'V', 'P', 'U'];

/** The seven NEWS2 parameters, in the order of the RCP chart. */
export type News2Parameter = 'rr' | 'spo2' | 'o2' | 'sbp' | 'hr' | 'acvpu' | 'tempC';
export const NEWS2_PARAMETERS: readonly News2Parameter[] = ['rr', 'spo2', 'o2', 'sbp', 'hr', 'acvpu', 'tempC'];

export interface News2Observations {
  /** respiration rate, /min */
  rr?: number | null;
  /** SpO2, % */
  spo2?: number | null;
  /** on supplemental oxygen (true) or breathing air (false) */
  o2?: boolean | null;
  /** systolic blood pressure, mmHg */
  sbp?: number | null;
  /** pulse, /min */
  hr?: number | null;
  /** consciousness: Alert, new Confusion, Voice, Pain, Unresponsive */
  acvpu?: Acvpu | null;
  /** temperature, °C */
  tempC?: number | null;
}

export interface News2Options {
  /**
   * 1: the default SpO2 scale. 2: only for a patient with hypercapnic respiratory failure whose
   * target range (typically 88–92 %) was prescribed by a competent clinician and recorded.
   */
  spo2Scale: 1 | 2;
}

/** RCP Chart 3 clinical risk; 'low-medium' is the "3 in a single parameter" (red score) trigger. */
export type News2Risk = 'low' | 'low-medium' | 'medium' | 'high';

/** The Chart 4 row that applies. '3-in-single' is an aggregate below 5 with a single parameter at 3. */
export type News2Trigger = '0' | '1-4' | '3-in-single' | '5-6' | '7+';

export interface News2Response {
  trigger: News2Trigger;
  risk: News2Risk;
  /** Chart 3 wording of the response the risk calls for. */
  urgency: string;
  /** Chart 4 frequency of monitoring. */
  monitoring: string;
  /** Longest gap between observations, hours: 12, 4 (the strict end of "4–6-hourly"), 1; 0 = continuous. */
  maxIntervalHours: number;
  /** Chart 4 clinical response. */
  clinicalResponse: readonly string[];
}

export interface News2Result {
  /** Per-parameter score; null when the parameter is missing (or cannot be scored, see `missing`). */
  subScores: Record<News2Parameter, number | null>;
  /** Sum of the sub-scores present; a lower bound of the true score when `complete` is false. */
  aggregate: number;
  /** Some parameter scores 3 (the "red score"). */
  anySingleThree: boolean;
  /** All seven parameters scored: only then is the aggregate a valid NEWS2. */
  complete: boolean;
  /** Parameters not scored, in chart order. */
  missing: News2Parameter[];
  risk: News2Risk;
  response: News2Response;
  spo2Scale: 1 | 2;
  /** The measurements after rounding to the chart's resolution, as banded. */
  rounded: { rr?: number; spo2?: number; sbp?: number; hr?: number; tempC?: number };
}

/**
 * Round half up (towards +∞ at exactly half) to `decimals` places, on the decimal value as
 * written: the product is first cut to 12 significant digits so binary noise (35.05 × 10 =
 * 350.49999999999994) does not push an exact half down.
 */
export function roundHalfUp(value: number, decimals = 0): number {
  const scale = 10 ** decimals;
  const scaled = Number((value * scale).toPrecision(12));
  return Math.floor(scaled + 0.5) / scale;
}

// Each band is [inclusive upper bound, score] on the chart's resolution; the last band is open.
type Bands = readonly (readonly [number, number])[];
const band = (value: number, bands: Bands, above: number): number => {
  for (const [upTo, score] of bands) if (value <= upTo) return score;
  return above;
};

/** RCP Chart 1, respiration rate: ≤8:3, 9–11:1, 12–20:0, 21–24:2, ≥25:3. */
const RR_BANDS: Bands = [[8, 3], [11, 1], [20, 0], [24, 2]];
/** SpO2 scale 1: ≤91:3, 92–93:2, 94–95:1, ≥96:0. */
const SPO2_SCALE1_BANDS: Bands = [[91, 3], [93, 2], [95, 1]];
/** SpO2 scale 2 up to 92 (any air/oxygen): ≤83:3, 84–85:2, 86–87:1, 88–92:0. */
const SPO2_SCALE2_BANDS: Bands = [[83, 3], [85, 2], [87, 1], [92, 0]];
/** SpO2 scale 2 at 93 or more, on oxygen: 93–94:1, 95–96:2, ≥97:3 (on air: 0). */
const SPO2_SCALE2_OXYGEN_BANDS: Bands = [[94, 1], [96, 2]];
/** Systolic BP: ≤90:3, 91–100:2, 101–110:1, 111–219:0, ≥220:3. */
const SBP_BANDS: Bands = [[90, 3], [100, 2], [110, 1], [219, 0]];
/** Pulse: ≤40:3, 41–50:1, 51–90:0, 91–110:1, 111–130:2, ≥131:3. */
const HR_BANDS: Bands = [[40, 3], [50, 1], [90, 0], [110, 1], [130, 2]];
/** Temperature: ≤35.0:3, 35.1–36.0:1, 36.1–38.0:0, 38.1–39.0:1, ≥39.1:2. */
const TEMP_BANDS: Bands = [[35.0, 3], [36.0, 1], [38.0, 0], [39.0, 1]];

const RESPONSES: Readonly<Record<News2Trigger, Readonly<News2Response>>> = {
  '0': {
    trigger: '0',
    risk: 'low',
    urgency: 'Ward-based response',
    monitoring: 'Minimum 12-hourly',
    maxIntervalHours: 12,
    clinicalResponse: ['Continue routine NEWS monitoring'],
  },
  '1-4': {
    trigger: '1-4',
    risk: 'low',
    urgency: 'Ward-based response',
    monitoring: 'Minimum 4–6-hourly',
    maxIntervalHours: 4,
    clinicalResponse: [
      'Inform registered nurse, who must assess the patient',
      'Registered nurse decides whether increased frequency of monitoring and/or escalation of care is required',
    ],
  },
  '3-in-single': {
    trigger: '3-in-single',
    risk: 'low-medium',
    urgency: 'Urgent ward-based response by a clinician or team competent in the care of acutely ill patients',
    monitoring: 'Minimum 1-hourly',
    maxIntervalHours: 1,
    clinicalResponse: ['Registered nurse to inform the medical team caring for the patient, who will review and decide whether escalation of care is necessary'],
  },
  '5-6': {
    trigger: '5-6',
    risk: 'medium',
    urgency: 'Key threshold for urgent response',
    monitoring: 'Minimum 1-hourly',
    maxIntervalHours: 1,
    clinicalResponse: [
      'Registered nurse to immediately inform the medical team caring for the patient',
      'Registered nurse to request urgent assessment by a clinician or team with core competencies in the care of acutely ill patients',
      'Provide clinical care in an environment with monitoring facilities',
    ],
  },
  '7+': {
    trigger: '7+',
    risk: 'high',
    urgency: 'Urgent or emergency response by a team with critical-care competencies',
    monitoring: 'Continuous monitoring of vital signs',
    maxIntervalHours: 0,
    clinicalResponse: [
      'Registered nurse to immediately inform the medical team caring for the patient – at least at specialist registrar level',
      'Emergency assessment by a team with critical-care competencies, including practitioner(s) with advanced airway management skills',
      'Consider transfer of care to a level 2 or 3 clinical care facility, i.e. higher-dependency unit or ICU',
      'Clinical care in an environment with monitoring facilities',
    ],
  },
};

/** The Chart 3/4 trigger for an aggregate and red-score flag. */
export function news2Trigger(aggregate: number, anySingleThree: boolean): News2Trigger {
  if (aggregate >= 7) return '7+';
  if (aggregate >= 5) return '5-6';
  if (anySingleThree) return '3-in-single';
  return aggregate === 0 ? '0' : '1-4';
}

/** The Chart 3 risk and Chart 4 response for a trigger. */
export function news2Response(trigger: News2Trigger): News2Response {
  const r = RESPONSES[trigger];
  return { ...r, clinicalResponse: [...r.clinicalResponse] };
}

type NumericParameter = 'rr' | 'spo2' | 'sbp' | 'hr' | 'tempC';

function checked(name: NumericParameter, value: number | null | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new RangeError(`NEWS2 ${name}: not a finite number`);
  const [lo, hi] = PLAUSIBLE[name];
  if (value < lo || value > hi) throw new RangeError(`NEWS2 ${name} ${value} outside ${lo}–${hi}: physically impossible`);
  return roundHalfUp(value, name === 'tempC' ? 1 : 0);
}

/** Scores one set of observations. Throws RangeError on impossible input (see the module comment). */
export function scoreNews2(obs: News2Observations, options: News2Options): News2Result {
  const scale = options.spo2Scale;
  if (scale !== 1 && scale !== 2) throw new RangeError(`NEWS2 SpO2 scale must be 1 or 2, got ${String(scale)}`);

  const rr = checked('rr', obs.rr);
  const spo2 = checked('spo2', obs.spo2);
  const sbp = checked('sbp', obs.sbp);
  const hr = checked('hr', obs.hr);
  const tempC = checked('tempC', obs.tempC);
  const o2 = obs.o2 === undefined || obs.o2 === null ? undefined : obs.o2;
  if (o2 !== undefined && typeof o2 !== 'boolean') throw new RangeError('NEWS2 o2: must be true (oxygen) or false (air)');
  const acvpu = obs.acvpu === undefined || obs.acvpu === null ? undefined : obs.acvpu;
  if (acvpu !== undefined && !ACVPU_LEVELS.includes(acvpu)) throw new RangeError(`NEWS2 acvpu: unknown level ${String(acvpu)}`);

  let spo2Score: number | null = null;
  if (spo2 !== undefined) {
    if (scale === 1) spo2Score = band(spo2, SPO2_SCALE1_BANDS, 0);
    else if (spo2 <= 92) spo2Score = band(spo2, SPO2_SCALE2_BANDS, 0);
    else if (o2 !== undefined) spo2Score = o2 ? band(spo2, SPO2_SCALE2_OXYGEN_BANDS, 3) : 0;
    // else: ≥93 on scale 2 scores by air/oxygen, which is unknown: not scored.
  }

  const subScores: Record<News2Parameter, number | null> = {
    rr: rr === undefined ? null : band(rr, RR_BANDS, 3),
    spo2: spo2Score,
    o2: o2 === undefined ? null : o2 ? 2 : 0,
    sbp: sbp === undefined ? null : band(sbp, SBP_BANDS, 3),
    hr: hr === undefined ? null : band(hr, HR_BANDS, 3),
    acvpu: acvpu === undefined ? null : acvpu === 'A' ? 0 : 3,
    tempC: tempC === undefined ? null : band(tempC, TEMP_BANDS, 2),
  };

  let aggregate = 0;
  let anySingleThree = false;
  const missing: News2Parameter[] = [];
  for (const p of NEWS2_PARAMETERS) {
    const s = subScores[p];
    if (s === null) missing.push(p);
    else {
      aggregate += s;
      if (s === 3) anySingleThree = true;
    }
  }
  const response = news2Response(news2Trigger(aggregate, anySingleThree));
  const rounded: News2Result['rounded'] = {};
  if (rr !== undefined) rounded.rr = rr;
  if (spo2 !== undefined) rounded.spo2 = spo2;
  if (sbp !== undefined) rounded.sbp = sbp;
  if (hr !== undefined) rounded.hr = hr;
  if (tempC !== undefined) rounded.tempC = tempC;

  return { subScores, aggregate, anySingleThree, complete: missing.length === 0, missing, risk: response.risk, response, spo2Scale: scale, rounded };
}
