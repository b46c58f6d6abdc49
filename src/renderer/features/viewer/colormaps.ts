/**
 * Colour maps used by the overlays. One definition feeds the Cornerstone registration, the CPU
 * painter's 256-entry table and the legend, so all three always agree.
 */
export interface ColormapDef {
  /** Registered name (Cornerstone colormap registry). */
  name: string;
  /** Control points: position 0..1, then r, g, b in 0..1. */
  points: readonly (readonly [number, number, number, number])[];
}

const rgb = (t: number, r: number, g: number, b: number) => [t, r / 255, g / 255, b / 255] as const;

/** Perceptually uniform, readable over a grey base (viridis). */
export const FA_COLORMAP: ColormapDef = {
  name: 'neuroward-fa',
  points: [
    rgb(0, 68, 1, 84),
    rgb(0.125, 71, 44, 122),
    rgb(0.25, 59, 82, 139),
    rgb(0.375, 44, 113, 142),
    rgb(0.5, 33, 145, 140),
    rgb(0.625, 39, 173, 129),
    rgb(0.75, 92, 200, 99),
    rgb(0.875, 170, 220, 50),
    rgb(1, 253, 231, 37),
  ],
};

/** Diffusivities (plasma): distinct from FA at a glance. */
export const DIFFUSIVITY_COLORMAP: ColormapDef = {
  name: 'neuroward-diffusivity',
  points: [
    rgb(0, 13, 8, 135),
    rgb(0.125, 75, 3, 161),
    rgb(0.25, 125, 3, 168),
    rgb(0.375, 168, 34, 150),
    rgb(0.5, 203, 70, 121),
    rgb(0.625, 229, 107, 93),
    rgb(0.75, 248, 148, 65),
    rgb(0.875, 253, 195, 40),
    rgb(1, 240, 249, 33),
  ],
};

/** The AI heat map: dark red → red → yellow → white, as the report's picture (read-summary.ts heatMapPicture). */
export const HEAT_COLORMAP: ColormapDef = {
  name: 'neuroward-heat',
  points: [rgb(0, 96, 0, 0), rgb(0.33, 255, 0, 0), rgb(0.67, 255, 255, 0), rgb(1, 255, 255, 255)],
};

/**
 * The four KMeans tissue clusters, one flat colour each (labels 1–4 over the range 0–4 sit at 0.25,
 * 0.5, 0.75 and 1), colour-blind safe (Okabe–Ito): blue, bluish green, orange, reddish purple.
 */
export const CLUSTER_COLOURS: readonly (readonly [number, number, number])[] = [
  [0, 114, 178],
  [0, 158, 115],
  [230, 159, 0],
  [204, 121, 167],
];
export const CLUSTER_COLORMAP: ColormapDef = {
  name: 'neuroward-clusters',
  points: [0, 0.3, 0.37, 0.55, 0.62, 0.8, 0.87, 1].map((t, i) => {
    const [r, g, b] = CLUSTER_COLOURS[Math.floor(i / 2)]!;
    return rgb(t, r, g, b);
  }),
};

export const COLORMAPS: readonly ColormapDef[] = [FA_COLORMAP, DIFFUSIVITY_COLORMAP, HEAT_COLORMAP, CLUSTER_COLORMAP];

const lutCache = new Map<string, Uint8ClampedArray>();

/** 256 × RGB (0..255). */
export function colormapLut(def: ColormapDef): Uint8ClampedArray {
  const cached = lutCache.get(def.name);
  if (cached) return cached;
  const lut = new Uint8ClampedArray(256 * 3);
  const pts = def.points;
  for (let n = 0; n < 256; n++) {
    const t = n / 255;
    let hi = pts.findIndex((p) => p[0] >= t);
    if (hi <= 0) hi = Math.max(1, hi === -1 ? pts.length - 1 : 1);
    const a = pts[hi - 1]!;
    const b = pts[hi]!;
    const f = b[0] === a[0] ? 0 : Math.min(1, Math.max(0, (t - a[0]) / (b[0] - a[0])));
    for (let c = 1; c <= 3; c++) lut[n * 3 + c - 1] = Math.round((a[c]! + (b[c]! - a[c]!) * f) * 255);
  }
  lutCache.set(def.name, lut);
  return lut;
}

/** Cornerstone / vtk registration shape: flat [x, r, g, b, …]. */
export function colormapRgbPoints(def: ColormapDef): number[] {
  return def.points.flatMap((p) => [p[0], p[1], p[2], p[3]]);
}
