/**
 * `node scripts/evaluate-localisation.mjs [--model=DIR] [--count=N] [--first-seed=N] [--min-snr=F] [--out=FILE] [--minutes=F]
 *   [--matrix=NxN] [--slices=N] [--fit-workers=N]`
 *
 * Lesion-level localisation of the AI read (issue 9 item 5: "lesion-level localisation (the region's
 * centroid within the true lesion), on a held-out set made with other seeds and other generator
 * settings"). Each held-out phantom (scripts/evaluate-run.ts evaluationSpecs: seeds from 900 001,
 * contrastScale 0.6–1.2, lesions 2–24 mm, half the scans SNR 20–60 and half 5–20) goes through the app's
 * whole read, analyzeSeries on wasm with the saved model (default models/lesion-cnn/, SHA-256 checked),
 * and its regions are compared with the generator's truth.
 *
 * Scoring rules (the functions below; test/analysis/evaluate-localisation.test.ts checks them by hand):
 *   - Regions: those of a "suspected" finding (findings.ts: on slices at or above the decision threshold;
 *     a "not-found" finding has none). Each is TRUE when its centroid voxel (findings.ts: the rounded mean
 *     voxel index of its members) lies inside a true lesion, else FALSE.
 *   - "Inside a true lesion", the rule used for every headline figure: the voxel holds any lesion tissue,
 *     lesionFraction > 0 (at least one of its 2 × 2 × 2 sub-samples is in a lesion). Why this and not
 *     only lesionLabels > 0 (the lesion covers ≥ half the voxel): the generator's truth is sub-voxel while
 *     the centroid is a rounded voxel index, so the half-voxel rule would count a centroid on the lesion's
 *     partial-volume rim as a miss, and would make every lesion that never covers half a voxel (most of
 *     the 2–3 mm ones at 2–3 mm voxels) undetectable by definition, whatever the model does. The lenient
 *     rule is at most half a voxel more generous at the lesion's edge. The strict rule (lesionLabels > 0)
 *     is reported alongside ("strict") so the difference is visible.
 *   - Which lesion a voxel belongs to: lesionLabels when it is > 0; else (a rim voxel under the lenient
 *     rule: the generator records no label below half coverage) the lesion whose centroid is nearest in
 *     mm among those that reach the voxel's slice (all lesions when none does).
 *   - Lesions (phantom.lesions: every lesion with tissue inside the slab): DETECTED when at least one
 *     region's centroid lies inside it (same rule). Reported per lesion-size band (diameter < 5, 5–10,
 *     10–20, ≥ 20 mm) and per SNR band of its scan (< 10, 10–20, ≥ 20).
 *   - Localisation precision = true regions / all regions; lesion sensitivity = detected lesions / all
 *     lesions; each with a 95 % Wilson score interval. The interval treats regions (lesions) as
 *     independent; regions of one scan are not quite, so it is on the narrow side.
 *   - Also reported: whether each scan's first region (findings.ts sorts them by probability, then size:
 *     the one the report leads with) is true, over the scans that have regions.
 *   - Distance: for each true region, from its centroid to its lesion's centroid (the generator's
 *     sub-voxel centre of mass), in mm with the series' voxel size; mean, median and maximum.
 *
 * Spec selection: --count is the number of phantoms scored. Without --min-snr they are
 * evaluationSpecs(count, first-seed); with it, the first `count` specs of the same list (long enough)
 * whose SNR is ≥ min-snr — the list is a prefix-stable sequence, so these are the same phantoms
 * scripts/evaluate.mjs scores, filtered. --matrix/--slices fix the acquisition (for a quick run).
 *
 * A phantom the pipeline refuses (ImagingInputError) is counted and listed as refused, never a crash.
 * --minutes is a wall-clock budget: no new phantom starts after it. --out writes the report as JSON.
 * Tensor fits run on this thread unless --fit-workers says otherwise (the machine is shared).
 * Exit codes: 0 done, 1 failed, 2 bad flags.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import '@tensorflow/tfjs-backend-wasm';
import { makeBrainPhantom, type AcquisitionOptions, type BrainPhantom, type BrainPhantomOptions, type LesionTruth, type Vec3 } from './phantom/brain-phantom.js';
import type { PhantomSpec } from './evaluate-dataset.js';
import { evaluationSpecs } from './evaluate-run.js';
import { selectBackend } from '../src/main/analysis/backends.js';
import type { FindingRegion } from '../src/main/analysis/findings.js';
import { loadModel } from '../src/main/analysis/model/model-files.js';
import { analyzeSeries, type LoadedModel } from '../src/main/analysis/pipeline.js';
import { ImagingInputError } from '../src/main/imaging/types.js';

// ---------------------------------------------------------------------------------------------
// Intervals

/** z of a two-sided 95 % normal interval. */
export const Z95 = 1.959963984540054;

/**
 * Wilson score interval for `successes` of `n` (Wilson 1927; Newcombe 1998 method 3, no continuity
 * correction): null when n = 0. 8 of 10 → (0.490, 0.943).
 */
export function wilsonInterval(successes: number, n: number, z = Z95): [number, number] | null {
  if (!Number.isInteger(successes) || !Number.isInteger(n) || successes < 0 || successes > n) throw new RangeError(`wilsonInterval needs integers 0 ≤ successes ≤ n, got ${successes} of ${n}`);
  if (n === 0) return null;
  const p = successes / n;
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denominator;
  // At 0 (n) successes the lower (upper) end is exactly 0 (1); the formula gives it up to rounding.
  return [successes === 0 ? 0 : Math.max(0, centre - half), successes === n ? 1 : Math.min(1, centre + half)];
}

export interface Proportion {
  k: number;
  n: number;
  /** k / n; null when n = 0. */
  value: number | null;
  ci95: [number, number] | null;
}

export function proportion(k: number, n: number): Proportion {
  return { k, n, value: n ? k / n : null, ci95: wilsonInterval(k, n) };
}

// ---------------------------------------------------------------------------------------------
// Scoring one phantom

/** The parts of a phantom's truth the scoring reads. */
export interface LocalisationTruth {
  dims: readonly [number, number, number];
  /** Voxel size, mm. */
  pixdim: readonly [number, number, number];
  lesionLabels: Uint8Array;
  lesionFraction: Float32Array;
  lesions: readonly Pick<LesionTruth, 'label' | 'centroidVoxel' | 'diameterMm' | 'volumeMl' | 'slices'>[];
}

export type InsideRule = 'fraction' | 'label';

export function truthOf(phantom: BrainPhantom): LocalisationTruth {
  const [nx, ny, nz] = phantom.series.dims;
  return { dims: [nx, ny, nz], pixdim: phantom.series.pixdim, lesionLabels: phantom.lesionLabels, lesionFraction: phantom.lesionFraction, lesions: phantom.lesions };
}

/** Distance in mm between two voxel positions. */
export function distanceMm(a: readonly number[], b: readonly number[], pixdim: readonly [number, number, number]): number {
  return Math.hypot((a[0]! - b[0]!) * pixdim[0], (a[1]! - b[1]!) * pixdim[1], (a[2]! - b[2]!) * pixdim[2]);
}

/**
 * The label of the true lesion a voxel lies inside, 0 for none (file comment: "inside" per `rule`, and
 * which lesion a rim voxel belongs to). Out-of-volume voxels are inside nothing.
 */
export function lesionAt(truth: LocalisationTruth, voxel: readonly [number, number, number], rule: InsideRule = 'fraction'): number {
  const [nx, ny, nz] = truth.dims;
  const [x, y, z] = voxel;
  if (!(Number.isInteger(x) && Number.isInteger(y) && Number.isInteger(z)) || x < 0 || y < 0 || z < 0 || x >= nx || y >= ny || z >= nz) return 0;
  const index = (z * ny + y) * nx + x;
  const label = truth.lesionLabels[index]!;
  if (label > 0 || rule === 'label') return label;
  if (!(truth.lesionFraction[index]! > 0) || truth.lesions.length === 0) return 0;
  const reaching = truth.lesions.filter((l) => l.slices.includes(z));
  const candidates = reaching.length ? reaching : truth.lesions;
  let best = candidates[0]!;
  for (const l of candidates) if (distanceMm(voxel, l.centroidVoxel, truth.pixdim) < distanceMm(voxel, best.centroidVoxel, truth.pixdim)) best = l;
  return best.label;
}

export interface RegionScore {
  centroidVoxel: [number, number, number];
  voxels: number;
  volumeMl: number;
  probability: number;
  /** The lesion its centroid lies inside (lenient rule), 0: a false localisation. */
  lesion: number;
  /** The same under the strict rule (lesionLabels > 0). */
  lesionStrict: number;
  /** mm from its centroid to that lesion's centroid; null for a false region. */
  distanceMm: number | null;
}

export interface LesionScore {
  label: number;
  diameterMm: number;
  volumeMl: number;
  centroidVoxel: Vec3;
  /** Some region's centroid lies inside it (lenient rule). */
  detected: boolean;
  detectedStrict: boolean;
  /** Regions whose centroid lies inside it (lenient rule). */
  regions: number;
}

export interface PhantomScore {
  regions: RegionScore[];
  lesions: LesionScore[];
}

/** Scores the regions of one read against its phantom's truth (file comment). */
export function scoreLocalisation(truth: LocalisationTruth, regions: readonly Pick<FindingRegion, 'centroidVoxel' | 'voxels' | 'volumeMl' | 'probability'>[]): PhantomScore {
  const byLabel = new Map(truth.lesions.map((l) => [l.label, l]));
  const scored = regions.map((r): RegionScore => {
    const lesion = lesionAt(truth, r.centroidVoxel, 'fraction');
    const lesionStrict = lesionAt(truth, r.centroidVoxel, 'label');
    const own = byLabel.get(lesion);
    return {
      centroidVoxel: [...r.centroidVoxel],
      voxels: r.voxels,
      volumeMl: r.volumeMl,
      probability: r.probability,
      lesion: own ? lesion : 0,
      lesionStrict: byLabel.has(lesionStrict) ? lesionStrict : 0,
      distanceMm: own ? distanceMm(r.centroidVoxel, own.centroidVoxel, truth.pixdim) : null,
    };
  });
  const lesions = truth.lesions.map((l): LesionScore => {
    const inside = scored.filter((r) => r.lesion === l.label).length;
    return {
      label: l.label,
      diameterMm: l.diameterMm,
      volumeMl: l.volumeMl,
      centroidVoxel: [...l.centroidVoxel],
      detected: inside > 0,
      detectedStrict: scored.some((r) => r.lesionStrict === l.label),
      regions: inside,
    };
  });
  return { regions: scored, lesions };
}

// ---------------------------------------------------------------------------------------------
// The report

export interface PhantomRecord extends PhantomScore {
  seed: number;
  snr: number;
  contrastScale: number | null;
  acquisition: Pick<AcquisitionOptions, 'matrix' | 'slices' | 'voxelMm' | 'shells' | 'directions'>;
  finding: 'suspected' | 'not-found';
  probability: number;
  seconds: number;
}

export interface RefusedPhantom {
  seed: number;
  snr: number;
  reason: string;
}

export interface Band {
  name: string;
  detection: Proportion;
}

export interface LocalisationReport {
  rule: string;
  phantoms: { scored: number; refused: number; suspected: number; lesionFreeWithRegions: number; seeds: number[]; budgetReached: boolean };
  regions: { all: number; true: number; trueStrict: number };
  localisationPrecision: Proportion;
  localisationPrecisionStrict: Proportion;
  /** Per suspected scan with regions: is its first region (highest probability, then most voxels: the one the report leads with) true. */
  topRegionPrecision: Proportion;
  lesionSensitivity: Proportion;
  lesionSensitivityStrict: Proportion;
  bySize: Band[];
  bySnr: Band[];
  precisionBySnr: Band[];
  distanceMm: { n: number; mean: number | null; median: number | null; max: number | null };
  /** Size of the regions scored (voxels): a centroid says little about a region spread over much of the brain. */
  regionVoxels: { median: number | null; max: number | null };
  refused: RefusedPhantom[];
  perPhantom: PhantomRecord[];
  seconds: number;
}

export const SIZE_BANDS: [string, number, number][] = [
  ['lesion < 5 mm', 0, 5],
  ['lesion 5–10 mm', 5, 10],
  ['lesion 10–20 mm', 10, 20],
  ['lesion ≥ 20 mm', 20, Infinity],
];
export const SNR_BANDS: [string, number, number][] = [
  ['SNR < 10', 0, 10],
  ['SNR 10–20', 10, 20],
  ['SNR ≥ 20', 20, Infinity],
];

const median = (values: readonly number[]): number | null => {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** The figures of the file comment over scored phantoms. */
export function summarise(records: readonly PhantomRecord[], refused: readonly RefusedPhantom[], seconds = 0, budgetReached = false): LocalisationReport {
  const regions = records.flatMap((r) => r.regions);
  const lesions = records.flatMap((r) => r.lesions.map((l) => ({ ...l, snr: r.snr })));
  const trueRegions = regions.filter((r) => r.lesion > 0);
  const trueStrict = regions.filter((r) => r.lesionStrict > 0).length;
  const distances = trueRegions.map((r) => r.distanceMm!);
  const detectedIn = (list: typeof lesions) => proportion(list.filter((l) => l.detected).length, list.length);
  return {
    rule: 'a region is true when its centroid voxel holds any lesion tissue (lesionFraction > 0); strict: the lesion covers ≥ half that voxel (lesionLabels > 0)',
    phantoms: {
      scored: records.length,
      refused: refused.length,
      suspected: records.filter((r) => r.finding === 'suspected').length,
      lesionFreeWithRegions: records.filter((r) => r.lesions.length === 0 && r.regions.length > 0).length,
      seeds: records.map((r) => r.seed),
      budgetReached,
    },
    regions: { all: regions.length, true: trueRegions.length, trueStrict },
    localisationPrecision: proportion(trueRegions.length, regions.length),
    localisationPrecisionStrict: proportion(trueStrict, regions.length),
    topRegionPrecision: proportion(records.filter((r) => (r.regions[0]?.lesion ?? 0) > 0).length, records.filter((r) => r.regions.length > 0).length),
    lesionSensitivity: detectedIn(lesions),
    lesionSensitivityStrict: proportion(lesions.filter((l) => l.detectedStrict).length, lesions.length),
    bySize: SIZE_BANDS.map(([name, lo, hi]) => ({ name, detection: detectedIn(lesions.filter((l) => l.diameterMm >= lo && l.diameterMm < hi)) })),
    bySnr: SNR_BANDS.map(([name, lo, hi]) => ({ name, detection: detectedIn(lesions.filter((l) => l.snr >= lo && l.snr < hi)) })),
    precisionBySnr: SNR_BANDS.map(([name, lo, hi]) => {
      const inside = records.filter((r) => r.snr >= lo && r.snr < hi).flatMap((r) => r.regions);
      return { name, detection: proportion(inside.filter((r) => r.lesion > 0).length, inside.length) };
    }),
    distanceMm: {
      n: distances.length,
      mean: distances.length ? distances.reduce((a, b) => a + b, 0) / distances.length : null,
      median: median(distances),
      max: distances.length ? Math.max(...distances) : null,
    },
    regionVoxels: { median: median(regions.map((r) => r.voxels)), max: regions.length ? Math.max(...regions.map((r) => r.voxels)) : null },
    refused: [...refused],
    perPhantom: [...records],
    seconds,
  };
}

const pct = (p: Proportion) => (p.value === null ? `${p.k}/${p.n}   –` : `${p.k}/${p.n} = ${p.value.toFixed(3)} (95 % CI ${p.ci95![0].toFixed(3)}–${p.ci95![1].toFixed(3)})`);
const mm = (v: number | null) => (v === null ? '–' : v.toFixed(1));

/** The report as a text table. */
export function formatLocalisation(report: LocalisationReport): string {
  const p = report.phantoms;
  const row = (name: string, value: string) => `  ${name.padEnd(34)} ${value}`;
  return [
    `lesion-level localisation: ${p.scored} phantoms scored (seeds ${p.seeds.join(', ') || '–'}), ${p.refused} refused by the pipeline${p.budgetReached ? ', time budget reached' : ''}`,
    `  ${p.suspected} read "suspected"; ${p.lesionFreeWithRegions} lesion-free scans with regions; ${report.regions.all} regions, ${report.lesionSensitivity.n} true lesions`,
    `  rule: ${report.rule}`,
    row('localisation precision', pct(report.localisationPrecision)),
    row('localisation precision (strict)', pct(report.localisationPrecisionStrict)),
    row('top region per scan true', pct(report.topRegionPrecision)),
    row('lesion sensitivity', pct(report.lesionSensitivity)),
    row('lesion sensitivity (strict)', pct(report.lesionSensitivityStrict)),
    ...report.bySize.map((b) => row(`detected, ${b.name}`, pct(b.detection))),
    ...report.bySnr.map((b) => row(`detected, ${b.name}`, pct(b.detection))),
    ...report.precisionBySnr.map((b) => row(`precision, ${b.name}`, pct(b.detection))),
    row('centroid distance to lesion (mm)', `n=${report.distanceMm.n} mean ${mm(report.distanceMm.mean)} median ${mm(report.distanceMm.median)} max ${mm(report.distanceMm.max)}`),
    row('region size (voxels)', `median ${report.regionVoxels.median ?? '–'} max ${report.regionVoxels.max ?? '–'}`),
    ...report.refused.map((r) => `  refused seed ${r.seed} (SNR ${r.snr.toFixed(1)}): ${r.reason}`),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// The run

export interface LocalisationOptions {
  model: string;
  count: number;
  firstSeed: number;
  minSnr: number | null;
  out: string | null;
  minutes: number | null;
  acquisition: Partial<AcquisitionOptions>;
  fitWorkers: number;
}

export const USAGE =
  'usage: node scripts/evaluate-localisation.mjs [--model=DIR] [--count=N] [--first-seed=N] [--min-snr=F] [--out=FILE] [--minutes=F] [--matrix=NxN] [--slices=N] [--fit-workers=N]';

export class UsageError extends Error {
  override name = 'UsageError';
}

export function parseLocalisationArgs(argv: readonly string[]): LocalisationOptions {
  const options: LocalisationOptions = { model: path.resolve('models/lesion-cnn'), count: 40, firstSeed: 900_001, minSnr: null, out: null, minutes: null, acquisition: {}, fitWorkers: 0 };
  for (const arg of argv) {
    const match = /^--([a-z-]+)=(.+)$/.exec(arg);
    if (!match) throw new UsageError(`bad argument ${arg} (flags are --name=value)`);
    const [, key, value] = match as unknown as [string, string, string];
    const integer = (min: number): number => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < min) throw new UsageError(`--${key} needs an integer ≥ ${min}, got ${value}`);
      return n;
    };
    const real = (min: number, inclusive: boolean): number => {
      const n = Number(value);
      if (!Number.isFinite(n) || (inclusive ? n < min : n <= min)) throw new UsageError(`--${key} needs a number ${inclusive ? '≥' : '>'} ${min}, got ${value}`);
      return n;
    };
    if (key === 'model') options.model = path.resolve(value);
    else if (key === 'count') options.count = integer(1);
    else if (key === 'first-seed') options.firstSeed = integer(1);
    else if (key === 'min-snr') options.minSnr = real(0, true);
    else if (key === 'out') options.out = path.resolve(value);
    else if (key === 'minutes') options.minutes = real(0, false);
    else if (key === 'slices') options.acquisition.slices = integer(8);
    else if (key === 'fit-workers') options.fitWorkers = integer(0);
    else if (key === 'matrix') {
      const m = /^(\d+)x(\d+)$/.exec(value);
      if (!m || Number(m[1]) < 16 || Number(m[2]) < 16) throw new UsageError(`--matrix needs NxN with N ≥ 16, got ${value}`);
      options.acquisition.matrix = [Number(m[1]), Number(m[2])];
    } else throw new UsageError(`unknown flag --${key}`);
  }
  return options;
}

/** The specs scored (file comment, "Spec selection"), and how long a prefix of evaluationSpecs they came from. */
export function localisationSpecs(count: number, firstSeed: number, minSnr: number | null, acquisition: Partial<AcquisitionOptions>): { specs: PhantomSpec[]; drawn: number } {
  if (minSnr === null) return { specs: evaluationSpecs(count, firstSeed, acquisition), drawn: count };
  // Half the list is drawn at SNR 20–60 and half at 5–20, so a few times `count` is enough for any
  // threshold up to 60; beyond that nothing passes and the list stays short.
  for (let drawn = 2 * count; ; drawn *= 2) {
    const all = evaluationSpecs(drawn, firstSeed, acquisition);
    const passing = all.filter((s) => (s.acquisition?.snr ?? 0) >= minSnr);
    if (passing.length >= count || drawn >= 64 * count) {
      const specs = passing.slice(0, count);
      const last = specs.at(-1);
      return { specs, drawn: last ? all.indexOf(last) + 1 : drawn };
    }
  }
}

function phantomOptions(spec: PhantomSpec): BrainPhantomOptions {
  const options: BrainPhantomOptions = { seed: spec.seed };
  if (spec.acquisition) options.acquisition = spec.acquisition;
  if (spec.lesionDiameterMm) options.lesionDiameterMm = spec.lesionDiameterMm;
  if (spec.contrastScale !== undefined) options.contrastScale = spec.contrastScale;
  return options;
}

/** Scores the specs of `options` (file comment); `make` makes a phantom from its options (tests swap it). */
export async function evaluateLocalisation(
  options: LocalisationOptions,
  loaded: LoadedModel,
  log: (line: string) => void,
  make: (options: BrainPhantomOptions) => BrainPhantom = makeBrainPhantom,
): Promise<LocalisationReport> {
  const started = performance.now();
  const deadline = options.minutes === null ? null : Date.now() + options.minutes * 60_000;
  const { specs, drawn } = localisationSpecs(options.count, options.firstSeed, options.minSnr, options.acquisition);
  log(
    `localisation: ${specs.length} held-out phantoms${options.minSnr === null ? '' : ` with SNR ≥ ${options.minSnr} (from the first ${drawn} specs)`}, seeds from ${options.firstSeed}, model ${loaded.manifest.name} ${loaded.manifest.version}`,
  );
  const records: PhantomRecord[] = [];
  const refused: RefusedPhantom[] = [];
  let budgetReached = false;
  for (const spec of specs) {
    if (deadline !== null && Date.now() > deadline) {
      budgetReached = true;
      log(`localisation: time budget reached after ${records.length + refused.length} of ${specs.length} phantoms`);
      break;
    }
    const t0 = performance.now();
    const phantom = make(phantomOptions(spec));
    const a = phantom.acquisition;
    const what = `seed ${spec.seed} ${a.matrix.join('×')}×${a.slices} at ${a.voxelMm.map((v) => v.toFixed(1)).join('×')} mm, SNR ${a.snr.toFixed(1)}, ${phantom.lesions.length} lesion(s)`;
    let result;
    try {
      result = await analyzeSeries(phantom.series, { model: loaded, backend: 'wasm', fitWorkers: options.fitWorkers });
    } catch (error) {
      if (!(error instanceof ImagingInputError)) throw error;
      refused.push({ seed: spec.seed, snr: a.snr, reason: error.message });
      log(`localisation: ${what}: refused by the pipeline: ${error.message}`);
      continue;
    }
    const { finding } = result;
    const score = scoreLocalisation(truthOf(phantom), finding.finding === 'suspected' ? finding.regions : []);
    const seconds = (performance.now() - t0) / 1000;
    records.push({
      seed: spec.seed,
      snr: a.snr,
      contrastScale: spec.contrastScale ?? null,
      acquisition: { matrix: a.matrix, slices: a.slices, voxelMm: a.voxelMm, shells: a.shells, directions: a.directions },
      finding: finding.finding,
      probability: finding.probability,
      seconds,
      ...score,
    });
    const trueRegions = score.regions.filter((r) => r.lesion > 0).length;
    log(
      `localisation: ${what}: ${finding.finding} (p ${finding.probability.toFixed(3)}), ${score.regions.length} region(s), ${trueRegions} true, ` +
        `${score.lesions.filter((l) => l.detected).length}/${score.lesions.length} lesions detected, ${seconds.toFixed(1)} s`,
    );
  }
  return summarise(records, refused, (performance.now() - started) / 1000, budgetReached);
}

async function main(): Promise<void> {
  let options: LocalisationOptions;
  try {
    options = parseLocalisationArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`evaluate-localisation: ${error.message}\n${USAGE}`);
    process.exit(2);
  }
  // The backend first, so the weights are made on the backend that runs them.
  await selectBackend('wasm');
  const loaded = await loadModel(options.model);
  const report = await evaluateLocalisation(options, loaded, (line) => console.log(line));
  loaded.model.dispose();
  const { name, version, sha256 } = loaded.manifest;
  if (options.out) {
    await mkdir(path.dirname(options.out), { recursive: true });
    await writeFile(`${options.out}.part`, JSON.stringify({ model: { name, version, sha256, decisionThreshold: loaded.manifest.decisionThreshold ?? null }, options, ...report }, null, 2) + '\n');
    await rename(`${options.out}.part`, options.out);
  }
  console.log(formatLocalisation(report));
  if (options.out) console.log(`localisation: report written to ${options.out}`);
}

// Runs when launched (scripts/evaluate-localisation.mjs, or its bundle of the same name), not when a test imports the functions.
if (path.basename(process.argv[1] ?? '') === 'evaluate-localisation.mjs')
  main().catch((error: unknown) => {
    console.error(`evaluate-localisation: failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
