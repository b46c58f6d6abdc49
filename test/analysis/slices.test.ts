/**
 * The CNN input window and resampling (src/main/analysis/slices.ts), against analytic expectations:
 * bilinear resampling reproduces a linear ramp exactly, a circle in millimetres stays a circle whatever
 * the voxel shape, and a smooth map survives the way there and back.
 */
import { describe, expect, it } from 'vitest';
import { FEATURE_NAMES, type VoxelFeatures } from '../../src/main/analysis/clusters.js';
import { INPUT_CHANNELS, INPUT_SIZE, inputMapToSlice, pixelToVoxel, sliceInputs, sliceWindow } from '../../src/main/analysis/slices.js';

/** Features where every feature channel holds f(x mm, y mm) on the mask. */
function syntheticFeatures(mask: Uint8Array, dims: [number, number, number], voxelMm: [number, number, number], f: (xMm: number, yMm: number) => number): VoxelFeatures {
  const [nx, ny] = dims;
  const voxels = Int32Array.from(Array.from(mask.keys()).filter((i) => mask[i]));
  const width = FEATURE_NAMES.length;
  const values = new Float32Array(voxels.length * width);
  voxels.forEach((vox, i) => {
    const x = vox % nx;
    const y = Math.floor(vox / nx) % ny;
    values.fill(f(x * voxelMm[0], y * voxelMm[1]), i * width, (i + 1) * width);
  });
  return { voxels, values, ranges: FEATURE_NAMES.map((name) => ({ name, low: 0, high: 1 })) };
}

/** A cylinder of radius r mm around the slab's centre, through every slice. */
function cylinder(dims: [number, number, number], voxelMm: [number, number, number], radiusMm: number): Uint8Array {
  const [nx, ny, nz] = dims;
  const mask = new Uint8Array(nx * ny * nz);
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++) if (Math.hypot((x - (nx - 1) / 2) * voxelMm[0], (y - (ny - 1) / 2) * voxelMm[1]) <= radiusMm) mask[(z * ny + y) * nx + x] = 1;
  return mask;
}

const C = INPUT_CHANNELS.length;

describe('CNN slice inputs', () => {
  it('reproduce a linear ramp exactly inside the brain (bilinear resampling)', () => {
    const dims: [number, number, number] = [60, 50, 4];
    const mm: [number, number, number] = [2, 2.5, 3];
    const mask = cylinder(dims, mm, 55);
    const ramp = (x: number, y: number) => 0.2 + x / 300 + y / 500;
    const inputs = sliceInputs(syntheticFeatures(mask, dims, mm, ramp), new Uint8Array(mask.length), mask, dims, mm);
    expect(inputs.slices).toEqual([0, 1, 2, 3]);
    expect(inputs.data.length).toBe(4 * INPUT_SIZE * INPUT_SIZE * C);
    let checked = 0;
    for (let v = 0; v < INPUT_SIZE; v++)
      for (let u = 0; u < INPUT_SIZE; u++) {
        const [x, y] = pixelToVoxel(inputs.window, u, v);
        // Well inside the mask, all four neighbours are brain voxels: the value is the ramp at that point.
        if (Math.hypot((x - (dims[0] - 1) / 2) * mm[0], (y - (dims[1] - 1) / 2) * mm[1]) > 48) continue;
        const expected = ramp(x * mm[0], y * mm[1]);
        expect(inputs.data[((2 * INPUT_SIZE + v) * INPUT_SIZE + u) * C]).toBeCloseTo(expected, 5);
        checked++;
      }
    expect(checked).toBeGreaterThan(5000);
  });

  it('cut one square window in millimetres: a circle stays a circle with 2 × 1 mm voxels, and the whole brain is inside', () => {
    const dims: [number, number, number] = [48, 96, 3];
    const mm: [number, number, number] = [2, 1, 4];
    const mask = cylinder(dims, mm, 40);
    const labels = new Uint8Array(mask.length).map((_, i) => (mask[i] ? 4 : 0));
    const inputs = sliceInputs(syntheticFeatures(mask, dims, mm, () => 0.5), labels, mask, dims, mm);
    const cluster = INPUT_CHANNELS.indexOf('cluster');
    const inside = (u: number, v: number) => inputs.data[((1 * INPUT_SIZE + v) * INPUT_SIZE + u) * C + cluster]! > 0.5;
    const row = Array.from({ length: INPUT_SIZE }, (_, u) => inside(u, INPUT_SIZE / 2)).filter(Boolean).length;
    const column = Array.from({ length: INPUT_SIZE }, (_, v) => inside(INPUT_SIZE / 2, v)).filter(Boolean).length;
    expect(Math.abs(row - column)).toBeLessThanOrEqual(2);
    // 80 mm of brain plus 3 voxels of margin each side, in a window of side ≥ 80 mm: most of the input.
    expect(row).toBeGreaterThan(0.8 * INPUT_SIZE);
    expect(row).toBeLessThan(INPUT_SIZE);
    const w = sliceWindow(mask, dims, mm);
    for (let i = 0; i < mask.length; i++) {
      if (!mask[i]) continue;
      const xMm = (i % dims[0]) * mm[0];
      const yMm = (Math.floor(i / dims[0]) % dims[1]) * mm[1];
      expect(xMm).toBeGreaterThan(w.x0);
      expect(xMm).toBeLessThan(w.x0 + w.side);
      expect(yMm).toBeGreaterThan(w.y0);
      expect(yMm).toBeLessThan(w.y0 + w.side);
    }
  });

  it('leave out slices with little brain, and refuse an empty mask', () => {
    const dims: [number, number, number] = [40, 40, 5];
    const mm: [number, number, number] = [2, 2, 2];
    const mask = cylinder(dims, mm, 30);
    mask.fill(0, 0, 40 * 40); // slice 0: nothing
    mask[40 * 40 * 4 + 20 * 40 + 20] = 0;
    mask.fill(0, 40 * 40 * 4, 40 * 40 * 5);
    mask[40 * 40 * 4 + 20 * 40 + 20] = 1; // slice 4: one voxel
    const inputs = sliceInputs(syntheticFeatures(mask, dims, mm, () => 0.5), new Uint8Array(mask.length), mask, dims, mm);
    expect(inputs.slices).toEqual([1, 2, 3]);
    expect(() => sliceInputs(syntheticFeatures(new Uint8Array(mask.length), dims, mm, () => 0), new Uint8Array(mask.length), new Uint8Array(mask.length), dims, mm)).toThrow(/brain mask is empty/);
  });

  it('bring a smooth 128 × 128 map back onto the voxel grid', () => {
    const dims: [number, number, number] = [70, 56, 1];
    const mm: [number, number, number] = [1.8, 2.2, 5];
    const mask = cylinder(dims, mm, 55);
    const smooth = (x: number, y: number) => 0.5 + 0.3 * Math.sin(x / 20) * Math.cos(y / 15);
    const inputs = sliceInputs(syntheticFeatures(mask, dims, mm, smooth), new Uint8Array(mask.length), mask, dims, mm);
    const map = new Float32Array(INPUT_SIZE * INPUT_SIZE).map((_, p) => inputs.data[p * C]!);
    const back = inputMapToSlice(map, inputs.window, dims[0], dims[1]);
    let worst = 0;
    for (let y = 0; y < dims[1]; y++)
      for (let x = 0; x < dims[0]; x++) {
        if (Math.hypot((x - (dims[0] - 1) / 2) * mm[0], (y - (dims[1] - 1) / 2) * mm[1]) > 48) continue;
        worst = Math.max(worst, Math.abs(back[y * dims[0] + x]! - smooth(x * mm[0], y * mm[1])));
      }
    expect(worst).toBeLessThan(0.01);
    expect(() => inputMapToSlice(new Float32Array(10), inputs.window, dims[0], dims[1])).toThrow(/128×128 values, got 10/);
  });
});
