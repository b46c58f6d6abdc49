/**
 * Brain-like DTI phantoms with known lesions: the training and evaluation data of the AI second read
 * (issue 9 item 3). Everything is drawn from one seed, so a phantom is reproducible; what varies from
 * seed to seed is what varies between real patients and scanners, so that a model trained on these does
 * not learn one acquisition's quirks:
 *
 * - anatomy: an ellipsoidal brain of random size and pose in the field of view, a folded cortical ribbon
 *   of grey matter, ventricles and outer CSF, deep grey nuclei, white matter whose fibre orientation is a
 *   smooth field of crossing tract systems (commissural left-right, projection superior-inferior,
 *   association anterior-posterior, and radiating corona) with a random smooth perturbation;
 * - tissue: per-class MD, FA and b = 0 signal (T2 weighting: CSF bright) drawn per phantom around
 *   literature values, and a smooth coil-sensitivity field;
 * - partial volume: voxels on a boundary are averaged over 2×2×2 sub-samples (signal averaged, as a scanner
 *   averages it), so edges are mixed as in a real scan;
 * - lesions: 0–5 per phantom, diameter 2.5–30 mm (log-uniform, so small ones are common), irregular
 *   ellipsoids with soft edges, in white matter, periventricular or juxtacortical; contrast from subtle
 *   (FA −10 %, MD +5 %) to strong (FA −70 %, MD +90 %), with a T2 rise on b = 0;
 * - acquisition: matrix 64–128, 20–70 slices, in-plane 1.5–3 mm, slices 1.5–5 mm, one or two shells at
 *   b = 600–3000 s/mm², 6–64 directions, 1–8 b = 0 volumes (first or interleaved), SNR 5–60 on b = 0 in
 *   white matter, Rician noise.
 *
 * Conventions are the app's (imaging/types.ts DwiSeries): x fastest; the affine is diag(−dx, dy, dz) plus
 * origin (determinant < 0, as radiological data), so the gradient directions in the voxel frame are
 * exactly FSL's .bvec convention without the x flip FSL applies to positive-determinant images.
 */
import type { DwiSeries } from '../../src/main/imaging/types.js';
import { mulberry32 } from '../../src/shared/random.js';

export type Vec3 = [number, number, number];

/** Tissue labels of the truth map. */
export const TISSUE = { background: 0, csf: 1, grey: 2, white: 3, deepGrey: 4 } as const;
export type TissueLabel = (typeof TISSUE)[keyof typeof TISSUE];

export interface AcquisitionOptions {
  matrix: [number, number];
  slices: number;
  /** Voxel size in mm: in-plane x, y and slice thickness z. */
  voxelMm: Vec3;
  /** The b-value of each shell (s/mm²). */
  shells: number[];
  /** Diffusion directions per shell. */
  directions: number;
  b0Count: number;
  /** b = 0 volumes at the start (false: spread through the series, as some protocols interleave them). */
  b0First: boolean;
  /** b = 0 signal in white matter over the noise standard deviation. */
  snr: number;
}

export interface LesionTruth {
  /** 1-based label in `lesionLabels`. */
  label: number;
  kind: 'white-matter' | 'periventricular' | 'juxtacortical';
  /** Centre of mass of the lesion's voxels, voxel indices (x, y, z) of the series. */
  centroidVoxel: Vec3;
  /** Sum of the covered fraction of every voxel × voxel volume. */
  volumeMl: number;
  /** Diameter of the unperturbed ellipsoid's mean axis, mm. */
  diameterMm: number;
  /** Relative change at the lesion's core: FA × (1 − faDrop), MD × (1 + mdRise), b0 × (1 + t2Rise). */
  faDrop: number;
  mdRise: number;
  t2Rise: number;
  /** Slices (z indices) holding at least one voxel of the lesion. */
  slices: number[];
}

export interface BrainPhantom {
  series: DwiSeries;
  /** Per voxel: the tissue with the largest share (TISSUE). */
  tissue: Uint8Array;
  /** Per voxel: that tissue's share of the voxel, 0–1 (1: a pure voxel, no partial volume). */
  tissuePurity: Float32Array;
  /** Per voxel: fraction of the voxel inside the brain (grey, white, deep grey or CSF inside the skull). */
  brainFraction: Float32Array;
  /** Per voxel: 0, or the label of the lesion covering at least half of it. */
  lesionLabels: Uint8Array;
  /** Per voxel: fraction covered by any lesion (sub-sample count), 0–1. */
  lesionFraction: Float32Array;
  lesions: LesionTruth[];
  /** Noise-free FA and MD of the generating tensors (sub-sample means), for checking fits and maps. */
  trueFa: Float32Array;
  trueMd: Float32Array;
  acquisition: AcquisitionOptions;
  /** Noise standard deviation (per channel of the Rician magnitude). */
  sigma: number;
  seed: number;
}

export interface BrainPhantomOptions {
  seed: number;
  /** Fix any acquisition setting instead of drawing it. */
  acquisition?: Partial<AcquisitionOptions>;
  /** Number of lesions (default: 0 with probability 0.4, else 1–5). */
  lesionCount?: number;
  /** Lesion diameter range in mm (default 2.5–30, log-uniform). */
  lesionDiameterMm?: [number, number];
  /** Lesion contrast scale: 1 = drawn as documented; < 1 makes every lesion subtler. */
  contrastScale?: number;
}

// ---------------------------------------------------------------------------------------------
// Small vector helpers

const dot = (a: Vec3, b: Vec3): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
// Math.hypot is several times slower than the square root in V8, and this runs per sample.
const norm = (a: Vec3): number => Math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]);
const unit = (a: Vec3): Vec3 => {
  const n = norm(a) || 1;
  return [a[0] / n, a[1] / n, a[2] / n];
};

/** Rotation matrix (rows) from Euler angles about x, then y, then z. */
function rotation(ax: number, ay: number, az: number): [Vec3, Vec3, Vec3] {
  const [cx, sx, cy, sy, cz, sz] = [Math.cos(ax), Math.sin(ax), Math.cos(ay), Math.sin(ay), Math.cos(az), Math.sin(az)];
  return [
    [cz * cy, cz * sy * sx - sz * cx, cz * sy * cx + sz * sx],
    [sz * cy, sz * sy * sx + cz * cx, sz * sy * cx - cz * sx],
    [-sy, cy * sx, cy * cx],
  ];
}
const apply = (m: [Vec3, Vec3, Vec3], v: Vec3): Vec3 => [dot(m[0], v), dot(m[1], v), dot(m[2], v)];
const applyTransposed = (m: [Vec3, Vec3, Vec3], v: Vec3): Vec3 => [
  m[0][0] * v[0] + m[1][0] * v[1] + m[2][0] * v[2],
  m[0][1] * v[0] + m[1][1] * v[1] + m[2][1] * v[2],
  m[0][2] * v[0] + m[1][2] * v[1] + m[2][2] * v[2],
];

/** Seeded draws. */
class Draw {
  private spare: number | null = null;
  constructor(readonly next: () => number) {}
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  int(lo: number, hi: number): number {
    return Math.floor(this.uniform(lo, hi + 1));
  }
  logUniform(lo: number, hi: number): number {
    return Math.exp(this.uniform(Math.log(lo), Math.log(hi)));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.min(items.length - 1, Math.floor(this.next() * items.length))]!;
  }
  gauss(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    // Marsaglia's polar method: two normal draws per accepted pair, no trigonometry.
    let u: number;
    let v: number;
    let s: number;
    do {
      u = 2 * this.next() - 1;
      v = 2 * this.next() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const f = Math.sqrt((-2 * Math.log(s)) / s);
    this.spare = v * f;
    return u * f;
  }
  direction(): Vec3 {
    return unit([this.gauss(), this.gauss(), this.gauss()]);
  }
}

// ---------------------------------------------------------------------------------------------
// Acquisition

/**
 * `n` directions spread over the half sphere by electrostatic repulsion of antipodal pairs (what scanner
 * direction sets are built from), from a random start: every phantom gets its own set.
 */
export function repulsionDirections(n: number, random: () => number): Vec3[] {
  const draw = new Draw(random);
  const dirs = Array.from({ length: n }, () => draw.direction());
  const iterations = n <= 6 ? 400 : 150;
  for (let it = 0; it < iterations; it++) {
    const step = 0.05 * (1 - it / iterations) + 0.005;
    const forces = dirs.map((): Vec3 => [0, 0, 0]);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        if (i === j) continue;
        for (const sign of [1, -1]) {
          const d: Vec3 = [dirs[i]![0] - sign * dirs[j]![0], dirs[i]![1] - sign * dirs[j]![1], dirs[i]![2] - sign * dirs[j]![2]];
          const r2 = Math.max(dot(d, d), 1e-6);
          const f = 1 / (r2 * Math.sqrt(r2));
          forces[i]![0] += f * d[0];
          forces[i]![1] += f * d[1];
          forces[i]![2] += f * d[2];
        }
      }
    for (let i = 0; i < n; i++) {
      const f = forces[i]!;
      const d = dirs[i]!;
      const radial = dot(f, d);
      const tangent: Vec3 = [f[0] - radial * d[0], f[1] - radial * d[1], f[2] - radial * d[2]];
      const size = norm(tangent) || 1;
      dirs[i] = unit([d[0] + (step * tangent[0]) / size, d[1] + (step * tangent[1]) / size, d[2] + (step * tangent[2]) / size]);
    }
  }
  // Half sphere (z ≥ 0), as most vendors list them; the sign does not change the signal.
  return dirs.map((d) => (d[2] < 0 ? [-d[0], -d[1], -d[2]] : d));
}

function drawAcquisition(draw: Draw, fixed: Partial<AcquisitionOptions>): AcquisitionOptions {
  const inPlane = fixed.voxelMm?.[0] ?? draw.pick([1.5, 1.75, 2, 2, 2.2, 2.5, 3]);
  const thickness = fixed.voxelMm?.[2] ?? Math.max(inPlane, draw.pick([1.5, 2, 2, 2.5, 3, 3, 4, 5]));
  // Field of view 190–260 mm, as head protocols; matrix rounded to an even size.
  const fov = draw.uniform(190, 260);
  const m = Math.max(48, Math.min(128, 2 * Math.round(fov / inPlane / 2)));
  const matrix = fixed.matrix ?? [m, m];
  // Coverage 60–150 mm: from a thick-slab clinical protocol to whole brain.
  const slices = fixed.slices ?? Math.max(12, Math.min(70, Math.round(draw.uniform(60, 150) / thickness)));
  const twoShells = draw.chance(0.2);
  const b1 = draw.pick([600, 700, 800, 1000, 1000, 1000, 1200, 1500]);
  const shells = fixed.shells ?? (twoShells ? [b1, draw.pick([2000, 2500, 3000])] : [b1]);
  const directions = fixed.directions ?? draw.pick([6, 6, 12, 15, 20, 30, 30, 32, 48, 64]);
  const b0Count = fixed.b0Count ?? draw.int(1, 8);
  return {
    matrix,
    slices,
    voxelMm: fixed.voxelMm ?? [inPlane, inPlane, thickness],
    shells,
    directions,
    b0Count,
    b0First: fixed.b0First ?? draw.chance(0.6),
    snr: fixed.snr ?? draw.logUniform(5, 60),
  };
}

// ---------------------------------------------------------------------------------------------
// Anatomy

/** A smooth random scalar field on the head frame: a sum of a few low-frequency plane waves. */
function smoothField(draw: Draw, waves: number, maxFrequency: number): (q: Vec3) => number {
  const terms = Array.from({ length: waves }, () => ({ k: draw.direction().map((c) => c * draw.uniform(0.5, maxFrequency) * Math.PI) as Vec3, phase: draw.uniform(0, 2 * Math.PI), weight: draw.uniform(0.5, 1) }));
  const total = terms.reduce((s, t) => s + t.weight, 0);
  return (q) => {
    let sum = 0;
    for (const t of terms) sum += t.weight * Math.sin(t.k[0] * q[0] + t.k[1] * q[1] + t.k[2] * q[2] + t.phase);
    return sum / total;
  };
}

interface Ellipsoid {
  centre: Vec3;
  axes: Vec3;
  rotation: [Vec3, Vec3, Vec3];
}
/** Normalised radius of q in the ellipsoid (< 1 inside). */
function ellipsoidRadius(e: Ellipsoid, q: Vec3): number {
  const d = apply(e.rotation, [q[0] - e.centre[0], q[1] - e.centre[1], q[2] - e.centre[2]]);
  return norm([d[0] / e.axes[0], d[1] / e.axes[1], d[2] / e.axes[2]]);
}

interface Lesion extends Ellipsoid {
  kind: LesionTruth['kind'];
  /** Irregular outline: the radius is modulated by this (≈ 1 ± 0.3) along each direction. */
  outline: (direction: Vec3) => number;
  diameterMm: number;
  faDrop: number;
  mdRise: number;
  t2Rise: number;
}

interface TissueParameters {
  md: Record<'csf' | 'grey' | 'white' | 'deepGrey', number>;
  fa: { grey: number; deepGrey: number; whiteLow: number; whiteHigh: number };
  s0: Record<'csf' | 'grey' | 'white' | 'deepGrey', number>;
}

/** Peak weights of the four tract systems in Head.fibre (commissural, projection, association, cingulum). */
const PEAK_WEIGHTS = [1.4, 1.2, 1.0, 0.8];

/** What one sub-sample point of the head holds. */
interface Sample {
  tissue: TissueLabel;
  /** Diffusion tensor, lower-triangular order (xx, xy, yy, xz, yz, zz), mm²/s, image frame. */
  tensor: [number, number, number, number, number, number];
  s0: number;
  fa: number;
  md: number;
  /** 0 or the 1-based lesion index whose core (soft weight ≥ 0.5) holds the point. */
  lesion: number;
}

/** The head: maps a point (mm, image frame, centred) to what it holds. */
class Head {
  private readonly rotation: [Vec3, Vec3, Vec3];
  private readonly semiAxes: Vec3;
  private readonly centre: Vec3;
  private readonly folds: (q: Vec3) => number;
  private readonly gyri: (q: Vec3) => number;
  private readonly ribbon: number;
  private readonly ventricles: Ellipsoid[];
  private readonly nuclei: Ellipsoid[];
  private readonly fibrePerturbation: [(q: Vec3) => number, (q: Vec3) => number, (q: Vec3) => number];
  private readonly coherenceJitter: (q: Vec3) => number;
  readonly lesions: Lesion[] = [];

  constructor(
    private readonly draw: Draw,
    readonly params: TissueParameters,
    fovMm: Vec3,
  ) {
    // Adult brain: about 140 × 170 × 120 mm (LR × AP × SI), ± 10 %.
    const scale = draw.uniform(0.88, 1.1);
    this.semiAxes = [70 * scale * draw.uniform(0.94, 1.06), 85 * scale * draw.uniform(0.94, 1.06), 60 * scale * draw.uniform(0.94, 1.06)];
    this.rotation = rotation(draw.uniform(-0.25, 0.25), draw.uniform(-0.12, 0.12), draw.uniform(-0.15, 0.15));
    // Off-centre in plane by up to 8 % of the field of view; the slab sits anywhere over the brain's height.
    const slabShift = Math.max(0, this.semiAxes[2] - fovMm[2] / 2);
    this.centre = [draw.uniform(-0.08, 0.08) * fovMm[0], draw.uniform(-0.08, 0.08) * fovMm[1], draw.uniform(-slabShift, slabShift) * 0.9];
    this.folds = smoothField(draw, 9, 7);
    this.gyri = smoothField(draw, 12, 11);
    this.ribbon = draw.uniform(0.12, 0.18);
    const ventricleScale = draw.uniform(0.7, 1.6); // ventricles enlarge with age
    this.ventricles = [-1, 1].map((side) => ({
      centre: [side * 0.11 * ventricleScale ** 0.5, draw.uniform(-0.02, 0.08), draw.uniform(0.1, 0.2)] as Vec3,
      axes: [0.07 * ventricleScale, 0.34, 0.11 * ventricleScale] as Vec3,
      rotation: rotation(draw.uniform(-0.15, 0.15), 0, side * draw.uniform(0, 0.15)),
    }));
    // Thalami beside the third ventricle, and the lentiform nuclei further out.
    this.nuclei = [-1, 1].flatMap((side) => [
      {
        centre: [side * 0.13, draw.uniform(-0.14, -0.06), draw.uniform(-0.02, 0.06)] as Vec3,
        axes: [0.1, 0.18, 0.13].map((a) => a * draw.uniform(0.85, 1.15)) as Vec3,
        rotation: rotation(0, 0, side * 0.2),
      },
      {
        centre: [side * 0.33, draw.uniform(0.02, 0.1), draw.uniform(-0.02, 0.08)] as Vec3,
        axes: [0.07, 0.2, 0.14].map((a) => a * draw.uniform(0.85, 1.15)) as Vec3,
        rotation: rotation(0, 0, -side * 0.25),
      },
    ]);
    this.fibrePerturbation = [smoothField(draw, 5, 4), smoothField(draw, 5, 4), smoothField(draw, 5, 4)];
    this.coherenceJitter = smoothField(draw, 6, 5);
  }

  /** Head-frame normalised coordinates (brain surface at radius ≈ 1). */
  normalised(p: Vec3): Vec3 {
    const d = apply(this.rotation, [p[0] - this.centre[0], p[1] - this.centre[1], p[2] - this.centre[2]]);
    return [d[0] / this.semiAxes[0], d[1] / this.semiAxes[1], d[2] / this.semiAxes[2]];
  }

  /** Millimetres per normalised unit along a head-frame direction (for sizes given in mm). */
  private mmPerUnit(): number {
    return (this.semiAxes[0] + this.semiAxes[1] + this.semiAxes[2]) / 3;
  }

  /** The surface radius of the brain along q: folds of ±2.5 %. */
  private surface(q: Vec3): number {
    return 1 + 0.025 * this.folds(q);
  }

  tissueAt(q: Vec3): TissueLabel {
    const r = norm(q);
    if (r > 1.1) return TISSUE.background; // beyond the largest fold and the CSF: skip the fold field
    const surface = this.surface(q);
    if (r >= surface + 0.05) return TISSUE.background; // skull and beyond: no signal in DWI
    if (r >= surface) return TISSUE.csf; // subarachnoid space
    if (this.ventricles.some((v) => ellipsoidRadius(v, q) < 1)) return TISSUE.csf;
    if (this.nuclei.some((n) => ellipsoidRadius(n, q) < 1)) return TISSUE.deepGrey;
    // The grey-white boundary folds more than the surface: gyri reach into the white matter.
    if (r >= surface - this.ribbon * (1 + 0.6 * this.gyri(q))) return TISSUE.grey;
    return TISSUE.white;
  }

  /** Principal fibre direction (head frame) and how coherent the fibres are (0–1) at q in white matter. */
  private fibre(q: Vec3): { direction: Vec3; coherence: number } {
    const g = (x: number, s: number) => Math.exp(-(x * x) / (s * s));
    const ax = Math.abs(q[0]);
    const systems: { d: Vec3; w: number }[] = [
      // commissural: corpus callosum above the ventricles, left-right
      { d: [1, 0, 0], w: 1.4 * g(q[2] - 0.3, 0.1) * g(q[0], 0.45) * g(q[1], 0.55) },
      // projection: corticospinal / internal capsule, superior-inferior, lateral to the nuclei
      { d: [0.15 * Math.sign(q[0]), 0.1, 1], w: 1.2 * g(ax - 0.28, 0.09) * g(q[1] + 0.05, 0.25) },
      // association: longitudinal fasciculi, anterior-posterior, lateral
      { d: [0, 1, 0.05], w: 1.0 * g(ax - 0.5, 0.1) * g(q[2] - 0.05, 0.3) },
      // cingulum: anterior-posterior above the callosum, near the midline
      { d: [0, 1, 0.1], w: 0.8 * g(ax - 0.08, 0.05) * g(q[2] - 0.42, 0.07) },
      // corona radiata: fanning out towards the cortex
      { d: unit(q), w: 0.35 },
    ];
    // Orientation tensor Σ w d dᵀ: its principal eigenvector is a smooth direction without sign flips.
    const m: [number, number, number, number, number, number] = [0, 0, 0, 0, 0, 0]; // xx xy yy xz yz zz
    let total = 0;
    for (const { d, w } of systems) {
      const u = unit(d);
      m[0] += w * u[0] * u[0];
      m[1] += w * u[0] * u[1];
      m[2] += w * u[1] * u[1];
      m[3] += w * u[0] * u[2];
      m[4] += w * u[1] * u[2];
      m[5] += w * u[2] * u[2];
      total += w;
    }
    // Power iteration from the strongest system's direction.
    let v: Vec3 = unit(systems.reduce((best, s) => (s.w > best.w ? s : best)).d);
    let lambda = 0;
    for (let i = 0; i < 12; i++) {
      const next: Vec3 = [m[0] * v[0] + m[1] * v[1] + m[3] * v[2], m[1] * v[0] + m[2] * v[1] + m[4] * v[2], m[3] * v[0] + m[4] * v[1] + m[5] * v[2]];
      lambda = norm(next);
      v = unit(next);
    }
    const perturbed = unit([v[0] + 0.25 * this.fibrePerturbation[0](q), v[1] + 0.25 * this.fibrePerturbation[1](q), v[2] + 0.25 * this.fibrePerturbation[2](q)]);
    // Coherence: high in a tract's core (its weight near its peak), lower where tracts cross (λ1 / trace
    // of the orientation tensor falls from 1 towards 1/3) and in the fanning corona between tracts.
    const share = lambda / Math.max(total, 1e-9);
    const core = Math.max(...systems.slice(0, 4).map((s, i) => s.w / PEAK_WEIGHTS[i]!));
    const coherence = Math.min(1, Math.max(0, 0.25 + 0.75 * core * (1.5 * share - 0.5) + 0.15 * this.coherenceJitter(q)));
    return { direction: perturbed, coherence };
  }

  /** Adds lesions; each is drawn until its centre lies in tissue that can hold it. */
  addLesions(count: number, diameterMm: [number, number], contrastScale: number): void {
    const mm = this.mmPerUnit();
    for (let n = 0, tries = 0; n < count && tries < 500; tries++) {
      const kind = this.draw.pick(['white-matter', 'white-matter', 'periventricular', 'juxtacortical'] as const);
      const diameter = this.draw.logUniform(diameterMm[0], diameterMm[1]);
      let centre: Vec3;
      if (kind === 'periventricular') {
        const v = this.draw.pick(this.ventricles);
        const d = this.draw.direction();
        centre = [v.centre[0] + d[0] * (v.axes[0] + 0.03), v.centre[1] + d[1] * v.axes[1] * 0.8, v.centre[2] + d[2] * (v.axes[2] + 0.03)];
      } else {
        const d = this.draw.direction();
        const r = kind === 'juxtacortical' ? 1 - this.ribbon - this.draw.uniform(0, 0.05) : this.draw.uniform(0.15, 0.8);
        centre = [d[0] * r, d[1] * r, d[2] * r];
      }
      const at = this.tissueAt(centre);
      if (at !== TISSUE.white && !(kind === 'juxtacortical' && at === TISSUE.grey)) continue;
      if (this.lesions.some((l) => norm([l.centre[0] - centre[0], l.centre[1] - centre[1], l.centre[2] - centre[2]]) * mm < (l.diameterMm + diameter) / 2 + 3)) continue;
      const elongation: Vec3 = [this.draw.uniform(0.7, 1.3), this.draw.uniform(0.7, 1.3), this.draw.uniform(0.6, 1.4)];
      const mean = (elongation[0] + elongation[1] + elongation[2]) / 3;
      const lobes = Array.from({ length: 3 }, () => ({ d: this.draw.direction(), a: this.draw.uniform(-0.3, 0.3) }));
      // Contrast: strong, moderate or subtle, each a third of the time (scaled by contrastScale).
      const strength = this.draw.pick([0.25, 0.55, 1]) * contrastScale;
      this.lesions.push({
        kind,
        centre,
        axes: elongation.map((e) => ((diameter / 2) * (e / mean)) / mm) as Vec3,
        rotation: rotation(this.draw.uniform(0, Math.PI), this.draw.uniform(0, Math.PI), this.draw.uniform(0, Math.PI)),
        outline: (u) => 1 + lobes.reduce((s, l) => s + l.a * dot(l.d, u) ** 2, 0),
        diameterMm: diameter,
        faDrop: Math.min(0.8, strength * this.draw.uniform(0.35, 0.7)),
        mdRise: strength * this.draw.uniform(0.2, 0.9),
        t2Rise: strength * this.draw.uniform(0.05, 0.6),
      });
      n++;
    }
  }

  /** The lesions' soft weight at q: 1 in the core, falling to 0 over the outer 30 % of the radius. */
  private lesionWeight(q: Vec3): { weight: number; index: number } {
    let best = { weight: 0, index: 0 };
    this.lesions.forEach((l, i) => {
      const d = apply(l.rotation, [q[0] - l.centre[0], q[1] - l.centre[1], q[2] - l.centre[2]]);
      const scaled: Vec3 = [d[0] / l.axes[0], d[1] / l.axes[1], d[2] / l.axes[2]];
      const r = norm(scaled) / l.outline(unit(scaled));
      const w = r <= 0.7 ? 1 : r >= 1 ? 0 : 0.5 + 0.5 * Math.cos((Math.PI * (r - 0.7)) / 0.3);
      if (w > best.weight) best = { weight: w, index: i + 1 };
    });
    return best;
  }

  /**
   * What decides whether a voxel is mixed, without the tensor: tissue and the lesion touching the point.
   * Two points with the same signature hold the same tissue up to smooth variation.
   */
  signature(p: Vec3): number {
    const q = this.normalised(p);
    const tissue = this.tissueAt(q);
    if (tissue === TISSUE.background || tissue === TISSUE.csf || this.lesions.length === 0) return tissue;
    const { weight, index } = this.lesionWeight(q);
    return tissue + 8 * (weight > 0 ? index : 0) + (weight >= 0.5 ? 4 : 0);
  }

  sample(p: Vec3): Sample {
    const q = this.normalised(p);
    const tissue = this.tissueAt(q);
    const P = this.params;
    let md: number;
    let fa: number;
    let s0: number;
    let direction: Vec3 = [1, 0, 0];
    switch (tissue) {
      case TISSUE.background:
        return { tissue, tensor: [0, 0, 0, 0, 0, 0], s0: 0, fa: 0, md: 0, lesion: 0 };
      case TISSUE.csf:
        [md, fa, s0] = [P.md.csf, 0.02, P.s0.csf];
        break;
      case TISSUE.grey:
        [md, fa, s0] = [P.md.grey, P.fa.grey, P.s0.grey];
        direction = unit(q); // radial in the cortex
        break;
      case TISSUE.deepGrey:
        [md, fa, s0] = [P.md.deepGrey, P.fa.deepGrey, P.s0.deepGrey];
        direction = this.fibre(q).direction;
        break;
      default: {
        const f = this.fibre(q);
        direction = f.direction;
        [md, fa, s0] = [P.md.white, P.fa.whiteLow + (P.fa.whiteHigh - P.fa.whiteLow) * f.coherence, P.s0.white];
      }
    }
    let lesion = 0;
    if (tissue !== TISSUE.csf) {
      const { weight, index } = this.lesionWeight(q);
      if (weight > 0) {
        const l = this.lesions[index - 1]!;
        fa *= 1 - weight * l.faDrop;
        md *= 1 + weight * l.mdRise;
        s0 *= 1 + weight * l.t2Rise;
        if (weight >= 0.5) lesion = index;
      }
    }
    return { tissue, tensor: cylindricalTensor(applyTransposed(this.rotation, direction), fa, md), s0, fa, md, lesion };
  }
}

/** A tensor with eigenvalues λ1 = md + 2a, λ2 = λ3 = md − a along `e1`, where a gives exactly the FA asked for. */
export function cylindricalTensor(e1: Vec3, fa: number, md: number): [number, number, number, number, number, number] {
  // FA² = 9a² / (3md² + 6a²)  ⇒  a = md·FA·√(3 / (9 − 6FA²)).
  const a = md * fa * Math.sqrt(3 / (9 - 6 * fa * fa));
  const l1 = md + 2 * a;
  const l2 = md - a;
  const e = unit(e1);
  // D = l2·I + (l1 − l2)·e eᵀ
  const k = l1 - l2;
  return [l2 + k * e[0] * e[0], k * e[0] * e[1], l2 + k * e[1] * e[1], k * e[0] * e[2], k * e[1] * e[2], l2 + k * e[2] * e[2]];
}

function drawTissue(draw: Draw): TissueParameters {
  // Adult values at 1.5–3 T (mm²/s): CSF free water ~3.0e-3, grey ~0.8–0.9e-3, white ~0.7e-3, with spread.
  return {
    md: { csf: draw.uniform(2.7e-3, 3.1e-3), grey: draw.uniform(0.78e-3, 0.95e-3), white: draw.uniform(0.66e-3, 0.8e-3), deepGrey: draw.uniform(0.7e-3, 0.82e-3) },
    fa: { grey: draw.uniform(0.08, 0.18), deepGrey: draw.uniform(0.2, 0.32), whiteLow: draw.uniform(0.25, 0.38), whiteHigh: draw.uniform(0.7, 0.88) },
    // b = 0 (T2-weighted) signal relative to white matter.
    s0: { csf: draw.uniform(1.8, 3.2), grey: draw.uniform(1.1, 1.35), white: 1, deepGrey: draw.uniform(1.0, 1.15) },
  };
}

/** The gradient table: b0s first or spread through, then each shell's directions. */
function gradientTable(acq: AcquisitionOptions, draw: Draw): { bvals: number[]; bvecs: Vec3[] } {
  const diffusion: { b: number; g: Vec3 }[] = [];
  for (const shell of acq.shells) {
    for (const g of repulsionDirections(acq.directions, draw.next)) diffusion.push({ b: Math.round(shell * draw.uniform(0.995, 1.005)), g });
  }
  const table: { b: number; g: Vec3 }[] = [];
  const zero = { b: 0, g: [0, 0, 0] as Vec3 };
  if (acq.b0First || acq.b0Count === 1) {
    for (let i = 0; i < acq.b0Count; i++) table.push(zero);
    table.push(...diffusion);
  } else {
    const every = Math.max(1, Math.floor(diffusion.length / acq.b0Count));
    for (let i = 0; i < diffusion.length; i++) {
      if (i % every === 0 && table.filter((t) => t.b === 0).length < acq.b0Count) table.push(zero);
      table.push(diffusion[i]!);
    }
    while (table.filter((t) => t.b === 0).length < acq.b0Count) table.push(zero);
  }
  return { bvals: table.map((t) => t.b), bvecs: table.map((t) => t.g) };
}

/** The acquisition `makeBrainPhantom` draws for a seed (its first draws), without making the volume. */
export function phantomAcquisition(seed: number, fixed: Partial<AcquisitionOptions> = {}): AcquisitionOptions {
  return drawAcquisition(new Draw(mulberry32(seed)), fixed);
}

/** Generates one phantom. Deterministic for a given seed and options. */
export function makeBrainPhantom(options: BrainPhantomOptions): BrainPhantom {
  const draw = new Draw(mulberry32(options.seed));
  const acquisition = drawAcquisition(draw, options.acquisition ?? {});
  const [nx, ny] = acquisition.matrix;
  const nz = acquisition.slices;
  const [dx, dy, dz] = acquisition.voxelMm;
  const head = new Head(draw, drawTissue(draw), [nx * dx, ny * dy, nz * dz]);
  const lesionCount = options.lesionCount ?? (draw.chance(0.4) ? 0 : draw.int(1, 5));
  head.addLesions(lesionCount, options.lesionDiameterMm ?? [2.5, 30], options.contrastScale ?? 1);
  const { bvals, bvecs } = gradientTable(acquisition, draw);
  const nvol = bvals.length;
  const nvox = nx * ny * nz;
  const bias = smoothField(draw, 4, 1.2);
  const biasDepth = draw.uniform(0, 0.2);
  const sigma = 1000 / acquisition.snr; // white-matter b = 0 signal is 1000 (before the coil field)

  const data = new Float32Array(nvox * nvol);
  const tissue = new Uint8Array(nvox);
  const tissuePurity = new Float32Array(nvox);
  const brainFraction = new Float32Array(nvox);
  const lesionLabels = new Uint8Array(nvox);
  const lesionFraction = new Float32Array(nvox);
  const trueFa = new Float32Array(nvox);
  const trueMd = new Float32Array(nvox);
  const clean = new Float64Array(nvol);
  const gg = bvecs.map((g, v) => [g[0] * g[0], 2 * g[0] * g[1], g[1] * g[1], 2 * g[0] * g[2], 2 * g[1] * g[2], g[2] * g[2]].map((c) => c * bvals[v]!));
  const lesionVoxels = head.lesions.map(() => ({ sum: [0, 0, 0] as Vec3, weight: 0, slices: new Set<number>() }));
  // Sub-voxel centres of a 2×2×2 split.
  const sub = [-0.25, 0.25];
  const position = (x: number, y: number, z: number): Vec3 => [(x - nx / 2 + 0.5) * dx, (y - ny / 2 + 0.5) * dy, (z - nz / 2 + 0.5) * dz];

  // Signatures at the voxels' corners, two planes at a time (z − ½ and z + ½): a voxel whose eight
  // corners agree is uniform and takes one sample; a mixed one takes 8.
  const cornerPlane = (z: number): Int32Array => {
    const plane = new Int32Array((nx + 1) * (ny + 1));
    for (let y = 0; y <= ny; y++) for (let x = 0; x <= nx; x++) plane[y * (nx + 1) + x] = head.signature(position(x - 0.5, y - 0.5, z - 0.5));
    return plane;
  };
  let below = cornerPlane(0);
  for (let z = 0; z < nz; z++) {
    const above = cornerPlane(z + 1);
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++) {
        const vox = (z * ny + y) * nx + x;
        const c = y * (nx + 1) + x;
        const first = below[c]!;
        const uniform =
          below[c + 1] === first && below[c + nx + 1] === first && below[c + nx + 2] === first && above[c] === first && above[c + 1] === first && above[c + nx + 1] === first && above[c + nx + 2] === first;
        // Air holds no signal (the noise is added to every voxel afterwards, in one sequential pass).
        if (uniform && first === TISSUE.background) continue;
        const samples = uniform ? [head.sample(position(x, y, z))] : sub.flatMap((sx) => sub.flatMap((sy) => sub.map((sz) => head.sample(position(x + sx, y + sy, z + sz)))));
        clean.fill(0);
        const counts = new Map<TissueLabel, number>();
        let inBrain = 0;
        let inLesion = 0;
        let faSum = 0;
        let mdSum = 0;
        for (const s of samples) {
          counts.set(s.tissue, (counts.get(s.tissue) ?? 0) + 1);
          if (s.tissue !== TISSUE.background) inBrain++;
          if (s.lesion) inLesion++;
          faSum += s.fa;
          mdSum += s.md;
          if (s.s0 === 0) continue;
          const t = s.tensor;
          for (let v = 0; v < nvol; v++) {
            const g = gg[v]!;
            clean[v]! += s.s0 * Math.exp(-(g[0]! * t[0] + g[1]! * t[1] + g[2]! * t[2] + g[3]! * t[3] + g[4]! * t[4] + g[5]! * t[5]));
          }
        }
        const n = samples.length;
        let major: TissueLabel = TISSUE.background;
        let majorCount = -1;
        for (const [label, c] of counts) if (c > majorCount) [major, majorCount] = [label, c];
        tissue[vox] = major;
        tissuePurity[vox] = majorCount / n;
        brainFraction[vox] = inBrain / n;
        lesionFraction[vox] = inLesion / n;
        trueFa[vox] = faSum / n;
        trueMd[vox] = mdSum / n;
        if (inLesion / n >= 0.5) {
          // The label of the lesion most of the voxel's lesion samples belong to.
          const votes = new Map<number, number>();
          for (const s of samples) if (s.lesion) votes.set(s.lesion, (votes.get(s.lesion) ?? 0) + 1);
          lesionLabels[vox] = [...votes.entries()].reduce((a, b) => (b[1] > a[1] ? b : a))[0];
        }
        for (const s of samples) {
          if (!s.lesion) continue;
          const acc = lesionVoxels[s.lesion - 1]!;
          acc.sum[0] += x / n;
          acc.sum[1] += y / n;
          acc.sum[2] += z / n;
          acc.weight += 1 / n;
          acc.slices.add(z);
        }
        const coil = 1000 * (1 + biasDepth * bias(head.normalised(position(x, y, z))));
        for (let v = 0; v < nvol; v++) data[v * nvox + vox] = (coil * clean[v]!) / n;
      }
    below = above;
  }
  // Rician noise: the magnitude of the signal plus complex Gaussian noise.
  for (let i = 0; i < data.length; i++) {
    const re = data[i]! + sigma * draw.gauss();
    const im = sigma * draw.gauss();
    data[i] = Math.sqrt(re * re + im * im);
  }

  const voxelMl = (dx * dy * dz) / 1000;
  const lesions: LesionTruth[] = [];
  head.lesions.forEach((l, i) => {
    const acc = lesionVoxels[i]!;
    // A lesion drawn outside the slab (or too small to cover a sub-sample) is not in this scan.
    if (acc.weight === 0) return;
    lesions.push({
      label: i + 1,
      kind: l.kind,
      centroidVoxel: [acc.sum[0] / acc.weight, acc.sum[1] / acc.weight, acc.sum[2] / acc.weight],
      volumeMl: acc.weight * voxelMl,
      diameterMm: l.diameterMm,
      faDrop: l.faDrop,
      mdRise: l.mdRise,
      t2Rise: l.t2Rise,
      slices: [...acc.slices].sort((a, b) => a - b),
    });
  });

  const series: DwiSeries = {
    dims: [nx, ny, nz, nvol],
    data,
    pixdim: [dx, dy, dz],
    affine: [
      [-dx, 0, 0, ((nx - 1) / 2) * dx],
      [0, dy, 0, (-(ny - 1) / 2) * dy],
      [0, 0, dz, (-(nz - 1) / 2) * dz],
      [0, 0, 0, 1],
    ],
    bvals,
    bvecs,
    source: { kind: 'nifti', files: [], seriesDescription: `synthetic brain DTI phantom, seed ${options.seed}` },
  };
  return { series, tissue, tissuePurity, brainFraction, lesionLabels, lesionFraction, lesions, trueFa, trueMd, acquisition, sigma, seed: options.seed };
}
