/**
 * A time-series line chart on a canvas: the last hour of one vital (or two, for blood pressure),
 * NEWS2 band shading behind it, value axis on the left, clock times below. Gaps longer than two
 * minutes break the line (no data is not drawn as if it had been measured).
 */
import { prepareCanvas } from './sparklines.js';
import { BAND_COLOURS, type BandScore } from './vitals-display.js';

export interface ChartSeries {
  /** [time ms, value] in time order. */
  points: [number, number][];
  colour: string;
  label: string;
}

export interface ChartSpec {
  series: ChartSeries[];
  /** Value range shown; values outside are clamped to the edge. */
  range: [number, number];
  /** [from, to, score] bands to shade. */
  bands: [number, number, BandScore][];
  from: number;
  to: number;
  /** Draw as steps (scores) rather than lines. */
  steps?: boolean;
  digits?: number;
  /** Time grid and labels every this many ms (default 10 minutes). */
  tickMs?: number;
}

const LEFT = 38;
const RIGHT = 8;
const TOP = 6;
const BOTTOM = 18;
const GAP_MS = 120_000;

export function drawChart(canvas: HTMLCanvasElement, width: number, height: number, spec: ChartSpec): void {
  const ctx = prepareCanvas(canvas, width, height);
  if (!ctx) return;
  const pw = Math.max(10, width - LEFT - RIGHT);
  const ph = Math.max(10, height - TOP - BOTTOM);
  const [lo, hi] = spec.range;
  const x = (t: number) => LEFT + ((t - spec.from) / (spec.to - spec.from)) * pw;
  const y = (v: number) => TOP + ph - ((Math.min(hi, Math.max(lo, v)) - lo) / (hi - lo)) * ph;

  ctx.fillStyle = '#0f1216';
  ctx.fillRect(LEFT, TOP, pw, ph);
  for (const [from, to, score] of spec.bands) {
    if (score === 0) continue;
    const top = y(Math.min(hi, to));
    const bottom = y(Math.max(lo, from));
    if (bottom <= top) continue;
    ctx.globalAlpha = 0.1 + score * 0.04;
    ctx.fillStyle = BAND_COLOURS[score];
    ctx.fillRect(LEFT, top, pw, bottom - top);
  }
  ctx.globalAlpha = 1;

  // Value axis: 4 divisions.
  ctx.font = '10px system-ui, sans-serif';
  ctx.fillStyle = '#8b95a3';
  ctx.strokeStyle = '#262c35';
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    const py = Math.round(y(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(LEFT, py);
    ctx.lineTo(LEFT + pw, py);
    ctx.stroke();
    ctx.fillText(v.toFixed(spec.digits ?? 0), LEFT - 4, py);
  }
  // Time axis: every 10 minutes on the clock (or every `tickMs`).
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  const tenMin = spec.tickMs ?? 600_000;
  for (let t = Math.ceil(spec.from / tenMin) * tenMin; t <= spec.to; t += tenMin) {
    const px = Math.round(x(t)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(px, TOP);
    ctx.lineTo(px, TOP + ph);
    ctx.stroke();
    const d = new Date(t);
    ctx.fillText(`${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`, px, TOP + ph + 4);
  }

  ctx.save();
  ctx.beginPath();
  ctx.rect(LEFT, TOP - 2, pw, ph + 4);
  ctx.clip();
  for (const s of spec.series) {
    ctx.strokeStyle = s.colour;
    ctx.fillStyle = s.colour;
    ctx.lineWidth = 1.5;
    ctx.lineJoin = 'round';
    ctx.beginPath();
    let prevT: number | null = null;
    let prevV = 0;
    for (const [t, v] of s.points) {
      const px = x(t);
      const py = y(v);
      if (prevT === null || t - prevT > GAP_MS) ctx.moveTo(px, py);
      else if (spec.steps) {
        ctx.lineTo(px, y(prevV));
        ctx.lineTo(px, py);
      } else ctx.lineTo(px, py);
      prevT = t;
      prevV = v;
    }
    ctx.stroke();
    const last = s.points[s.points.length - 1];
    if (last) {
      ctx.beginPath();
      ctx.arc(x(last[0]), y(last[1]), 2.5, 0, Math.PI * 2);
      ctx.fill();
    }
  }
  ctx.restore();
}
