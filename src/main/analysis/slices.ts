/**
 * The CNN's input (issue 9 item 1): per axial slice, a 128 × 128 image whose channels are the scaled
 * features (FA, MD, AD, RD, mean b0, mean DWI, each in [0, 1]) and the cluster map (label / 4), and the
 * way back from the network's 128 × 128 heat maps to the scan's voxel grid.
 *
 * Every slice of a scan is cut from the same square window in millimetres: the brain mask's in-plane
 * bounding box over all slices, plus a margin, made square around its centre. So the brain fills the
 * input whatever the matrix, field of view or voxel shape (a 2 × 1 mm pixel stays a 2 × 1 mm area: the
 * window is square in mm, not in voxels), and one mapping serves every slice. Values are resampled
 * bilinearly; outside the scan they are 0, as outside the mask.
 *
 * Slices whose brain area is under `minBrainFraction` of the largest slice's are left out (the tips of
 * the brain at the edges of the slab hold too little to classify).
 */
import { CLUSTER_COUNT, FEATURE_NAMES, type VoxelFeatures } from './clusters.js';

export const INPUT_SIZE = 128;
export const INPUT_CHANNELS = [...FEATURE_NAMES, 'cluster'] as const;

/** The square window (mm, voxel frame: voxel centre (i, j) sits at (i·dx, j·dy)) the inputs are cut from. */
export interface SliceWindow {
  /** Lower corner of the window, mm. */
  x0: number;
  y0: number;
  /** Side, mm; one input pixel is side / INPUT_SIZE mm square. */
  side: number;
  /** In-plane voxel size, mm. */
  dx: number;
  dy: number;
}

export interface SliceInputs {
  /** slices.length × INPUT_SIZE × INPUT_SIZE × INPUT_CHANNELS.length, NHWC, row = input y. */
  data: Float32Array;
  /** The z index of each input. */
  slices: number[];
  window: SliceWindow;
}

export interface SliceInputOptions {
  /** Voxels of margin around the brain's bounding box (default 3). */
  marginVoxels?: number;
  /** Default 0.05. */
  minBrainFraction?: number;
}

/** Bilinear sample of a plane (nx × ny, x fastest) at voxel coordinates (x, y); 0 beyond the edge voxels' centres ± ½. */
function bilinear(plane: Float32Array, nx: number, ny: number, x: number, y: number): number {
  if (x < -0.5 || y < -0.5 || x > nx - 0.5 || y > ny - 0.5) return 0;
  const cx = Math.min(Math.max(x, 0), nx - 1);
  const cy = Math.min(Math.max(y, 0), ny - 1);
  const x0 = Math.min(Math.floor(cx), nx - 2 < 0 ? 0 : nx - 2);
  const y0 = Math.min(Math.floor(cy), ny - 2 < 0 ? 0 : ny - 2);
  const x1 = Math.min(x0 + 1, nx - 1);
  const y1 = Math.min(y0 + 1, ny - 1);
  const fx = cx - x0;
  const fy = cy - y0;
  const top = plane[y0 * nx + x0]! * (1 - fx) + plane[y0 * nx + x1]! * fx;
  const bottom = plane[y1 * nx + x0]! * (1 - fx) + plane[y1 * nx + x1]! * fx;
  return top * (1 - fy) + bottom * fy;
}

/** The window for a mask (see the file comment). */
export function sliceWindow(mask: Uint8Array, dims: readonly [number, number, number], voxelMm: readonly [number, number, number], marginVoxels = 3): SliceWindow {
  const [nx, ny, nz] = dims;
  const [dx, dy] = voxelMm;
  let [xmin, xmax, ymin, ymax] = [nx, -1, ny, -1];
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++) {
        if (!mask[(z * ny + y) * nx + x]) continue;
        if (x < xmin) xmin = x;
        if (x > xmax) xmax = x;
        if (y < ymin) ymin = y;
        if (y > ymax) ymax = y;
      }
  if (xmax < 0) throw new Error('the brain mask is empty: no window to cut the slices from');
  // Voxel centres at i·dx; the box spans the outer edges of its voxels plus the margin.
  const left = (xmin - 0.5 - marginVoxels) * dx;
  const right = (xmax + 0.5 + marginVoxels) * dx;
  const bottom = (ymin - 0.5 - marginVoxels) * dy;
  const top = (ymax + 0.5 + marginVoxels) * dy;
  const side = Math.max(right - left, top - bottom);
  return { x0: (left + right) / 2 - side / 2, y0: (bottom + top) / 2 - side / 2, side, dx, dy };
}

/** Voxel coordinates (fractional) of the centre of input pixel (u, v). */
export function pixelToVoxel(window: SliceWindow, u: number, v: number): [number, number] {
  const pixel = window.side / INPUT_SIZE;
  return [(window.x0 + (u + 0.5) * pixel) / window.dx, (window.y0 + (v + 0.5) * pixel) / window.dy];
}

/** The CNN inputs of every slice that holds enough brain. */
export function sliceInputs(
  features: VoxelFeatures,
  clusterLabels: Uint8Array,
  mask: Uint8Array,
  dims: readonly [number, number, number],
  voxelMm: readonly [number, number, number],
  options: SliceInputOptions = {},
): SliceInputs {
  const [nx, ny, nz] = dims;
  const plane = nx * ny;
  const channels = INPUT_CHANNELS.length;
  const width = FEATURE_NAMES.length;
  const window = sliceWindow(mask, dims, voxelMm, options.marginVoxels ?? 3);
  const area = new Int32Array(nz);
  for (let i = 0; i < mask.length; i++) if (mask[i]) area[Math.floor(i / plane)]!++;
  const largest = Math.max(...area);
  const slices = Array.from({ length: nz }, (_, z) => z).filter((z) => area[z]! > 0 && area[z]! >= (options.minBrainFraction ?? 0.05) * largest);

  // Feature volumes on the voxel grid (0 outside the mask), one plane at a time when sampled.
  const volumes = Array.from({ length: channels }, () => new Float32Array(nx * ny * nz));
  features.voxels.forEach((vox, i) => {
    for (let f = 0; f < width; f++) volumes[f]![vox] = features.values[i * width + f]!;
  });
  for (let vox = 0; vox < clusterLabels.length; vox++) volumes[width]![vox] = clusterLabels[vox]! / CLUSTER_COUNT;

  const positions = Array.from({ length: INPUT_SIZE * INPUT_SIZE }, (_, p) => pixelToVoxel(window, p % INPUT_SIZE, Math.floor(p / INPUT_SIZE)));
  const data = new Float32Array(slices.length * INPUT_SIZE * INPUT_SIZE * channels);
  slices.forEach((z, s) => {
    for (let c = 0; c < channels; c++) {
      const planeValues = volumes[c]!.subarray(z * plane, (z + 1) * plane);
      const base = s * INPUT_SIZE * INPUT_SIZE * channels + c;
      positions.forEach(([x, y], p) => (data[base + p * channels] = bilinear(planeValues, nx, ny, x, y)));
    }
  });
  return { data, slices, window };
}

/**
 * A 128 × 128 map of one input (e.g. a Grad-CAM heat map, row = input y) back on the slice's voxel grid:
 * each voxel takes the map's bilinear value at its position in the window; voxels outside it get 0.
 */
export function inputMapToSlice(map: Float32Array, window: SliceWindow, nx: number, ny: number): Float32Array {
  if (map.length !== INPUT_SIZE * INPUT_SIZE) throw new Error(`a slice map has ${INPUT_SIZE}×${INPUT_SIZE} values, got ${map.length}`);
  const pixel = window.side / INPUT_SIZE;
  const out = new Float32Array(nx * ny);
  for (let y = 0; y < ny; y++)
    for (let x = 0; x < nx; x++) {
      // Input pixel coordinates whose centres are at (u + ½)·pixel from the window's corner.
      const u = (x * window.dx - window.x0) / pixel - 0.5;
      const v = (y * window.dy - window.y0) / pixel - 0.5;
      out[y * nx + x] = bilinear(map, INPUT_SIZE, INPUT_SIZE, u, v);
    }
  return out;
}
