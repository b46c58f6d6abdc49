/**
 * Slice data sets for training and evaluating the lesion CNN (issue 9 items 4–5): one phantom → the real
 * pipeline of the app (fitTensors with the Otsu mask → voxelFeatures → clusterVoxels → sliceInputs) →
 * the CNN inputs of its slices, each labelled from the generator's truth, cached on disk.
 *
 * Slice label (the unit is the voxel, because the CNN sees voxels: a lesion smaller than a voxel is not
 * in the data at that resolution, whatever its size in mm):
 *   lesion load of a slice = Σ lesionFraction over its voxels inside the fit's brain mask, i.e. how many
 *   voxels' worth of lesion tissue the slice holds, partial-volume voxels counted by their covered share;
 *   - lesion (1)     if the load is ≥ POSITIVE_LESION_VOXELS (3 voxel-equivalents);
 *   - no lesion (0)  if the load is < NEGATIVE_LESION_VOXELS (0.5: at most a sliver of one voxel);
 *   - ambiguous (−1) in between: the edge slices of a lesion and lesions of 1–2 voxels, where partial
 *     volume makes the truth itself uncertain. They are left out of training and of the slice-level
 *     metrics (their count is reported); the volume-level metrics include every slice and every lesion.
 *
 * Cache: one file per phantom under the cache folder, named by the SHA-256 of the source text of the
 * generator and the pipeline stages (so editing any of them invalidates it), the seed and the generator
 * options. The inputs are stored as 16-bit fixed point (every channel is in [0, 1]; step 1.5e-5) and are
 * always used dequantised, also on the run that made them, so a cached rerun sees the same numbers.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeBrainPhantom, type AcquisitionOptions, type BrainPhantomOptions } from './phantom/brain-phantom.js';
import { clusterVoxels, voxelFeatures } from '../src/main/analysis/clusters.js';
import { INPUT_CHANNELS, INPUT_SIZE, sliceInputs } from '../src/main/analysis/slices.js';
import { fitTensors } from '../src/main/imaging/tensor/index.js';
import { ImagingInputError } from '../src/main/imaging/types.js';
import { mulberry32 } from '../src/shared/random.js';

export const POSITIVE_LESION_VOXELS = 3;
export const NEGATIVE_LESION_VOXELS = 0.5;
export const SLICE_VALUES = INPUT_SIZE * INPUT_SIZE * INPUT_CHANNELS.length;

/** Sources whose text decides the cached slices. */
const CACHE_SOURCES = ['scripts/phantom/brain-phantom.ts', 'src/main/analysis/clusters.ts', 'src/main/analysis/slices.ts', 'scripts/evaluate-dataset.ts', 'src/main/imaging/tensor/fit.ts', 'src/main/imaging/mask.ts'];

export interface PhantomSpec {
  seed: number;
  acquisition?: Partial<AcquisitionOptions>;
  lesionDiameterMm?: [number, number];
  contrastScale?: number;
}

export interface PhantomSlices {
  spec: PhantomSpec;
  /** slices.length × SLICE_VALUES, NHWC per slice. */
  inputs: Float32Array;
  /** z index of each input. */
  slices: number[];
  /** 1 lesion, 0 none, −1 ambiguous (see the file comment). */
  labels: number[];
  /** Lesion load per slice, voxel-equivalents. */
  lesionVoxels: number[];
  /** Per slice, the diameter (mm) of the lesion with most voxels in it (0: none). */
  dominantLesionMm: number[];
  acquisition: AcquisitionOptions;
  lesions: { diameterMm: number; volumeMl: number; contrast: number }[];
}

interface CacheHeader extends Omit<PhantomSlices, 'inputs'> {
  key: string;
}

let sourceDigest: string | null = null;
function generatorVersion(root: string): string {
  if (sourceDigest) return sourceDigest;
  const hash = createHash('sha256');
  for (const file of CACHE_SOURCES) hash.update(file).update(readFileSync(path.join(root, file)));
  sourceDigest = hash.digest('hex').slice(0, 16);
  return sourceDigest;
}

export function cacheKey(root: string, spec: PhantomSpec): string {
  return createHash('sha256').update(JSON.stringify({ version: generatorVersion(root), spec, positive: POSITIVE_LESION_VOXELS, negative: NEGATIVE_LESION_VOXELS })).digest('hex').slice(0, 24);
}

const quantise = (values: Float32Array): Uint16Array => Uint16Array.from(values, (v) => Math.round(Math.min(1, Math.max(0, v)) * 65535));
const dequantise = (stored: Uint16Array): Float32Array => Float32Array.from(stored, (q) => q / 65535);

/** Runs generator + pipeline for one phantom (no cache). Inputs are returned dequantised (see file comment). */
async function computePhantomSlices(spec: PhantomSpec): Promise<{ slices: PhantomSlices; stored: Uint16Array }> {
  const options: BrainPhantomOptions = { seed: spec.seed };
  if (spec.acquisition) options.acquisition = spec.acquisition;
  if (spec.lesionDiameterMm) options.lesionDiameterMm = spec.lesionDiameterMm;
  if (spec.contrastScale !== undefined) options.contrastScale = spec.contrastScale;
  const phantom = makeBrainPhantom(options);
  const { series } = phantom;
  const [nx, ny, nz] = series.dims;
  const dims: [number, number, number] = [nx, ny, nz];
  const maps = await fitTensors(series, { mask: 'otsu', workers: 0 });
  const features = voxelFeatures(series, maps);
  const clusters = clusterVoxels(features, nx * ny * nz);
  const cut = sliceInputs(features, clusters.labels, maps.mask, dims, series.pixdim);
  const plane = nx * ny;
  const diameterOf = new Map(phantom.lesions.map((l) => [l.label, l.diameterMm]));
  const lesionVoxels: number[] = [];
  const dominantLesionMm: number[] = [];
  for (const z of cut.slices) {
    let load = 0;
    const counts = new Map<number, number>();
    for (let p = z * plane; p < (z + 1) * plane; p++) {
      if (!maps.mask[p]) continue;
      load += phantom.lesionFraction[p]!;
      const label = phantom.lesionLabels[p]!;
      if (label) counts.set(label, (counts.get(label) ?? 0) + 1);
    }
    lesionVoxels.push(load);
    let best = 0;
    let bestCount = 0;
    for (const [label, count] of counts) if (count > bestCount) [best, bestCount] = [label, count];
    dominantLesionMm.push(best ? (diameterOf.get(best) ?? 0) : 0);
  }
  const labels = lesionVoxels.map((load) => (load >= POSITIVE_LESION_VOXELS ? 1 : load < NEGATIVE_LESION_VOXELS ? 0 : -1));
  const stored = quantise(cut.data);
  return {
    stored,
    slices: {
      spec,
      inputs: dequantise(stored),
      slices: cut.slices,
      labels,
      lesionVoxels,
      dominantLesionMm,
      acquisition: phantom.acquisition,
      lesions: phantom.lesions.map((l) => ({ diameterMm: l.diameterMm, volumeMl: l.volumeMl, contrast: l.faDrop })),
    },
  };
}

/** The slices of one phantom, from the cache when it holds them, else computed and cached. */
export async function phantomSlices(root: string, cacheDir: string, spec: PhantomSpec): Promise<{ slices: PhantomSlices; cached: boolean }> {
  const key = cacheKey(root, spec);
  const headerFile = path.join(cacheDir, `${key}.json`);
  const dataFile = path.join(cacheDir, `${key}.u16`);
  try {
    const header = JSON.parse(await readFile(headerFile, 'utf8')) as CacheHeader;
    const bytes = await readFile(dataFile);
    if (header.key === key && bytes.byteLength === header.slices.length * SLICE_VALUES * 2) {
      const stored = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      const { key: _key, ...rest } = header;
      return { slices: { ...rest, inputs: dequantise(stored) }, cached: true };
    }
  } catch {
    // Not cached (or unreadable): computed below and written again.
  }
  const { slices, stored } = await computePhantomSlices(spec);
  await mkdir(cacheDir, { recursive: true });
  const { inputs: _inputs, ...meta } = slices;
  // Data first, header last, each renamed into place: a header only exists for a complete data file.
  await writeFile(`${dataFile}.part`, new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength));
  await rename(`${dataFile}.part`, dataFile);
  await writeFile(`${headerFile}.part`, JSON.stringify({ key, ...meta } satisfies CacheHeader));
  await rename(`${headerFile}.part`, headerFile);
  return { slices, cached: false };
}

/**
 * As phantomSlices, but a phantom the pipeline refuses as input (ImagingInputError: e.g. too few brain
 * voxels for four clusters) is logged and skipped (null) instead of ending the run; any other error is a
 * bug and is thrown.
 */
export async function phantomSlicesOrSkip(root: string, cacheDir: string, spec: PhantomSpec, log: (line: string) => void): Promise<{ slices: PhantomSlices; cached: boolean } | null> {
  try {
    return await phantomSlices(root, cacheDir, spec);
  } catch (error) {
    if (!(error instanceof ImagingInputError)) throw error;
    log(`skipped phantom seed ${spec.seed}: the pipeline refuses it: ${error.message}`);
    return null;
  }
}

/** One phantom of a PhantomSource: its slices, or (`slices` null) the reason the pipeline refuses it. */
export interface MadePhantom {
  spec: PhantomSpec;
  slices: PhantomSlices | null;
  skipped: string | null;
  cached: boolean;
  /** From the start of its making (or cache read) to its delivery. */
  seconds: number;
}

/** The phantoms of `specs` in order; none is started once `stop()` is true. */
export type PhantomSource = (specs: readonly PhantomSpec[], stop?: () => boolean) => AsyncIterable<MadePhantom>;

/** A PhantomSource that makes one phantom at a time on this thread (scripts/phantom-pool.ts: on every core). */
export function serialPhantomSource(root: string, cacheDir: string): PhantomSource {
  return async function* (specs, stop = () => false) {
    for (const spec of specs) {
      if (stop()) return;
      const t0 = performance.now();
      let skipped: string | null = null;
      const made = await phantomSlicesOrSkip(root, cacheDir, spec, (line) => (skipped = line));
      yield { spec, slices: made?.slices ?? null, skipped, cached: made?.cached ?? false, seconds: (performance.now() - t0) / 1000 };
    }
  };
}

/** Seeded generator for sampling and shuffling. */
export const seededRandom = mulberry32;

export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
