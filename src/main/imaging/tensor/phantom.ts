/**
 * A synthetic diffusion phantom with known tensors, for tests and the benchmark.
 *
 * Gradient table: `b0` volumes at b = 0, then `directions` unit vectors on a Fibonacci (golden-spiral)
 * half-sphere at b = `bvalue`. Tensors vary smoothly across the volume: the principal direction turns
 * with x and z, FA rises with y (from isotropic to ~0.9), MD ~0.7–0.9e-3 mm²/s; a border of `border`
 * voxels holds no tissue (S0 = 0, noise only), as the air around a head. Noise is Rician:
 * |S + σ·(n₁ + i·n₂)| with n₁, n₂ standard normal from a seeded generator, so a phantom is reproducible.
 */
import type { DwiSeries } from '../types.js';
import { mulberry32 } from '../../../shared/random.js';

export interface PhantomOptions {
  dims: [number, number, number];
  b0?: number;
  directions?: number;
  bvalue?: number;
  /** Signal at b = 0 in tissue. */
  s0?: number;
  /** Noise standard deviation per channel (Rician magnitude); 0 = no noise. */
  sigma?: number;
  /** Voxels of noise-only background around the tissue. */
  border?: number;
  seed?: number;
  /** Allocate the data on a SharedArrayBuffer. */
  shared?: boolean;
}

export interface Phantom {
  series: DwiSeries;
  /** The true tensor per voxel, lower-triangular order (xx, xy, yy, xz, yz, zz), 6 per voxel (0 outside tissue). */
  tensors: Float64Array;
  /** 1 in tissue. */
  tissue: Uint8Array;
}

/** Fibonacci directions on the upper half sphere. */
export function fibonacciDirections(n: number): [number, number, number][] {
  const golden = Math.PI * (3 - Math.sqrt(5));
  return Array.from({ length: n }, (_, k) => {
    const z = 1 - (k + 0.5) / n;
    const r = Math.sqrt(1 - z * z);
    const t = golden * k;
    return [r * Math.cos(t), r * Math.sin(t), z];
  });
}

export function makePhantom(options: PhantomOptions): Phantom {
  const [nx, ny, nz] = options.dims;
  const nb0 = options.b0 ?? 4;
  const ndir = options.directions ?? 64;
  const bvalue = options.bvalue ?? 1000;
  const s0 = options.s0 ?? 1000;
  const sigma = options.sigma ?? 20;
  const border = options.border ?? 2;
  const rand = mulberry32(options.seed ?? 1);
  const nvol = nb0 + ndir;
  const nvox = nx * ny * nz;
  const bvals = [...Array<number>(nb0).fill(0), ...Array<number>(ndir).fill(bvalue)];
  const bvecs: [number, number, number][] = [
    ...Array.from({ length: nb0 }, (): [number, number, number] => [0, 0, 0]),
    ...fibonacciDirections(ndir),
  ];
  const data = new Float32Array(options.shared ? new SharedArrayBuffer(nvox * nvol * 4) : new ArrayBuffer(nvox * nvol * 4));
  const tensors = new Float64Array(nvox * 6);
  const tissue = new Uint8Array(nvox);
  let spare: number | null = null;
  const gauss = () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = rand();
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
  const adc = new Float64Array(nvol);
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++) {
        const vox = (z * ny + y) * nx + x;
        const inside =
          x >= border && x < nx - border && y >= border && y < ny - border && z >= Math.min(border, 1) && z < nz - Math.min(border, 1);
        let signal0 = 0;
        if (inside) {
          tissue[vox] = 1;
          signal0 = s0;
          // Principal direction from angles; eigenvalues from a target FA.
          const theta = (Math.PI * (x + 0.5)) / nx; // polar
          const phi = (2 * Math.PI * (z + 0.5)) / Math.max(nz, 1) + 0.3; // azimuth
          const e1: [number, number, number] = [Math.sin(theta) * Math.cos(phi), Math.sin(theta) * Math.sin(phi), Math.cos(theta)];
          const frac = ny > 1 ? y / (ny - 1) : 0.5;
          const l1 = 0.8e-3 + 1.2e-3 * frac;
          const l2 = 0.8e-3 - 0.45e-3 * frac;
          const l3 = 0.8e-3 - 0.55e-3 * frac;
          // Orthonormal e2, e3.
          const a: [number, number, number] = Math.abs(e1[0]) < 0.9 ? [1, 0, 0] : [0, 1, 0];
          let e2: [number, number, number] = [e1[1] * a[2] - e1[2] * a[1], e1[2] * a[0] - e1[0] * a[2], e1[0] * a[1] - e1[1] * a[0]];
          const n2 = Math.hypot(...e2);
          e2 = [e2[0] / n2, e2[1] / n2, e2[2] / n2];
          const e3: [number, number, number] = [e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2], e1[0] * e2[1] - e1[1] * e2[0]];
          const d = (i: number, j: number) => l1 * e1[i]! * e1[j]! + l2 * e2[i]! * e2[j]! + l3 * e3[i]! * e3[j]!;
          const t = [d(0, 0), d(0, 1), d(1, 1), d(0, 2), d(1, 2), d(2, 2)];
          tensors.set(t, vox * 6);
          for (let v = 0; v < nvol; v++) {
            const [gx, gy, gz] = bvecs[v]!;
            adc[v] = t[0]! * gx * gx + 2 * t[1]! * gx * gy + t[2]! * gy * gy + 2 * t[3]! * gx * gz + 2 * t[4]! * gy * gz + t[5]! * gz * gz;
          }
        }
        for (let v = 0; v < nvol; v++) {
          const clean = signal0 > 0 ? signal0 * Math.exp(-bvals[v]! * adc[v]!) : 0;
          const s = sigma > 0 ? Math.hypot(clean + sigma * gauss(), sigma * gauss()) : clean;
          data[v * nvox + vox] = s;
        }
      }
  const series: DwiSeries = {
    dims: [nx, ny, nz, nvol],
    data,
    pixdim: [2, 2, 2],
    affine: [
      [2, 0, 0, -nx],
      [0, 2, 0, -ny],
      [0, 0, 2, -nz],
      [0, 0, 0, 1],
    ],
    bvals,
    bvecs,
    source: { kind: 'nifti', files: [], seriesDescription: 'synthetic DTI phantom' },
  };
  return { series, tensors, tissue };
}

/** FSL .bval / .bvec text for a gradient table (what dcm2niix writes: one row of b, three rows of g). */
export function fslGradientText(bvals: readonly number[], bvecs: readonly (readonly number[])[]): { bval: string; bvec: string } {
  const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toPrecision(12));
  return {
    bval: bvals.map(fmt).join(' ') + '\n',
    bvec: [0, 1, 2].map((c) => bvecs.map((g) => fmt(g[c]!)).join(' ')).join('\n') + '\n',
  };
}
