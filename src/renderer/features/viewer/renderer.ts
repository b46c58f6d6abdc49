/**
 * What the viewport asks of a slice renderer. Two implementations: Cornerstone (WebGL, lazily
 * imported) and our own canvas 2-D renderer (the fallback without WebGL). Overlays a renderer does
 * not draw itself (`drawsOverlay` false) are painted by the viewport on a canvas layered on top,
 * using the renderer's pixel → voxel map of the current frame, so they follow slice, zoom and pan.
 */
import type { PixelToVoxel } from './geometry.js';
import type { OverlayDef, OverlayStyle } from './overlays.js';
import type { LoadedVolume } from './volumes.js';

export interface Voi {
  lower: number;
  upper: number;
}

export interface OverlayInput {
  def: OverlayDef;
  volume: LoadedVolume;
  opacity: number;
}

export type RenderBackend = 'webgl' | 'cpu';

export interface SliceRenderer {
  readonly backend: RenderBackend;
  /** e.g. the GL renderer string; shown as a tooltip. */
  readonly detail: string;
  drawsOverlay(style: OverlayStyle): boolean;
  /** Shows a new base volume; keeps zoom/pan when the grid is the same as before. */
  setBase(volume: LoadedVolume, voi: Voi, slice: number): Promise<void>;
  setOverlay(overlay: OverlayInput | null): Promise<void>;
  setOverlayOpacity(opacity: number): void;
  setVoi(voi: Voi): void;
  setSlice(slice: number): void;
  zoomBy(factor: number): void;
  /** Moves the image by CSS pixels. */
  panBy(dx: number, dy: number): void;
  /** Fit to the viewport, centred. */
  resetCamera(): void;
  /** Magnification relative to fit (1 = fit). */
  zoom(): number;
  resize(): void;
  /** Maps CSS pixels of the viewport to continuous voxel coordinates of the base, for this frame. */
  pixelToVoxel(): PixelToVoxel | null;
  onRendered(listener: () => void): () => void;
  /** The renderer cannot go on (e.g. WebGL context lost): the viewport falls back to CPU. */
  onFailure(listener: (reason: string) => void): () => void;
  destroy(): void;
}

export type RendererFactory = (element: HTMLDivElement) => Promise<SliceRenderer>;

/** Scales a CSS-pixel map to device pixels. */
export function toDevicePixels(map: PixelToVoxel, dpr: number): PixelToVoxel {
  const s = 1 / dpr;
  return { origin: map.origin, dx: [map.dx[0] * s, map.dx[1] * s, map.dx[2] * s], dy: [map.dy[0] * s, map.dy[1] * s, map.dy[2] * s] };
}

/** True when this browser can create a WebGL2 context at all (Cornerstone needs one). */
export function probeWebGl2(): { ok: boolean; renderer: string; reason: string } {
  try {
    const canvas = document.createElement('canvas');
    const gl = canvas.getContext('webgl2', { failIfMajorPerformanceCaveat: false });
    if (!gl) return { ok: false, renderer: '', reason: 'no WebGL2 context' };
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = String(ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
    gl.getExtension('WEBGL_lose_context')?.loseContext();
    return { ok: true, renderer, reason: '' };
  } catch (error) {
    return { ok: false, renderer: '', reason: error instanceof Error ? error.message : String(error) };
  }
}
