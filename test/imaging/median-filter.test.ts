/**
 * The 3×3×3 median filter (mask.ts) against a plain reference: gather the 27 neighbours with scipy's
 * 'reflect' edges (d c b a | a b c d | d c b a), sort, take the 14th. Random and tie-heavy volumes,
 * sizes down to one voxel along an axis.
 */
import { describe, expect, it } from 'vitest';
import { medianFilter3d } from '../../src/main/imaging/mask.js';
import { mulberry32 } from '../../src/shared/random.js';

function reflect(p: number, n: number): number {
  if (n === 1) return 0;
  let q = p % (2 * n);
  if (q < 0) q += 2 * n;
  return q < n ? q : 2 * n - 1 - q;
}

function referenceMedian(v: Float64Array, [nx, ny, nz]: [number, number, number]): Float64Array {
  const out = new Float64Array(v.length);
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++) {
        const w: number[] = [];
        for (let dz = -1; dz <= 1; dz++) for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) w.push(v[(reflect(z + dz, nz) * ny + reflect(y + dy, ny)) * nx + reflect(x + dx, nx)]!);
        w.sort((a, b) => a - b);
        out[(z * ny + y) * nx + x] = w[13]!;
      }
  return out;
}

describe('3×3×3 median filter', () => {
  const random = mulberry32(42);
  const cases: { dims: [number, number, number]; values: () => number }[] = [
    { dims: [1, 1, 1], values: () => random() },
    { dims: [2, 3, 1], values: () => random() * 100 },
    { dims: [5, 4, 3], values: () => Math.floor(random() * 3) }, // ties everywhere
    { dims: [17, 9, 6], values: () => (random() < 0.1 ? 1e6 : random()) }, // outliers
    { dims: [8, 8, 8], values: () => -random() },
  ];
  for (const { dims, values } of cases) {
    it(`matches the sorted-neighbourhood reference on ${dims.join('×')}, one and two passes`, () => {
      const volume = Float64Array.from({ length: dims[0] * dims[1] * dims[2] }, values);
      const once = referenceMedian(volume, dims);
      expect(Array.from(medianFilter3d(volume, dims, 1, 1))).toEqual(Array.from(once));
      expect(Array.from(medianFilter3d(volume, dims, 1, 2))).toEqual(Array.from(referenceMedian(once, dims)));
    });
  }
});
