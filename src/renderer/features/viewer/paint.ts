/**
 * CPU painters: fill an RGBA buffer by sampling a volume along a pixel → voxel map (bilinear within
 * the slice, nearest across slices). Used for every layer by the CPU renderer and for RGB overlays
 * over Cornerstone's WebGL image.
 */
import type { PixelToVoxel } from './geometry.js';
import type { OverlayStyle } from './overlays.js';
import type { LoadedVolume } from './volumes.js';
import { colormapLut } from './colormaps.js';

export interface PaintTarget {
  data: Uint8ClampedArray;
  width: number;
  height: number;
}

/**
 * Calls `fn(pixelIndex, base, fx, fy)` for each pixel that falls inside the volume, where `base` is
 * the voxel index of the lower-left neighbour and fx/fy the bilinear weights. Returns false for
 * pixels outside (via `outside`).
 */
function forEachSample(
  target: PaintTarget,
  volume: LoadedVolume,
  map: PixelToVoxel,
  inside: (pixel: number, i0: number, i1: number, j0: number, j1: number, k: number, fx: number, fy: number) => void,
  outside: (pixel: number) => void,
): void {
  const [nx, ny, nz] = volume.geometry.dims;
  const { width, height } = target;
  const { origin: o, dx, dy } = map;
  for (let y = 0; y < height; y++) {
    // Pixel centres: +0.5.
    const py = y + 0.5;
    let vi = o[0] + dy[0] * py + dx[0] * 0.5;
    let vj = o[1] + dy[1] * py + dx[1] * 0.5;
    let vk = o[2] + dy[2] * py + dx[2] * 0.5;
    let p = y * width;
    for (let x = 0; x < width; x++, p++, vi += dx[0], vj += dx[1], vk += dx[2]) {
      const k = Math.round(vk);
      if (k < 0 || k >= nz || vi < -0.5 || vj < -0.5 || vi > nx - 0.5 || vj > ny - 0.5) {
        outside(p);
        continue;
      }
      const ci = vi < 0 ? 0 : vi > nx - 1 ? nx - 1 : vi;
      const cj = vj < 0 ? 0 : vj > ny - 1 ? ny - 1 : vj;
      const i0 = Math.floor(ci);
      const j0 = Math.floor(cj);
      const i1 = i0 + 1 < nx ? i0 + 1 : i0;
      const j1 = j0 + 1 < ny ? j0 + 1 : j0;
      inside(p, i0, i1, j0, j1, k, ci - i0, cj - j0);
    }
  }
}

function scalarAt(data: Float32Array, nx: number, sliceBase: number, i0: number, i1: number, j0: number, j1: number, fx: number, fy: number): number {
  const r0 = sliceBase + j0 * nx;
  const r1 = sliceBase + j1 * nx;
  const a = data[r0 + i0]!;
  const b = data[r0 + i1]!;
  const c = data[r1 + i0]!;
  const d = data[r1 + i1]!;
  return (a + (b - a) * fx) * (1 - fy) + (c + (d - c) * fx) * fy;
}

/** Opaque greyscale with a linear VOI (lower..upper → 0..255); black outside the volume. */
export function paintGrey(target: PaintTarget, volume: LoadedVolume, map: PixelToVoxel, lower: number, upper: number): void {
  const out = target.data;
  const [nx, ny] = volume.geometry.dims;
  const data = volume.data;
  const span = upper > lower ? upper - lower : 1e-9;
  forEachSample(
    target,
    volume,
    map,
    (p, i0, i1, j0, j1, k, fx, fy) => {
      const v = scalarAt(data, nx, k * nx * ny, i0, i1, j0, j1, fx, fy);
      const g = ((v - lower) / span) * 255;
      const o = p * 4;
      out[o] = out[o + 1] = out[o + 2] = g;
      out[o + 3] = 255;
    },
    (p) => {
      const o = p * 4;
      out[o] = out[o + 1] = out[o + 2] = 0;
      out[o + 3] = 255;
    },
  );
}

/** An overlay layer with per-pixel alpha (transparent outside the volume and below threshold). */
export function paintOverlay(target: PaintTarget, volume: LoadedVolume, map: PixelToVoxel, style: OverlayStyle, opacity: number): void {
  const out = target.data;
  const [nx, ny] = volume.geometry.dims;
  const data = volume.data;
  const alpha = Math.round(Math.min(1, Math.max(0, opacity)) * 255);
  const clear = (p: number) => {
    out[p * 4 + 3] = 0;
  };
  if (style.kind === 'scalar') {
    if (volume.components !== 1) throw new Error(`Overlay "${volume.key}" is not a scalar map.`);
    const lut = colormapLut(style.colormap);
    const [lo, hi] = style.range(volume);
    const threshold = style.threshold(volume);
    const span = hi > lo ? hi - lo : 1e-9;
    forEachSample(
      target,
      volume,
      map,
      (p, i0, i1, j0, j1, k, fx, fy) => {
        const v = scalarAt(data, nx, k * nx * ny, i0, i1, j0, j1, fx, fy);
        const o = p * 4;
        if (!(v > threshold)) {
          out[o + 3] = 0;
          return;
        }
        const t = (v - lo) / span;
        const n = t <= 0 ? 0 : t >= 1 ? 255 : Math.round(t * 255);
        out[o] = lut[n * 3]!;
        out[o + 1] = lut[n * 3 + 1]!;
        out[o + 2] = lut[n * 3 + 2]!;
        out[o + 3] = alpha;
      },
      clear,
    );
    return;
  }
  if (volume.components !== 3) throw new Error(`Overlay "${volume.key}" is not an RGB map.`);
  const { gain, floor } = style;
  forEachSample(
    target,
    volume,
    map,
    (p, i0, i1, j0, j1, k, fx, fy) => {
      // Nearest voxel for direction colours: interpolating directions blurs the colour key.
      const i = fx < 0.5 ? i0 : i1;
      const j = fy < 0.5 ? j0 : j1;
      const v = ((k * ny + j) * nx + i) * 3;
      const r = Math.abs(data[v]!);
      const g = Math.abs(data[v + 1]!);
      const b = Math.abs(data[v + 2]!);
      const m = Math.max(r, g, b);
      const o = p * 4;
      if (!(m > floor)) {
        out[o + 3] = 0;
        return;
      }
      out[o] = r * gain * 255;
      out[o + 1] = g * gain * 255;
      out[o + 2] = b * gain * 255;
      // Fade the faintest voxels in so that the b0 shows through where anisotropy is low.
      out[o + 3] = Math.round(alpha * Math.min(1, (m * gain) / 0.35));
    },
    clear,
  );
}
