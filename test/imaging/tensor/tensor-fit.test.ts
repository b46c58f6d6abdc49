/** The tensor fit's own guarantees: known tensors recovered, workers = in-thread, no NaN/Inf, errors. */
import { describe, expect, it } from 'vitest';
import { fitTensors } from '../../../src/main/imaging/tensor/fit.js';
import { buildTensorPlan, designMatrix } from '../../../src/main/imaging/tensor/design.js';
import { makePhantom } from '../../../src/main/imaging/tensor/phantom.js';
import { ImagingInputError, type DwiSeries } from '../../../src/main/imaging/types.js';

function eigenFa(t: ArrayLike<number>): { fa: number; md: number } {
  // FA and MD from tensor invariants (no eigen-decomposition needed).
  const [xx, xy, yy, xz, yz, zz] = Array.from(t) as [number, number, number, number, number, number];
  const md = (xx + yy + zz) / 3;
  const dev = (xx - md) ** 2 + (yy - md) ** 2 + (zz - md) ** 2 + 2 * (xy * xy + xz * xz + yz * yz);
  const norm = xx * xx + yy * yy + zz * zz + 2 * (xy * xy + xz * xz + yz * yz);
  return { fa: Math.sqrt((1.5 * dev) / norm), md };
}

function allFinite(arr: Float32Array): boolean {
  for (let i = 0; i < arr.length; i++) if (!Number.isFinite(arr[i]!)) return false;
  return true;
}

describe('fitTensors', () => {
  it('recovers the known tensors of a noise-free phantom', async () => {
    const { series, tensors, tissue } = makePhantom({ dims: [16, 12, 6], b0: 2, directions: 20, sigma: 0, border: 1 });
    const maps = await fitTensors(series, { mask: tissue, workers: 2 });
    let maxFa = 0;
    let maxMd = 0;
    let n = 0;
    for (let v = 0; v < tissue.length; v++) {
      if (!tissue[v]) continue;
      n++;
      const truth = eigenFa(tensors.subarray(6 * v, 6 * v + 6));
      maxFa = Math.max(maxFa, Math.abs(maps.fa[v]! - truth.fa));
      maxMd = Math.max(maxMd, Math.abs(maps.md[v]! - truth.md) / truth.md);
    }
    expect(n).toBeGreaterThan(500);
    expect(maxFa).toBeLessThan(1e-5);
    expect(maxMd).toBeLessThan(1e-5);
  });

  it('gives bit-identical maps with 2 workers, 1 worker and in this thread', async () => {
    const { series } = makePhantom({ dims: [20, 18, 7], sigma: 30, seed: 3 });
    const a = await fitTensors(series, { mask: 'none', workers: 2 });
    const b = await fitTensors(series, { mask: 'none', workers: 1 });
    const c = await fitTensors(series, { mask: 'none', workers: 0 });
    for (const key of ['fa', 'md', 'ad', 'rd', 'v1', 'colourFa'] as const) {
      expect(Buffer.from(a[key].buffer).equals(Buffer.from(b[key].buffer)), key).toBe(true);
      expect(Buffer.from(a[key].buffer).equals(Buffer.from(c[key].buffer)), key).toBe(true);
    }
  });

  it('reports progress from 0 to 1 per slice', async () => {
    const { series } = makePhantom({ dims: [10, 10, 5], b0: 1, directions: 12 });
    const seen: { stage: string; fraction: number }[] = [];
    await fitTensors(series, { mask: 'otsu', workers: 2, onProgress: (p) => seen.push(p) });
    const fit = seen.filter((p) => p.stage === 'fit').map((p) => p.fraction);
    expect(fit[0]).toBe(0);
    expect(fit.at(-1)).toBe(1);
    expect(fit.length).toBe(6);
    for (let i = 1; i < fit.length; i++) expect(fit[i]!).toBeGreaterThan(fit[i - 1]!);
    expect(seen.some((p) => p.stage === 'mask')).toBe(true);
  });

  it('keeps FA in [0,1] and writes no NaN/Inf on hostile data', async () => {
    const { series } = makePhantom({ dims: [12, 12, 4], b0: 2, directions: 15, sigma: 40, seed: 9 });
    const nvox = 12 * 12 * 4;
    const d = series.data;
    // Zeros, negatives, NaN, Inf, huge and tiny values in some voxels; a voxel of pure zeros.
    const nvol = series.dims[3];
    for (let v = 0; v < nvol; v++) {
      d[v * nvox + 10] = 0;
      d[v * nvox + 11] = v % 2 ? -50 : 1e-30;
      d[v * nvox + 12] = v === 3 ? NaN : 500;
      d[v * nvox + 13] = v === 5 ? Infinity : 500;
      d[v * nvox + 14] = v % 3 ? 3e38 : 1;
      d[v * nvox + 15] = v === 0 ? 1000 : 1e-3; // absurd decay
      d[v * nvox + 16] = v === 0 ? 1 : 1000; // signal rising with b
    }
    const maps = await fitTensors(series, { mask: 'none', workers: 2 });
    for (const key of ['fa', 'md', 'ad', 'rd', 'v1', 'colourFa'] as const) expect(allFinite(maps[key]), key).toBe(true);
    for (let i = 0; i < nvox; i++) {
      expect(maps.fa[i]!).toBeGreaterThanOrEqual(0);
      expect(maps.fa[i]!).toBeLessThanOrEqual(1);
      expect(maps.md[i]!).toBeGreaterThanOrEqual(0);
    }
    expect(maps.fa[12]).toBe(0); // NaN input → zeros
    expect(maps.md[13]).toBe(0); // Inf input → zeros
    for (let i = 0; i < maps.colourFa.length; i++) expect(maps.colourFa[i]! >= 0 && maps.colourFa[i]! <= 1).toBe(true);
  });

  it('writes unit V1 and colour FA = |V1|·FA; zeros outside an explicit mask', async () => {
    const { series, tissue } = makePhantom({ dims: [14, 14, 4], sigma: 10, border: 2 });
    const maps = await fitTensors(series, { mask: tissue, workers: 2 });
    expect(Array.from(maps.mask)).toEqual(Array.from(tissue));
    for (let i = 0; i < tissue.length; i++) {
      const [x, y, z] = [maps.v1[3 * i]!, maps.v1[3 * i + 1]!, maps.v1[3 * i + 2]!];
      if (tissue[i]) {
        expect(Math.hypot(x, y, z)).toBeCloseTo(1, 5);
        expect(maps.colourFa[3 * i]!).toBeCloseTo(Math.abs(x) * maps.fa[i]!, 6);
        expect(maps.colourFa[3 * i + 2]!).toBeCloseTo(Math.abs(z) * maps.fa[i]!, 6);
      } else {
        expect([maps.fa[i], maps.md[i], x, y, z]).toEqual([0, 0, 0, 0, 0]);
      }
    }
  });

  it('fits every voxel with mask "none" and the Otsu mask by default', async () => {
    const { series } = makePhantom({ dims: [16, 16, 4], border: 4, sigma: 15 });
    const all = await fitTensors(series, { mask: 'none', workers: 0 });
    expect(all.mask.every((m) => m === 1)).toBe(true);
    const otsu = await fitTensors(series, { workers: 0 });
    const inside = otsu.mask.reduce((s, m) => s + m, 0);
    expect(inside).toBeGreaterThan(0);
    expect(inside).toBeLessThan(16 * 16 * 4);
  });

  it('accepts data on an ordinary ArrayBuffer (copies it to shared memory once)', async () => {
    const { series } = makePhantom({ dims: [8, 8, 3], shared: false });
    expect(series.data.buffer instanceof SharedArrayBuffer).toBe(false);
    const maps = await fitTensors(series, { mask: 'none', workers: 2 });
    expect(maps.fa.some((v) => v > 0)).toBe(true);
  });

  it('rejects bad input with an ImagingInputError', async () => {
    const { series } = makePhantom({ dims: [6, 6, 2], b0: 1, directions: 8 });
    const withFiles: DwiSeries = { ...series, source: { ...series.source, files: ['/data/x.nii'] } };
    await expect(fitTensors({ ...withFiles, bvals: series.bvals.slice(1) })).rejects.toThrow(ImagingInputError);
    await expect(fitTensors({ ...withFiles, data: series.data.subarray(1) })).rejects.toThrow(/series data has/);
    await expect(fitTensors(withFiles, { mask: new Uint8Array(5) })).rejects.toThrow(/mask has 5 voxels/);
    // All directions the same: the tensor is not determined.
    const collinear = series.bvecs.map((g, i): [number, number, number] => (series.bvals[i]! > 0 ? [1, 0, 0] : g));
    const err = await fitTensors({ ...withFiles, bvecs: collinear }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImagingInputError);
    expect((err as ImagingInputError).message).toMatch(/non-coplanar/);
    expect((err as ImagingInputError).file).toBe('/data/x.nii');
    // Too few volumes.
    const few = { ...withFiles, dims: [6, 6, 2, 5] as [number, number, number, number], data: series.data.subarray(0, 6 * 6 * 2 * 5), bvals: series.bvals.slice(0, 5), bvecs: series.bvecs.slice(0, 5) };
    await expect(fitTensors(few)).rejects.toThrow(/at least 7 volumes/);
  });

  it('can be aborted', async () => {
    const { series } = makePhantom({ dims: [40, 40, 20] });
    const ac = new AbortController();
    const p = fitTensors(series, { mask: 'none', workers: 2, signal: ac.signal });
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
  });
});

describe('design matrix and plan', () => {
  it('is DIPY\'s design_matrix (−B with the dummy column) and floors at 1e-6 / −min(X)', () => {
    const x = designMatrix([0, 1000], [[0, 0, 0], [0.6, 0.8, 0]]);
    expect(Array.from(x.subarray(0, 7))).toEqual([-0, -0, -0, -0, -0, -0, -1]);
    const row = Array.from(x.subarray(7));
    expect(row[0]).toBeCloseTo(-360, 9);
    expect(row[1]).toBeCloseTo(-960, 9);
    expect(row[2]).toBeCloseTo(-640, 9);
    expect(row.slice(3)).toEqual([-0, -0, -0, -1]);
    const { series } = makePhantom({ dims: [2, 2, 2], b0: 2, directions: 10 });
    const plan = buildTensorPlan(series.bvals, series.bvecs);
    const full = designMatrix(series.bvals, series.bvecs);
    expect(plan.minDiffusivity).toBeCloseTo(1e-6 / -Math.min(...full), 20);
    expect(plan.minSignal).toBe(1e-4);
    expect(plan.nzero).toBe(2);
  });
});
