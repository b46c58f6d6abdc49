/**
 * Voxel ↔ world geometry shared by both renderers and the overlay painter.
 *
 * World space is DICOM patient space (LPS, mm): +x patient left, +y posterior, +z superior. The
 * host sends NIfTI affines (voxel → RAS+), converted here by negating x and y. Volumes are normalised
 * to a right-handed voxel grid (slice order reversed when the affine is a reflection) so that
 * Cornerstone's vtk image data and our own sampler agree without special cases.
 *
 * The view is acquisition-aligned: the screen plane is a voxel plane (no through-plane resampling,
 * exactly what a DICOM viewer shows for the series), turned to the nearest radiological convention
 * (axial: patient right on screen left, anterior up; coronal: superior up; sagittal: anterior left).
 */
export type Vec3 = [number, number, number];

export const dot = (a: Vec3, b: Vec3): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
export const cross = (a: Vec3, b: Vec3): Vec3 => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
export const scale = (a: Vec3, s: number): Vec3 => [a[0] * s, a[1] * s, a[2] * s];
export const add = (a: Vec3, b: Vec3): Vec3 => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
export const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
export const norm = (a: Vec3): number => Math.hypot(a[0], a[1], a[2]);
export const unit = (a: Vec3): Vec3 => {
  const n = norm(a);
  return n > 0 ? scale(a, 1 / n) : [0, 0, 0];
};

/** Grid of one study: every map and DWI volume of a study shares it. */
export interface VolumeGeometry {
  dims: Vec3;
  /** Voxel size along i, j, k (mm). */
  spacing: Vec3;
  /** World position of voxel (0,0,0). */
  origin: Vec3;
  /** Unit directions of increasing i, j, k in world space. */
  axes: [Vec3, Vec3, Vec3];
  /** True when the host's slice order was reversed to make the grid right-handed. */
  flippedK: boolean;
}

/** From a NIfTI voxel → RAS affine (rows) and dims. */
export function geometryFromAffine(affine: number[][], dims: Vec3): VolumeGeometry {
  const col = (c: number): Vec3 => {
    const r = (row: number) => affine[row]?.[c] ?? 0;
    // RAS → LPS: negate x and y.
    return [-r(0), -r(1), r(2)];
  };
  let iVec = col(0);
  let jVec = col(1);
  let kVec = col(2);
  let origin = col(3);
  const spacing: Vec3 = [norm(iVec) || 1, norm(jVec) || 1, norm(kVec) || 1];
  // Degenerate affine (all zero): fall back to an axial identity grid.
  if (!norm(iVec) || !norm(jVec) || !norm(kVec)) {
    iVec = [1, 0, 0];
    jVec = [0, 1, 0];
    kVec = [0, 0, 1];
    origin = [0, 0, 0];
  }
  let axes: [Vec3, Vec3, Vec3] = [unit(iVec), unit(jVec), unit(kVec)];
  let flippedK = false;
  if (dot(cross(axes[0], axes[1]), axes[2]) < 0) {
    flippedK = true;
    origin = add(origin, scale(axes[2], spacing[2] * (dims[2] - 1)));
    axes = [axes[0], axes[1], scale(axes[2], -1)];
  }
  return { dims, spacing, origin, axes, flippedK };
}

/** Reverses slice order in place-copy when the geometry says so (x fastest, `components` per voxel). */
export function normaliseVoxels(data: Float32Array, geometry: VolumeGeometry, components: number): Float32Array {
  if (!geometry.flippedK) return data;
  const [nx, ny, nz] = geometry.dims;
  const slice = nx * ny * components;
  const out = new Float32Array(data.length);
  for (let k = 0; k < nz; k++) out.set(data.subarray(k * slice, (k + 1) * slice), (nz - 1 - k) * slice);
  return out;
}

export function voxelToWorld(g: VolumeGeometry, i: number, j: number, k: number): Vec3 {
  const [a, b, c] = g.axes;
  const [si, sj, sk] = g.spacing;
  return [
    g.origin[0] + a[0] * si * i + b[0] * sj * j + c[0] * sk * k,
    g.origin[1] + a[1] * si * i + b[1] * sj * j + c[1] * sk * k,
    g.origin[2] + a[2] * si * i + b[2] * sj * j + c[2] * sk * k,
  ];
}

/** Continuous voxel coordinates of a world point (axes are orthonormal, so the inverse is a transpose). */
export function worldToVoxel(g: VolumeGeometry, p: Vec3): Vec3 {
  const d = sub(p, g.origin);
  return [dot(d, g.axes[0]) / g.spacing[0], dot(d, g.axes[1]) / g.spacing[1], dot(d, g.axes[2]) / g.spacing[2]];
}

export type PlaneName = 'axial' | 'coronal' | 'sagittal';

/** The screen frame of the acquisition plane: right, down (unit, world) and the slice axis. */
export interface ViewFrame {
  plane: PlaneName;
  right: Vec3;
  down: Vec3;
  /** right × down: points into the screen. */
  normal: Vec3;
  /** Which voxel axis runs across slices (always 2 here: the acquisition's k). */
  sliceAxis: 2;
  sliceCount: number;
  /** Extent of the in-plane field of view along right / down (mm). */
  extent: [number, number];
}

const CANONICAL: Record<PlaneName, { right: Vec3; down: Vec3 }> = {
  axial: { right: [1, 0, 0], down: [0, 1, 0] },
  coronal: { right: [1, 0, 0], down: [0, 0, -1] },
  sagittal: { right: [0, 1, 0], down: [0, 0, -1] },
};

export function acquisitionFrame(g: VolumeGeometry): ViewFrame {
  const k = g.axes[2];
  const ak = k.map(Math.abs);
  const plane: PlaneName = ak[2]! >= ak[0]! && ak[2]! >= ak[1]! ? 'axial' : ak[1]! >= ak[0]! ? 'coronal' : 'sagittal';
  const canon = CANONICAL[plane];
  const inPlane: { axis: 0 | 1; dir: Vec3 }[] = [
    { axis: 0, dir: g.axes[0] },
    { axis: 1, dir: g.axes[1] },
  ];
  // Screen right: the in-plane voxel axis (with sign) closest to the convention's right.
  let best = inPlane[0]!;
  let bestDot = -Infinity;
  let bestSign = 1;
  for (const c of inPlane) {
    const d = dot(c.dir, canon.right);
    if (Math.abs(d) > bestDot) {
      bestDot = Math.abs(d);
      best = c;
      bestSign = d < 0 ? -1 : 1;
    }
  }
  const right = scale(best.dir, bestSign);
  const other = inPlane.find((c) => c.axis !== best.axis)!;
  const down = scale(other.dir, dot(other.dir, canon.down) < 0 ? -1 : 1);
  const normal = cross(right, down);
  const extentAlong = (axis: 0 | 1) => g.dims[axis] * g.spacing[axis];
  return {
    plane,
    right,
    down,
    normal,
    sliceAxis: 2,
    sliceCount: g.dims[2],
    extent: [extentAlong(best.axis), extentAlong(other.axis)],
  };
}

/** World centre of the volume's voxel grid. */
export function volumeCentre(g: VolumeGeometry): Vec3 {
  return voxelToWorld(g, (g.dims[0] - 1) / 2, (g.dims[1] - 1) / 2, (g.dims[2] - 1) / 2);
}

/** Moves `point` along the frame normal onto the plane of voxel slice `k`. */
export function onSlice(g: VolumeGeometry, frame: ViewFrame, point: Vec3, k: number): Vec3 {
  const planePoint = voxelToWorld(g, 0, 0, k);
  return add(point, scale(frame.normal, dot(sub(planePoint, point), frame.normal)));
}

/** The voxel slice a world point lies on (nearest). */
export function sliceOf(g: VolumeGeometry, point: Vec3): number {
  return Math.round(worldToVoxel(g, point)[2]);
}

/**
 * An affine map from canvas pixels to continuous voxel coordinates: v(x, y) = origin + x·dx + y·dy.
 * Both renderers produce one per frame; the painters only need this.
 */
export interface PixelToVoxel {
  origin: Vec3;
  dx: Vec3;
  dy: Vec3;
}

/** Builds the pixel → voxel map from any canvas → world function (affine by construction). */
export function pixelToVoxelFrom(g: VolumeGeometry, canvasToWorld: (x: number, y: number) => Vec3): PixelToVoxel {
  const o = worldToVoxel(g, canvasToWorld(0, 0));
  const x1 = worldToVoxel(g, canvasToWorld(1, 0));
  const y1 = worldToVoxel(g, canvasToWorld(0, 1));
  return { origin: o, dx: sub(x1, o), dy: sub(y1, o) };
}
