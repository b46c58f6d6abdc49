/**
 * Features → PCA → KMeans (k = 4) against scikit-learn (Debian's python3-sklearn) on the same feature
 * matrix, and on a brain phantom against its tissue truth.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusterVoxels, FEATURE_NAMES, voxelFeatures } from '../../src/main/analysis/clusters.js';
import { fitTensors } from '../../src/main/imaging/tensor/index.js';
import { ImagingInputError } from '../../src/main/imaging/types.js';
import { makeBrainPhantom, TISSUE } from '../../scripts/phantom/brain-phantom.js';
import { tempDir } from '../support/harness.js';

const phantom = makeBrainPhantom({ seed: 4, acquisition: { matrix: [48, 48], slices: 18, voxelMm: [4, 4, 4], shells: [1000], directions: 20, b0Count: 2, b0First: true, snr: 30 }, lesionCount: 2 });
const [nx, ny, nz] = phantom.series.dims;
const nvox = nx * ny * nz;
const mapsPromise = fitTensors(phantom.series, { mask: 'otsu', workers: 0 });

const SKLEARN = String.raw`
import json, sys, numpy as np
from sklearn.decomposition import PCA
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
x = np.fromfile(sys.argv[1], dtype='<f4').reshape(-1, int(sys.argv[2]))
ours = np.fromfile(sys.argv[3], dtype='u1')
k = int(sys.argv[4])
pca = PCA().fit(x)
scores = pca.transform(x)[:, :k]
km = KMeans(n_clusters=4, n_init=10, random_state=0).fit(scores)
print(json.dumps({"explained": pca.explained_variance_ratio_.tolist(), "inertia": float(km.inertia_), "ari": float(adjusted_rand_score(km.labels_, ours))}))
`;

describe('features → PCA → KMeans (k = 4)', () => {
  it('matches scikit-learn: the same explained variance, an inertia within 0.5 % of its best of 10 starts, the same partition', async () => {
    const maps = await mapsPromise;
    const features = voxelFeatures(phantom.series, maps);
    expect(features.values.every((v) => v >= 0 && v <= 1)).toBe(true);
    const n = features.voxels.length;
    // No sub-sampling here, so that both fit the same points.
    const result = clusterVoxels(features, nvox, { sampleSize: n });
    expect(result.sampleSize).toBe(n);
    const dir = tempDir('nw-clusters-');
    const xFile = path.join(dir, 'x.f32');
    const labelsFile = path.join(dir, 'labels.u8');
    writeFileSync(xFile, Buffer.from(features.values.buffer, features.values.byteOffset, features.values.byteLength));
    writeFileSync(labelsFile, Buffer.from(Array.from(features.voxels, (v) => result.labels[v]!)));
    const run = spawnSync('/usr/bin/python3', ['-c', SKLEARN, xFile, String(FEATURE_NAMES.length), labelsFile, String(result.components)], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const reference = JSON.parse(run.stdout) as { explained: number[]; inertia: number; ari: number };
    result.explainedVariance.forEach((share, i) => expect(share).toBeCloseTo(reference.explained[i]!, 6));
    const kept = reference.explained.slice(0, result.components).reduce((a, b) => a + b, 0);
    expect(kept).toBeGreaterThanOrEqual(0.95);
    expect(result.components === 2 || reference.explained.slice(0, result.components - 1).reduce((a, b) => a + b, 0) < 0.95).toBe(true);
    expect(result.inertia).toBeLessThanOrEqual(reference.inertia * 1.005);
    console.log(`clusters vs scikit-learn: ${n} voxels, ${result.components} components (${result.explainedVariance.map((e) => e.toFixed(3)).join(", ")}), inertia ${result.inertia.toFixed(3)} vs ${reference.inertia.toFixed(3)}, adjusted Rand index ${reference.ari.toFixed(4)}`);
    expect(reference.ari).toBeGreaterThan(0.95);
  }, 120_000);

  it('numbers the clusters by MD, so CSF falls in cluster 4 and white matter in 1–2, and is reproducible', async () => {
    const maps = await mapsPromise;
    const features = voxelFeatures(phantom.series, maps);
    const result = clusterVoxels(features, nvox, { sampleSize: 2_000 });
    expect(result.clusters.map((c) => c.label)).toEqual([1, 2, 3, 4]);
    const md = result.clusters.map((c) => c.meanScaled.md);
    expect([...md].sort((a, b) => a - b)).toEqual(md);
    const pure = (label: number) => Array.from({ length: nvox }, (_, i) => i).filter((i) => maps.mask[i] && phantom.tissue[i] === label && phantom.tissuePurity[i] === 1 && !phantom.lesionFraction[i]);
    const csf = pure(TISSUE.csf);
    const white = pure(TISSUE.white);
    expect(csf.length).toBeGreaterThan(20);
    expect(csf.filter((i) => result.labels[i] === 4).length / csf.length).toBeGreaterThan(0.9);
    expect(white.filter((i) => result.labels[i]! <= 2).length / white.length).toBeGreaterThan(0.9);
    for (let i = 0; i < nvox; i++) if (!maps.mask[i]) expect(result.labels[i]).toBe(0);
    const again = clusterVoxels(voxelFeatures(phantom.series, maps), nvox, { sampleSize: 2_000 });
    expect(Buffer.from(again.labels).equals(Buffer.from(result.labels))).toBe(true);
  }, 120_000);

  it('refuses what it cannot cluster, with the reason', async () => {
    const maps = await mapsPromise;
    const noB0 = { ...phantom.series, bvals: phantom.series.bvals.map((b) => (b === 0 ? 1000 : b)) };
    expect(() => voxelFeatures(noB0, maps)).toThrow(/no b = 0 volume/);
    const tinyMask = new Uint8Array(nvox);
    tinyMask.fill(1, 0, 12);
    expect(() => clusterVoxels(voxelFeatures(phantom.series, { ...maps, mask: tinyMask }), nvox)).toThrow(ImagingInputError);
    expect(() => clusterVoxels(voxelFeatures(phantom.series, { ...maps, mask: tinyMask }), nvox)).toThrow(/only 12 voxels inside the brain mask/);
    const fa = maps.fa.slice();
    fa[features0(maps.mask)] = Number.NaN;
    expect(() => voxelFeatures(phantom.series, { ...maps, fa })).toThrow(/fa map holds a value that is not a number/);
  }, 60_000);
});

function features0(mask: Uint8Array): number {
  return mask.findIndex((m) => m !== 0);
}
