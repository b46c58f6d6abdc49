/**
 * b-values and gradient directions of a planned series, converted exactly as dcm2niix writes .bval/.bvec:
 * gradients in the image frame of the output voxel array (FSL convention), derived (isotropic/ADC) volumes
 * dropped where dcm2niix drops them.
 */
import { ImagingInputError } from '../types.js';
import { dot, normalize, norm, type SeriesPlan } from './assemble.js';
import type { Vec3 } from './header.js';

const FLT_EPSILON = 1.1920928955078125e-7;
const f32 = Math.fround;

export interface DiffusionTable {
  /** Indices into plan.volumes of the volumes kept in the output, in output order. */
  keep: number[];
  bvals: number[];
  bvecs: Vec3[];
}

/** dcm2niix prints b-values with %g: float32, six significant digits. */
export function roundBval(b: number): number {
  return Number.parseFloat(f32(b).toPrecision(6));
}

const clean = (v: number): number => (Object.is(v, -0) || Math.abs(v) < 1e-12 ? 0 : v);

/** True if any volume of the plan has b > 0 by its headers. */
export function isDiffusionPlan(plan: SeriesPlan): boolean {
  return plan.volumes.some((v) => (v.diffusion.b ?? 0) > 0);
}

/**
 * Convert the raw per-volume encoding into the output table. Throws ImagingInputError for a non-diffusion
 * series and for diffusion-weighted volumes without a gradient direction.
 */
export function diffusionTable(plan: SeriesPlan): DiffusionTable {
  const vendor = plan.vendor;
  const first = plan.first;
  const what = `Series ${first.seriesNumber ?? '?'} "${first.seriesDescription}" (${first.file})`;
  if (!plan.volumes.some((v) => v.diffusion.b !== null)) throw new ImagingInputError(`${what} is not a diffusion series: its images carry no b-values.`, first.file);
  if (!isDiffusionPlan(plan)) throw new ImagingInputError(`${what} is not a diffusion series: every image has b = 0.`, first.file);

  // Raw (b, g) per volume as dcm2niix collects them.
  const raw = plan.volumes.map((v) => {
    const d = v.diffusion;
    const b = d.b ?? 0;
    if (b > FLT_EPSILON && d.g === null) {
      throw new ImagingInputError(
        `Missing b-vector: ${v.representative.header.file}${v.representative.header.frames.length > 1 ? ` frame ${v.representative.frame.frame + 1}` : ''} ` +
          `has b = ${b} s/mm² but no diffusion gradient direction.`,
        v.representative.header.file,
      );
    }
    return { b: f32(b), g: (d.g ?? [0, 0, 0]).map(f32) as Vec3 };
  });

  // Derived isotropic volumes (b > 0, zero vector): Philips ADC/trace are removed; GE trace is removed only
  // when the series reports no diffusion directions (0019,10e0), otherwise treated as b = 0 (dcm2niix issue 245).
  const isDerived = (x: { b: number; g: Vec3 }): boolean => Math.abs(x.b) > FLT_EPSILON && x.g.every((c) => Math.abs(c) <= FLT_EPSILON);
  const keep: number[] = [];
  const geRemovesTrace = vendor === 'GE' && (first.geNumberOfDiffusionDirections ?? 0) === 0;
  raw.forEach((x, i) => {
    if (isDerived(x)) {
      if (vendor === 'Philips' || geRemovesTrace) return;
      if (vendor === 'GE') x.b = 0;
    }
    keep.push(i);
  });
  if (keep.length === 0) throw new ImagingInputError(`${what} holds only derived (isotropic/ADC) images, no diffusion-weighted volumes.`, first.file);

  if (!keep.some((i) => raw[i]!.b > FLT_EPSILON && norm(raw[i]!.g) > FLT_EPSILON))
    throw new ImagingInputError(`${what} has no diffusion directions: its diffusion-weighted images are isotropic (trace/ADC) images.`, first.file);
  const out = keep.map((i) => ({ b: raw[i]!.b, g: [...raw[i]!.g] as Vec3 }));
  if (vendor === 'GE') geCorrect(plan, out);
  else if (vendor === 'UIH') uihToImage(out);
  else worldToImage(plan, out);
  return {
    keep,
    bvals: out.map((x) => roundBval(x.b)),
    bvecs: out.map((x) => (x.b <= FLT_EPSILON ? [0, 0, 0] : (x.g.map(clean) as Vec3))),
  };
}

/** Siemens/Philips/standard tags: gradient in patient (LPS) space → image frame, as siemensPhilipsCorrectBvecs. */
function worldToImage(plan: SeriesPlan, vols: { b: number; g: Vec3 }[]): void {
  const { row, column, normal } = plan.frame;
  const n = normalize(normal);
  for (const v of vols) {
    if (v.b <= FLT_EPSILON || norm(v.g) <= FLT_EPSILON) continue;
    const im = normalize([dot(v.g, row), dot(v.g, column), dot(v.g, n)]);
    // Rows are stored bottom-up (dcm2niix flips y), so the column component changes sign.
    v.g = [im[0], -im[1], im[2]];
    if (plan.mosaicNegativeDeterminant) v.g[1] = -v.g[1];
  }
}

/**
 * UIH: (0065,1037) is already in the image frame (row, column, slice); dcm2niix only negates the column
 * component for its bottom-up rows, without normalising (siemensPhilipsCorrectBvecs, UIH branch).
 */
function uihToImage(vols: { b: number; g: Vec3 }[]): void {
  for (const v of vols) v.g = [v.g[0], -v.g[1], v.g[2]];
}

/** GE: gradients are already in the logical (image) frame; reproduce dcm2niix's geCorrectBvecs. */
function geCorrect(plan: SeriesPlan, vols: { b: number; g: Vec3 }[]): void {
  const first = plan.first;
  if (first.patientPosition !== 'HFS')
    throw new ImagingInputError(
      `${first.file}: GE diffusion directions can only be converted for head-first-supine scans (Patient Position (0018,5100) is ${first.patientPosition ?? 'missing'}).`,
      first.file,
    );
  const col = first.phaseEncodingDirection === 'COL';
  if (first.phaseEncodingDirection === null)
    throw new ImagingInputError(`${first.file}: GE diffusion directions need In-plane Phase Encoding Direction (0018,1312), which is missing.`, first.file);
  const flp: [number, number, number] = plan.sliceAxis === 1 ? [1, 1, 0] : plan.sliceAxis === 2 ? [0, 1, 1] : [0, 0, 1];
  for (const v of vols) {
    const len = norm(v.g);
    if (v.b <= FLT_EPSILON || len <= FLT_EPSILON) {
      v.g = [0, 0, 0];
      continue;
    }
    if (len > 0.03 && len < 0.97) {
      // b-value scaled by |g|² (dcm2niix issue 163).
      v.b = f32(v.b * f32(len * len));
      v.g = [v.g[0] / len, v.g[1] / len, v.g[2] / len];
    }
    if (!col) v.g = [v.g[1], -v.g[0], v.g[2]];
    v.g = [flp[0] ? -v.g[0] : v.g[0], flp[1] ? -v.g[1] : v.g[1], flp[2] ? -v.g[2] : v.g[2]];
    v.g[1] = -v.g[1];
    v.g = [-v.g[0], -v.g[1], -v.g[2]];
  }
}
