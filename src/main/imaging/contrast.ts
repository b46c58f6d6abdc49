/**
 * Does a series carry diffusion contrast at all? Some exports (the GE sample in ../shared/data/dwi-ge
 * among them) store every diffusion-weighted volume as a copy of the b=0 volume: the tensor fit then
 * gives FA 0 and an empty overlay everywhere, which looks like a result. This check says so instead.
 *
 * Per diffusion-weighted volume v (b > 50 s/mm²), inside the brain mask (the Otsu mask of the fit, see
 * mask.ts), against the mean b=0 volume S0:
 *
 *   attenuation a_v = 1 − mean(S_v) / mean(S0)           the mean signal drop the diffusion weighting caused
 *   difference  d_v = mean(|S_v − S0|) / mean(S0)        how different the volume is at all (0 = a copy)
 *
 * A volume shows NO diffusion contrast when |a_v| < 5 %. Why the mean drop and why 5 %:
 *
 * - Real diffusion weighting attenuates: S_b = S0·exp(−b·ADC). Inside a brain mask the mean ADC is at least
 *   ~0.7×10⁻³ mm²/s (white matter ≈ 0.7, grey matter ≈ 0.8–0.9, CSF ≈ 3), so the expected mean drop is
 *   ≥ 13 % at b = 200, ≥ 30 % at b = 500 and ≥ 50 % at b = 1000 s/mm² (measured here: 80 % on the Siemens
 *   b = 2000 sample). 5 % is well under half the smallest of these.
 * - Noise does not move the mean: zero-mean noise averages out over the mask (≥ 1000 voxels: the standard
 *   error of the mean is ≤ σ·√2/√1000 ≈ 0.9 % of S0 even at an SNR of 5), whereas a per-voxel difference
 *   like d_v is ≈ 1.6σ/S0 for two noisy copies of one image (8 % at SNR 20) and cannot tell "a copy plus
 *   noise" from "a little contrast". d_v is reported (0 means an exact copy, as in the GE sample), not
 *   decided on. The magnitude noise floor (Rician bias) only raises heavily attenuated volumes, never
 *   pulls a copy of S0 away from it.
 * - Volumes with 50 < b < 200 s/mm² (IVIM-style) are expected to drop only 3–13 %, too close to the
 *   threshold to tell: they are reported but not decided on.
 *
 * Outcome: 'absent' when every decisive volume (b ≥ 200) shows no contrast; 'partial' when some do (they
 * add nothing to the fit); 'present' when none does; 'undetermined' when there is no b=0 volume, no
 * decisive volume, or no signal inside the mask.
 */
import { B0_THRESHOLD } from './fsl-gradients.js';
import { otsuBrainMask } from './mask.js';
import type { DwiSeries } from './types.js';

/** |mean drop| below this: the volume carries no diffusion contrast. */
export const NO_CONTRAST_ATTENUATION = 0.05;
/** Volumes below this b-value do not decide (their expected drop is too small to tell from 5 %). */
export const DECISIVE_B = 200;

export interface DiffusionContrast {
  status: 'present' | 'absent' | 'partial' | 'undetermined';
  /** Indices (0-based) of the diffusion-weighted volumes (b ≥ 200) without contrast. */
  flatVolumes: number[];
  /** Diffusion-weighted volumes that decided (b ≥ 200). */
  decisiveVolumes: number;
  /** Smallest and largest mean drop over the decisive volumes; null when there were none. */
  attenuation: { min: number; max: number } | null;
  /** Largest per-voxel difference d_v over the decisive volumes (0: exact copies of b=0). */
  maxDifference: number | null;
  /** Voxels the check looked at (the brain mask). */
  voxels: number;
  /** One sentence for people, or null when there is nothing to say ('present'). */
  message: string | null;
}

function volumeList(indices: number[]): string {
  const shown = indices.slice(0, 8).map((i) => String(i + 1));
  return indices.length > 8 ? `${shown.join(', ')}, …` : shown.join(', ');
}

/**
 * The check above. `mask`: the fit's brain mask (nx·ny·nz, non-zero = brain); when absent (an unmasked
 * fit) the Otsu mask is computed here, since background voxels, where S_v ≈ S0 ≈ noise, would dilute the
 * drop. An empty mask falls back to the voxels where the mean b=0 is positive.
 */
export function diffusionContrast(series: DwiSeries, mask?: Uint8Array | null): DiffusionContrast {
  const [nx, ny, nz, nv] = series.dims;
  const nvox = nx * ny * nz;
  const b0s = series.bvals.map((b, i) => (b <= B0_THRESHOLD ? i : -1)).filter((i) => i >= 0);
  const dws = series.bvals.map((b, i) => (b >= DECISIVE_B ? i : -1)).filter((i) => i >= 0 && i < nv);
  const undetermined = (message: string, voxels = 0): DiffusionContrast => ({
    status: 'undetermined',
    flatVolumes: [],
    decisiveVolumes: dws.length,
    attenuation: null,
    maxDifference: null,
    voxels,
    message,
  });
  if (b0s.length === 0) return undetermined(`Diffusion contrast not checked: the series has no b=0 volume (b ≤ ${B0_THRESHOLD} s/mm²).`);
  if (dws.length === 0) return undetermined(`Diffusion contrast not checked: no volume has b ≥ ${DECISIVE_B} s/mm².`);

  const data = series.data;
  const s0 = new Float64Array(nvox);
  for (const v of b0s) {
    const base = v * nvox;
    for (let i = 0; i < nvox; i++) s0[i] = s0[i]! + data[base + i]!;
  }
  for (let i = 0; i < nvox; i++) s0[i] = s0[i]! / b0s.length;

  let brain: Uint8Array | null = mask && mask.length === nvox ? mask : null;
  if (!brain) {
    try {
      brain = otsuBrainMask(series);
    } catch {
      brain = null;
    }
  }
  const inside: number[] = [];
  if (brain) for (let i = 0; i < nvox; i++) if (brain[i]) inside.push(i);
  if (inside.length === 0) for (let i = 0; i < nvox; i++) if (s0[i]! > 0) inside.push(i);
  let s0Sum = 0;
  for (const i of inside) s0Sum += s0[i]!;
  const s0Mean = inside.length ? s0Sum / inside.length : 0;
  if (!(s0Mean > 0)) return undetermined('Diffusion contrast not checked: the b=0 volume has no signal inside the brain mask.', inside.length);

  const flat: number[] = [];
  let minA = Infinity;
  let maxA = -Infinity;
  let maxD = 0;
  for (const v of dws) {
    const base = v * nvox;
    let sum = 0;
    let absDiff = 0;
    for (const i of inside) {
      const s = data[base + i]!;
      sum += s;
      absDiff += Math.abs(s - s0[i]!);
    }
    const attenuation = 1 - sum / inside.length / s0Mean;
    const difference = absDiff / inside.length / s0Mean;
    minA = Math.min(minA, attenuation);
    maxA = Math.max(maxA, attenuation);
    maxD = Math.max(maxD, difference);
    if (Math.abs(attenuation) < NO_CONTRAST_ATTENUATION) flat.push(v);
  }
  const round = (x: number) => Math.round(x * 10_000) / 10_000;
  const result = {
    flatVolumes: flat,
    decisiveVolumes: dws.length,
    attenuation: { min: round(minA), max: round(maxA) },
    maxDifference: round(maxD),
    voxels: inside.length,
  };
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  if (flat.length === dws.length) {
    const copies = maxD === 0 ? 'are copies of the b=0 volume' : 'equal the b=0 volume within noise';
    return {
      status: 'absent',
      ...result,
      message:
        `No diffusion contrast: all ${dws.length} diffusion-weighted volumes ${copies} (mean signal drop ${pct(Math.max(Math.abs(minA), Math.abs(maxA)))} ` +
        `inside the brain mask, expected ≥ 13 %). FA, MD and the colour map of this series mean nothing; check the export or the acquisition.`,
    };
  }
  if (flat.length > 0) {
    return {
      status: 'partial',
      ...result,
      message: `${flat.length} of ${dws.length} diffusion-weighted volumes show no diffusion contrast (volume${flat.length === 1 ? '' : 's'} ${volumeList(flat)}: signal drop under ${pct(NO_CONTRAST_ATTENUATION)}); they add nothing to the fit.`,
    };
  }
  return { status: 'present', ...result, message: null };
}
