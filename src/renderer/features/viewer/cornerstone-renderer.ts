/**
 * The WebGL renderer: Cornerstone3D (vtk.js) volume viewport. Loaded with `import()` only when the
 * viewer opens, so the rest of the workstation never downloads it.
 *
 * The base (b0 or any DWI volume) and scalar overlays (FA, MD, …) are Cornerstone volumes fused in
 * one viewport (the overlay with a registered colour map and a thresholded opacity map). RGB maps
 * (colour FA) are not drawn here: the viewport paints them on its overlay canvas using
 * `pixelToVoxel()`, which follows Cornerstone's camera after every rendered frame.
 */
import {
  Enums,
  RenderingEngine,
  cache,
  eventTarget,
  getRenderingCapabilities,
  getShouldUseCPURendering,
  init,
  utilities,
  volumeLoader,
  type Types,
} from '@cornerstonejs/core';
import { COLORMAPS, colormapRgbPoints } from './colormaps.js';
import { acquisitionFrame, add, onSlice, pixelToVoxelFrom, scale, sub, voxelToWorld, type PixelToVoxel, type Vec3, type ViewFrame } from './geometry.js';
import type { OverlayStyle, ScalarStyle } from './overlays.js';
import type { OverlayInput, SliceRenderer, Voi } from './renderer.js';
import { VOLUME_UID_PREFIX, volumeUid, type LoadedVolume } from './volumes.js';

let initialised = false;
let engineCount = 0;

function ensureInitialised(): void {
  if (initialised) return;
  init({
    rendering: {
      // One viewport: one WebGL context is enough (the default pool opens 7, costly in software GL).
      webGlContextCount: 1,
    },
    debug: {},
  });
  for (const def of COLORMAPS) {
    utilities.colormap.registerColormap({ ColorSpace: 'RGB', Name: def.name, name: def.name, RGBPoints: colormapRgbPoints(def) });
  }
  initialised = true;
}

function opacityMapping(style: ScalarStyle, volume: LoadedVolume): Types.ColormapPublic['opacityMapping'] {
  const [lo, hi] = style.range(volume);
  const t = style.threshold(volume);
  const eps = Math.max(Math.abs(hi - lo) * 1e-4, 1e-12);
  return [
    { value: Math.min(lo, t - 2 * eps), opacity: 0 },
    { value: t, opacity: 0 },
    { value: t + eps, opacity: 1 },
    { value: Math.max(hi, t + 2 * eps), opacity: 1 },
  ];
}

/**
 * How an overlay keeps the opacity asked for. A volume viewport ray-casts a slab around the slice;
 * vtk turns the transfer-function opacity a into 1 − (1 − a)^(path / unit distance) and, for a slab
 * thinner than one sample step, scales it down again by the fraction of the step. With Cornerstone's
 * default 0.05 mm slab an overlay at 60 % shows at ~3 % (or, with a tiny unit distance, saturates
 * to 100 % in float precision). Making slab depth = sample step = unit distance gives exactly a.
 * The step (Cornerstone's own choice: mean spacing / 2) stays well inside one voxel.
 */
function overlayStep(spacing: readonly number[]): number {
  return Math.max(0.1, (spacing[0]! + spacing[1]! + spacing[2]!) / 6);
}

function overlayInput(volumeId: string, spacing: readonly number[]): Types.IVolumeInput {
  const step = overlayStep(spacing);
  return {
    volumeId,
    actorUID: volumeId,
    // addVolumes hides actors unless told otherwise.
    visibility: true,
    // Cornerstone clips at focal ± slabThickness: the slab is twice as deep as the number.
    slabThickness: step / 2,
    callback: ({ volumeActor }) => {
      volumeActor.getMapper().setSampleDistance(step);
      volumeActor.getProperty().setScalarOpacityUnitDistance(0, step);
    },
  };
}

function ensureVolume(v: LoadedVolume): string {
  const id = volumeUid(v);
  if (cache.getVolume(id)) return id;
  const g = v.geometry;
  const metadata = {
    BitsAllocated: 32,
    BitsStored: 32,
    SamplesPerPixel: 1,
    HighBit: 31,
    PhotometricInterpretation: 'MONOCHROME2',
    PixelRepresentation: 1,
    Modality: 'MR',
    SeriesInstanceUID: `neuroward-${v.studyId}`,
    ImageOrientationPatient: [...g.axes[0], ...g.axes[1]],
    PixelSpacing: [g.spacing[1], g.spacing[0]],
    FrameOfReferenceUID: `neuroward-for-${v.studyId}`,
    Columns: g.dims[0],
    Rows: g.dims[1],
    voiLut: [],
    VOILUTFunction: 'LINEAR',
  };
  volumeLoader.createLocalVolume(id, {
    metadata,
    dimensions: [...g.dims] as Types.Point3,
    spacing: [...g.spacing] as Types.Point3,
    origin: [...g.origin] as Types.Point3,
    direction: [...g.axes[0], ...g.axes[1], ...g.axes[2]] as Types.Mat3,
    scalarData: v.data,
  });
  // createLocalVolume gives every slice image the volume origin; Cornerstone looks slices up by
  // position (current image id), so each slice gets its own.
  const volume = cache.getVolume(id);
  volume?.imageIds.forEach((imageId, k) => {
    const plane = utilities.genericMetadataProvider.get(Enums.MetadataModules.IMAGE_PLANE, imageId);
    if (typeof plane !== 'object' || plane === null) return;
    utilities.genericMetadataProvider.add(imageId, {
      type: Enums.MetadataModules.IMAGE_PLANE,
      metadata: { ...plane, imagePositionPatient: voxelToWorld(g, 0, 0, k) },
    });
  });
  return id;
}

class CornerstoneRenderer implements SliceRenderer {
  readonly backend = 'webgl' as const;
  readonly detail: string;
  private readonly engine: RenderingEngine;
  private readonly viewportId = 'neuroward-dti';
  private readonly viewport: Types.IVolumeViewport;
  private base: LoadedVolume | null = null;
  private baseId: string | null = null;
  private overlay: OverlayInput | null = null;
  private overlayId: string | null = null;
  private frame: ViewFrame | null = null;
  private slice = 0;
  private voi: Voi = { lower: 0, upper: 1 };
  private readonly rendered = new Set<() => void>();
  private readonly failures = new Set<(reason: string) => void>();
  private readonly offRendered: () => void;
  private readonly offLost: () => void;
  private destroyed = false;

  constructor(element: HTMLDivElement) {
    const caps = getRenderingCapabilities();
    this.detail = `WebGL2 · ${caps.renderer || 'unknown GPU'}${caps.softwareRasterizer ? ' (software)' : ''}`;
    this.engine = new RenderingEngine(`neuroward-engine-${++engineCount}`);
    this.engine.enableElement({
      viewportId: this.viewportId,
      type: Enums.ViewportType.ORTHOGRAPHIC,
      element,
      defaultOptions: { background: [0, 0, 0] as Types.Point3 },
    });
    this.viewport = this.engine.getViewport<Types.IVolumeViewport>(this.viewportId);
    const onRendered = () => {
      for (const l of this.rendered) l();
    };
    element.addEventListener(Enums.Events.IMAGE_RENDERED, onRendered);
    this.offRendered = () => element.removeEventListener(Enums.Events.IMAGE_RENDERED, onRendered);
    const onLost = (evt: Event) => {
      const detail: unknown = (evt as CustomEvent).detail;
      const id = typeof detail === 'object' && detail !== null ? Reflect.get(detail, 'renderingEngineId') : undefined;
      if (id !== undefined && id !== this.engine.id) return;
      this.fail('the WebGL context was lost');
    };
    eventTarget.addEventListener(Enums.Events.WEBGL_CONTEXT_LOST, onLost);
    this.offLost = () => eventTarget.removeEventListener(Enums.Events.WEBGL_CONTEXT_LOST, onLost);
  }

  drawsOverlay(style: OverlayStyle): boolean {
    return style.kind === 'scalar';
  }

  async setBase(volume: LoadedVolume, voi: Voi, slice: number): Promise<void> {
    const newGrid = !this.base || this.base.studyId !== volume.studyId;
    const camera = newGrid ? null : this.viewport.getCamera();
    const baseId = ensureVolume(volume);
    const inputs: Types.IVolumeInput[] = [{ volumeId: baseId, actorUID: baseId }];
    const overlay = this.overlay && this.overlay.volume.studyId === volume.studyId ? this.overlay : null;
    const overlayId = overlay && overlay.def.style.kind === 'scalar' ? ensureVolume(overlay.volume) : null;
    if (overlayId) inputs.push(overlayInput(overlayId, volume.geometry.spacing));
    await this.guard(() => this.viewport.setVolumes(inputs));
    // Only what is on screen stays in Cornerstone's cache (a DWI series can have hundreds of volumes).
    const previousBase = this.baseId;
    if (newGrid) purgeCornerstoneVolumes(volume.studyId);
    else if (previousBase && previousBase !== baseId && previousBase !== overlayId) cache.removeVolumeLoadObject(previousBase);
    this.base = volume;
    this.baseId = baseId;
    this.overlayId = overlayId;
    if (!overlay) this.overlay = null;
    this.voi = voi;
    this.applyVoi();
    if (overlay && overlayId) this.applyOverlayProperties(overlay, overlayId);
    if (newGrid || !camera) {
      this.frame = acquisitionFrame(volume.geometry);
      this.viewport.setOrientation({ viewPlaneNormal: scale(this.frame.normal, -1), viewUp: scale(this.frame.down, -1) } as Types.OrientationVectors);
      this.viewport.resetCamera();
    } else {
      this.viewport.setCamera(camera);
    }
    this.setSlice(slice);
    this.renderSettled();
  }

  async setOverlay(overlay: OverlayInput | null): Promise<void> {
    this.overlay = overlay;
    const wanted = overlay && overlay.def.style.kind === 'scalar' && this.base ? ensureVolume(overlay.volume) : null;
    if (this.overlayId && this.overlayId !== wanted) {
      this.viewport.removeVolumeActors([this.overlayId]);
      if (this.overlayId !== this.baseId) cache.removeVolumeLoadObject(this.overlayId);
      this.overlayId = null;
    }
    if (wanted && overlay && this.overlayId !== wanted) {
      const camera = this.viewport.getCamera();
      await this.guard(() => this.viewport.addVolumes([overlayInput(wanted, overlay.volume.geometry.spacing)]));
      this.overlayId = wanted;
      this.viewport.setCamera(camera);
    }
    if (wanted && overlay) this.applyOverlayProperties(overlay, wanted);
    this.renderSettled();
  }

  setOverlayOpacity(opacity: number): void {
    if (!this.overlay) return;
    this.overlay = { ...this.overlay, opacity };
    if (this.overlayId && this.overlay.def.style.kind === 'scalar') {
      this.viewport.setProperties(
        { colormap: { opacity, opacityMapping: opacityMapping(this.overlay.def.style, this.overlay.volume) } },
        this.overlayId,
      );
    }
    this.viewport.render();
  }

  setVoi(voi: Voi): void {
    this.voi = voi;
    this.applyVoi();
    this.viewport.render();
  }

  setSlice(slice: number): void {
    if (!this.base || !this.frame) return;
    this.slice = Math.max(0, Math.min(this.frame.sliceCount - 1, Math.round(slice)));
    const camera = this.viewport.getCamera();
    const focal = camera.focalPoint as Vec3;
    const target = onSlice(this.base.geometry, this.frame, focal, this.slice);
    const delta = sub(target, focal);
    this.viewport.setCamera({ focalPoint: target as Types.Point3, position: add(camera.position as Vec3, delta) as Types.Point3 });
    this.viewport.render();
  }

  zoomBy(factor: number): void {
    const z = Math.min(40, Math.max(0.1, this.viewport.getZoom() * factor));
    this.viewport.setZoom(z);
    this.viewport.render();
  }

  panBy(dx: number, dy: number): void {
    const [px, py] = this.viewport.getPan();
    this.viewport.setPan([px + dx, py + dy] as Types.Point2);
    this.viewport.render();
  }

  resetCamera(): void {
    this.viewport.resetCamera();
    this.setSlice(this.slice);
  }

  zoom(): number {
    return this.viewport.getZoom();
  }

  resize(): void {
    // keepCamera: a resize must not lose the reader's zoom, pan or slice.
    this.engine.resize(true, true);
  }

  pixelToVoxel(): PixelToVoxel | null {
    if (!this.base) return null;
    return pixelToVoxelFrom(this.base.geometry, (x, y) => this.viewport.canvasToWorld([x, y] as Types.Point2) as Vec3);
  }

  onRendered(listener: () => void): () => void {
    this.rendered.add(listener);
    return () => this.rendered.delete(listener);
  }

  onFailure(listener: (reason: string) => void): () => void {
    this.failures.add(listener);
    return () => this.failures.delete(listener);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.offRendered();
    this.offLost();
    this.rendered.clear();
    this.failures.clear();
    try {
      this.engine.destroy();
    } catch {
      // Destroying after a lost context may throw inside vtk; nothing is left to release.
    }
    // The decoded volumes stay in volumes.ts; Cornerstone's copies and textures go with the viewport.
    purgeCornerstoneVolumes(null);
  }

  /**
   * Renders now and once more on the next frame: the first frame after a volume actor is added
   * draws it before its textures are complete (a freshly added MD overlay stayed invisible until
   * anything else re-rendered).
   */
  private renderSettled(): void {
    this.viewport.render();
    requestAnimationFrame(() => {
      if (!this.destroyed) this.viewport.render();
    });
  }

  private applyVoi(): void {
    if (!this.baseId) return;
    this.viewport.setProperties({ voiRange: { lower: this.voi.lower, upper: this.voi.upper } }, this.baseId);
  }

  private applyOverlayProperties(overlay: OverlayInput, id: string): void {
    const style = overlay.def.style;
    if (style.kind !== 'scalar') return;
    const [lower, upper] = style.range(overlay.volume);
    this.viewport.setProperties(
      {
        colormap: { name: style.colormap.name, opacity: overlay.opacity, opacityMapping: opacityMapping(style, overlay.volume) },
        voiRange: { lower, upper },
      },
      id,
    );
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      this.fail(error instanceof Error ? error.message : String(error));
      throw error;
    }
  }

  private fail(reason: string): void {
    for (const l of this.failures) l(reason);
  }
}

/** Creates the WebGL renderer; throws when Cornerstone cannot use WebGL here. */
export async function createCornerstoneRenderer(element: HTMLDivElement): Promise<SliceRenderer> {
  ensureInitialised();
  if (getShouldUseCPURendering()) throw new Error('Cornerstone found no usable WebGL');
  return new CornerstoneRenderer(element);
}

/** Frees Cornerstone's copies of every study's volumes but `exceptStudyId`'s (all when null). */
function purgeCornerstoneVolumes(exceptStudyId: string | null): void {
  for (const id of [...cache.getVolumes().map((v) => v.volumeId)]) {
    if (id.startsWith(VOLUME_UID_PREFIX) && (exceptStudyId === null || !id.startsWith(`${VOLUME_UID_PREFIX}${exceptStudyId}_`))) {
      cache.removeVolumeLoadObject(id);
    }
  }
}
