/**
 * Classification metrics as the source paper defines them (precision, recall, F1, accuracy) plus
 * ROC-AUC, Brier score and reliability bins, each with a 95 % percentile-bootstrap interval.
 *
 * The bootstrap resamples phantoms, not slices: slices of one scan share anatomy, acquisition and noise,
 * so resampling them independently would give intervals that are too narrow.
 */
import { seededRandom } from './evaluate-dataset.js';

export interface Scored {
  /** 1 lesion, 0 none. */
  truth: number;
  probability: number;
  /** Which phantom it came from (the bootstrap unit). */
  group: number;
}

export interface PointMetrics {
  n: number;
  positives: number;
  tp: number;
  fp: number;
  fn: number;
  tn: number;
  precision: number | null;
  recall: number | null;
  f1: number | null;
  accuracy: number | null;
  auc: number | null;
  brier: number | null;
}

export type Interval = [number, number] | null;

export interface MetricsWithCi extends PointMetrics {
  threshold: number;
  ci95: { precision: Interval; recall: Interval; f1: Interval; accuracy: Interval; auc: Interval; brier: Interval };
}

/** ROC-AUC as the Mann–Whitney probability that a positive outscores a negative (ties count ½). */
export function rocAuc(items: readonly Scored[]): number | null {
  const sorted = [...items].sort((a, b) => a.probability - b.probability);
  const positives = sorted.filter((s) => s.truth === 1).length;
  const negatives = sorted.length - positives;
  if (!positives || !negatives) return null;
  let rankSum = 0;
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j < sorted.length && sorted[j]!.probability === sorted[i]!.probability) j++;
    const midRank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) if (sorted[k]!.truth === 1) rankSum += midRank;
    i = j;
  }
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

export function pointMetrics(items: readonly Scored[], threshold: number): PointMetrics {
  let [tp, fp, fn, tn] = [0, 0, 0, 0];
  let brier = 0;
  for (const s of items) {
    const called = s.probability > threshold;
    if (s.truth === 1) {
      if (called) tp++;
      else fn++;
    } else if (called) fp++;
    else tn++;
    brier += (s.probability - s.truth) ** 2;
  }
  const n = items.length;
  const precision = tp + fp ? tp / (tp + fp) : null;
  const recall = tp + fn ? tp / (tp + fn) : null;
  const f1 = 2 * tp + fp + fn ? (2 * tp) / (2 * tp + fp + fn) : null;
  return { n, positives: tp + fn, tp, fp, fn, tn, precision, recall, f1, accuracy: n ? (tp + tn) / n : null, auc: rocAuc(items), brier: n ? brier / n : null };
}

function percentileInterval(values: number[]): Interval {
  if (values.length < 20) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(p * (sorted.length - 1))))]!;
  return [at(0.025), at(0.975)];
}

/** Point metrics at `threshold` with 95 % intervals from `resamples` bootstrap draws of whole groups. */
export function metricsWithCi(items: readonly Scored[], threshold: number, resamples = 1000, seed = 7): MetricsWithCi {
  const point = pointMetrics(items, threshold);
  const byGroup = new Map<number, Scored[]>();
  for (const s of items) byGroup.set(s.group, [...(byGroup.get(s.group) ?? []), s]);
  const groups = [...byGroup.values()];
  const random = seededRandom(seed);
  const draws: Record<keyof MetricsWithCi['ci95'], number[]> = { precision: [], recall: [], f1: [], accuracy: [], auc: [], brier: [] };
  if (groups.length >= 2) {
    for (let r = 0; r < resamples; r++) {
      const sample: Scored[] = [];
      for (let g = 0; g < groups.length; g++) sample.push(...groups[Math.floor(random() * groups.length)]!);
      const m = pointMetrics(sample, threshold);
      for (const name of Object.keys(draws) as (keyof typeof draws)[]) {
        const v = m[name];
        if (v !== null) draws[name].push(v);
      }
    }
  }
  return {
    ...point,
    threshold,
    ci95: {
      precision: percentileInterval(draws.precision),
      recall: percentileInterval(draws.recall),
      f1: percentileInterval(draws.f1),
      accuracy: percentileInterval(draws.accuracy),
      auc: percentileInterval(draws.auc),
      brier: percentileInterval(draws.brier),
    },
  };
}

export interface ReliabilityBin {
  from: number;
  to: number;
  n: number;
  meanProbability: number | null;
  observedRate: number | null;
}

/** Equal-width reliability bins of predicted probability against the observed lesion rate. */
export function reliabilityBins(items: readonly Scored[], bins = 10): ReliabilityBin[] {
  return Array.from({ length: bins }, (_, b) => {
    const from = b / bins;
    const to = (b + 1) / bins;
    const inside = items.filter((s) => s.probability >= from && (b === bins - 1 ? s.probability <= to : s.probability < to));
    const mean = (f: (s: Scored) => number) => (inside.length ? inside.reduce((sum, s) => sum + f(s), 0) / inside.length : null);
    return { from, to, n: inside.length, meanProbability: mean((s) => s.probability), observedRate: mean((s) => s.truth) };
  });
}

/** Expected calibration error: the bins' |mean probability − observed rate| weighted by their counts. */
export function expectedCalibrationError(bins: readonly ReliabilityBin[]): number | null {
  const n = bins.reduce((sum, b) => sum + b.n, 0);
  if (!n) return null;
  return bins.reduce((sum, b) => sum + (b.n && b.meanProbability !== null && b.observedRate !== null ? (b.n / n) * Math.abs(b.meanProbability - b.observedRate) : 0), 0);
}

/** The threshold (among the observed probabilities and 0.5) that maximises F1; ties keep the higher one. */
export function bestF1Threshold(items: readonly Scored[]): number {
  const candidates = [...new Set([0.5, ...items.map((s) => s.probability)])].sort((a, b) => a - b);
  let best = 0.5;
  let bestF1 = -1;
  for (let i = 0; i < candidates.length; i++) {
    // Midway between neighbouring scores, so the threshold does not sit on a training value.
    const t = i + 1 < candidates.length ? (candidates[i]! + candidates[i + 1]!) / 2 : candidates[i]!;
    const f1 = pointMetrics(items, t).f1 ?? 0;
    if (f1 >= bestF1) [best, bestF1] = [t, f1];
  }
  return best;
}
