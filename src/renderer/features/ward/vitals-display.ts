/**
 * How the ward shows vitals: NEWS2 bands per parameter (RCP 2017 chart 1, SpO2 on the bed's scale) for
 * colouring values and shading charts, the colour band of the aggregate score, labels for technical
 * conditions and patient references. Display only: the score and alarms come from the host.
 */
import type { BedView, Vitals } from '../../../shared/ipc.js';

export type BandScore = 0 | 1 | 2 | 3;
export type ChartVital = 'hr' | 'spo2' | 'rr' | 'sbp' | 'tempC';

/** Upper bounds (inclusive) of each NEWS2 band, lowest first; the last band is open. */
const BANDS: Record<ChartVital, readonly (readonly [number, BandScore])[]> = {
  rr: [
    [8, 3],
    [11, 1],
    [20, 0],
    [24, 2],
    [Infinity, 3],
  ],
  // Scale 1 (the usual one); scale 2 (hypercapnic failure, set per patient): see spo2BandScore.
  spo2: [
    [91, 3],
    [93, 2],
    [95, 1],
    [Infinity, 0],
  ],
  sbp: [
    [90, 3],
    [100, 2],
    [110, 1],
    [219, 0],
    [Infinity, 3],
  ],
  hr: [
    [40, 3],
    [50, 1],
    [90, 0],
    [110, 1],
    [130, 2],
    [Infinity, 3],
  ],
  tempC: [
    [35.0, 3],
    [36.0, 1],
    [38.0, 0],
    [39.0, 1],
    [Infinity, 2],
  ],
};

export function bandScore(vital: ChartVital, value: number | null | undefined): BandScore | null {
  if (value === null || value === undefined || !Number.isFinite(value)) return null;
  for (const [upper, score] of BANDS[vital]) if (value <= upper) return score;
  return null;
}

/** Bands as [from, to, score] ranges for chart shading. */
export function bandRanges(vital: ChartVital): [number, number, BandScore][] {
  const out: [number, number, BandScore][] = [];
  let from = -Infinity;
  for (const [upper, score] of BANDS[vital]) {
    out.push([from, upper, score]);
    from = upper;
  }
  return out;
}

/** SpO2 scale 2 up to 92 % (air or oxygen); above that it scores only on oxygen (SPO2_SCALE2_ON_OXYGEN). */
const SPO2_SCALE2: readonly (readonly [number, BandScore])[] = [
  [83, 3],
  [85, 2],
  [87, 1],
  [92, 0],
];
const SPO2_SCALE2_ON_OXYGEN: readonly (readonly [number, BandScore])[] = [
  [94, 1],
  [96, 2],
  [Infinity, 3],
];

/** SpO2's NEWS2 band on the bed's scale; on scale 2 from 93 % it depends on oxygen (null when unknown). */
export function spo2BandScore(value: number | null | undefined, scale: 1 | 2, o2: boolean | null | undefined): BandScore | null {
  if (scale === 1) return bandScore('spo2', value);
  if (value === null || value === undefined || !Number.isFinite(value)) return null;
  for (const [upper, score] of SPO2_SCALE2) if (value <= upper) return score;
  if (o2 === null || o2 === undefined) return null;
  if (!o2) return 0;
  for (const [upper, score] of SPO2_SCALE2_ON_OXYGEN) if (value <= upper) return score;
  return null;
}

/** SpO2 bands for chart shading on the bed's scale (scale 2: above 92 % as on oxygen when `onOxygen`, else 0). */
export function spo2BandRanges(scale: 1 | 2, onOxygen: boolean): [number, number, BandScore][] {
  if (scale === 1) return bandRanges('spo2');
  const bands = [...SPO2_SCALE2, ...(onOxygen ? SPO2_SCALE2_ON_OXYGEN : ([[Infinity, 0]] as const))];
  const out: [number, number, BandScore][] = [];
  let from = -Infinity;
  for (const [upper, score] of bands) {
    out.push([from, upper, score]);
    from = upper;
  }
  return out;
}

export function acvpuScore(acvpu: Vitals['acvpu']): BandScore | null {
  if (!acvpu) return null;
  return acvpu === 'A' ? 0 : 3;
}

/** CSS colours of the NEWS2 bands, shared by canvas drawing (which cannot read CSS classes). */
export const BAND_COLOURS: Record<BandScore, string> = {
  0: '#4cc38a',
  1: '#d9cf4f',
  2: '#ee9a3a',
  3: '#ef5350',
};

/**
 * The colour band of an aggregate (RCP): 0 none, 1–4 low (green/yellow), any single 3 low–medium
 * (amber), 5–6 medium (orange), ≥ 7 high (red).
 */
export type ScoreBand = 'none' | 'zero' | 'low' | 'low-medium' | 'medium' | 'high';
export function scoreBand(news2: BedView['news2']): ScoreBand {
  if (!news2) return 'none';
  if (news2.risk === 'high' || news2.aggregate >= 7) return 'high';
  if (news2.risk === 'medium' || news2.aggregate >= 5) return 'medium';
  if (news2.risk === 'low-medium' || news2.anySingleThree) return 'low-medium';
  if (news2.aggregate === 0) return 'zero';
  return 'low';
}

export const RISK_LABEL: Record<ScoreBand, string> = {
  none: 'no score',
  zero: 'no risk',
  low: 'low',
  'low-medium': 'low–medium',
  medium: 'medium',
  high: 'high',
};

export interface TechnicalLabel {
  /** As the host sent it (a condition code such as `no-data`, or the alarm's message). */
  code: string;
  /** Short form for a tile. */
  label: string;
  /** Long form for the bed view and tooltips. */
  detail: string;
  kind: 'no-data' | 'device-fault' | 'impossible-value' | 'other';
}

/**
 * A technical condition of a bed. The contract calls these "conditions"; the host may send the
 * condition code (`no-data`, `device-fault:<code>`, `impossible-value`) or the technical alarm's
 * message ("No data from bed 5 for 35 s", "Device fault: leads-off", "Reading rejected: …"): both
 * are recognised.
 */
export function technicalLabel(condition: string): TechnicalLabel {
  const text = condition.trim();
  if (text === 'no-data' || /^no data\b/i.test(text)) return { code: condition, label: 'No data', detail: text === 'no-data' ? 'No data from the monitor' : text, kind: 'no-data' };
  if (text === 'impossible-value' || /^reading rejected\b/i.test(text) || /impossible/i.test(text)) {
    return { code: condition, label: 'Impossible value', detail: text === 'impossible-value' ? 'A reading was rejected as physically impossible' : text, kind: 'impossible-value' };
  }
  if (text === 'patient-mismatch' || /^monitor reports\b/i.test(text)) {
    return { code: condition, label: 'Patient mismatch', detail: text === 'patient-mismatch' ? 'The monitor reports a different patient from the admission' : text, kind: 'other' };
  }
  const fault = /^device[- ]fault\s*:?\s*(.*)$/i.exec(text);
  if (fault) {
    const what = fault[1] ?? '';
    return { code: condition, label: what ? `Device fault: ${what}` : 'Device fault', detail: what ? `Device fault: ${what}` : 'Device fault', kind: 'device-fault' };
  }
  return { code: condition, label: text, detail: text, kind: 'other' };
}

/**
 * Who is in the bed: the admitted patient's name and MRN ("Ada Synthetica · SYN-1A2B3C4D"; a restricted
 * record without break-glass: "Restricted · MRN …"), else the monitor's reference as patientLabel gives it.
 */
export function occupantLabel(bed: Pick<BedView, 'admission' | 'patientRef'>): string {
  const a = bed.admission;
  if (!a) return patientLabel(bed.patientRef);
  return a.name ? `${a.name} · ${a.mrn}` : `Restricted · MRN ${a.mrn}`;
}

/** `Patient/<uuid>` → "Patient 1a2b3c4d", `mrn:X` → "MRN X". */
export function patientLabel(ref: string | null): string {
  if (!ref) return 'No patient admitted';
  if (ref.startsWith('mrn:')) return `MRN ${ref.slice(4)}`;
  const m = /^Patient\/([0-9a-f]{8})/.exec(ref);
  return m ? `Patient ${m[1]}` : ref;
}

export function formatNumber(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return value.toFixed(digits);
}

/** "12 s", "4 min", "2 h 5 min". */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min`;
}

/** The bed key's display form: "4A/07" → { ward: "4A", bed: "07" }. */
export function bedLabel(bed: Pick<BedView, 'ward' | 'bed'>): string {
  return `${bed.ward} · ${bed.bed}`;
}

export function bedKeyLabel(key: string | null): string {
  if (key === null) return 'Ward';
  const i = key.indexOf('/');
  return i < 0 ? key : `${key.slice(0, i)} · ${key.slice(i + 1)}`;
}

/** Data older than this is shown as stale (the host raises no-data after its own timeout). */
export const STALE_MS = 30_000;
