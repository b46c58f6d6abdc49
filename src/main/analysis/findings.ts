/**
 * From per-slice CNN outputs to a volume-level finding (issue 9 item 1).
 *
 * Rules (each a choice, written down so the report can say what it means):
 * - The volume's probability is the largest slice probability: one slice with a lesion is a lesion in
 *   the scan, and averaging would let many healthy slices dilute it.
 * - The finding is "suspected" when that probability reaches the decision threshold: the model
 *   manifest's `decisionThreshold` when training recorded one, else DEFAULT_DECISION_THRESHOLD (0.5, the
 *   two-class softmax's own boundary).
 * - The 3-D heat map lives on the input's voxel grid: each analysed slice's Grad-CAM map (in [0, 1],
 *   brought back with inputMapToSlice) times that slice's probability, 0 outside the brain mask and on
 *   slices not analysed. A cold slice thus stays cold however the map of a slice with nothing on it looks.
 * - Regions: 6-connected components (faces shared, scipy.ndimage.label's default) of the voxels that are
 *   inside the mask, on a suspected slice (its probability ≥ threshold), with a heat ≥ REGION_HEAT_FRACTION
 *   of their slice's probability, i.e. at least half of the slice's Grad-CAM peak.
 * - A region's centroid is the mean voxel index of its members, rounded; its volume is members × voxel
 *   volume; its probability the largest probability of its slices; its tissue the cluster most of its
 *   voxels belong to; FA and MD are its mean against the mean of that cluster's voxels outside it.
 */
import type { TensorMaps } from '../imaging/types.js';

export const DEFAULT_DECISION_THRESHOLD = 0.5;
export const REGION_HEAT_FRACTION = 0.5;

export interface SliceProbability {
  z: number;
  probability: number;
}

export interface TissueComparison {
  /** The region's own mean. */
  inside: number;
  /** Mean over the same cluster's voxels outside the region (null when the cluster has none left). */
  clusterElsewhere: number | null;
}

export interface FindingRegion {
  /** [i, j, k] voxel indices of the input volume. */
  centroidVoxel: [number, number, number];
  voxels: number;
  volumeMl: number;
  /** z indices, ascending. */
  slices: number[];
  probability: number;
  /** The tissue cluster (1–4) most of the region's voxels are in; 0 when none of them is clustered. */
  cluster: number;
  fa: TissueComparison;
  /** mm²/s. */
  md: TissueComparison;
}

export interface Finding {
  finding: 'suspected' | 'not-found';
  probability: number;
  threshold: number;
  /** Where the threshold came from. */
  thresholdSource: 'model manifest' | 'default';
  slices: SliceProbability[];
  regions: FindingRegion[];
}

/**
 * The 3-D heat map (nx·ny·nz, x fastest): per analysed slice its map on the voxel grid × its
 * probability, 0 outside the mask. `sliceMaps[s]` is slice `slices[s].z`'s map on the voxel grid (nx·ny).
 */
export function volumeHeatMap(sliceMaps: readonly Float32Array[], slices: readonly SliceProbability[], mask: Uint8Array, dims: readonly [number, number, number]): Float32Array {
  const [nx, ny, nz] = dims;
  const plane = nx * ny;
  if (sliceMaps.length !== slices.length) throw new Error(`${sliceMaps.length} slice maps for ${slices.length} slices`);
  const heat = new Float32Array(plane * nz);
  slices.forEach(({ z, probability }, s) => {
    const map = sliceMaps[s]!;
    if (map.length !== plane) throw new Error(`slice ${z}'s map has ${map.length} values, the plane ${plane}`);
    for (let p = 0; p < plane; p++) if (mask[z * plane + p]) heat[z * plane + p] = map[p]! * probability;
  });
  return heat;
}

export interface FindingInput {
  heatMap: Float32Array;
  slices: readonly SliceProbability[];
  mask: Uint8Array;
  /** 0 outside the mask, else 1–4. */
  clusterLabels: Uint8Array;
  maps: Pick<TensorMaps, 'dims' | 'pixdim' | 'fa' | 'md'>;
  /** From the model's manifest; DEFAULT_DECISION_THRESHOLD when absent. */
  threshold?: number | undefined;
}

/** The finding of the rules in the file comment. */
export function findingFrom(input: FindingInput): Finding {
  const { heatMap, slices, mask, clusterLabels, maps } = input;
  const [nx, ny, nz] = maps.dims;
  const plane = nx * ny;
  const nvox = plane * nz;
  for (const [name, a] of [['heat map', heatMap], ['mask', mask], ['cluster map', clusterLabels]] as const)
    if (a.length !== nvox) throw new Error(`the ${name} has ${a.length} voxels, the volume ${nvox}`);
  const threshold = input.threshold ?? DEFAULT_DECISION_THRESHOLD;
  const probability = slices.reduce((m, s) => Math.max(m, s.probability), 0);
  const sliceProbability = new Float64Array(nz).fill(-1);
  for (const s of slices) sliceProbability[s.z] = s.probability;

  // Candidate voxels; then their 6-connected components by a breadth-first flood fill.
  const candidate = new Uint8Array(nvox);
  for (let v = 0; v < nvox; v++) {
    const p = sliceProbability[Math.floor(v / plane)]!;
    if (mask[v] && p >= threshold && p > 0 && heatMap[v]! >= REGION_HEAT_FRACTION * p) candidate[v] = 1;
  }
  const component = new Int32Array(nvox).fill(-1);
  const members: number[][] = [];
  const queue = new Int32Array(nvox);
  for (let seed = 0; seed < nvox; seed++) {
    if (!candidate[seed] || component[seed]! >= 0) continue;
    const id = members.length;
    const list: number[] = [];
    let head = 0;
    let tail = 0;
    queue[tail++] = seed;
    component[seed] = id;
    while (head < tail) {
      const v = queue[head++]!;
      list.push(v);
      const x = v % nx;
      const y = Math.floor(v / nx) % ny;
      const z = Math.floor(v / plane);
      const neighbours = [x > 0 ? v - 1 : -1, x < nx - 1 ? v + 1 : -1, y > 0 ? v - nx : -1, y < ny - 1 ? v + nx : -1, z > 0 ? v - plane : -1, z < nz - 1 ? v + plane : -1];
      for (const n of neighbours) {
        if (n < 0 || !candidate[n] || component[n]! >= 0) continue;
        component[n] = id;
        queue[tail++] = n;
      }
    }
    members.push(list);
  }

  const voxelMl = (maps.pixdim[0] * maps.pixdim[1] * maps.pixdim[2]) / 1000;
  const clusterTotals = { fa: new Float64Array(5), md: new Float64Array(5), count: new Float64Array(5) };
  if (members.length > 0)
    for (let v = 0; v < nvox; v++) {
      const c = clusterLabels[v]!;
      if (c < 1 || c > 4) continue;
      clusterTotals.fa[c]! += maps.fa[v]!;
      clusterTotals.md[c]! += maps.md[v]!;
      clusterTotals.count[c]!++;
    }
  const regions = members.map((list): FindingRegion => {
    let [sx, sy, sz] = [0, 0, 0];
    const zs = new Set<number>();
    const votes = new Int32Array(5);
    let [fa, md] = [0, 0];
    for (const v of list) {
      const x = v % nx;
      const y = Math.floor(v / nx) % ny;
      const z = Math.floor(v / plane);
      sx += x;
      sy += y;
      sz += z;
      zs.add(z);
      votes[clusterLabels[v]!]!++;
      fa += maps.fa[v]!;
      md += maps.md[v]!;
    }
    let cluster = 0;
    for (let c = 1, most = 0; c <= 4; c++) if (votes[c]! > most) [cluster, most] = [c, votes[c]!];
    // The cluster's totals less the region's own voxels of that cluster.
    let [faElse, mdElse, countElse] = cluster > 0 ? [clusterTotals.fa[cluster]!, clusterTotals.md[cluster]!, clusterTotals.count[cluster]!] : [0, 0, 0];
    if (cluster > 0)
      for (const v of list) {
        if (clusterLabels[v] !== cluster) continue;
        faElse -= maps.fa[v]!;
        mdElse -= maps.md[v]!;
        countElse--;
      }
    const n = list.length;
    const sliceList = [...zs].sort((a, b) => a - b);
    return {
      centroidVoxel: [Math.round(sx / n), Math.round(sy / n), Math.round(sz / n)],
      voxels: n,
      volumeMl: n * voxelMl,
      slices: sliceList,
      probability: Math.max(...sliceList.map((z) => sliceProbability[z]!)),
      cluster,
      fa: { inside: fa / n, clusterElsewhere: countElse ? faElse / countElse : null },
      md: { inside: md / n, clusterElsewhere: countElse ? mdElse / countElse : null },
    };
  });
  regions.sort((a, b) => b.probability - a.probability || b.voxels - a.voxels);
  return {
    finding: probability >= threshold && slices.length > 0 ? 'suspected' : 'not-found',
    probability,
    threshold,
    thresholdSource: input.threshold === undefined ? 'default' : 'model manifest',
    slices: [...slices],
    regions,
  };
}
