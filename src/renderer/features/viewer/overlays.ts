/**
 * The overlays the viewport can draw over the base image, as data: each entry says what it is
 * called, which volume to fetch and how to colour it. The viewport renders whichever entry is
 * selected; adding a map is adding an entry here (no branch in any component).
 */
import type { MapKind } from '../../../shared/ipc.js';
import { CLUSTER_COLORMAP, CLUSTER_COLOURS, DIFFUSIVITY_COLORMAP, FA_COLORMAP, HEAT_COLORMAP, type ColormapDef } from './colormaps.js';
import { norm, type Vec3 } from './geometry.js';
import { requestKey, type LoadedVolume, type VolumeRequest } from './volumes.js';

/** A scalar map through a colour map; values at or below `threshold` are transparent (outside the mask). */
export interface ScalarStyle {
  kind: 'scalar';
  colormap: ColormapDef;
  /** Stored-unit range the colour map spans. */
  range: (volume: LoadedVolume) => [number, number];
  threshold: (volume: LoadedVolume) => number;
}

/** A 3-component volume shown as RGB (0..1 per channel); dark voxels fade out. */
export interface RgbStyle {
  kind: 'rgb';
  /** Brightness gain applied before clamping. */
  gain: number;
  /** Channel maximum below which a voxel is transparent. */
  floor: number;
}

export type OverlayStyle = ScalarStyle | RgbStyle;

export type LegendSpec =
  | {
      kind: 'bar';
      /** Multiplier from stored units to the units shown (e.g. mm²/s → ×10⁻³ mm²/s). */
      displayScale: (volume: LoadedVolume) => number;
      units: string;
      digits: number;
    }
  | { kind: 'rgb'; channels: readonly { colour: 'red' | 'green' | 'blue'; label: string; title: string }[]; note: string }
  /** Labelled classes, one flat colour each (CSS colour strings). */
  | { kind: 'categories'; items: readonly { colour: string; label: string }[]; note: string };

export interface OverlayDef {
  id: string;
  label: string;
  /** What to ask `imaging.volume` for: one map, or several combined by `derive`. */
  sources: readonly VolumeRequest[];
  /** Builds the displayed volume from the fetched ones (same order as `sources`). */
  derive?: (volumes: LoadedVolume[]) => LoadedVolume;
  style: OverlayStyle;
  legend: LegendSpec;
  description: string;
}

/**
 * The host stores diffusivities in mm²/s (≈0.7e-3 in white matter). Should a store hold them
 * already in 10⁻³ mm²/s (µm²/ms), the values are ~1000× larger; both are handled.
 */
const diffusivityIsMilli = (v: LoadedVolume) => v.range[1] > 0.05;
const diffusivityRange = (v: LoadedVolume): [number, number] => (diffusivityIsMilli(v) ? [0, 3] : [0, 3e-3]);
const diffusivityLegend: LegendSpec = {
  kind: 'bar',
  displayScale: (v) => (diffusivityIsMilli(v) ? 1 : 1e3),
  units: 'mm²/s ×10⁻³',
  digits: 1,
};
const diffusivity = (source: MapKind, label: string, description: string): OverlayDef => ({
  id: source,
  label,
  sources: [source],
  description,
  style: {
    kind: 'scalar',
    colormap: DIFFUSIVITY_COLORMAP,
    range: diffusivityRange,
    threshold: (v) => diffusivityRange(v)[1] * 0.002,
  },
  legend: diffusivityLegend,
});

export const OVERLAYS: readonly OverlayDef[] = [
  {
    id: 'fa',
    label: 'FA',
    sources: ['fa'],
    description: 'Fractional anisotropy',
    style: { kind: 'scalar', colormap: FA_COLORMAP, range: () => [0, 1], threshold: () => 0.005 },
    legend: { kind: 'bar', displayScale: () => 1, units: 'unitless', digits: 1 },
  },
  diffusivity('md', 'MD', 'Mean diffusivity'),
  diffusivity('ad', 'AD', 'Axial diffusivity (λ1)'),
  diffusivity('rd', 'RD', 'Radial diffusivity ((λ2+λ3)/2)'),
  {
    id: 'colour-fa',
    label: 'Colour FA',
    // Not the host's 'colour-fa' map: that one is coloured by image axes (|v1| in the gradient frame),
    // which for a sagittal or oblique acquisition puts the wrong colours on anatomy. Here v1 is turned
    // into patient axes first, so red is always left–right, green anterior–posterior, blue superior–inferior.
    sources: ['v1', 'fa'],
    derive: ([v1, fa]) => anatomicalColourFa(v1!, fa!),
    description: 'Principal diffusion direction in patient axes, brightness = FA',
    style: { kind: 'rgb', gain: 1.6, floor: 0.03 },
    legend: {
      kind: 'rgb',
      channels: [
        { colour: 'red', label: 'L–R', title: 'Red: left–right' },
        { colour: 'green', label: 'A–P', title: 'Green: anterior–posterior' },
        { colour: 'blue', label: 'S–I', title: 'Blue: superior–inferior' },
      ],
      note: 'brightness = FA 0–1',
    },
  },
];

export const NO_OVERLAY = 'none';
export const AI_HEATMAP = 'ai-heatmap';
export const AI_CLUSTERS = 'ai-clusters';

/** The two maps of one AI read as overlays: where the model looked, and the tissue clusters it saw. */
export function aiOverlays(readId: string): OverlayDef[] {
  return [
    {
      id: AI_HEATMAP,
      label: 'AI heat map',
      sources: [{ aiRead: readId, map: 'heatmap' }],
      description: 'Where the AI model found lesion evidence (Grad-CAM × slice probability, 0–1); AI-generated, not for clinical diagnosis',
      style: { kind: 'scalar', colormap: HEAT_COLORMAP, range: () => [0, 1], threshold: () => 0.05 },
      legend: { kind: 'bar', displayScale: () => 1, units: 'lesion evidence', digits: 1 },
    },
    {
      id: AI_CLUSTERS,
      label: 'AI tissue clusters',
      sources: [{ aiRead: readId, map: 'clusters' }],
      description: 'PCA + KMeans (k = 4) tissue clusters inside the brain mask, numbered by mean diffusivity',
      style: { kind: 'scalar', colormap: CLUSTER_COLORMAP, range: () => [0, 4], threshold: () => 0.5 },
      legend: {
        kind: 'categories',
        items: CLUSTER_COLOURS.map(([r, g, b], i) => ({ colour: `rgb(${r}, ${g}, ${b})`, label: `${i + 1}${i === 0 ? ' (lowest MD)' : i === 3 ? ' (highest MD)' : ''}` })),
        note: 'KMeans k = 4',
      },
    },
  ];
}

/** Cache key of an overlay's displayed volume. */
export function overlayKey(def: OverlayDef): string {
  return def.derive ? `derived-${def.id}` : requestKey(def.sources[0]!);
}

/**
 * Colour FA in patient axes: |R·v1| × FA, where R turns the gradient (FSL) frame into patient space.
 * FSL's frame is the voxel frame with x mirrored when the stored image is neurological (affine
 * determinant > 0, i.e. no slice flip was needed here); a slice order we reversed mirrors z.
 */
export function anatomicalColourFa(v1: LoadedVolume, fa: LoadedVolume): LoadedVolume {
  if (v1.components !== 3 || fa.components !== 1) throw new Error('Colour FA needs the v1 vector map and the FA map.');
  const g = v1.geometry;
  const [a, b, c] = g.axes;
  const sx = g.flippedK ? 1 : -1;
  const sz = g.flippedK ? -1 : 1;
  const n = fa.data.length;
  const out = new Float32Array(n * 3);
  const src = v1.data;
  for (let v = 0; v < n; v++) {
    const f = fa.data[v]!;
    if (!(f > 0)) continue;
    const x = src[v * 3]! * sx;
    const y = src[v * 3 + 1]!;
    const z = src[v * 3 + 2]! * sz;
    const w: Vec3 = [a[0] * x + b[0] * y + c[0] * z, a[1] * x + b[1] * y + c[1] * z, a[2] * x + b[2] * y + c[2] * z];
    const len = norm(w) || 1;
    const k = Math.min(1, f) / len;
    out[v * 3] = Math.abs(w[0]) * k;
    out[v * 3 + 1] = Math.abs(w[1]) * k;
    out[v * 3 + 2] = Math.abs(w[2]) * k;
  }
  return { ...fa, key: 'derived-colour-fa', components: 3, data: out, range: [0, 1], autoRange: [0, 1] };
}

/** The overlay named `id`, among the maps and the open AI read's (`extra`). */
export function overlayById(id: string, extra: readonly OverlayDef[] = []): OverlayDef | null {
  return OVERLAYS.find((o) => o.id === id) ?? extra.find((o) => o.id === id) ?? null;
}
