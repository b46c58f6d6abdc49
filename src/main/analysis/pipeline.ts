/**
 * The AI second read of one diffusion series (issue 9 item 1), stage by stage:
 *
 *   checks → backend → model → fit (tensor fit, the imaging code) → features → pca-kmeans (clusters.ts)
 *   → slices (128 × 128 inputs) → cnn (probabilities + Grad-CAM, in batches) → findings
 *
 * Each stage reports progress (its name and a fraction) and its wall time. Cancelling (the AbortSignal)
 * stops the run between stages and between CNN batches and rejects with the signal's reason; nothing is
 * written anywhere by this module, so there is nothing to undo. Input that cannot be analysed is refused
 * up front with an ImagingInputError naming the reason (issue 9 item 11); a missing or corrupt model with
 * the ModelFileError of model-files.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { diffusionContrast } from '../imaging/contrast.js';
import { fitTensors } from '../imaging/tensor/index.js';
import { ImagingInputError, type DwiSeries, type TensorMaps } from '../imaging/types.js';
import { selectBackend, type BackendChoice, type BackendName } from './backends.js';
import { clusterVoxels, voxelFeatures, type ClusterResult } from './clusters.js';
import { findingFrom, volumeHeatMap, type Finding, type SliceProbability } from './findings.js';
import { readSlices } from './model/cnn.js';
import { loadModel, modelHash, ModelFileError, type ModelManifest } from './model/model-files.js';
import { INPUT_CHANNELS, INPUT_SIZE, inputMapToSlice, sliceInputs } from './slices.js';

export const STAGES = ['checks', 'backend', 'model', 'fit', 'features', 'pca-kmeans', 'slices', 'cnn', 'findings'] as const;
export type StageName = (typeof STAGES)[number];

/** Smallest in-plane matrix analysed: below it a 128 × 128 input holds a few blurred voxels. */
export const MIN_IN_PLANE = 16;
/** Slices per CNN batch (memory of one batch: 8 × 128² × 7 floats in, activations of 16–64 filters). */
export const CNN_BATCH = 8;

export interface StageProgress {
  stage: StageName;
  fraction: number;
}

export interface LoadedModel {
  model: tf.LayersModel;
  manifest: ModelManifest;
}

export interface AnalyzeOptions {
  /** A model folder (model.json, weights.bin, manifest.json) or a model already loaded. */
  model: string | LoadedModel;
  /** Force one backend; default: the chain (backends.ts). */
  backend?: BackendName | undefined;
  onProgress?: ((progress: StageProgress) => void) | undefined;
  signal?: AbortSignal | undefined;
  /** Tensor-fit worker threads (default: fitTensors's). */
  fitWorkers?: number | undefined;
  batchSize?: number | undefined;
}

export interface AnalysisResult {
  finding: Finding;
  /** The 3-D heat map on the input's voxel grid (findings.ts). */
  heatMap: Float32Array;
  clusters: ClusterResult;
  maps: TensorMaps;
  backend: BackendChoice;
  model: { name: string; version: string; hash: string; trainedOn: string };
  stages: { name: StageName; ms: number }[];
}

/** The manifest's decision threshold when training recorded one (a number in (0, 1)). */
function manifestThreshold(manifest: ModelManifest): number | undefined {
  // Checked again here: the manifest is JSON from disk, its type a promise, not a proof.
  const value: unknown = manifest.decisionThreshold;
  return typeof value === 'number' && value > 0 && value < 1 ? value : undefined;
}

/** The checks of issue 9 item 11 that need no fit: refused with the reason, before any work. */
export function checkAnalysable(series: DwiSeries): void {
  const file = series.source?.files?.[0] ?? null;
  const [nx, ny, nz, nv] = series.dims;
  if (nx < MIN_IN_PLANE || ny < MIN_IN_PLANE) throw new ImagingInputError(`the volume is too small to analyse: ${nx} × ${ny} voxels in plane, at least ${MIN_IN_PLANE} × ${MIN_IN_PLANE} are needed`, file);
  if (!series.bvals.some((b) => b > 50)) throw new ImagingInputError(`not a diffusion series: none of its ${nv} volumes is diffusion-weighted (all b ≤ 50 s/mm²)`, file);
  if (!series.bvals.some((b) => b <= 50)) throw new ImagingInputError('the series has no b = 0 volume: a diffusion tensor cannot be fitted', file);
  // Distinct diffusion-weighted directions (a direction and its opposite are one for a tensor).
  const directions: [number, number, number][] = [];
  series.bvecs.forEach((v, i) => {
    if (series.bvals[i]! <= 50) return;
    const norm = Math.hypot(...v);
    if (!(norm > 0)) return;
    const u = v.map((c) => c / norm) as [number, number, number];
    if (!directions.some((d) => Math.abs(d[0] * u[0] + d[1] * u[1] + d[2] * u[2]) > 0.999)) directions.push(u);
  });
  if (directions.length < 6) throw new ImagingInputError(`the series has ${directions.length} distinct diffusion directions; a diffusion tensor needs at least 6`, file);
  const data = series.data;
  const plane = nx * ny;
  // An empty scan (all b = 0 voxels ≤ 0): the brain mask would have nothing to find.
  let signal = false;
  series.bvals.forEach((b, v) => {
    if (b > 50 || signal) return;
    for (let i = v * plane * nz; i < (v + 1) * plane * nz && !signal; i++) signal = data[i]! > 0;
  });
  for (let i = 0; i < data.length; i++) {
    if (Number.isFinite(data[i]!)) continue;
    let bad = 0;
    for (let j = i; j < data.length; j++) if (!Number.isFinite(data[j]!)) bad++;
    const vox = i % (plane * nz);
    throw new ImagingInputError(
      `the data hold ${bad} values that are not numbers (NaN or infinite), the first at voxel [${vox % nx}, ${Math.floor(vox / nx) % ny}, ${Math.floor(vox / plane)}] of volume ${Math.floor(i / (plane * nz)) + 1}`,
      file,
    );
  }
  if (!signal) throw new ImagingInputError('no brain voxels: the b = 0 volumes hold no signal (every voxel ≤ 0)', file);
}

function aborted(signal: AbortSignal | undefined): void {
  signal?.throwIfAborted();
}

/** Runs the read; see the file comment. */
export async function analyzeSeries(series: DwiSeries, options: AnalyzeOptions): Promise<AnalysisResult> {
  const { signal } = options;
  const report = options.onProgress ?? (() => undefined);
  const stages: { name: StageName; ms: number }[] = [];
  const stage = async <T>(name: StageName, work: () => T | Promise<T>): Promise<T> => {
    aborted(signal);
    report({ stage: name, fraction: 0 });
    const started = performance.now();
    const value = await work();
    stages.push({ name, ms: Math.round((performance.now() - started) * 10) / 10 });
    report({ stage: name, fraction: 1 });
    return value;
  };

  await stage('checks', () => checkAnalysable(series));
  // The backend first, so the weights are made on the backend that runs them.
  const backend = await stage('backend', () => selectBackend(options.backend));
  const loaded = await stage('model', async () => (typeof options.model === 'string' ? loadModel(options.model) : options.model));
  const ownsModel = typeof options.model === 'string';
  try {
    const inputShape = loaded.model.inputs[0]?.shape;
    if (inputShape?.[1] !== INPUT_SIZE || inputShape[2] !== INPUT_SIZE || inputShape[3] !== INPUT_CHANNELS.length)
      throw new ModelFileError(`the AI model takes inputs of [${inputShape?.slice(1).join('×')}], the pipeline makes ${INPUT_SIZE}×${INPUT_SIZE}×${INPUT_CHANNELS.length}: a model of another design`);
    const maps = await stage('fit', () =>
      fitTensors(series, { workers: options.fitWorkers, signal, onProgress: (p) => p.stage === 'fit' && report({ stage: 'fit', fraction: Math.min(0.99, p.fraction) }) }),
    );
    const features = await stage('features', () => {
      let brain = 0;
      for (const m of maps.mask) brain += m ? 1 : 0;
      if (brain === 0) throw new ImagingInputError('no brain voxels: the brain mask of this series is empty (no signal above the background)', series.source?.files?.[0] ?? null);
      const contrast = diffusionContrast(series, maps.mask);
      if (contrast.status === 'absent') throw new ImagingInputError(`refused: ${contrast.message}`, series.source?.files?.[0] ?? null);
      return voxelFeatures(series, maps);
    });
    const [nx, ny, nz] = maps.dims;
    const clusters = await stage('pca-kmeans', () => clusterVoxels(features, nx * ny * nz));
    const inputs = await stage('slices', () => sliceInputs(features, clusters.labels, maps.mask, maps.dims, maps.pixdim));
    if (inputs.slices.length === 0) throw new ImagingInputError('no slice holds enough brain to analyse', series.source?.files?.[0] ?? null);

    const perInput = INPUT_SIZE * INPUT_SIZE * INPUT_CHANNELS.length;
    const batch = Math.max(1, options.batchSize ?? CNN_BATCH);
    const probabilities = new Float32Array(inputs.slices.length);
    const sliceMaps: Float32Array[] = [];
    await stage('cnn', async () => {
      for (let start = 0; start < inputs.slices.length; start += batch) {
        aborted(signal);
        const count = Math.min(batch, inputs.slices.length - start);
        const tensor = tf.tensor4d(inputs.data.subarray(start * perInput, (start + count) * perInput), [count, INPUT_SIZE, INPUT_SIZE, INPUT_CHANNELS.length]);
        try {
          const read = readSlices(loaded.model, tensor);
          probabilities.set(read.probability, start);
          for (let s = 0; s < count; s++) sliceMaps.push(inputMapToSlice(read.heatMaps.subarray(s * INPUT_SIZE * INPUT_SIZE, (s + 1) * INPUT_SIZE * INPUT_SIZE), inputs.window, nx, ny));
        } finally {
          tensor.dispose();
        }
        report({ stage: 'cnn', fraction: Math.min(0.99, (start + count) / inputs.slices.length) });
        // Let a cancel message (worker) or timer reach this loop between batches.
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
    const { finding, heatMap } = await stage('findings', () => {
      const slices: SliceProbability[] = inputs.slices.map((z, s) => ({ z, probability: probabilities[s]! }));
      const heatMap = volumeHeatMap(sliceMaps, slices, maps.mask, maps.dims);
      return { heatMap, finding: findingFrom({ heatMap, slices, mask: maps.mask, clusterLabels: clusters.labels, maps, threshold: manifestThreshold(loaded.manifest) }) };
    });
    const { name, version, trainedOn } = loaded.manifest;
    return { finding, heatMap, clusters, maps, backend, model: { name, version, trainedOn, hash: modelHash(loaded.manifest) }, stages };
  } finally {
    if (ownsModel) loaded.model.dispose();
  }
}
