/**
 * The held-out evaluation of a trained lesion CNN (issue 9 item 5), run at the end of `npm run train`
 * and on its own by `node scripts/evaluate.mjs`.
 *
 * The evaluation phantoms differ from the training ones in more than the seed (training uses seeds from
 * 1, validation from 500 001, evaluation from 900 001 by default):
 *   - lesion contrast: contrastScale drawn uniformly in 0.6–1.2 per phantom (training: 1, the generator's
 *     default mix of strong, moderate and subtle lesions);
 *   - lesion size: diameters 2–24 mm (training: 2.5–30 mm);
 *   - SNR: half the phantoms drawn log-uniformly in 20–60, half in 5–20 (training: the generator's 5–60),
 *     so the SNR ≥ 20 stratum of the goal holds enough scans.
 * Gradient schemes, matrices, slices and voxel sizes are the generator's full random variety.
 *
 * Decision rules. Slice: lesion if its probability > 0.5 (the two-class softmax's argmax). Volume:
 * "suspected" if any slice's probability exceeds the volume threshold chosen on the validation set (the
 * one maximising volume-level F1 there; recorded in the model's manifest), compared with the truth
 * "the phantom holds at least one lesion" — every lesion counts, including those too small for any
 * slice to be labelled a lesion slice.
 */
import * as tf from '@tensorflow/tfjs';
import type { AcquisitionOptions } from './phantom/brain-phantom.js';
import { seededRandom, serialPhantomSource, SLICE_VALUES, type PhantomSlices, type PhantomSource, type PhantomSpec } from './evaluate-dataset.js';
import { expectedCalibrationError, metricsWithCi, reliabilityBins, type MetricsWithCi, type ReliabilityBin, type Scored } from './evaluate-metrics.js';
import { INPUT_CHANNELS, INPUT_SIZE } from '../src/main/analysis/slices.js';

export const SLICE_THRESHOLD = 0.5;

export function evaluationSpecs(count: number, firstSeed: number, acquisition: Partial<AcquisitionOptions>): PhantomSpec[] {
  const random = seededRandom(firstSeed ^ 0x5eed);
  return Array.from({ length: count }, (_, i) => {
    const snr = i % 2 === 0 ? 20 * Math.exp(random() * Math.log(3)) : 5 * Math.exp(random() * Math.log(4));
    const contrastScale = 0.6 + 0.6 * random();
    return { seed: firstSeed + i, acquisition: { snr, ...acquisition }, lesionDiameterMm: [2, 24], contrastScale };
  });
}

/** Lesion probability of every slice of one phantom, in batches. */
export function predictSlices(model: tf.LayersModel, phantom: Pick<PhantomSlices, 'inputs' | 'slices'>, batch = 16): Float32Array {
  const n = phantom.slices.length;
  const out = new Float32Array(n);
  for (let start = 0; start < n; start += batch) {
    const count = Math.min(batch, n - start);
    const probabilities = tf.tidy(() => {
      const x = tf.tensor4d(phantom.inputs.subarray(start * SLICE_VALUES, (start + count) * SLICE_VALUES), [count, INPUT_SIZE, INPUT_SIZE, INPUT_CHANNELS.length]);
      const y = model.predict(x) as tf.Tensor2D;
      return y.slice([0, 1], [count, 1]).dataSync();
    });
    out.set(probabilities, start);
  }
  return out;
}

export interface PhantomResult {
  seed: number;
  acquisition: AcquisitionOptions;
  contrastScale: number | null;
  lesions: PhantomSlices['lesions'];
  labels: number[];
  dominantLesionMm: number[];
  probabilities: number[];
}

export interface Stratum {
  name: string;
  slice: MetricsWithCi;
  volume: MetricsWithCi;
}

export interface EvaluationReport {
  phantoms: number;
  seeds: [number, number];
  sliceThreshold: number;
  volumeThreshold: number;
  ambiguousSlicesExcluded: number;
  slice: MetricsWithCi;
  volume: MetricsWithCi;
  calibration: { slice: { bins: ReliabilityBin[]; brier: number | null; ece: number | null }; volume: { bins: ReliabilityBin[]; brier: number | null; ece: number | null } };
  strata: { snr: Stratum[]; lesionSizeVolume: Stratum[]; lesionSizeSlice: Stratum[]; gradientDirections: Stratum[]; shells: Stratum[]; inPlaneResolution: Stratum[]; sliceThickness: Stratum[] };
  goal: { rule: string; volumeF1: number | null; sliceF1: number | null; met: boolean };
  seconds: number;
}

const sliceScores = (results: readonly PhantomResult[]): Scored[] =>
  results.flatMap((r, g) => r.labels.flatMap((truth, s) => (truth === -1 ? [] : [{ truth, probability: r.probabilities[s]!, group: g }])));
const volumeScores = (results: readonly PhantomResult[]): Scored[] => results.map((r, g) => ({ truth: r.lesions.length ? 1 : 0, probability: Math.max(0, ...r.probabilities), group: g }));

function stratify(results: readonly PhantomResult[], volumeThreshold: number, bands: { name: string; test: (r: PhantomResult) => boolean }[]): Stratum[] {
  return bands.map(({ name, test }) => {
    const inside = results.filter(test);
    return { name: `${name} (${inside.length} scans)`, slice: metricsWithCi(sliceScores(inside), SLICE_THRESHOLD), volume: metricsWithCi(volumeScores(inside), volumeThreshold) };
  });
}

/** Slice-level metrics of slices whose dominant lesion falls in a size band (negatives: every lesion-free slice). */
function sliceSizeStrata(results: readonly PhantomResult[]): Stratum[] {
  const bands: [string, number, number][] = [
    ['lesion < 5 mm', 0, 5],
    ['lesion 5–10 mm', 5, 10],
    ['lesion 10–20 mm', 10, 20],
    ['lesion ≥ 20 mm', 20, Infinity],
  ];
  return bands.map(([name, lo, hi]) => {
    const items = results.flatMap((r, g) => r.labels.flatMap((truth, s) => (truth === 0 || (truth === 1 && r.dominantLesionMm[s]! >= lo && r.dominantLesionMm[s]! < hi) ? [{ truth, probability: r.probabilities[s]!, group: g }] : [])));
    const m = metricsWithCi(items, SLICE_THRESHOLD);
    return { name: `slices with a ${name} (${m.positives} lesion slices)`, slice: m, volume: metricsWithCi([], 0.5) };
  });
}

export interface EvaluateOptions {
  root: string;
  cacheDir: string;
  count: number;
  firstSeed: number;
  acquisition: Partial<AcquisitionOptions>;
  volumeThreshold: number;
  log: (line: string) => void;
  /** Stop making new phantoms after this wall-clock time (ms since the epoch); null: no limit. */
  deadline: number | null;
  /** Where the phantoms come from (default: made one at a time on this thread). */
  source?: PhantomSource;
}

export async function evaluateModel(model: tf.LayersModel, options: EvaluateOptions): Promise<{ report: EvaluationReport; results: PhantomResult[] }> {
  const started = performance.now();
  const results: PhantomResult[] = [];
  const source = options.source ?? serialPhantomSource(options.root, options.cacheDir);
  const specs = evaluationSpecs(options.count, options.firstSeed, options.acquisition);
  let budgetReached = false;
  const stop = () => (budgetReached ||= options.deadline !== null && Date.now() > options.deadline && results.length >= 2);
  for await (const { spec, slices: phantom, skipped, cached, seconds } of source(specs, stop)) {
    if (!phantom) {
      options.log(skipped ?? `skipped phantom seed ${spec.seed}`);
      continue;
    }
    const probabilities = Array.from(predictSlices(model, phantom));
    results.push({ seed: spec.seed, acquisition: phantom.acquisition, contrastScale: spec.contrastScale ?? null, lesions: phantom.lesions, labels: phantom.labels, dominantLesionMm: phantom.dominantLesionMm, probabilities });
    const a = phantom.acquisition;
    options.log(
      `evaluate: seed ${spec.seed} ${a.matrix.join('×')}×${a.slices} SNR ${a.snr.toFixed(1)} ${a.directions} dirs × ${a.shells.length} shell(s), ${phantom.lesions.length} lesion(s), ` +
        `max p ${Math.max(0, ...probabilities).toFixed(3)}, ${seconds.toFixed(1)} s${cached ? ' (cached)' : ''}`,
    );
  }
  if (budgetReached) options.log(`evaluate: time budget reached after ${results.length} of ${options.count} phantoms`);
  const t = options.volumeThreshold;
  const slices = sliceScores(results);
  const volumes = volumeScores(results);
  const sliceBins = reliabilityBins(slices);
  const volumeBins = reliabilityBins(volumes);
  const largest = (r: PhantomResult) => Math.max(0, ...r.lesions.map((l) => l.diameterMm));
  const sizeBand = (lo: number, hi: number) => (r: PhantomResult) => r.lesions.length === 0 || (largest(r) >= lo && largest(r) < hi);
  const snr = stratify(results, t, [
    { name: 'SNR < 10', test: (r) => r.acquisition.snr < 10 },
    { name: 'SNR 10–20', test: (r) => r.acquisition.snr >= 10 && r.acquisition.snr < 20 },
    { name: 'SNR ≥ 20', test: (r) => r.acquisition.snr >= 20 },
  ]);
  const goalStratum = snr[2]!;
  const report: EvaluationReport = {
    phantoms: results.length,
    seeds: [results[0]?.seed ?? options.firstSeed, results.at(-1)?.seed ?? options.firstSeed],
    sliceThreshold: SLICE_THRESHOLD,
    volumeThreshold: t,
    ambiguousSlicesExcluded: results.reduce((sum, r) => sum + r.labels.filter((l) => l === -1).length, 0),
    slice: metricsWithCi(slices, SLICE_THRESHOLD),
    volume: metricsWithCi(volumes, t),
    calibration: {
      slice: { bins: sliceBins, brier: metricsWithCi(slices, SLICE_THRESHOLD, 0).brier, ece: expectedCalibrationError(sliceBins) },
      volume: { bins: volumeBins, brier: metricsWithCi(volumes, t, 0).brier, ece: expectedCalibrationError(volumeBins) },
    },
    strata: {
      snr,
      // Lesion-free scans are in every size band (they are the negatives each band is scored against).
      lesionSizeVolume: stratify(results, t, [
        { name: 'largest lesion < 5 mm', test: sizeBand(0, 5) },
        { name: 'largest lesion 5–10 mm', test: sizeBand(5, 10) },
        { name: 'largest lesion 10–20 mm', test: sizeBand(10, 20) },
        { name: 'largest lesion ≥ 20 mm', test: sizeBand(20, Infinity) },
      ]),
      lesionSizeSlice: sliceSizeStrata(results),
      gradientDirections: stratify(results, t, [
        { name: '6 directions', test: (r) => r.acquisition.directions <= 6 },
        { name: '12–20 directions', test: (r) => r.acquisition.directions > 6 && r.acquisition.directions <= 20 },
        { name: '30–32 directions', test: (r) => r.acquisition.directions > 20 && r.acquisition.directions <= 32 },
        { name: '48–64 directions', test: (r) => r.acquisition.directions > 32 },
      ]),
      shells: stratify(results, t, [
        { name: 'one shell', test: (r) => r.acquisition.shells.length === 1 },
        { name: 'two shells', test: (r) => r.acquisition.shells.length > 1 },
      ]),
      inPlaneResolution: stratify(results, t, [
        { name: 'in-plane ≤ 2 mm', test: (r) => r.acquisition.voxelMm[0] <= 2 },
        { name: 'in-plane > 2 mm', test: (r) => r.acquisition.voxelMm[0] > 2 },
      ]),
      sliceThickness: stratify(results, t, [
        { name: 'slices ≤ 3 mm', test: (r) => r.acquisition.voxelMm[2] <= 3 },
        { name: 'slices > 3 mm', test: (r) => r.acquisition.voxelMm[2] > 3 },
      ]),
    },
    goal: {
      rule: 'F1 ≥ 0.95 at SNR ≥ 20 (volume level and slice level)',
      volumeF1: goalStratum.volume.f1,
      sliceF1: goalStratum.slice.f1,
      met: (goalStratum.volume.f1 ?? 0) >= 0.95 && (goalStratum.slice.f1 ?? 0) >= 0.95,
    },
    seconds: (performance.now() - started) / 1000,
  };
  return { report, results };
}

const f = (v: number | null) => (v === null ? '  –  ' : v.toFixed(3));
const ci = (v: [number, number] | null) => (v === null ? '(n/a)' : `(${v[0].toFixed(2)}–${v[1].toFixed(2)})`);

/** The report as a text table: one row per level and stratum. */
export function formatReport(report: EvaluationReport): string {
  const row = (name: string, m: MetricsWithCi) =>
    `${name.padEnd(48)} n=${String(m.n).padStart(5)} pos=${String(m.positives).padStart(4)}  P ${f(m.precision)} ${ci(m.ci95.precision)}  R ${f(m.recall)} ${ci(m.ci95.recall)}  F1 ${f(m.f1)} ${ci(m.ci95.f1)}  Acc ${f(m.accuracy)} ${ci(m.ci95.accuracy)}  AUC ${f(m.auc)} ${ci(m.ci95.auc)}`;
  const lines = [
    `held-out evaluation: ${report.phantoms} phantoms (seeds ${report.seeds.join('–')}), slice threshold ${report.sliceThreshold}, volume threshold ${report.volumeThreshold.toFixed(3)}, ${report.ambiguousSlicesExcluded} ambiguous slices excluded`,
    row('slice level, all', report.slice),
    row('volume level, all', report.volume),
    ...report.strata.snr.flatMap((s) => [row(`slice, ${s.name}`, s.slice), row(`volume, ${s.name}`, s.volume)]),
    ...report.strata.lesionSizeSlice.map((s) => row(s.name, s.slice)),
    ...report.strata.lesionSizeVolume.map((s) => row(`volume, ${s.name}`, s.volume)),
    ...[...report.strata.gradientDirections, ...report.strata.shells, ...report.strata.inPlaneResolution, ...report.strata.sliceThickness].flatMap((s) => [row(`slice, ${s.name}`, s.slice), row(`volume, ${s.name}`, s.volume)]),
    `calibration: slice Brier ${f(report.calibration.slice.brier)} ECE ${f(report.calibration.slice.ece)}; volume Brier ${f(report.calibration.volume.brier)} ECE ${f(report.calibration.volume.ece)}`,
    `goal ${report.goal.rule}: volume F1 ${f(report.goal.volumeF1)}, slice F1 ${f(report.goal.sliceF1)} → ${report.goal.met ? 'met' : 'NOT met'}`,
  ];
  return lines.join('\n');
}
