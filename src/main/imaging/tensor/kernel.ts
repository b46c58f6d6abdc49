/**
 * The per-voxel WLS tensor fit (DIPY 1.6 `wls_fit_tensor`, see design.ts) over whole slices.
 *
 * The same module runs in the caller's thread (fit.ts with `workers: 0`) and in the worker threads,
 * whose entry file fit.worker.ts imports it (see fit-job.ts); it is bundled into
 * dist/workers/tensor-fit.cjs like any other import.
 *
 * Per voxel, with the plan's precomputed tables and no allocation:
 *   y = ln max(S, min_signal)                       (gathered for a block of voxels at a time; ln from
 *                                                    the float32 bits by a table, |error| ≤ 2e-15)
 *   β_ols = pinv(X')·y                              (7×nvol)
 *   η = X'·β_ols, w² = exp(2(η − η_b0))             (the scale of w cancels in WLS; exp by a table,
 *                                                    relative error ≤ 1e-15)
 *   N = X'ᵀW²X' (from 15 — 9 for a single shell — + 6 + 1 weighted moments), r = X'ᵀW²y,
 *   Cholesky solve → β
 *   D from β, closed-form eigenvalues of the symmetric 3×3 (trigonometric), V1 by cross products,
 *   eigenvalues clipped at min_diffusivity, FA/MD/AD/RD/V1/colour FA.
 * The gather and the per-voxel fit are separate inner functions: TurboFan compiles the smaller
 * functions into markedly faster code than one big loop nest (~25 % here).
 * A voxel whose signal is not finite gets zeros; a weighted system that is not positive definite falls
 * back to the OLS estimate (DIPY would return its pinv's minimum-norm solution there).
 */
import type { TensorMaps } from '../types.js';
import type { TensorPlan } from './design.js';

/** The output maps' arrays are part of the input: the kernel fills them in place. */
export interface KernelInput extends Pick<TensorMaps, 'fa' | 'md' | 'ad' | 'rd' | 'v1' | 'colourFa'> {
  plan: TensorPlan;
  dims: [number, number, number];
  /** nx*ny*nz*nvol, volume-major (NIfTI order). */
  data: Float32Array;
  /** 1 = fit; null = fit every voxel. */
  mask: Uint8Array | null;
}

/**
 * Fit the slices `nextSlice()` hands out until it returns ≥ nz, calling `sliceDone(z)` after each.
 * Outputs must be zero-filled beforehand (masked-out voxels are not written).
 */
export function fitTensorSlices(input: KernelInput, nextSlice: () => number, sliceDone: (z: number) => void): void {
  const plan = input.plan;
  const nx = input.dims[0];
  const ny = input.dims[1];
  const nz = input.dims[2];
  const nxy = nx * ny;
  const nvox = nxy * nz;
  const data = input.data;
  const mask = input.mask;
  const faOut = input.fa;
  const mdOut = input.md;
  const adOut = input.ad;
  const rdOut = input.rd;
  const v1Out = input.v1;
  const cfaOut = input.colourFa;
  const nvol = plan.nvol;
  const nzero = plan.nzero;
  const PT = plan.pinvT;
  const XR = plan.xr;
  const F4 = plan.f4;
  const F9 = plan.f9;
  const singleShell = plan.singleShell;
  const MI = plan.monoIndex;
  const MC = plan.monoCoef;
  const minSignal = plan.minSignal;
  const minD = plan.minDiffusivity;
  const invScale = 1 / plan.bscale;
  const TWO_PI_3 = 2.0943951023931957;

  // ln of a float32 from its bits: ln S = e·ln2 − ln c_j + ln(1 + r), r = m·c_j − 1 (exact, |r| < 2^-7.9)
  // with c_j ≈ 1/m for the top 7 mantissa bits, rounded to 12 bits so m·c_j is exact. Error ≤ 2 ulp.
  const bits = new Int32Array(data.buffer, data.byteOffset, data.length);
  const LOG_C = new Float64Array(128);
  const LOG_L = new Float64Array(128);
  for (let j = 0; j < 128; j++) {
    const c = Math.round(4096 / (1 + (j + 0.5) / 128)) / 4096;
    LOG_C[j] = c;
    LOG_L[j] = -Math.log(c);
  }
  const LN2 = 0.6931471805599453;
  const logMin = Math.log(minSignal);
  // Largest float32 bit pattern whose value is ≤ minSignal: S > minSignal ⇔ bits > minBits (S ≥ 0).
  const f32 = new Float32Array(1);
  const i32 = new Int32Array(f32.buffer);
  f32[0] = minSignal;
  const minBits = f32[0]! > minSignal ? i32[0]! - 1 : i32[0]!;
  // exp(x), |x| < 700: x = (k/64)·ln2 + r, |r| ≤ ln2/128; 2^(k/64) from two tables; error ≤ 3 ulp.
  const EXP_T = new Float64Array(64);
  for (let j = 0; j < 64; j++) EXP_T[j] = 2 ** (j / 64);
  const POW2 = new Float64Array(2124);
  for (let j = 0; j < 2124; j++) POW2[j] = 2 ** (j - 1100);
  const N_LN2 = 64 / Math.LN2;
  const LN2N_HI = 6.93147180369123816490e-01 / 64;
  const LN2N_LO = 1.90821492927058770002e-10 / 64;
  const MAGIC = 6755399441055744.0; // 1.5·2^52: (x + MAGIC) − MAGIC rounds x to an integer

  const CH = 128;
  const volBase = new Float64Array(nvol);
  for (let i = 0; i < nvol; i++) volBase[i] = plan.volOrder[i]! * nvox;
  const Y = new Float64Array(CH * nvol);
  const W = new Float64Array(nvol);
  const S4 = new Float64Array(15);
  const A = new Float64Array(49);
  const R = new Float64Array(7);

  const gather = (start: number, len: number): void => {
    // ln max(S, min_signal) for the block, voxel-major: Y[t*nvol + i]. Masked-out voxels are
    // computed too (cheaper than testing) and ignored.
    for (let i = 0; i < nvol; i++) {
      const base = volBase[i]! + start;
      for (let t = 0, o = i; t < len; t++, o += nvol) {
        const b = bits[base + t]!;
        const mant = b & 0x7fffff;
        const j = mant >> 16;
        const r = (1 + mant * 1.1920928955078125e-7) * LOG_C[j]! - 1;
        const r2 = r * r;
        let y = ((b >> 23) - 127) * LN2 + (LOG_L[j]! + (r + r2 * (-0.5 + r * 0.3333333333333333) +
          r2 * r2 * (-0.25 + r * 0.2 + r2 * (-0.16666666666666666 + r * 0.14285714285714285))));
        if (b <= minBits) y = logMin; // ≤ min_signal, also negative values and ±0
        else if (b >= 0x7f800000) y = NaN; // Inf or NaN: the voxel gets zeros
        Y[o] = y;
      }
    }
  };

  // Fit one voxel whose ln S are Y[o .. o+nvol) and write its maps at index vox.
  const fitVoxel = (o: number, vox: number): void => {
    // OLS: β = pinv(X')·y
    let c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0, c6 = 0;
    for (let i = 0, p = 0; i < nvol; i++, p += 7) {
      const y = Y[o + i]!;
      c0 += PT[p]! * y;
      c1 += PT[p + 1]! * y;
      c2 += PT[p + 2]! * y;
      c3 += PT[p + 3]! * y;
      c4 += PT[p + 4]! * y;
      c5 += PT[p + 5]! * y;
      c6 += PT[p + 6]! * y;
    }
    if (!Number.isFinite(c0 + c1 + c2 + c3 + c4 + c5 + c6)) return; // non-finite signal: zeros

    // Weights w_i² = exp(2(η_i − η_b0)) with η = X'·β_ols, i.e. relative to the b0 prediction (the
    // scale of the weights cancels in WLS), and the second-order sums. Rows without diffusion
    // weighting have w = 1. Should a weight overflow (an absurd OLS fit), redo relative to max η.
    let sw = 0, swy = 0;
    let t0 = 0, t1 = 0, t2 = 0, t3 = 0, t4 = 0, t5 = 0;
    let u0 = 0, u1 = 0, u2 = 0, u3 = 0, u4 = 0, u5 = 0;
    let shift = 0;
    for (let attempt = 0; attempt < 2; attempt++) {
      const w0 = attempt === 0 ? 1 : Math.exp(-shift);
      sw = 0; swy = 0;
      for (let i = 0; i < nzero; i++) {
        W[i] = w0;
        sw += w0;
        swy += w0 * Y[o + i]!;
      }
      t0 = 0; t1 = 0; t2 = 0; t3 = 0; t4 = 0; t5 = 0;
      u0 = 0; u1 = 0; u2 = 0; u3 = 0; u4 = 0; u5 = 0;
      let xmax = 0;
      for (let i = nzero, q = nzero * 6; i < nvol; i++, q += 6) {
        const x0 = XR[q]!, x1 = XR[q + 1]!, x2 = XR[q + 2]!, x3 = XR[q + 3]!, x4 = XR[q + 4]!, x5 = XR[q + 5]!;
        const x = 2 * (x0 * c0 + x1 * c1 + x2 * c2 + x3 * c3 + x4 * c4 + x5 * c5) - shift;
        if (x > xmax) xmax = x;
        let w = 0;
        if (x > -700 && x < 700) {
          const kd = x * N_LN2 + MAGIC - MAGIC;
          const r = x - kd * LN2N_HI - kd * LN2N_LO;
          const k = kd | 0;
          const r2 = r * r;
          w = POW2[(k >> 6) + 1100]! * EXP_T[k & 63]! *
            (1 + r + r2 * (0.5 + r * 0.16666666666666666) + r2 * r2 * (0.041666666666666664 + r * 0.008333333333333333));
        }
        W[i] = w;
        const u = w * Y[o + i]!;
        sw += w;
        swy += u;
        t0 += w * x0; t1 += w * x1; t2 += w * x2; t3 += w * x3; t4 += w * x4; t5 += w * x5;
        u0 += u * x0; u1 += u * x1; u2 += u * x2; u3 += u * x3; u4 += u * x4; u5 += u * x5;
      }
      if (!(xmax >= 700)) break;
      shift += xmax; // weights relative to the largest instead
    }
    // Fourth-order moments Σ w²·b'²·g^α: 15 sums, or for a single shell (every b'=1, |g|=1) 9 sums
    // and the other 6 from gx²+gy²+gz² = 1 and the second-order sums t_j = −c_j·Σ w²·m_j(g).
    if (singleShell) {
      let m1 = 0, m2 = 0, m3 = 0, m4 = 0, m5 = 0, m6 = 0, m7 = 0, m11 = 0, m12 = 0;
      for (let i = nzero, q = nzero * 9; i < nvol; i++, q += 9) {
        const w = W[i]!;
        m1 += w * F9[q]!; m2 += w * F9[q + 1]!; m3 += w * F9[q + 2]!; m4 += w * F9[q + 3]!; m5 += w * F9[q + 4]!;
        m6 += w * F9[q + 5]!; m7 += w * F9[q + 6]!; m11 += w * F9[q + 7]!; m12 += w * F9[q + 8]!;
      }
      S4[1] = m1; S4[2] = m2; S4[3] = m3; S4[4] = m4; S4[5] = m5; S4[6] = m6; S4[7] = m7; S4[11] = m11; S4[12] = m12;
      S4[0] = -t0 - m3 - m5; // x⁴ = Σx² − x²y² − x²z²
      S4[10] = -t2 - m3 - m12; // y⁴
      S4[14] = -t5 - m5 - m12; // z⁴
      S4[8] = -0.5 * t1 - m1 - m6; // xyz² = Σxy − x³y − xy³
      S4[9] = -0.5 * t3 - m2 - m7; // xz³ = Σxz − x³z − xy²z
      S4[13] = -0.5 * t4 - m4 - m11; // yz³ = Σyz − x²yz − y³z
    } else {
      let m0 = 0, m1 = 0, m2 = 0, m3 = 0, m4 = 0, m5 = 0, m6 = 0, m7 = 0;
      let m8 = 0, m9 = 0, m10 = 0, m11 = 0, m12 = 0, m13 = 0, m14 = 0;
      for (let i = nzero, q = nzero * 15; i < nvol; i++, q += 15) {
        const w = W[i]!;
        m0 += w * F4[q]!; m1 += w * F4[q + 1]!; m2 += w * F4[q + 2]!; m3 += w * F4[q + 3]!;
        m4 += w * F4[q + 4]!; m5 += w * F4[q + 5]!; m6 += w * F4[q + 6]!; m7 += w * F4[q + 7]!;
        m8 += w * F4[q + 8]!; m9 += w * F4[q + 9]!; m10 += w * F4[q + 10]!; m11 += w * F4[q + 11]!;
        m12 += w * F4[q + 12]!; m13 += w * F4[q + 13]!; m14 += w * F4[q + 14]!;
      }
      S4[0] = m0; S4[1] = m1; S4[2] = m2; S4[3] = m3; S4[4] = m4; S4[5] = m5; S4[6] = m6; S4[7] = m7;
      S4[8] = m8; S4[9] = m9; S4[10] = m10; S4[11] = m11; S4[12] = m12; S4[13] = m13; S4[14] = m14;
    }
    // Normal matrix (lower triangle, row-major 7×7) and right-hand side.
    for (let j = 0; j < 6; j++) for (let k = 0; k <= j; k++) A[j * 7 + k] = MC[j * 6 + k]! * S4[MI[j * 6 + k]!]!;
    A[42] = -t0; A[43] = -t1; A[44] = -t2; A[45] = -t3; A[46] = -t4; A[47] = -t5; A[48] = sw;
    R[0] = u0; R[1] = u1; R[2] = u2; R[3] = u3; R[4] = u4; R[5] = u5; R[6] = -swy;

    // Cholesky A = LLᵀ in place, then solve.
    let ok = true;
    for (let j = 0; j < 7 && ok; j++) {
      const jj = j * 7;
      let d = A[jj + j]!;
      for (let k = 0; k < j; k++) d -= A[jj + k]! * A[jj + k]!;
      if (!(d > 1e-14 * A[jj + j]!)) { ok = false; break; }
      const l = Math.sqrt(d);
      A[jj + j] = l;
      const il = 1 / l;
      for (let i = j + 1; i < 7; i++) {
        const ii = i * 7;
        let s = A[ii + j]!;
        for (let k = 0; k < j; k++) s -= A[ii + k]! * A[jj + k]!;
        A[ii + j] = s * il;
      }
    }
    let dxx = c0 * invScale, dxy = c1 * invScale, dyy = c2 * invScale;
    let dxz = c3 * invScale, dyz = c4 * invScale, dzz = c5 * invScale;
    if (ok) {
      for (let j = 0; j < 7; j++) {
        let s = R[j]!;
        for (let k = 0; k < j; k++) s -= A[j * 7 + k]! * R[k]!;
        R[j] = s / A[j * 7 + j]!;
      }
      for (let j = 6; j >= 0; j--) {
        let s = R[j]!;
        for (let k = j + 1; k < 7; k++) s -= A[k * 7 + j]! * R[k]!;
        R[j] = s / A[j * 7 + j]!;
      }
      if (Number.isFinite(R[0]! + R[1]! + R[2]! + R[3]! + R[4]! + R[5]!)) {
        dxx = R[0]! * invScale; dxy = R[1]! * invScale; dyy = R[2]! * invScale;
        dxz = R[3]! * invScale; dyz = R[4]! * invScale; dzz = R[5]! * invScale;
      }
    }

    // Eigen-decomposition of [[dxx,dxy,dxz],[dxy,dyy,dyz],[dxz,dyz,dzz]].
    const q = (dxx + dyy + dzz) / 3;
    const e0 = dxx - q, e1 = dyy - q, e2 = dzz - q;
    const off = dxy * dxy + dxz * dxz + dyz * dyz;
    const p2 = e0 * e0 + e1 * e1 + e2 * e2 + 2 * off;
    let l1: number, l2: number, l3: number;
    let vx = 1, vy = 0, vz = 0;
    if (!(p2 > 0)) {
      l1 = q; l2 = q; l3 = q;
    } else {
      const p = Math.sqrt(p2 / 6);
      const ip = 1 / p;
      const b00 = e0 * ip, b11 = e1 * ip, b22 = e2 * ip, b01 = dxy * ip, b02 = dxz * ip, b12 = dyz * ip;
      let rr = 0.5 * (b00 * (b11 * b22 - b12 * b12) - b01 * (b01 * b22 - b12 * b02) + b02 * (b01 * b12 - b11 * b02));
      if (rr > 1) rr = 1;
      else if (rr < -1) rr = -1;
      const phi = Math.acos(rr) / 3;
      l1 = q + 2 * p * Math.cos(phi);
      l3 = q + 2 * p * Math.cos(phi + TWO_PI_3);
      l2 = 3 * q - l1 - l3;
      // Eigenvector of l1: the largest cross product of two rows of (D − l1·I).
      const r0x = dxx - l1, r0y = dxy, r0z = dxz;
      const r1x = dxy, r1y = dyy - l1, r1z = dyz;
      const r2x = dxz, r2y = dyz, r2z = dzz - l1;
      const ax = r0y * r1z - r0z * r1y, ay = r0z * r1x - r0x * r1z, az = r0x * r1y - r0y * r1x;
      const bx = r0y * r2z - r0z * r2y, by = r0z * r2x - r0x * r2z, bz = r0x * r2y - r0y * r2x;
      const cx = r1y * r2z - r1z * r2y, cy = r1z * r2x - r1x * r2z, cz = r1x * r2y - r1y * r2x;
      const na = ax * ax + ay * ay + az * az, nb = bx * bx + by * by + bz * bz, nc = cx * cx + cy * cy + cz * cz;
      let n = na;
      vx = ax; vy = ay; vz = az;
      if (nb > n) { n = nb; vx = bx; vy = by; vz = bz; }
      if (nc > n) { n = nc; vx = cx; vy = cy; vz = cz; }
      if (n > 1e-24 * p2 * p2) {
        const s = 1 / Math.sqrt(n);
        vx *= s; vy *= s; vz *= s;
      } else {
        // l1 is (numerically) a double eigenvalue: any unit vector orthogonal to the largest row.
        const n0 = r0x * r0x + r0y * r0y + r0z * r0z, n1 = r1x * r1x + r1y * r1y + r1z * r1z, n2 = r2x * r2x + r2y * r2y + r2z * r2z;
        let rx = r0x, ry = r0y, rz = r0z, rn = n0;
        if (n1 > rn) { rx = r1x; ry = r1y; rz = r1z; rn = n1; }
        if (n2 > rn) { rx = r2x; ry = r2y; rz = r2z; rn = n2; }
        if (rn > 0) {
          // cross with the axis where r is smallest
          const fx = Math.abs(rx), fy = Math.abs(ry), fz = Math.abs(rz);
          if (fx <= fy && fx <= fz) { vx = 0; vy = rz; vz = -ry; }
          else if (fy <= fz) { vx = -rz; vy = 0; vz = rx; }
          else { vx = ry; vy = -rx; vz = 0; }
          const s = 1 / Math.sqrt(vx * vx + vy * vy + vz * vz);
          vx *= s; vy *= s; vz *= s;
        } else {
          vx = 1; vy = 0; vz = 0;
        }
      }
      // Sign: the largest component positive.
      const fx = Math.abs(vx), fy = Math.abs(vy), fz = Math.abs(vz);
      const big = fx >= fy && fx >= fz ? vx : fy >= fz ? vy : vz;
      if (big < 0) { vx = -vx; vy = -vy; vz = -vz; }
    }
    if (!(l1 >= minD)) l1 = minD;
    if (!(l2 >= minD)) l2 = minD;
    if (!(l3 >= minD)) l3 = minD;
    const ss = l1 * l1 + l2 * l2 + l3 * l3;
    const d12 = l1 - l2, d23 = l2 - l3, d31 = l3 - l1;
    let fa = Math.sqrt((0.5 * (d12 * d12 + d23 * d23 + d31 * d31)) / ss);
    if (!(fa <= 1)) fa = fa > 1 ? 1 : 0;
    const md = (l1 + l2 + l3) / 3;
    if (!Number.isFinite(md) || !Number.isFinite(vx + vy + vz)) return; // leave zeros
    faOut[vox] = fa;
    mdOut[vox] = md;
    adOut[vox] = l1;
    rdOut[vox] = 0.5 * (l2 + l3);
    const v3 = vox * 3;
    v1Out[v3] = vx;
    v1Out[v3 + 1] = vy;
    v1Out[v3 + 2] = vz;
    cfaOut[v3] = Math.abs(vx) * fa;
    cfaOut[v3 + 1] = Math.abs(vy) * fa;
    cfaOut[v3 + 2] = Math.abs(vz) * fa;
  };

  for (;;) {
    const z = nextSlice();
    if (!(z < nz)) break;
    const sliceEnd = (z + 1) * nxy;
    for (let start = z * nxy; start < sliceEnd; start += CH) {
      const len = Math.min(CH, sliceEnd - start);
      let any = mask === null;
      if (!any) for (let t = 0; t < len; t++) if (mask![start + t] !== 0) { any = true; break; }
      if (!any) continue;

      gather(start, len);

      for (let t = 0; t < len; t++) {
        const vox = start + t;
        if (mask !== null && mask[vox] === 0) continue;
        fitVoxel(t * nvol, vox);
      }
    }
    sliceDone(z);
  }
}
