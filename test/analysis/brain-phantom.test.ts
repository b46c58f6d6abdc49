/**
 * The brain phantom generator (scripts/phantom): what it promises the training and evaluation of the AI
 * read. The tensor fit that checks it is the app's DIPY-exact fit (validated against DIPY in
 * test/imaging), independent of the generator; expected values come from the generator's documented
 * ranges and from the physics (Rician background mean σ·√(π/2)), not from its code.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fitTensors } from '../../src/main/imaging/tensor/index.js';
import { readNiftiDwi } from '../../src/main/imaging/fsl-gradients.js';
import { readNifti } from '../../src/main/imaging/nifti.js';
import { mulberry32 } from '../../src/shared/random.js';
import { makeBrainPhantom, phantomAcquisition, repulsionDirections, TISSUE, type AcquisitionOptions } from '../../scripts/phantom/brain-phantom.js';
import { writeBrainPhantom } from '../../scripts/phantom/write-phantom.js';
import { tempDir } from '../support/harness.js';

/** Small and clean enough to check tissue values against the fit. */
const SMALL: Partial<AcquisitionOptions> = { matrix: [48, 48], slices: 18, voxelMm: [4, 4, 4], shells: [1000], directions: 30, b0Count: 3, b0First: true };
const hash = (data: Float32Array) => createHash('sha256').update(Buffer.from(data.buffer, data.byteOffset, data.byteLength)).digest('hex');
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

describe('brain DTI phantoms', () => {
  it('are reproducible from their seed, and differ between seeds', () => {
    const a = makeBrainPhantom({ seed: 11, acquisition: { ...SMALL, snr: 30 } });
    const b = makeBrainPhantom({ seed: 11, acquisition: { ...SMALL, snr: 30 } });
    const c = makeBrainPhantom({ seed: 12, acquisition: { ...SMALL, snr: 30 } });
    expect(hash(a.series.data)).toBe(hash(b.series.data));
    expect(a.lesions).toEqual(b.lesions);
    expect(hash(a.series.data)).not.toBe(hash(c.series.data));
    expect(makeBrainPhantom({ seed: 7, acquisition: SMALL }).acquisition).toEqual(phantomAcquisition(7, SMALL));
  }, 60_000);

  it('vary the acquisition across seeds as the documentation says', () => {
    const acquisitions = Array.from({ length: 300 }, (_, i) => phantomAcquisition(i + 1));
    const distinct = <T>(f: (a: AcquisitionOptions) => T) => new Set(acquisitions.map((a) => JSON.stringify(f(a)))).size;
    expect(distinct((a) => a.directions)).toBeGreaterThanOrEqual(6);
    expect(distinct((a) => a.matrix[0])).toBeGreaterThanOrEqual(10);
    expect(distinct((a) => a.voxelMm)).toBeGreaterThanOrEqual(10);
    expect(distinct((a) => a.shells.length)).toBe(2);
    expect(distinct((a) => a.b0Count)).toBe(8);
    for (const a of acquisitions) {
      expect(a.matrix[0]).toBeGreaterThanOrEqual(48);
      expect(a.matrix[0]).toBeLessThanOrEqual(128);
      expect(a.slices).toBeGreaterThanOrEqual(12);
      expect(a.slices).toBeLessThanOrEqual(70);
      expect(a.snr).toBeGreaterThanOrEqual(5);
      expect(a.snr).toBeLessThanOrEqual(60);
      expect(a.directions).toBeGreaterThanOrEqual(6);
    }
    const snrs = acquisitions.map((a) => a.snr);
    expect(snrs.filter((s) => s < 10).length).toBeGreaterThan(30); // low SNR is common, not a corner case
    expect(snrs.filter((s) => s >= 20).length).toBeGreaterThan(100);
  });

  it('spread gradient directions over the half sphere (electrostatic repulsion)', () => {
    for (const n of [6, 30, 64]) {
      const dirs = repulsionDirections(n, mulberry32(n));
      let minAngle = 180;
      for (let i = 0; i < n; i++) {
        const d = dirs[i]!;
        expect(Math.hypot(...d)).toBeCloseTo(1, 9);
        expect(d[2]).toBeGreaterThanOrEqual(0);
        for (let j = i + 1; j < n; j++) {
          const e = dirs[j]!;
          const cos = Math.abs(d[0] * e[0] + d[1] * e[1] + d[2] * e[2]);
          minAngle = Math.min(minAngle, (Math.acos(Math.min(1, cos)) * 180) / Math.PI);
        }
      }
      // Best known antipodal sets: 6 → 63.4°, 30 → about 20°, 64 → about 13.5°; random ones get a few degrees.
      expect(minAngle).toBeGreaterThan({ 6: 55, 30: 15, 64: 10 }[n]!);
    }
  });

  it('hold tissue with the documented diffusion values, lesions with lower FA and higher MD, and Rician noise of the stated σ', async () => {
    const phantom = makeBrainPhantom({ seed: 3, acquisition: { ...SMALL, snr: 80 }, lesionCount: 4, lesionDiameterMm: [14, 24] });
    const maps = await fitTensors(phantom.series, { mask: 'none', workers: 0 });
    const nvox = phantom.tissue.length;
    const pure = (label: number) => Array.from({ length: nvox }, (_, i) => i).filter((i) => phantom.tissue[i] === label && phantom.tissuePurity[i] === 1 && phantom.lesionFraction[i] === 0);
    const csf = pure(TISSUE.csf);
    const white = pure(TISSUE.white);
    const grey = pure(TISSUE.grey);
    expect(csf.length).toBeGreaterThan(50);
    expect(white.length).toBeGreaterThan(1000);
    expect(grey.length).toBeGreaterThan(200);
    // Free water at body temperature ≈ 3.0e-3 mm²/s (the generator draws 2.7–3.1e-3).
    expect(median(csf.map((i) => maps.md[i]!))).toBeGreaterThan(2.6e-3);
    expect(median(csf.map((i) => maps.md[i]!))).toBeLessThan(3.2e-3);
    // Adult white matter: MD 0.66–0.8e-3, FA between the low (0.25–0.38) and high (0.7–0.88) bounds.
    const whiteMd = median(white.map((i) => maps.md[i]!));
    expect(whiteMd).toBeGreaterThan(0.62e-3);
    expect(whiteMd).toBeLessThan(0.85e-3);
    const whiteFa = white.map((i) => maps.fa[i]!);
    expect(median(whiteFa)).toBeGreaterThan(0.3);
    expect(median(whiteFa)).toBeLessThan(0.75);
    expect(Math.max(...whiteFa)).toBeGreaterThan(0.65); // tract cores
    // Grey matter: nearly isotropic.
    expect(median(grey.map((i) => maps.fa[i]!))).toBeLessThan(0.25);
    // Where the fit sees a clean voxel it recovers the generating FA: the signal equation is right.
    const faError = white.map((i) => Math.abs(maps.fa[i]! - phantom.trueFa[i]!));
    expect(median(faError)).toBeLessThan(0.03);

    // Each lesion against the white matter around it (a shell 2–4 voxels out).
    expect(phantom.lesions.length).toBe(4);
    const [nx, ny, nz] = phantom.series.dims;
    for (const lesion of phantom.lesions) {
      const inside = Array.from({ length: nvox }, (_, i) => i).filter((i) => phantom.lesionLabels[i] === lesion.label);
      expect(inside.length).toBeGreaterThan(3);
      const [cx, cy, cz] = lesion.centroidVoxel;
      const radius = Math.cbrt(((3 / (4 * Math.PI)) * lesion.volumeMl * 1000) / 64) + 3; // voxels of 4 mm
      const around = white.filter((i) => {
        const x = i % nx;
        const y = Math.floor(i / nx) % ny;
        const z = Math.floor(i / (nx * ny));
        return z < nz && Math.hypot(x - cx, y - cy, z - cz) < radius + 3;
      });
      const lesionFa = median(inside.map((i) => maps.fa[i]!));
      const lesionMd = median(inside.map((i) => maps.md[i]!));
      if (around.length < 5) continue; // juxtacortical: no clean white matter close by
      if (lesion.faDrop > 0.2) expect(lesionFa).toBeLessThan(median(around.map((i) => maps.fa[i]!)));
      if (lesion.mdRise > 0.2) expect(lesionMd).toBeGreaterThan(median(around.map((i) => maps.md[i]!)));
      // The centroid lies in (or next to) a voxel of the lesion.
      const nearest = Math.min(...inside.map((i) => Math.hypot((i % nx) - cx, (Math.floor(i / nx) % ny) - cy, Math.floor(i / (nx * ny)) - cz)));
      expect(nearest).toBeLessThan(1.5);
      for (const z of new Set(inside.map((i) => Math.floor(i / (nx * ny))))) expect(lesion.slices).toContain(z);
    }

    // Air: the magnitude of pure complex noise has mean σ·√(π/2) (Rayleigh).
    const air = Array.from({ length: nvox }, (_, i) => i).filter((i) => phantom.brainFraction[i] === 0);
    let sum = 0;
    for (const i of air) for (let v = 0; v < phantom.series.dims[3]; v++) sum += phantom.series.data[v * nvox + i]!;
    const mean = sum / (air.length * phantom.series.dims[3]);
    expect(mean / (phantom.sigma * Math.sqrt(Math.PI / 2))).toBeGreaterThan(0.98);
    expect(mean / (phantom.sigma * Math.sqrt(Math.PI / 2))).toBeLessThan(1.02);
  }, 120_000);

  it('are written as NIfTI + FSL gradients that the app reads back voxel for voxel, with their truth', async () => {
    const phantom = makeBrainPhantom({ seed: 21, acquisition: { ...SMALL, snr: 20, b0First: false, b0Count: 4 }, lesionCount: 2 });
    const written = await writeBrainPhantom(phantom, path.join(tempDir('nw-phantom-'), 'p21'));
    const series = await readNiftiDwi(written.dwi, written.bval, written.bvec);
    expect(series.dims).toEqual(phantom.series.dims);
    expect(hash(series.data)).toBe(hash(phantom.series.data));
    expect(series.bvals).toEqual(phantom.series.bvals);
    expect(series.bvals.filter((b) => b === 0)).toHaveLength(4);
    expect(series.bvals.slice(0, 4).filter((b) => b === 0).length).toBeLessThan(4); // interleaved, not all first
    series.bvecs.forEach((g, v) => g.forEach((c, k) => expect(c).toBeCloseTo(phantom.series.bvecs[v]![k]!, 9)));
    const labels = await readNifti(written.lesions);
    expect(labels.datatype).toBe('uint8');
    expect(Array.from(labels.data)).toEqual(Array.from(phantom.lesionLabels));
    const truth = JSON.parse(await readFile(written.truth, 'utf8')) as { seed: number; lesions: { label: number }[]; noiseSigma: number };
    expect(truth.seed).toBe(21);
    expect(truth.lesions.map((l) => l.label)).toEqual(phantom.lesions.map((l) => l.label));
    expect(truth.noiseSigma).toBeCloseTo(phantom.sigma, 9);
  }, 60_000);
});
