/**
 * Findings (src/main/analysis/findings.ts) on constructed heat maps whose components are known by
 * construction: two separate boxes, a box on a slice below the threshold, a box that touches another
 * only at an edge (not a face: two components under 6-connectivity), and the tissue comparison.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_DECISION_THRESHOLD, findingFrom, volumeHeatMap, type SliceProbability } from '../../src/main/analysis/findings.js';

const [nx, ny, nz] = [20, 20, 6];
const dims = [nx, ny, nz] as [number, number, number];
const nvox = nx * ny * nz;
const at = (x: number, y: number, z: number) => (z * ny + y) * nx + x;

function volume(fill: number): Float32Array {
  return new Float32Array(nvox).fill(fill);
}

/** Sets `value` in the box [x0, x1] × [y0, y1] × [z0, z1] (inclusive). */
function box(target: Float32Array | Uint8Array, [x0, x1]: [number, number], [y0, y1]: [number, number], [z0, z1]: [number, number], value: number): void {
  for (let z = z0; z <= z1; z++) for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) target[at(x, y, z)] = value;
}

const mask = new Uint8Array(nvox).fill(1);
const maps = { dims, pixdim: [2, 2, 3] as [number, number, number], fa: volume(0.5), md: volume(0.8e-3) };
const slices: SliceProbability[] = [0, 1, 2, 3, 4, 5].map((z) => ({ z, probability: z === 5 ? 0.3 : 0.9 }));

describe('findings from constructed heat maps', () => {
  it('finds each face-connected box as one region with its centroid, volume, slices and probability', () => {
    const heat = volume(0);
    box(heat, [2, 4], [2, 4], [1, 2], 0.8); // 3×3×2 = 18 voxels, centroid (3, 3, 1.5 → 2)
    box(heat, [10, 13], [10, 11], [3, 3], 0.7); // 4×2×1 = 8 voxels, centroid (11.5 → 12, 10.5 → 11, 3)
    box(heat, [15, 16], [15, 16], [5, 5], 0.29); // on a slice whose probability 0.3 is under the threshold
    box(heat, [16, 17], [2, 3], [0, 0], 0.3); // under half of its slice's probability (0.45): not a region
    const labels = new Uint8Array(nvox).fill(2);
    box(labels, [2, 4], [2, 4], [1, 2], 3);
    const fa = volume(0.5);
    box(fa, [2, 4], [2, 4], [1, 2], 0.2);
    const finding = findingFrom({ heatMap: heat, slices, mask, clusterLabels: labels, maps: { ...maps, fa } });
    expect(finding.finding).toBe('suspected');
    expect(finding.probability).toBeCloseTo(0.9, 6);
    expect(finding.threshold).toBe(DEFAULT_DECISION_THRESHOLD);
    expect(finding.thresholdSource).toBe('default');
    expect(finding.regions).toHaveLength(2);
    const [big, small] = [...finding.regions].sort((a, b) => b.voxels - a.voxels);
    expect(big!.voxels).toBe(18);
    expect(big!.centroidVoxel).toEqual([3, 3, 2]);
    expect(big!.slices).toEqual([1, 2]);
    expect(big!.volumeMl).toBeCloseTo((18 * 2 * 2 * 3) / 1000, 9);
    expect(big!.probability).toBeCloseTo(0.9, 6);
    // Its own cluster (3) has no voxel outside it; FA inside is the box's.
    expect(big!.cluster).toBe(3);
    expect(big!.fa.inside).toBeCloseTo(0.2, 6);
    expect(big!.fa.clusterElsewhere).toBeNull();
    expect(small!.voxels).toBe(8);
    expect(small!.centroidVoxel).toEqual([12, 11, 3]);
    expect(small!.cluster).toBe(2);
    expect(small!.fa.inside).toBeCloseTo(0.5, 6);
    // Cluster 2 elsewhere: every voxel but the two boxes (FA 0.5 everywhere but the cluster-3 box).
    expect(small!.fa.clusterElsewhere).toBeCloseTo(0.5, 6);
    expect(small!.md.clusterElsewhere).toBeCloseTo(0.8e-3, 9);
  });

  it('keeps two boxes that share only an edge apart (6-connectivity) and joins them when they share a face', () => {
    const edge = volume(0);
    box(edge, [2, 3], [2, 3], [0, 0], 1);
    box(edge, [4, 5], [4, 5], [0, 0], 1);
    const labels = new Uint8Array(nvox).fill(1);
    expect(findingFrom({ heatMap: edge, slices, mask, clusterLabels: labels, maps }).regions).toHaveLength(2);
    const face = volume(0);
    box(face, [2, 3], [2, 3], [0, 0], 1);
    box(face, [4, 5], [2, 3], [0, 0], 1);
    const joined = findingFrom({ heatMap: face, slices, mask, clusterLabels: labels, maps }).regions;
    expect(joined).toHaveLength(1);
    expect(joined[0]!.voxels).toBe(8);
  });

  it('says not-found under the threshold, with the manifest threshold when there is one', () => {
    const heat = volume(0);
    box(heat, [2, 4], [2, 4], [1, 2], 0.8);
    const labels = new Uint8Array(nvox).fill(1);
    const finding = findingFrom({ heatMap: heat, slices, mask, clusterLabels: labels, maps, threshold: 0.95 });
    expect(finding.finding).toBe('not-found');
    expect(finding.thresholdSource).toBe('model manifest');
    expect(finding.regions).toEqual([]);
  });

  it('builds the 3-D heat map as each slice map × its probability, 0 outside the mask and on slices not read', () => {
    const plane = nx * ny;
    const one = new Float32Array(plane).fill(1);
    const half = new Float32Array(plane).fill(0.5);
    const partMask = new Uint8Array(nvox).fill(1);
    partMask[at(0, 0, 1)] = 0;
    const heat = volumeHeatMap([one, half], [{ z: 1, probability: 0.8 }, { z: 3, probability: 0.4 }], partMask, dims);
    expect(heat[at(5, 5, 1)]).toBeCloseTo(0.8, 6);
    expect(heat[at(0, 0, 1)]).toBe(0);
    expect(heat[at(5, 5, 3)]).toBeCloseTo(0.2, 6);
    expect(heat[at(5, 5, 0)]).toBe(0);
    expect(() => volumeHeatMap([one], [{ z: 1, probability: 0.8 }], partMask, [nx, ny + 1, nz])).toThrow(/map has 400 values, the plane 420/);
  });
});
