/**
 * Everything of DIPY's WLS tensor fit that depends on the gradient table and not on the voxel,
 * computed once per series (the "plan" the kernel runs).
 *
 * DIPY 1.6 (`dipy/reconst/dti.py`), `TensorModel(gtab, fit_method='WLS')`:
 *  - design_matrix(gtab) = -B with B[:, ] = (b·gx², 2b·gx·gy, b·gy², 2b·gx·gz, 2b·gy·gz, b·gz², 1): the
 *    6 unique tensor elements in lower-triangular order (Dxx, Dxy, Dyy, Dxz, Dyz, Dzz) plus the dummy
 *    column for ln S0 (coefficient −ln S0);
 *  - TensorModel.fit clamps the signal at min_signal = MIN_POSITIVE_SIGNAL = 1e-4 (np.maximum) when no
 *    min_signal is given (the default);
 *  - wls_fit_tensor: y = ln S; β_ols = pinv(X)·y; w = exp(X·β_ols); β = pinv(diag(w)·X)·(w·y), i.e.
 *    weighted least squares with weights w² (the OLS-predicted signal squared);
 *  - eig_from_lo_tri → decompose_tensor: eigh, sort descending, clip eigenvalues at
 *    min_diffusivity = 1e-6 / −min(X).
 *
 * For numerical headroom the kernel works with the diffusion columns divided by the largest b-value
 * (X' = X·diag(1/bscale, …, 1/bscale, 1)); that changes nothing but the conditioning. pinv(X') is
 * computed here once; the weighted normal matrix X'ᵀW²X' is assembled per voxel from 15 fourth-order
 * moments b'²·gx^a·gy^b·gz^c (a+b+c = 4), 6 second-order ones and Σw², which is the same matrix as the
 * 28 distinct products X'_ij·X'_ik, with fewer multiply-adds (for a single shell, 6 of the 15 moments
 * follow from the others since gx²+gy²+gz² = 1).
 */
import { ImagingInputError } from '../types.js';

/** DIPY's `dti.MIN_POSITIVE_SIGNAL`: the default signal floor of TensorModel.fit. */
export const MIN_POSITIVE_SIGNAL = 1e-4;

/** Lower-triangular order of the tensor elements, as DIPY: xx, xy, yy, xz, yz, zz. */
const EXPONENTS: ReadonlyArray<readonly [number, number, number]> = [
  [2, 0, 0],
  [1, 1, 0],
  [0, 2, 0],
  [1, 0, 1],
  [0, 1, 1],
  [0, 0, 2],
];
const MULTIPLICITY = [1, 2, 1, 2, 2, 1];

/** The plan the kernel runs: plain numbers and typed arrays (structured-clonable). */
export interface TensorPlan {
  nvol: number;
  /** Kernel row → volume index. Rows with an all-zero B row (b = 0 or no direction) come first. */
  volOrder: Int32Array;
  /** Number of leading rows whose diffusion columns are all zero. */
  nzero: number;
  /** pinv(X') transposed: row i (kernel order) holds the 7 coefficients that multiply ln S_i. */
  pinvT: Float64Array;
  /** X' diffusion columns, row-major nvol×6 (kernel order). */
  xr: Float64Array;
  /** Fourth-order moments, row-major nvol×15 (kernel order): (b_i/bscale)²·gx^a·gy^b·gz^c. */
  f4: Float64Array;
  /**
   * True when every diffusion-weighted row has b = bscale and a unit direction: then only 9 of the 15
   * moments are summed (`f9`, moments 1,2,3,4,5,6,7,11,12) and the other 6 follow from |g| = 1.
   */
  singleShell: boolean;
  /** The 9 summed moments for a single shell, row-major nvol×9 (empty otherwise). */
  f9: Float64Array;
  /** For tensor elements (j, k) < 6: index into the 15 moments and the factor c_j·c_k; 36 entries row-major. */
  monoIndex: Int32Array;
  monoCoef: Float64Array;
  /** Largest b-value (s/mm²): X' = X / bscale in the diffusion columns. */
  bscale: number;
  /** Signal floor before the log (DIPY's min_signal). */
  minSignal: number;
  /** Eigenvalue floor (DIPY: 1e-6 / −min(design matrix)), mm²/s. */
  minDiffusivity: number;
}

/**
 * DIPY's `design_matrix(gtab)`: nvol×7, row-major, = −B with B rows
 * (b·gx², 2b·gx·gy, b·gy², 2b·gx·gz, 2b·gy·gz, b·gz², 1).
 */
export function designMatrix(bvals: readonly number[], bvecs: readonly (readonly number[])[]): Float64Array {
  const n = bvals.length;
  const x = new Float64Array(n * 7);
  for (let i = 0; i < n; i++) {
    const b = bvals[i]!;
    const g = bvecs[i]!;
    const gx = g[0]!;
    const gy = g[1]!;
    const gz = g[2]!;
    const o = i * 7;
    x[o] = -(gx * gx * 1 * b);
    x[o + 1] = -(gx * gy * 2 * b);
    x[o + 2] = -(gy * gy * 1 * b);
    x[o + 3] = -(gx * gz * 2 * b);
    x[o + 4] = -(gy * gz * 2 * b);
    x[o + 5] = -(gz * gz * 1 * b);
    x[o + 6] = -1;
  }
  return x;
}

/** In-place Cholesky of an n×n SPD matrix (lower triangle, row-major). Returns false when not SPD. */
function cholesky(a: Float64Array, n: number): boolean {
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j]!;
    for (let k = 0; k < j; k++) d -= a[j * n + k]! * a[j * n + k]!;
    if (!(d > 1e-12 * Math.abs(a[j * n + j]!)) || !(d > 0)) return false;
    const l = Math.sqrt(d);
    a[j * n + j] = l;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j]!;
      for (let k = 0; k < j; k++) s -= a[i * n + k]! * a[j * n + k]!;
      a[i * n + j] = s / l;
    }
  }
  return true;
}

/**
 * Build the plan for a gradient table. Vectors are normalised (a zero vector stays zero).
 * Throws ImagingInputError when the table cannot determine a tensor (fewer than 7 volumes, or
 * directions that do not span the 6 tensor elements).
 */
export function buildTensorPlan(
  bvals: readonly number[],
  bvecs: readonly (readonly number[])[],
  options: { minSignal?: number; file?: string | null } = {},
): TensorPlan {
  const nvol = bvals.length;
  const file = options.file ?? null;
  if (bvecs.length !== nvol)
    throw new ImagingInputError(`${nvol} b-values but ${bvecs.length} gradient directions`, file);
  if (nvol < 7)
    throw new ImagingInputError(`a diffusion tensor needs at least 7 volumes (1 b0 + 6 directions); the series has ${nvol}`, file);
  const unit = bvecs.map((g) => {
    const n = Math.hypot(g[0]!, g[1]!, g[2]!);
    return n > 0 ? [g[0]! / n, g[1]! / n, g[2]! / n] : [0, 0, 0];
  });
  bvals.forEach((b, i) => {
    if (!Number.isFinite(b) || b < 0) throw new ImagingInputError(`b-value ${b} of volume ${i + 1} is not a finite number ≥ 0`, file);
    if (!unit[i]!.every(Number.isFinite)) throw new ImagingInputError(`gradient direction of volume ${i + 1} is not finite`, file);
  });
  const x = designMatrix(bvals, unit);
  let xmin = Infinity;
  for (let i = 0; i < x.length; i++) xmin = Math.min(xmin, x[i]!);
  const minDiffusivity = 1e-6 / -xmin;
  const bscale = Math.max(...bvals) > 0 ? Math.max(...bvals) : 1;

  // Kernel row order: rows without diffusion weighting first.
  const isZero = (i: number) => [0, 1, 2, 3, 4, 5].every((j) => x[i * 7 + j] === 0);
  const volOrder = new Int32Array(nvol);
  let r = 0;
  for (let i = 0; i < nvol; i++) if (isZero(i)) volOrder[r++] = i;
  const nzero = r;
  for (let i = 0; i < nvol; i++) if (!isZero(i)) volOrder[r++] = i;

  // X' in kernel order.
  const xs = new Float64Array(nvol * 7);
  for (let i = 0; i < nvol; i++) {
    const v = volOrder[i]!;
    for (let j = 0; j < 6; j++) xs[i * 7 + j] = x[v * 7 + j]! / bscale;
    xs[i * 7 + 6] = -1;
  }
  // pinv(X') = (X'ᵀX')⁻¹X'ᵀ by Cholesky (X' is well scaled; full column rank is required anyway).
  const ata = new Float64Array(49);
  for (let j = 0; j < 7; j++)
    for (let k = 0; k <= j; k++) {
      let s = 0;
      for (let i = 0; i < nvol; i++) s += xs[i * 7 + j]! * xs[i * 7 + k]!;
      ata[j * 7 + k] = s;
      ata[k * 7 + j] = s;
    }
  if (!cholesky(ata, 7))
    throw new ImagingInputError(
      'the gradient table cannot determine a diffusion tensor: it needs diffusion-weighted volumes in at least 6 non-coplanar directions',
      file,
    );
  const pinvT = new Float64Array(nvol * 7);
  const col = new Float64Array(7);
  for (let i = 0; i < nvol; i++) {
    // Solve (LLᵀ) p = X'_iᵀ: p is column i of pinv.
    for (let j = 0; j < 7; j++) {
      let s = xs[i * 7 + j]!;
      for (let k = 0; k < j; k++) s -= ata[j * 7 + k]! * col[k]!;
      col[j] = s / ata[j * 7 + j]!;
    }
    for (let j = 6; j >= 0; j--) {
      let s = col[j]!;
      for (let k = j + 1; k < 7; k++) s -= ata[k * 7 + j]! * col[k]!;
      col[j] = s / ata[j * 7 + j]!;
    }
    for (let j = 0; j < 7; j++) pinvT[i * 7 + j] = col[j]!;
  }

  // Moments.
  const monos: string[] = [];
  for (let a = 4; a >= 0; a--) for (let b = 4 - a; b >= 0; b--) monos.push(`${a},${b},${4 - a - b}`);
  const monoIndex = new Int32Array(36);
  const monoCoef = new Float64Array(36);
  for (let j = 0; j < 6; j++)
    for (let k = 0; k < 6; k++) {
      const e = EXPONENTS[j]!.map((v, t) => v + EXPONENTS[k]![t]!);
      monoIndex[j * 6 + k] = monos.indexOf(e.join(','));
      monoCoef[j * 6 + k] = MULTIPLICITY[j]! * MULTIPLICITY[k]!;
    }
  const f4 = new Float64Array(nvol * 15);
  const xr = new Float64Array(nvol * 6);
  for (let i = 0; i < nvol; i++) {
    const v = volOrder[i]!;
    const bp = bvals[v]! / bscale;
    const g = unit[v]!;
    monos.forEach((m, t) => {
      const [a, b, c] = m.split(',').map(Number) as [number, number, number];
      f4[i * 15 + t] = bp * bp * g[0]! ** a * g[1]! ** b * g[2]! ** c;
    });
    for (let j = 0; j < 6; j++) xr[i * 6 + j] = xs[i * 7 + j]!;
  }
  const singleShell = Array.from({ length: nvol - nzero }, (_, r) => volOrder[nzero + r]!).every(
    (v) => bvals[v] === bscale && Math.abs(Math.hypot(unit[v]![0]!, unit[v]![1]!, unit[v]![2]!) - 1) < 1e-12,
  );
  const DIRECT = [1, 2, 3, 4, 5, 6, 7, 11, 12];
  const f9 = new Float64Array(singleShell ? nvol * 9 : 0);
  if (singleShell) for (let i = 0; i < nvol; i++) DIRECT.forEach((m, t) => (f9[i * 9 + t] = f4[i * 15 + m]!));
  return {
    nvol,
    volOrder,
    nzero,
    pinvT,
    xr,
    f4,
    singleShell,
    f9,
    monoIndex,
    monoCoef,
    bscale,
    minSignal: options.minSignal ?? MIN_POSITIVE_SIGNAL,
    minDiffusivity,
  };
}
