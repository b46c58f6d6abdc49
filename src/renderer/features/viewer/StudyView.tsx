/**
 * One open study: loads the base volume (b0 or any DWI volume) and the chosen overlay, and lays out
 * the toolbar, the viewport with its corner annotations, the slice slider and the legend.
 */
import { useEffect, useId, useMemo, useRef, useState } from 'react';
import type { Study } from '../../../shared/ipc.js';
import { errorMessage } from '../../api/errors.js';
import { Alert } from '../../components/ui.js';
import {
  setMode,
  setOpacity,
  setOverlay,
  setSlice,
  setVolumeIndex,
  setWindowLevel,
  useViewer,
  type WindowLevel,
} from '../../stores/viewer.js';
import { acquisitionFrame, type Vec3 } from './geometry.js';
import { Legend } from './Legend.js';
import { StudyNotices, StudyPatient } from './StudyPatient.js';
import { aiOverlays, NO_OVERLAY, OVERLAYS, overlayById, overlayKey } from './overlays.js';
import { AiReadPanel } from './AiReadPanel.js';
import { useAnalysis } from '../../stores/analysis.js';
import type { OverlayInput, RenderBackend, Voi } from './renderer.js';
import { Viewport, type ViewportHandle } from './Viewport.js';
import { loadOverlayVolume, loadVolume, type LoadedVolume } from './volumes.js';

type Loaded<T> = { value: T | null; loading: boolean; error: string | null };

/** Loads what `key` names with `load` (re-run when the key changes); null key: nothing. */
function useLoaded(studyId: string, key: string | null, load: () => Promise<LoadedVolume>): Loaded<LoadedVolume> {
  const [state, setState] = useState<Loaded<LoadedVolume>>({ value: null, loading: false, error: null });
  useEffect(() => {
    if (key === null) {
      setState({ value: null, loading: false, error: null });
      return;
    }
    let live = true;
    setState((s) => ({ value: s.value, loading: true, error: null }));
    load().then(
      (value) => live && setState({ value, loading: false, error: null }),
      (error: unknown) => live && setState({ value: null, loading: false, error: errorMessage(error) }),
    );
    return () => {
      live = false;
    };
    // `key` identifies what `load` loads (the function itself is new on every render).
  }, [studyId, key]);
  return state;
}

function autoWindow(v: LoadedVolume): WindowLevel {
  const [lo, hi] = v.autoRange;
  return { window: Math.max(hi - lo, 1e-6), level: (hi + lo) / 2 };
}

function roundNice(v: number): number {
  if (!Number.isFinite(v)) return 0;
  const a = Math.abs(v);
  const digits = a >= 100 ? 0 : a >= 1 ? 1 : a >= 0.01 ? 3 : 6;
  return Number(v.toFixed(digits));
}

/** Patient-direction letters of a world vector (LPS): the dominant one or two. */
function directionLetters(v: Vec3): string {
  const names: [string, string][] = [
    ['L', 'R'],
    ['P', 'A'],
    ['S', 'I'],
  ];
  const parts = v
    .map((c, axis) => ({ c, axis, letter: c >= 0 ? names[axis]![0] : names[axis]![1] }))
    .filter((p) => Math.abs(p.c) > 0.3)
    .sort((a, b) => Math.abs(b.c) - Math.abs(a.c));
  return parts.map((p) => p.letter).join('') || '?';
}

const neg = (v: Vec3): Vec3 => [-v[0], -v[1], -v[2]];

export function StudyView({ study }: { study: Study }) {
  const overlayId = useViewer((s) => s.overlayId);
  const opacity = useViewer((s) => s.opacity);
  const volumeIndex = useViewer((s) => s.volumeIndex);
  const slice = useViewer((s) => s.slice);
  const windowLevel = useViewer((s) => s.windowLevel);
  const mode = useViewer((s) => s.mode);
  const [zoom, setZoom] = useState(1);
  const [backend, setBackend] = useState<{ backend: RenderBackend; detail: string; notice: string | null } | null>(null);
  const viewportRef = useRef<ViewportHandle>(null);
  const helpId = useId();
  const ids = { overlay: useId(), opacity: useId(), volume: useId(), window: useId(), level: useId(), slice: useId() };

  // The selected AI read's heat map and clusters join the overlays once there is a read.
  const aiReadId = useAnalysis((s) => (s.studyId === study.id ? s.selectedReadId : null));
  const aiDefs = useMemo(() => (aiReadId ? aiOverlays(aiReadId) : []), [aiReadId]);
  const overlayDef = overlayById(overlayId, aiDefs);
  const dwi = Math.min(volumeIndex, Math.max(0, study.dims[3] - 1));
  const base = useLoaded(study.id, `dwi:${dwi}`, () => loadVolume(study.id, { dwi }));
  const overlayVolume = useLoaded(study.id, overlayDef ? overlayKey(overlayDef) : null, () =>
    overlayDef ? loadOverlayVolume(study.id, overlayDef) : Promise.reject(new Error('no overlay')),
  );

  const baseVolume = base.value;
  const sliceCount = baseVolume?.geometry.dims[2] ?? study.dims[2];
  // First sight of a study: the middle slice.
  const sliceInitialised = useRef(false);
  useEffect(() => {
    if (!baseVolume || sliceInitialised.current) return;
    sliceInitialised.current = true;
    setSlice(Math.floor((baseVolume.geometry.dims[2] - 1) / 2));
  }, [baseVolume]);

  const wl = windowLevel ?? (baseVolume ? autoWindow(baseVolume) : { window: 1, level: 0.5 });
  const voi = useMemo<Voi>(() => ({ lower: wl.level - wl.window / 2, upper: wl.level + wl.window / 2 }), [wl.level, wl.window]);

  const overlay = useMemo<OverlayInput | null>(() => {
    const v = overlayVolume.value;
    if (!overlayDef || !v || v.key !== overlayKey(overlayDef)) return null;
    return { def: overlayDef, volume: v, opacity };
  }, [overlayDef, overlayVolume.value, opacity]);

  const frame = useMemo(() => (baseVolume ? acquisitionFrame(baseVolume.geometry) : null), [baseVolume]);
  const clampedSlice = Math.max(0, Math.min(sliceCount - 1, slice));

  const onSliceStep = (delta: number) => {
    const s = useViewer.getState().slice;
    setSlice(Math.max(0, Math.min(sliceCount - 1, s + delta)));
  };
  const onWindowDrag = (dx: number, dy: number) => {
    if (!baseVolume) return;
    const current = useViewer.getState().windowLevel ?? autoWindow(baseVolume);
    const [lo, hi] = baseVolume.autoRange;
    const sens = Math.max(hi - lo, 1e-6) / 256;
    setWindowLevel({ window: Math.max(sens, current.window + dx * sens), level: current.level + dy * sens });
  };

  const reset = () => {
    setWindowLevel(null);
    viewportRef.current?.resetCamera();
  };

  const bval = study.bvals[volumeIndex];
  const numberStep = baseVolume ? Math.max(1e-6, Number(((baseVolume.autoRange[1] - baseVolume.autoRange[0]) / 100).toPrecision(1))) : 1;

  return (
    <div className="study-layout">
      <div className="study-view">
        <header className="study-view__head">
          <h1 className="study-view__title">{study.description || 'Untitled study'}</h1>
          <p className="muted small">
            {study.dims.slice(0, 3).join('×')} · {study.dims[3]} volumes · {study.pixdim.map((p) => p.toFixed(2)).join('×')} mm · mean FA{' '}
            {study.diffusionContrast?.status === 'absent' ? '— (no diffusion contrast)' : study.summary.meanFa.toFixed(2)} ·{' '}
            {study.masked ? `brain-masked fit (${study.summary.maskedVoxels ?? 0} voxels)` : 'unmasked fit (no mask)'}
          </p>
          <StudyPatient study={study} />
          <StudyNotices study={study} />
        </header>

        <div className="toolbar viewer-toolbar" role="toolbar" aria-label="View controls">
          <div className="tool">
            <label htmlFor={ids.overlay}>Overlay</label>
            <select id={ids.overlay} value={overlayDef ? overlayDef.id : NO_OVERLAY} onChange={(e) => setOverlay(e.target.value)}>
              <option value={NO_OVERLAY}>None</option>
              {[...OVERLAYS, ...aiDefs].map((o) => (
                <option key={o.id} value={o.id}>
                  {o.label}
                </option>
              ))}
            </select>
          </div>
          <div className="tool">
            <label htmlFor={ids.opacity}>Opacity</label>
            <input
              id={ids.opacity}
              type="range"
              min={0}
              max={100}
              step={5}
              value={Math.round(opacity * 100)}
              onChange={(e) => setOpacity(Number(e.target.value) / 100)}
              disabled={!overlayDef}
              aria-valuetext={`${Math.round(opacity * 100)}%`}
            />
            <span className="tool__value">{Math.round(opacity * 100)}%</span>
          </div>
          <div className="tool">
            <label htmlFor={ids.volume}>Volume</label>
            <select id={ids.volume} value={String(volumeIndex)} onChange={(e) => setVolumeIndex(Number(e.target.value))}>
              {study.bvals.map((b, i) => (
                <option key={i} value={i}>
                  {i + 1}: b={Math.round(b)}
                  {b < 50 ? ' (b0)' : ''}
                </option>
              ))}
            </select>
          </div>
          <div className="tool">
            <label htmlFor={ids.window}>Window</label>
            <input
              id={ids.window}
              type="number"
              className="tool__number"
              value={roundNice(wl.window)}
              step={numberStep}
              min={0}
              onChange={(e) => {
                const w = Number(e.target.value);
                if (Number.isFinite(w) && w > 0) setWindowLevel({ window: w, level: wl.level });
              }}
            />
          </div>
          <div className="tool">
            <label htmlFor={ids.level}>Level</label>
            <input
              id={ids.level}
              type="number"
              className="tool__number"
              value={roundNice(wl.level)}
              step={numberStep}
              onChange={(e) => {
                const l = Number(e.target.value);
                if (Number.isFinite(l) && e.target.value !== '') setWindowLevel({ window: wl.window, level: l });
              }}
            />
          </div>
          <div className="tool tool--buttons">
            <button type="button" className="btn btn--small" onClick={() => viewportRef.current?.zoomBy(1 / 1.25)} aria-label="Zoom out" title="Zoom out (−, Ctrl+wheel)">
              −
            </button>
            <span className="tool__value" data-testid="zoom-value">
              {Math.round(zoom * 100)}%
            </span>
            <button type="button" className="btn btn--small" onClick={() => viewportRef.current?.zoomBy(1.25)} aria-label="Zoom in" title="Zoom in (+, Ctrl+wheel)">
              +
            </button>
            <button
              type="button"
              className="btn btn--small"
              aria-pressed={mode === 'pan'}
              onClick={() => setMode(mode === 'pan' ? 'window' : 'pan')}
              title="Left-drag pans instead of changing window/level (right or middle drag always pans)"
            >
              Pan
            </button>
            <button type="button" className="btn btn--small btn--ghost" onClick={reset}>
              Reset view
            </button>
          </div>
        </div>

        <p id={helpId} className="visually-hidden">
          Mouse wheel or arrow keys change the slice; drag adjusts brightness and contrast; right or middle drag, or the Pan mode, moves the
          image; Ctrl with the wheel, or plus and minus, zooms.
        </p>
        <div className="viewport-wrap">
          <Viewport
            handleRef={viewportRef}
            base={baseVolume}
            overlay={overlay}
            voi={voi}
            slice={clampedSlice}
            sliceCount={sliceCount}
            mode={mode}
            onSliceStep={onSliceStep}
            onWindowDrag={onWindowDrag}
            onZoomChange={(z) => setZoom(Math.round(z * 100) / 100)}
            onBackend={setBackend}
            label="DTI image"
            describedBy={helpId}
          />
          {backend?.notice ? (
            <div className="render-notice" data-testid="render-notice" role="status" title={backend.detail}>
              {backend.notice}
            </div>
          ) : null}
          {frame ? (
            <div className="viewport-annotations" aria-hidden="true">
              <span className="ann ann--top">{directionLetters(neg(frame.down))}</span>
              <span className="ann ann--bottom">{directionLetters(frame.down)}</span>
              <span className="ann ann--left">{directionLetters(neg(frame.right))}</span>
              <span className="ann ann--right">{directionLetters(frame.right)}</span>
              <span className="ann ann--bl">
                Slice {clampedSlice + 1}/{sliceCount} · vol {volumeIndex + 1} b={bval !== undefined ? Math.round(bval) : '?'}
              </span>
              <span className="ann ann--br">
                W {roundNice(wl.window)} L {roundNice(wl.level)} · {Math.round(zoom * 100)}%
              </span>
            </div>
          ) : null}
          {base.loading && !baseVolume ? <div className="viewport-status">Loading image…</div> : null}
          {base.error ? (
            <div className="viewport-status viewport-status--error" role="alert">
              Could not load the image: {base.error}
            </div>
          ) : null}
        </div>

        <div className="viewer-foot">
          <div className="tool tool--slice">
            <label htmlFor={ids.slice}>Slice</label>
            <input
              id={ids.slice}
              type="range"
              min={0}
              max={Math.max(0, sliceCount - 1)}
              step={1}
              value={clampedSlice}
              onChange={(e) => setSlice(Number(e.target.value))}
              disabled={sliceCount <= 1}
              aria-valuetext={`${clampedSlice + 1} of ${sliceCount}`}
            />
            <span className="tool__value" data-testid="slice-value">
              {clampedSlice + 1} / {sliceCount}
            </span>
          </div>
          {overlayDef ? <Legend overlay={overlayDef} volume={overlayVolume.value} /> : <div className="legend legend--empty muted small">No overlay</div>}
        </div>
        {overlayVolume.error ? <Alert tone="error">Could not load the {overlayDef?.label ?? ''} map: {overlayVolume.error}</Alert> : null}
        {backend ? (
          <p className="render-backend muted small" data-testid="render-backend" data-backend={backend.backend}>
            {backend.backend === 'webgl' ? 'Rendering: ' : ''}
            {backend.detail}
          </p>
        ) : null}
      </div>
      <AiReadPanel study={study} mapping={baseVolume ? { slices: baseVolume.geometry.dims[2], reversed: baseVolume.geometry.flippedK } : null} />
    </div>
  );
}
