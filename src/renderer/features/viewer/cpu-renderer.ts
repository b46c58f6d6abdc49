/**
 * The CPU fallback: our own camera (acquisition-aligned frame, zoom about the centre, pan in screen
 * pixels) and a 2-D canvas painted by paint.ts. Scalar and RGB overlays are left to the viewport's
 * overlay layer, which samples them along the same pixel → voxel map.
 */
import {
  acquisitionFrame,
  add,
  onSlice,
  pixelToVoxelFrom,
  scale,
  volumeCentre,
  type PixelToVoxel,
  type Vec3,
  type ViewFrame,
  type VolumeGeometry,
} from './geometry.js';
import { paintGrey } from './paint.js';
import { toDevicePixels, type OverlayInput, type SliceRenderer, type Voi } from './renderer.js';
import type { LoadedVolume } from './volumes.js';

function sameGrid(a: VolumeGeometry, b: VolumeGeometry): boolean {
  const eq = (x: readonly number[], y: readonly number[]) => x.every((v, i) => Math.abs(v - (y[i] ?? NaN)) < 1e-4);
  return eq(a.dims, b.dims) && eq(a.spacing, b.spacing) && eq(a.origin, b.origin) && a.axes.every((v, i) => eq(v, b.axes[i]!));
}

export class CpuRenderer implements SliceRenderer {
  readonly backend = 'cpu' as const;
  readonly detail = 'Canvas 2-D';
  private readonly canvas: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D;
  private base: LoadedVolume | null = null;
  private frame: ViewFrame | null = null;
  private voi: Voi = { lower: 0, upper: 1 };
  private slice = 0;
  /** World point at the canvas centre (on the current slice). */
  private focal: Vec3 = [0, 0, 0];
  private zoomFactor = 1;
  private width = 1;
  private height = 1;
  private dpr = 1;
  private frameRequest = 0;
  private readonly rendered = new Set<() => void>();

  constructor(private readonly element: HTMLDivElement) {
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'viewer-canvas';
    const ctx = this.canvas.getContext('2d');
    if (!ctx) throw new Error('This browser cannot draw on a 2-D canvas.');
    this.ctx = ctx;
    element.appendChild(this.canvas);
    this.measure();
  }

  drawsOverlay(): boolean {
    return false;
  }

  async setBase(volume: LoadedVolume, voi: Voi, slice: number): Promise<void> {
    const keepCamera = !!this.base && sameGrid(this.base.geometry, volume.geometry);
    this.base = volume;
    this.voi = voi;
    if (!keepCamera) {
      this.frame = acquisitionFrame(volume.geometry);
      this.focal = volumeCentre(volume.geometry);
      this.zoomFactor = 1;
    }
    this.setSlice(slice);
  }

  async setOverlay(_overlay: OverlayInput | null): Promise<void> {
    this.schedule();
  }

  setOverlayOpacity(): void {
    this.schedule();
  }

  setVoi(voi: Voi): void {
    this.voi = voi;
    this.schedule();
  }

  setSlice(slice: number): void {
    if (!this.base || !this.frame) return;
    this.slice = Math.max(0, Math.min(this.frame.sliceCount - 1, Math.round(slice)));
    this.focal = onSlice(this.base.geometry, this.frame, this.focal, this.slice);
    this.schedule();
  }

  zoomBy(factor: number): void {
    this.zoomFactor = Math.min(40, Math.max(0.1, this.zoomFactor * factor));
    this.schedule();
  }

  panBy(dx: number, dy: number): void {
    if (!this.frame) return;
    const s = this.mmPerPixel();
    this.focal = add(this.focal, add(scale(this.frame.right, -dx * s), scale(this.frame.down, -dy * s)));
    this.schedule();
  }

  resetCamera(): void {
    if (!this.base || !this.frame) return;
    this.zoomFactor = 1;
    this.focal = onSlice(this.base.geometry, this.frame, volumeCentre(this.base.geometry), this.slice);
    this.schedule();
  }

  zoom(): number {
    return this.zoomFactor;
  }

  resize(): void {
    this.measure();
    this.schedule();
  }

  pixelToVoxel(): PixelToVoxel | null {
    if (!this.base || !this.frame) return null;
    const frame = this.frame;
    const s = this.mmPerPixel();
    const cx = this.width / 2;
    const cy = this.height / 2;
    return pixelToVoxelFrom(this.base.geometry, (x, y) =>
      add(this.focal, add(scale(frame.right, (x - cx) * s), scale(frame.down, (y - cy) * s))),
    );
  }

  onRendered(listener: () => void): () => void {
    this.rendered.add(listener);
    return () => this.rendered.delete(listener);
  }

  onFailure(): () => void {
    return () => {};
  }

  destroy(): void {
    cancelAnimationFrame(this.frameRequest);
    this.rendered.clear();
    this.canvas.remove();
  }

  private mmPerPixel(): number {
    if (!this.frame) return 1;
    const fit = Math.max(this.frame.extent[0] / this.width, this.frame.extent[1] / this.height);
    return fit / this.zoomFactor;
  }

  private measure(): void {
    const rect = this.element.getBoundingClientRect();
    this.dpr = window.devicePixelRatio || 1;
    this.width = Math.max(1, rect.width);
    this.height = Math.max(1, rect.height);
    const w = Math.max(1, Math.round(this.width * this.dpr));
    const h = Math.max(1, Math.round(this.height * this.dpr));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
  }

  private schedule(): void {
    if (this.frameRequest) return;
    this.frameRequest = requestAnimationFrame(() => {
      this.frameRequest = 0;
      this.draw();
    });
  }

  private draw(): void {
    const { width, height } = this.canvas;
    const map = this.pixelToVoxel();
    if (!this.base || !map) {
      this.ctx.clearRect(0, 0, width, height);
      return;
    }
    const image = this.ctx.createImageData(width, height);
    paintGrey({ data: image.data, width, height }, this.base, toDevicePixels(map, this.dpr), this.voi.lower, this.voi.upper);
    this.ctx.putImageData(image, 0, 0);
    for (const listener of this.rendered) listener();
  }
}
