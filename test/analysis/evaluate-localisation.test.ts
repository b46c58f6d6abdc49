/**
 * scripts/evaluate-localisation.ts: the scoring rules on hand-made truths whose answers are worked out
 * by hand, the Wilson interval against published values, the refusal path (a phantom the pipeline
 * refuses is counted, not a crash), and one end-to-end run of the script on a tiny budget (real
 * phantom, real pipeline on wasm, the shipped model) plus its bad-flag exits.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import '@tensorflow/tfjs-backend-wasm';
import {
  evaluateLocalisation,
  lesionAt,
  localisationSpecs,
  parseLocalisationArgs,
  scoreLocalisation,
  summarise,
  truthOf,
  wilsonInterval,
  type LocalisationReport,
  type LocalisationTruth,
  type PhantomRecord,
  type RegionScore,
  type LesionScore,
} from '../../scripts/evaluate-localisation.js';
import { makeBrainPhantom } from '../../scripts/phantom/brain-phantom.js';
import { selectBackend } from '../../src/main/analysis/backends.js';
import { loadModel } from '../../src/main/analysis/model/model-files.js';
import { savedTestModel, smallPhantom } from './pipeline-support.js';

const root = path.resolve(import.meta.dirname, '../..');
const work = mkdtempSync(path.join(tmpdir(), 'neuroward-localisation-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * 4 × 4 × 2 voxels of 2 × 2 × 3 mm. Lesion 1 covers (1,1,0) and (2,1,0) fully and a quarter of (3,1,0)
 * (its rim: lesionFraction 0.25, no label); lesion 2 covers (0,3,1); (2,1,1) holds a sliver of lesion 2
 * (fraction 0.25, no label): lesion 1's centroid is nearer (3.2 mm against 5.7), but only lesion 2 reaches slice 1.
 */
function handTruth(): LocalisationTruth {
  const [nx, ny, nz] = [4, 4, 2];
  const at = (x: number, y: number, z: number) => (z * ny + y) * nx + x;
  const lesionLabels = new Uint8Array(nx * ny * nz);
  const lesionFraction = new Float32Array(nx * ny * nz);
  for (const [x, y, z, label, fraction] of [
    [1, 1, 0, 1, 1],
    [2, 1, 0, 1, 1],
    [3, 1, 0, 0, 0.25],
    [0, 3, 1, 2, 1],
    [2, 1, 1, 0, 0.25],
  ] as const) {
    lesionLabels[at(x, y, z)] = label;
    lesionFraction[at(x, y, z)] = fraction;
  }
  return {
    dims: [nx, ny, nz],
    pixdim: [2, 2, 3],
    lesionLabels,
    lesionFraction,
    lesions: [
      { label: 1, centroidVoxel: [1.5, 1, 0], diameterMm: 4, volumeMl: 0.03, slices: [0] },
      { label: 2, centroidVoxel: [0, 3, 1], diameterMm: 12, volumeMl: 0.012, slices: [1] },
    ],
  };
}

const region = (centroidVoxel: [number, number, number]) => ({ centroidVoxel, voxels: 3, volumeMl: 0.036, probability: 0.9 });

describe('localisation scoring (hand-worked truths)', () => {
  it('puts a centroid inside the lesion whose voxel it is, under the lenient and the strict rule', () => {
    const truth = handTruth();
    expect(lesionAt(truth, [1, 1, 0])).toBe(1);
    expect(lesionAt(truth, [1, 1, 0], 'label')).toBe(1);
    // The rim voxel: lesion tissue but under half the voxel: lenient yes, strict no.
    expect(lesionAt(truth, [3, 1, 0])).toBe(1);
    expect(lesionAt(truth, [3, 1, 0], 'label')).toBe(0);
    // A rim voxel on slice 1 goes to the lesion that reaches slice 1 (lesion 2), though lesion 1's centroid is nearer.
    expect(lesionAt(truth, [2, 1, 1])).toBe(2);
    // Healthy and out-of-volume voxels are inside nothing.
    expect(lesionAt(truth, [0, 0, 0])).toBe(0);
    expect(lesionAt(truth, [4, 0, 0])).toBe(0);
    expect(lesionAt(truth, [0, 0, -1])).toBe(0);
  });

  it('scores regions and lesions: true/false regions, detected lesions, distances in mm', () => {
    const score = scoreLocalisation(handTruth(), [region([1, 1, 0]), region([3, 1, 0]), region([0, 0, 1]), region([5, 0, 0])]);
    expect(score.regions.map((r) => [r.lesion, r.lesionStrict])).toEqual([
      [1, 1],
      [1, 0],
      [0, 0],
      [0, 0],
    ]);
    // (1,1,0) to (1.5,1,0): 0.5 voxel × 2 mm; (3,1,0) to (1.5,1,0): 1.5 × 2 mm.
    expect(score.regions[0]!.distanceMm).toBeCloseTo(1, 12);
    expect(score.regions[1]!.distanceMm).toBeCloseTo(3, 12);
    expect(score.regions[2]!.distanceMm).toBeNull();
    expect(score.lesions.map((l) => ({ label: l.label, detected: l.detected, strict: l.detectedStrict, regions: l.regions }))).toEqual([
      { label: 1, detected: true, strict: true, regions: 2 },
      { label: 2, detected: false, strict: false, regions: 0 },
    ]);
  });

  it('summarises precision, sensitivity, bands and distances', () => {
    const r = (lesion: number, distanceMm: number | null): RegionScore => ({ centroidVoxel: [0, 0, 0], voxels: 1, volumeMl: 0.01, probability: 0.9, lesion, lesionStrict: lesion, distanceMm });
    const l = (diameterMm: number, detected: boolean): LesionScore => ({ label: 1, diameterMm, volumeMl: 0.1, centroidVoxel: [0, 0, 0], detected, detectedStrict: detected, regions: detected ? 1 : 0 });
    const record = (seed: number, snr: number, regions: RegionScore[], lesions: LesionScore[]): PhantomRecord => ({
      seed,
      snr,
      contrastScale: 1,
      acquisition: { matrix: [4, 4], slices: 2, voxelMm: [2, 2, 3], shells: [1000], directions: 6 },
      finding: regions.length ? 'suspected' : 'not-found',
      probability: regions.length ? 0.9 : 0.1,
      seconds: 1,
      regions,
      lesions,
    });
    const report = summarise(
      [record(1, 25, [r(1, 2), r(0, null)], [l(3, true), l(12, false)]), record(2, 8, [r(0, null)], []), record(3, 15, [], [l(22, false)])],
      [{ seed: 4, snr: 30, reason: 'refused' }],
    );
    expect(report.phantoms).toMatchObject({ scored: 3, refused: 1, suspected: 2, lesionFreeWithRegions: 1, seeds: [1, 2, 3] });
    expect(report.localisationPrecision).toMatchObject({ k: 1, n: 3 });
    expect(report.localisationPrecision.value).toBeCloseTo(1 / 3, 12);
    expect(report.lesionSensitivity).toMatchObject({ k: 1, n: 3 });
    expect(report.topRegionPrecision).toMatchObject({ k: 1, n: 2 });
    expect(report.bySize.map((b) => [b.detection.k, b.detection.n])).toEqual([
      [1, 1],
      [0, 0],
      [0, 1],
      [0, 1],
    ]);
    expect(report.bySnr.map((b) => [b.detection.k, b.detection.n])).toEqual([
      [0, 0],
      [0, 1],
      [1, 2],
    ]);
    expect(report.precisionBySnr.map((b) => [b.detection.k, b.detection.n])).toEqual([
      [0, 1],
      [0, 0],
      [1, 2],
    ]);
    expect(report.distanceMm).toEqual({ n: 1, mean: 2, median: 2, max: 2 });
    expect(report.regionVoxels).toEqual({ median: 1, max: 1 });
    expect(report.bySize[1]!.detection.ci95).toBeNull();
  });

  it('finds every lesion of a real phantom when regions sit at the lesions’ own centroids', () => {
    const phantom = smallPhantom();
    expect(phantom.lesions.length).toBeGreaterThan(0);
    const regions = phantom.lesions.map((l) => region(l.centroidVoxel.map(Math.round) as [number, number, number]));
    const score = scoreLocalisation(truthOf(phantom), regions);
    expect(score.lesions.every((l) => l.detected)).toBe(true);
    expect(score.regions.map((r) => r.lesion)).toEqual(phantom.lesions.map((l) => l.label));
    // Rounding moves a centroid at most half a voxel per axis: √3/2 × 4 mm.
    for (const r of score.regions) expect(r.distanceMm!).toBeLessThanOrEqual((Math.sqrt(3) / 2) * 4 + 1e-9);
  });
});

describe('Wilson score interval', () => {
  it('matches published values', () => {
    // 8/10: (0.490, 0.943), e.g. Brown, Cai & DasGupta 2001 / any Wilson calculator.
    const [lo, hi] = wilsonInterval(8, 10)!;
    expect(lo).toBeCloseTo(0.4902, 4);
    expect(hi).toBeCloseTo(0.9433, 4);
    // Newcombe 1998 (Stat Med 17:857), example 81/263: 0.2553–0.3662.
    const [a, b] = wilsonInterval(81, 263)!;
    expect(a).toBeCloseTo(0.2553, 4);
    expect(b).toBeCloseTo(0.3662, 4);
    // Newcombe's 0/10: 0–0.2775, and its mirror 10/10.
    expect(wilsonInterval(0, 10)![0]).toBe(0);
    expect(wilsonInterval(0, 10)![1]).toBeCloseTo(0.2775, 4);
    expect(wilsonInterval(10, 10)![0]).toBeCloseTo(0.7225, 4);
    expect(wilsonInterval(10, 10)![1]).toBe(1);
  });

  it('has no interval for n = 0 and refuses impossible counts', () => {
    expect(wilsonInterval(0, 0)).toBeNull();
    expect(() => wilsonInterval(3, 2)).toThrow(RangeError);
    expect(() => wilsonInterval(-1, 2)).toThrow(RangeError);
  });
});

describe('spec selection and flags', () => {
  it('with --min-snr keeps the first specs of the held-out list at or above it', () => {
    const { specs, drawn } = localisationSpecs(5, 900_001, 20, {});
    expect(specs).toHaveLength(5);
    expect(specs.every((s) => (s.acquisition?.snr ?? 0) >= 20)).toBe(true);
    expect(specs[0]!.seed).toBeGreaterThanOrEqual(900_001);
    expect(drawn).toBe(specs.at(-1)!.seed - 900_000);
    expect(localisationSpecs(3, 900_001, null, {}).specs.map((s) => s.seed)).toEqual([900_001, 900_002, 900_003]);
  });

  it('parses the flags', () => {
    const o = parseLocalisationArgs(['--count=3', '--first-seed=7', '--min-snr=20', '--minutes=1.5', '--matrix=32x40', '--slices=10', '--out=x.json']);
    expect(o).toMatchObject({ count: 3, firstSeed: 7, minSnr: 20, minutes: 1.5, acquisition: { matrix: [32, 40], slices: 10 }, out: path.resolve('x.json') });
  });
});

describe('a phantom the pipeline refuses', () => {
  it('is counted and listed as refused, and the run goes on', async () => {
    await selectBackend('wasm');
    const { dir } = await savedTestModel();
    const loaded = await loadModel(dir);
    const lines: string[] = [];
    const options = parseLocalisationArgs(['--count=2', '--matrix=32x32', '--slices=10']);
    const report = await evaluateLocalisation(
      options,
      loaded,
      (line) => lines.push(line),
      (o) => {
        const phantom = makeBrainPhantom(o);
        // The first: every volume diffusion-weighted, no b = 0 (checkAnalysable refuses it).
        if (o.seed === 900_001) phantom.series.bvals = phantom.series.bvals.map(() => 1000);
        return phantom;
      },
    );
    loaded.model.dispose();
    expect(report.phantoms.refused).toBe(1);
    expect(report.refused[0]).toMatchObject({ seed: 900_001 });
    expect(report.refused[0]!.reason).toMatch(/no b = 0 volume/);
    expect(report.phantoms.scored).toBe(1);
    expect(report.phantoms.seeds).toEqual([900_002]);
    expect(lines.some((l) => /refused by the pipeline/.test(l))).toBe(true);
  });
});

describe('node scripts/evaluate-localisation.mjs', () => {
  const run = (args: string[]) => {
    const r = spawnSync(process.execPath, ['scripts/evaluate-localisation.mjs', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('scores one small held-out phantom with the shipped model and writes the JSON', () => {
    const out = path.join(work, 'localisation.json');
    const started = Date.now();
    const r = run(['--count=1', '--first-seed=900005', '--matrix=48x48', '--slices=16', '--minutes=1', `--out=${out}`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(r.stdout).toMatch(/lesion-level localisation: 1 phantoms scored \(seeds 900005\)/);
    expect(r.stdout).toMatch(/localisation precision/);
    const report = JSON.parse(readFileSync(out, 'utf8')) as LocalisationReport & { model: { name: string; sha256: object } };
    expect(report.model.name).toBe('neuroward-lesion-cnn');
    expect(report.phantoms.scored + report.phantoms.refused).toBe(1);
    for (const key of ['localisationPrecision', 'localisationPrecisionStrict', 'topRegionPrecision', 'lesionSensitivity', 'lesionSensitivityStrict', 'bySize', 'bySnr', 'precisionBySnr', 'distanceMm', 'regionVoxels', 'refused', 'perPhantom'])
      expect(report).toHaveProperty(key);
    expect(report.bySize.map((b) => b.name)).toEqual(['lesion < 5 mm', 'lesion 5–10 mm', 'lesion 10–20 mm', 'lesion ≥ 20 mm']);
    expect(report.bySnr.map((b) => b.name)).toEqual(['SNR < 10', 'SNR 10–20', 'SNR ≥ 20']);
    const phantom = report.perPhantom[0]!;
    expect(phantom.seed).toBe(900_005);
    expect(phantom.acquisition.matrix).toEqual([48, 48]);
    expect(report.lesionSensitivity.n).toBe(phantom.lesions.length);
    expect(report.localisationPrecision.n).toBe(phantom.regions.length);
  });

  it('refuses bad flags with exit code 2 and says why', () => {
    for (const [args, message] of [
      [['--count=0'], /--count needs an integer ≥ 1, got 0/],
      [['--min-snr=high'], /--min-snr needs a number ≥ 0, got high/],
      [['--minutes=0'], /--minutes needs a number > 0, got 0/],
      [['--matrix=8x8'], /--matrix needs NxN with N ≥ 16/],
      [['--colour=red'], /unknown flag --colour/],
      [['count'], /bad argument count/],
    ] as const) {
      const r = run([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/usage: node scripts\/evaluate-localisation\.mjs/);
    }
  });
});
