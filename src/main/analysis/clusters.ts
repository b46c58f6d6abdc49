/**
 * The unsupervised stage of the AI read (issue 9 item 1): per-voxel features inside the brain mask →
 * PCA (ml-pca) → KMeans with k = 4 (ml-kmeans, k-means++, fixed seeds) → a cluster map.
 *
 * - Features: FA, MD, AD, RD, the mean b = 0 signal and the mean diffusion-weighted signal. Each is
 *   scaled to [0, 1] per scan between its 0.5th and 99.5th percentile inside the mask (values outside are
 *   clipped): a plain min–max would let one hot voxel (a vessel, a fit outlier) squeeze the rest of the
 *   scan into a sliver of the range, and the signal features have no common scale between scanners.
 * - PCA is fitted on a sample of the mask (every n-th voxel, at most `sampleSize`), centred, not scaled
 *   (the features already share [0, 1]); the components kept are the fewest that explain ≥ 95 % of the
 *   variance, at least 2: the rest is mostly noise.
 * - KMeans runs on the sample's PCA scores from `restarts` k-means++ starts with fixed seeds and keeps the
 *   lowest inertia (a single start can land in a poor local optimum); every voxel of the mask is then
 *   assigned to its nearest centroid.
 * - Clusters are numbered 1–4 by their members' mean MD, lowest first (1 ≈ densest white matter,
 *   4 ≈ CSF), so the numbering means the same on every scan; 0 is outside the mask.
 *
 * Deterministic: the same maps give the same clusters, bit for bit.
 */
import { kmeans } from 'ml-kmeans';
import { PCA } from 'ml-pca';
import type { DwiSeries, TensorMaps } from '../imaging/types.js';
import { ImagingInputError } from '../imaging/types.js';

export const FEATURE_NAMES = ['fa', 'md', 'ad', 'rd', 'b0', 'meanDwi'] as const;
export type FeatureName = (typeof FEATURE_NAMES)[number];
export const CLUSTER_COUNT = 4;

export interface VoxelFeatures {
  /** Voxel indices (x fastest) of the mask, ascending. */
  voxels: Int32Array;
  /** voxels.length × FEATURE_NAMES.length values in [0, 1], row-major. */
  values: Float32Array;
  /** Per feature, the values that map to 0 and to 1 (the 0.5th and 99.5th percentiles). */
  ranges: { name: FeatureName; low: number; high: number }[];
}

export interface ClusterOptions {
  /** Voxels PCA and KMeans are fitted on (default 20,000). */
  sampleSize?: number;
  /** k-means++ starts (default 4). */
  restarts?: number;
  /** Seed of the first start (default 1); start i uses seed + i. */
  seed?: number;
}

export interface ClusterResult {
  /** Per voxel: 0 outside the mask, else the cluster 1–4. */
  labels: Uint8Array;
  /** PCA components kept, and the share of variance each explains. */
  components: number;
  explainedVariance: number[];
  /** Per cluster 1–4: voxels and the mean of each feature as scaled to [0, 1]. */
  clusters: { label: number; voxels: number; meanScaled: Record<FeatureName, number> }[];
  /** Sum of squared distances of the sample to its centroids (PCA space), for the best start. */
  inertia: number;
  /** Voxels the models were fitted on. */
  sampleSize: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const at = (sorted.length - 1) * p;
  const lo = Math.floor(at);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

/** The raw (unscaled) features of every mask voxel, in FEATURE_NAMES order. */
function rawFeatures(series: DwiSeries, maps: TensorMaps, voxels: Int32Array): Float64Array[] {
  const [nx, ny, nz] = series.dims;
  const nvox = nx * ny * nz;
  const b0 = series.bvals.map((b, v) => (b <= 50 ? v : -1)).filter((v) => v >= 0);
  const dw = series.bvals.map((b, v) => (b > 50 ? v : -1)).filter((v) => v >= 0);
  const features = FEATURE_NAMES.map(() => new Float64Array(voxels.length));
  for (let i = 0; i < voxels.length; i++) {
    const vox = voxels[i]!;
    features[0]![i] = maps.fa[vox]!;
    features[1]![i] = maps.md[vox]!;
    features[2]![i] = maps.ad[vox]!;
    features[3]![i] = maps.rd[vox]!;
    let s0 = 0;
    for (const v of b0) s0 += series.data[v * nvox + vox]!;
    let sw = 0;
    for (const v of dw) sw += series.data[v * nvox + vox]!;
    features[4]![i] = s0 / b0.length;
    features[5]![i] = sw / dw.length;
  }
  return features;
}

/** Features of the voxels in the fit's mask, each scaled to [0, 1] per scan (see the file comment). */
export function voxelFeatures(series: DwiSeries, maps: TensorMaps): VoxelFeatures {
  const [nx, ny, nz] = series.dims;
  if (maps.dims[0] !== nx || maps.dims[1] !== ny || maps.dims[2] !== nz) throw new ImagingInputError(`the maps [${maps.dims.join('×')}] are not of the series [${series.dims.slice(0, 3).join('×')}]`, null);
  if (!series.bvals.some((b) => b <= 50)) throw new ImagingInputError('the series has no b = 0 volume: the b0 feature cannot be computed', null);
  if (!series.bvals.some((b) => b > 50)) throw new ImagingInputError('the series has no diffusion-weighted volume', null);
  let count = 0;
  for (let i = 0; i < maps.mask.length; i++) if (maps.mask[i]) count++;
  const voxels = new Int32Array(count);
  for (let i = 0, j = 0; i < maps.mask.length; i++) if (maps.mask[i]) voxels[j++] = i;
  const raw = rawFeatures(series, maps, voxels);
  const ranges = raw.map((column, f) => {
    for (const v of column) if (!Number.isFinite(v)) throw new ImagingInputError(`the ${FEATURE_NAMES[f]} map holds a value that is not a number inside the mask`, null);
    const sorted = Float64Array.from(column).sort();
    return { name: FEATURE_NAMES[f]!, low: percentile(sorted, 0.005), high: percentile(sorted, 0.995) };
  });
  const width = FEATURE_NAMES.length;
  const values = new Float32Array(count * width);
  for (let f = 0; f < width; f++) {
    const { low, high } = ranges[f]!;
    const span = high - low;
    const column = raw[f]!;
    for (let i = 0; i < count; i++) values[i * width + f] = span > 0 ? Math.min(1, Math.max(0, (column[i]! - low) / span)) : 0;
  }
  return { voxels, values, ranges };
}

/** PCA → KMeans (k = 4) on the features; a cluster map of the whole volume. */
export function clusterVoxels(features: VoxelFeatures, nvox: number, options: ClusterOptions = {}): ClusterResult {
  const width = FEATURE_NAMES.length;
  const n = features.voxels.length;
  const sampleCap = options.sampleSize ?? 20_000;
  const restarts = options.restarts ?? 4;
  const seed = options.seed ?? 1;
  if (n < CLUSTER_COUNT * 10) throw new ImagingInputError(`only ${n} voxels inside the brain mask: too few to find ${CLUSTER_COUNT} tissue clusters`, null);
  const row = (i: number): number[] => Array.from(features.values.subarray(i * width, (i + 1) * width));
  const stride = Math.max(1, Math.ceil(n / sampleCap));
  const sample: number[][] = [];
  for (let i = 0; i < n; i += stride) sample.push(row(i));

  const pca = new PCA(sample, { center: true, scale: false });
  const explained = pca.getExplainedVariance();
  const cumulative = pca.getCumulativeVariance();
  const components = Math.max(2, Math.min(width, cumulative.findIndex((c) => c >= 0.95) + 1 || width));
  const scores = pca.predict(sample, { nComponents: components }).to2DArray();

  let best: { centroids: number[][]; inertia: number } | null = null;
  for (let r = 0; r < restarts; r++) {
    const result = kmeans(scores, CLUSTER_COUNT, { initialization: 'kmeans++', seed: seed + r, maxIterations: 300, tolerance: 1e-8 });
    const centroids = result.centroids;
    let inertia = 0;
    for (const point of scores) inertia += nearest(point, centroids).distance;
    if (!best || inertia < best.inertia) best = { centroids, inertia };
  }
  const { centroids, inertia } = best!;

  // Every mask voxel to its nearest centroid, projected with the same PCA (its means and eigenvectors,
  // what pca.predict applies) straight from the feature array: no row arrays or matrices per voxel.
  const model = pca.toJSON() as { means: number[]; U: { get(row: number, column: number): number } };
  const basis = new Float64Array(width * components);
  for (let f = 0; f < width; f++) for (let c = 0; c < components; c++) basis[f * components + c] = model.U.get(f, c);
  const flatCentroids = Float64Array.from(centroids.flat());
  const assignment = new Uint8Array(n);
  const point = new Float64Array(components);
  for (let i = 0; i < n; i++) {
    point.fill(0);
    for (let f = 0; f < width; f++) {
      const x = features.values[i * width + f]! - model.means[f]!;
      for (let c = 0; c < components; c++) point[c]! += x * basis[f * components + c]!;
    }
    let index = 0;
    let distance = Number.POSITIVE_INFINITY;
    for (let k = 0; k < CLUSTER_COUNT; k++) {
      let d = 0;
      for (let c = 0; c < components; c++) d += (point[c]! - flatCentroids[k * components + c]!) ** 2;
      if (d < distance) [index, distance] = [k, d];
    }
    assignment[i] = index;
  }

  // Number the clusters by their members' mean MD, lowest first.
  const sums = centroids.map(() => ({ voxels: 0, sum: new Float64Array(width) }));
  for (let i = 0; i < n; i++) {
    const s = sums[assignment[i]!]!;
    s.voxels++;
    for (let f = 0; f < width; f++) s.sum[f]! += features.values[i * width + f]!;
  }
  const mdColumn = FEATURE_NAMES.indexOf('md');
  const order = sums.map((s, k) => ({ k, md: s.voxels ? s.sum[mdColumn]! / s.voxels : Number.POSITIVE_INFINITY })).sort((a, b) => a.md - b.md || a.k - b.k);
  const labelOf = new Uint8Array(CLUSTER_COUNT);
  order.forEach(({ k }, rank) => (labelOf[k] = rank + 1));

  const labels = new Uint8Array(nvox);
  for (let i = 0; i < n; i++) labels[features.voxels[i]!] = labelOf[assignment[i]!]!;
  const clusters = order.map(({ k }, rank) => {
    const s = sums[k]!;
    const meanScaled = Object.fromEntries(FEATURE_NAMES.map((name, f) => [name, s.voxels ? s.sum[f]! / s.voxels : 0])) as Record<FeatureName, number>;
    return { label: rank + 1, voxels: s.voxels, meanScaled };
  });
  return { labels, components, explainedVariance: explained.slice(0, components), clusters, inertia, sampleSize: sample.length };
}

function nearest(point: readonly number[], centroids: readonly (readonly number[])[]): { index: number; distance: number } {
  let index = 0;
  let distance = Number.POSITIVE_INFINITY;
  centroids.forEach((c, k) => {
    let d = 0;
    for (let j = 0; j < point.length; j++) d += (point[j]! - c[j]!) ** 2;
    if (d < distance) [index, distance] = [k, d];
  });
  return { index, distance };
}
