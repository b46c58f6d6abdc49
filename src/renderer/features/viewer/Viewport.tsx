/**
 * The image viewport: hosts a slice renderer (Cornerstone/WebGL, or the CPU fallback), an overlay
 * canvas for overlays the renderer does not draw itself, and the pointer/keyboard interaction.
 *
 * Slice, window/level, overlay and opacity come in as props (the store owns them); zoom and pan live
 * in the renderer's camera and are driven through the imperative handle (toolbar) or the mouse.
 */
import { useCallback, useEffect, useImperativeHandle, useRef, useState, type KeyboardEvent, type PointerEvent, type Ref } from 'react';
import { CpuRenderer } from './cpu-renderer.js';
import { paintOverlay } from './paint.js';
import { probeWebGl2, toDevicePixels, type OverlayInput, type RenderBackend, type SliceRenderer, type Voi } from './renderer.js';
import type { LoadedVolume } from './volumes.js';

export interface ViewportHandle {
  zoomBy(factor: number): void;
  resetCamera(): void;
}

export interface ViewportProps {
  base: LoadedVolume | null;
  overlay: OverlayInput | null;
  voi: Voi;
  slice: number;
  sliceCount: number;
  mode: 'window' | 'pan';
  /** Step the slice by ±n (wheel, keys). */
  onSliceStep: (delta: number) => void;
  /** Window/level drag in screen pixels: dx widens the window, dy raises the level. */
  onWindowDrag: (dx: number, dy: number) => void;
  onZoomChange: (zoom: number) => void;
  onBackend: (info: { backend: RenderBackend; detail: string; notice: string | null }) => void;
  /** Accessible name; keep it free of the control names ("Slice", "Window", …) that tests look up by label. */
  label: string;
  describedBy?: string;
  handleRef?: Ref<ViewportHandle>;
}

export const CPU_NOTICE = 'WebGL unavailable — CPU rendering';

/** Which renderer to create; `?render=cpu` in the page URL forces the fallback (diagnostics). */
function forcedCpu(): boolean {
  try {
    return new URLSearchParams(window.location.search).get('render') === 'cpu';
  } catch {
    return false;
  }
}

async function createRenderer(host: HTMLDivElement): Promise<{ renderer: SliceRenderer; notice: string | null; reason: string }> {
  if (forcedCpu()) return { renderer: new CpuRenderer(host), notice: CPU_NOTICE, reason: 'CPU rendering requested (?render=cpu)' };
  const probe = probeWebGl2();
  if (!probe.ok) return { renderer: new CpuRenderer(host), notice: CPU_NOTICE, reason: probe.reason };
  try {
    const { createCornerstoneRenderer } = await import('./cornerstone-renderer.js');
    return { renderer: await createCornerstoneRenderer(host), notice: null, reason: '' };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    console.warn('NeuroWard viewer: Cornerstone could not start, using CPU rendering:', reason);
    host.replaceChildren();
    return { renderer: new CpuRenderer(host), notice: CPU_NOTICE, reason };
  }
}

export function Viewport(props: ViewportProps) {
  const { base, overlay, voi, slice, sliceCount, mode, label, describedBy, handleRef } = props;
  const hostRef = useRef<HTMLDivElement>(null);
  const frameRef = useRef<HTMLDivElement>(null);
  const overlayCanvasRef = useRef<HTMLCanvasElement>(null);
  const [renderer, setRenderer] = useState<SliceRenderer | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const latest = useRef({ props, renderer });
  latest.current = { props, renderer };

  // Create the renderer once (and again, as CPU, when WebGL fails mid-way).
  useEffect(() => {
    const host = hostRef.current;
    if (!host) return;
    let disposed = false;
    let created: SliceRenderer | null = null;
    let offFailure = () => {};
    void (async () => {
      const forceCpu = failure !== null;
      const result = forceCpu
        ? { renderer: new CpuRenderer(host) as SliceRenderer, notice: CPU_NOTICE, reason: failure }
        : await createRenderer(host);
      if (disposed) {
        result.renderer.destroy();
        return;
      }
      created = result.renderer;
      offFailure = created.onFailure((reason) => {
        console.warn('NeuroWard viewer: WebGL renderer failed, switching to CPU:', reason);
        setFailure(reason);
      });
      latest.current.props.onBackend({
        backend: created.backend,
        detail: result.reason ? `${created.detail} — ${result.reason}` : created.detail,
        notice: result.notice,
      });
      setRenderer(created);
    })();
    return () => {
      disposed = true;
      offFailure();
      if (created) created.destroy();
      host.replaceChildren();
      setRenderer(null);
    };
  }, [failure]);

  // --- the overlay canvas -------------------------------------------------------------------
  const paintOverlayLayer = useCallback(() => {
    const canvas = overlayCanvasRef.current;
    const frame = frameRef.current;
    const r = latest.current.renderer;
    if (!canvas || !frame) return;
    const dpr = window.devicePixelRatio || 1;
    const rect = frame.getBoundingClientRect();
    const w = Math.max(1, Math.round(rect.width * dpr));
    const h = Math.max(1, Math.round(rect.height * dpr));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    const ctx = canvas.getContext('2d');
    if (!ctx) return;
    const ov = latest.current.props.overlay;
    const map = r?.pixelToVoxel();
    if (!r || !ov || !map || r.drawsOverlay(ov.def.style)) {
      ctx.clearRect(0, 0, w, h);
      return;
    }
    const image = ctx.createImageData(w, h);
    try {
      paintOverlay({ data: image.data, width: w, height: h }, ov.volume, toDevicePixels(map, dpr), ov.def.style, ov.opacity);
    } catch (error) {
      console.warn('NeuroWard viewer: overlay not drawn:', error);
    }
    ctx.putImageData(image, 0, 0);
  }, []);

  useEffect(() => {
    if (!renderer) return;
    return renderer.onRendered(() => {
      paintOverlayLayer();
      latest.current.props.onZoomChange(renderer.zoom());
    });
  }, [renderer, paintOverlayLayer]);

  // --- feeding the renderer ------------------------------------------------------------------
  // Async renderer calls run one after another; after each, the latest slice/VOI are re-applied.
  const queue = useRef<Promise<void>>(Promise.resolve());
  const enqueue = useCallback((task: (r: SliceRenderer) => Promise<void>) => {
    const r = latest.current.renderer;
    if (!r) return;
    queue.current = queue.current
      .then(() => task(r))
      .then(() => {
        const p = latest.current.props;
        r.setVoi(p.voi);
        r.setSlice(p.slice);
        paintOverlayLayer();
      })
      .catch((error: unknown) => console.warn('NeuroWard viewer: render step failed:', error));
  }, [paintOverlayLayer]);

  useEffect(() => {
    if (!renderer || !base) return;
    enqueue((r) => r.setBase(base, latest.current.props.voi, latest.current.props.slice));
  }, [renderer, base, enqueue]);

  useEffect(() => {
    if (!renderer) return;
    enqueue((r) => r.setOverlay(latest.current.props.overlay));
    // Opacity changes are handled below without re-adding the layer.
  }, [renderer, overlay?.def, overlay?.volume, enqueue]);

  const opacity = overlay?.opacity ?? 0;
  useEffect(() => {
    if (!renderer) return;
    renderer.setOverlayOpacity(opacity);
    paintOverlayLayer();
  }, [renderer, opacity, paintOverlayLayer]);

  useEffect(() => {
    renderer?.setVoi(voi);
  }, [renderer, voi]);

  useEffect(() => {
    renderer?.setSlice(slice);
  }, [renderer, slice]);

  useEffect(() => {
    const frame = frameRef.current;
    if (!frame || !renderer) return;
    const observer = new ResizeObserver(() => {
      renderer.resize();
      paintOverlayLayer();
    });
    observer.observe(frame);
    return () => observer.disconnect();
  }, [renderer, paintOverlayLayer]);

  useImperativeHandle(
    handleRef,
    () => ({
      zoomBy: (factor: number) => latest.current.renderer?.zoomBy(factor),
      resetCamera: () => latest.current.renderer?.resetCamera(),
    }),
    [],
  );

  // --- interaction --------------------------------------------------------------------------
  useEffect(() => {
    const frame = frameRef.current;
    if (!frame) return;
    let wheelAccumulator = 0;
    const onWheel = (e: WheelEvent) => {
      e.preventDefault();
      const r = latest.current.renderer;
      if (e.ctrlKey || e.metaKey) {
        r?.zoomBy(e.deltaY < 0 ? 1.15 : 1 / 1.15);
        return;
      }
      // One slice per wheel notch; pixel-precise touchpads send many small deltas, summed to ~50 px.
      if (e.deltaMode !== WheelEvent.DOM_DELTA_PIXEL || Math.abs(e.deltaY) >= 50) {
        wheelAccumulator = 0;
        if (e.deltaY) latest.current.props.onSliceStep(Math.sign(e.deltaY));
        return;
      }
      wheelAccumulator += e.deltaY;
      if (Math.abs(wheelAccumulator) < 50) return;
      const n = Math.sign(wheelAccumulator);
      wheelAccumulator = 0;
      latest.current.props.onSliceStep(n);
    };
    frame.addEventListener('wheel', onWheel, { passive: false });
    return () => frame.removeEventListener('wheel', onWheel);
  }, []);

  const drag = useRef<{ id: number; kind: 'window' | 'pan'; x: number; y: number } | null>(null);
  const onPointerDown = (e: PointerEvent<HTMLDivElement>) => {
    if (e.button !== 0 && e.button !== 1 && e.button !== 2) return;
    e.preventDefault();
    e.currentTarget.focus();
    const kind = e.button === 0 ? mode : 'pan';
    drag.current = { id: e.pointerId, kind, x: e.clientX, y: e.clientY };
    e.currentTarget.setPointerCapture(e.pointerId);
  };
  const onPointerMove = (e: PointerEvent<HTMLDivElement>) => {
    const d = drag.current;
    if (!d || d.id !== e.pointerId) return;
    const dx = e.clientX - d.x;
    const dy = e.clientY - d.y;
    d.x = e.clientX;
    d.y = e.clientY;
    if (!dx && !dy) return;
    if (d.kind === 'pan') renderer?.panBy(dx, dy);
    else props.onWindowDrag(dx, dy);
  };
  const endDrag = (e: PointerEvent<HTMLDivElement>) => {
    if (drag.current?.id === e.pointerId) drag.current = null;
  };
  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    const step = { ArrowUp: 1, ArrowRight: 1, PageUp: 5, ArrowDown: -1, ArrowLeft: -1, PageDown: -5 }[e.key];
    if (step !== undefined) {
      e.preventDefault();
      props.onSliceStep(step);
      return;
    }
    if (e.key === 'Home' || e.key === 'End') {
      e.preventDefault();
      props.onSliceStep(e.key === 'Home' ? -sliceCount : sliceCount);
    } else if (e.key === '+' || e.key === '=') {
      e.preventDefault();
      renderer?.zoomBy(1.25);
    } else if (e.key === '-' || e.key === '_') {
      e.preventDefault();
      renderer?.zoomBy(1 / 1.25);
    }
  };

  return (
    <div
      ref={frameRef}
      className={`viewport viewport--${mode}`}
      data-testid="viewer-viewport"
      data-backend={renderer?.backend ?? 'pending'}
      role="application"
      aria-label={label}
      aria-describedby={describedBy}
      aria-roledescription="image viewport"
      tabIndex={0}
      onPointerDown={onPointerDown}
      onPointerMove={onPointerMove}
      onPointerUp={endDrag}
      onPointerCancel={endDrag}
      onContextMenu={(e) => e.preventDefault()}
      onKeyDown={onKeyDown}
    >
      <div ref={hostRef} className="viewport__host" />
      <canvas ref={overlayCanvasRef} className="viewport__overlay" aria-hidden="true" />
    </div>
  );
}
