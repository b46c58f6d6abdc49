/**
 * An hour of per-minute trend (hr, spo2, rr, sbp) drawn on one small canvas per tile, as four
 * panels in a 2×2 grid. Fixed vertical ranges so that the same height means the same value on every
 * bed; the NEWS2 zero band (the normal range) is shaded. Drawing is a few hundred line segments:
 * cheap enough to redo whenever the bed changes.
 */
import type { BedView } from '../../../shared/ipc.js';
import { bandRanges, type ChartVital } from './vitals-display.js';

type TrendVital = keyof BedView['trend'];

export const SPARK_VITALS: readonly { vital: TrendVital; label: string; range: [number, number]; colour: string }[] = [
  { vital: 'hr', label: 'HR', range: [30, 180], colour: '#4cc38a' },
  { vital: 'spo2', label: 'SpO₂', range: [80, 100], colour: '#5ad1e6' },
  { vital: 'rr', label: 'RR', range: [0, 40], colour: '#e6d35a' },
  { vital: 'sbp', label: 'SBP', range: [60, 200], colour: '#e9a0a0' },
];

/** Sizes the canvas backing store for the device pixel ratio; returns the 2D context in CSS pixels. */
export function prepareCanvas(canvas: HTMLCanvasElement, cssWidth: number, cssHeight: number): CanvasRenderingContext2D | null {
  const dpr = Math.min(2, window.devicePixelRatio || 1);
  const w = Math.max(1, Math.round(cssWidth * dpr));
  const h = Math.max(1, Math.round(cssHeight * dpr));
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext('2d');
  if (!ctx) return null;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssWidth, cssHeight);
  return ctx;
}

export function drawSparklines(canvas: HTMLCanvasElement, trend: BedView['trend'], dim: boolean, width: number, height: number): void {
  const ctx = prepareCanvas(canvas, width, height);
  if (!ctx) return;
  const gap = 6;
  const pw = (width - gap) / 2;
  const ph = (height - gap) / 2;
  ctx.font = '9px system-ui, sans-serif';
  ctx.textBaseline = 'top';
  SPARK_VITALS.forEach((spec, i) => {
    const x0 = (i % 2) * (pw + gap);
    const y0 = Math.floor(i / 2) * (ph + gap);
    const [lo, hi] = spec.range;
    const y = (v: number) => y0 + ph - ((Math.min(hi, Math.max(lo, v)) - lo) / (hi - lo)) * ph;

    ctx.fillStyle = '#0f1216';
    ctx.fillRect(x0, y0, pw, ph);
    // The NEWS2 zero band (normal range) of this vital.
    const zero = bandRanges(spec.vital as ChartVital).find((b) => b[2] === 0);
    if (zero) {
      const top = y(Math.min(hi, zero[1]));
      const bottom = y(Math.max(lo, zero[0]));
      ctx.fillStyle = 'rgba(76, 195, 138, 0.08)';
      ctx.fillRect(x0, top, pw, bottom - top);
    }

    const series = trend[spec.vital];
    const n = series.length;
    if (n) {
      const step = n > 1 ? pw / (Math.max(60, n) - 1) : 0;
      const xOff = x0 + pw - (n - 1) * step;
      ctx.strokeStyle = dim ? '#5d6673' : spec.colour;
      ctx.lineWidth = 1.25;
      ctx.lineJoin = 'round';
      ctx.beginPath();
      let pen = false;
      let last: [number, number] | null = null;
      for (let k = 0; k < n; k++) {
        const v = series[k];
        if (v === null || v === undefined) {
          pen = false;
          continue;
        }
        const px = xOff + k * step;
        const py = y(v);
        if (pen) ctx.lineTo(px, py);
        else ctx.moveTo(px, py);
        pen = true;
        last = [px, py];
      }
      ctx.stroke();
      if (last) {
        ctx.fillStyle = ctx.strokeStyle;
        ctx.fillRect(last[0] - 1.5, last[1] - 1.5, 3, 3);
      }
    }
    ctx.fillStyle = '#8b95a3';
    ctx.fillText(spec.label, x0 + 3, y0 + 2);
  });
}
