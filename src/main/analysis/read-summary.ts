/**
 * What an AI read says in the terms the radiologist and the report use (issue 9 items 1, 6, 7): each
 * tissue cluster's volume and mean FA/MD, each region with its scanner coordinates, and the change of
 * both since the patient's prior study.
 *
 * Progression rules (written down because they are choices):
 * - clusters are numbered by mean diffusivity (clusters.ts), so cluster k of two studies is the same
 *   kind of tissue; its change is the difference of the means;
 * - a region is compared with the prior read's region whose centroid is nearest in scanner coordinates
 *   (the affine's mm), if that is within PRIOR_REGION_MM; there is no registration between the two
 *   studies, so a patient positioned differently moves the regions apart and no change is reported;
 * - changes are this study minus the prior one.
 */
import type { AiCluster, AiRead, AiRegion } from '../../shared/ipc.js';
import type { DwiSeries } from '../imaging/types.js';
import type { FindingRegion } from './findings.js';
import type { AnalysisResult } from './pipeline.js';
import { crc32, deflateSync } from 'node:zlib';

export const PRIOR_REGION_MM = 15;

/** Per cluster 1–4: voxels, ml and the mean FA and MD of the fitted maps. */
export function clusterSummary(result: Pick<AnalysisResult, 'clusters' | 'maps'>, pixdim: readonly number[]): AiCluster[] {
  const labels = result.clusters.labels;
  const ml = (pixdim[0]! * pixdim[1]! * pixdim[2]!) / 1000;
  const sums = new Map<number, { n: number; fa: number; md: number }>();
  for (let v = 0; v < labels.length; v++) {
    const k = labels[v]!;
    if (!k) continue;
    const s = sums.get(k) ?? { n: 0, fa: 0, md: 0 };
    s.n++;
    s.fa += result.maps.fa[v]!;
    s.md += result.maps.md[v]!;
    sums.set(k, s);
  }
  return [...sums.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([cluster, s]) => ({ cluster, voxels: s.n, volumeMl: s.n * ml, meanFa: s.fa / s.n, meanMd: s.md / s.n, prior: null }));
}

/** Voxel (i, j, k) → scanner mm through the affine. */
export function voxelToMm(affine: DwiSeries['affine'], voxel: readonly number[]): [number, number, number] {
  const [i, j, k] = voxel as [number, number, number];
  const row = (r: number[]) => r[0]! * i + r[1]! * j + r[2]! * k + r[3]!;
  return [row(affine[0]), row(affine[1]), row(affine[2])];
}

export function regionsInMm(regions: readonly FindingRegion[], affine: DwiSeries['affine']): AiRegion[] {
  return regions.map((r) => ({
    centroidVoxel: r.centroidVoxel,
    centroidMm: voxelToMm(affine, r.centroidVoxel),
    voxels: r.voxels,
    volumeMl: r.volumeMl,
    slices: r.slices,
    probability: r.probability,
    cluster: r.cluster,
    fa: r.fa,
    md: r.md,
    prior: null,
  }));
}

/** The regions and clusters with their changes since `prior` (unchanged copies when there is none). */
export function withPrior(regions: readonly AiRegion[], clusters: readonly AiCluster[], prior: Pick<AiRead, 'regions' | 'clusters'> | null): { regions: AiRegion[]; clusters: AiCluster[] } {
  if (!prior) return { regions: [...regions], clusters: [...clusters] };
  const priorCluster = new Map(prior.clusters.map((c) => [c.cluster, c]));
  return {
    clusters: clusters.map((c) => {
      const p = priorCluster.get(c.cluster);
      return { ...c, prior: p ? { faChange: c.meanFa - p.meanFa, mdChange: c.meanMd - p.meanMd } : null };
    }),
    regions: regions.map((r) => {
      let best: { region: AiRegion; distance: number } | null = null;
      for (const candidate of prior.regions) {
        const distance = Math.hypot(r.centroidMm[0] - candidate.centroidMm[0], r.centroidMm[1] - candidate.centroidMm[1], r.centroidMm[2] - candidate.centroidMm[2]);
        if (distance <= PRIOR_REGION_MM && (!best || distance < best.distance)) best = { region: candidate, distance };
      }
      if (!best) return { ...r, prior: null };
      return { ...r, prior: { faChange: r.fa.inside - best.region.fa.inside, mdChange: r.md.inside - best.region.md.inside, distanceMm: best.distance, priorVolumeMl: best.region.volumeMl } };
    }),
  };
}

// --- The heat map as a picture (the report's derived image) ---------------------------------------

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** An 8-bit RGB PNG (filter 0 on every row). */
export function encodePng(rgb: Uint8Array, width: number, height: number): Buffer {
  if (rgb.length !== width * height * 3) throw new Error(`encodePng: ${rgb.length} bytes for ${width}×${height} RGB`);
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) Buffer.from(rgb.buffer, rgb.byteOffset + y * width * 3, width * 3).copy(raw, y * (width * 3 + 1) + 1);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

/** Black → red → yellow → white for heat in [0, 1]. */
function hot(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t));
  return [Math.min(1, x * 3), Math.min(1, Math.max(0, x * 3 - 1)), Math.min(1, Math.max(0, x * 3 - 2))];
}

/**
 * Slice `z` of FA (grey) with the heat map blended over it where it is above 0.05, scaled up by whole
 * pixels to at least 256 px wide; rows are written from the top of the grid's y axis down, so the
 * picture is the grid as seen from above (anterior up for an axial RAS-like acquisition).
 */
export function heatMapPicture(fa: Float32Array, heat: Float32Array, dims: readonly [number, number, number], z: number): { data: Buffer; width: number; height: number; slice: number } {
  const [nx, ny] = dims;
  const scale = Math.max(1, Math.ceil(256 / nx));
  const width = nx * scale;
  const height = ny * scale;
  const rgb = new Uint8Array(width * height * 3);
  const plane = nx * ny;
  for (let y = 0; y < height; y++) {
    const j = ny - 1 - Math.floor(y / scale);
    for (let x = 0; x < width; x++) {
      const v = z * plane + j * nx + Math.floor(x / scale);
      const grey = Math.min(1, Math.max(0, fa[v]!));
      const h = heat[v]!;
      const alpha = h > 0.05 ? 0.35 + 0.5 * Math.min(1, h) : 0;
      const [r, g, b] = hot(h);
      const o = (y * width + x) * 3;
      rgb[o] = Math.round(255 * ((1 - alpha) * grey + alpha * r));
      rgb[o + 1] = Math.round(255 * ((1 - alpha) * grey + alpha * g));
      rgb[o + 2] = Math.round(255 * ((1 - alpha) * grey + alpha * b));
    }
  }
  return { data: encodePng(rgb, width, height), width, height, slice: z };
}
