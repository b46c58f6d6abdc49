/**
 * Fetching and decoding volumes from `imaging.volume`: base64 little-endian float32 (x fastest),
 * normalised to a right-handed grid (geometry.ts). A small cache keeps the last few volumes of the
 * open study so that flipping between overlays or DWI volumes does not re-fetch.
 */
import type { AiMapKind, MapKind, VolumeData } from '../../../shared/ipc.js';
import { call } from '../../api/client.js';
import { geometryFromAffine, normaliseVoxels, type Vec3, type VolumeGeometry } from './geometry.js';

export type VolumeRequest = MapKind | { dwi: number } | { aiRead: string; map: AiMapKind };

export interface LoadedVolume {
  studyId: string;
  /** The host's key (e.g. "fa", "dwi:0"); also the cache key within a study. */
  key: string;
  components: 1 | 3;
  data: Float32Array;
  /** Min/max of the stored values, as the host reported. */
  range: [number, number];
  geometry: VolumeGeometry;
  /** Robust display range of scalar volumes (0.5th–99.5th percentile of non-zero voxels). */
  autoRange: [number, number];
}

/** The host's key of what `req` names (imaging.volume answers with the same key). */
export function requestKey(req: VolumeRequest): string {
  return typeof req === 'string' ? req : 'dwi' in req ? `dwi:${req.dwi}` : `ai:${req.aiRead}:${req.map}`;
}

export function decodeFloat32(base64: string): Float32Array {
  const binary = atob(base64);
  const n = binary.length;
  const bytes = new Uint8Array(n - (n % 4));
  for (let i = 0; i < bytes.length; i++) bytes[i] = binary.charCodeAt(i);
  const view = new DataView(bytes.buffer);
  const out = new Float32Array(bytes.length / 4);
  const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  if (littleEndianHost) return new Float32Array(bytes.buffer);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

export function robustRange(data: Float32Array, components: number, fallback: [number, number]): [number, number] {
  if (components !== 1) return fallback;
  // Histogram of non-zero finite values; 1024 bins across the reported range.
  const [lo, hi] = fallback;
  if (!(hi > lo)) return [lo, lo + 1];
  const bins = new Uint32Array(1024);
  const w = (hi - lo) / bins.length;
  let count = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v === 0 || !Number.isFinite(v)) continue;
    const b = Math.min(bins.length - 1, Math.max(0, Math.floor((v - lo) / w)));
    bins[b]!++;
    count++;
  }
  if (!count) return [lo, hi];
  const at = (q: number) => {
    const target = q * count;
    let acc = 0;
    for (let b = 0; b < bins.length; b++) {
      acc += bins[b]!;
      if (acc >= target) return lo + (b + 0.5) * w;
    }
    return hi;
  };
  const a = at(0.005);
  const b = at(0.995);
  return b > a ? [a, b] : [lo, hi];
}

export function loadedFrom(v: VolumeData): LoadedVolume {
  const dims = v.dims as Vec3;
  const geometry = geometryFromAffine(v.affine, dims);
  const raw = decodeFloat32(v.dataBase64);
  const expected = dims[0] * dims[1] * dims[2] * v.components;
  if (raw.length < expected) {
    throw new Error(`Volume "${v.key}" is truncated: ${raw.length} of ${expected} values arrived.`);
  }
  const data = normaliseVoxels(raw.length === expected ? raw : raw.subarray(0, expected), geometry, v.components);
  const range: [number, number] = [v.range[0], v.range[1]];
  return { studyId: v.studyId, key: v.key, components: v.components, data, range, geometry, autoRange: robustRange(data, v.components, range) };
}

/** Decoded volumes kept in memory (a 256×256×60 float volume is 15 MB). */
const MAX_CACHED = 10;
const cache = new Map<string, Promise<LoadedVolume>>();

/** Loads one volume of a study (cached). Rejects with the ApiError of the call. */
export function loadVolume(studyId: string, req: VolumeRequest): Promise<LoadedVolume> {
  const id = `${studyId}/${requestKey(req)}`;
  const hit = cache.get(id);
  if (hit) {
    cache.delete(id);
    cache.set(id, hit);
    return hit;
  }
  const p = call('imaging.volume', { studyId, volume: req }).then(loadedFrom);
  p.catch(() => cache.delete(id));
  cache.set(id, p);
  while (cache.size > MAX_CACHED) {
    const oldest = cache.keys().next().value;
    if (oldest === undefined) break;
    cache.delete(oldest);
  }
  return p;
}

/** The volume an overlay shows: its one source, or its sources combined by `derive` (cached too). */
export function loadOverlayVolume(
  studyId: string,
  def: { id: string; sources: readonly VolumeRequest[]; derive?: (volumes: LoadedVolume[]) => LoadedVolume },
): Promise<LoadedVolume> {
  const derive = def.derive;
  if (!derive) return loadVolume(studyId, def.sources[0]!);
  const id = `${studyId}/derived-${def.id}`;
  const hit = cache.get(id);
  if (hit) return hit;
  const p = Promise.all(def.sources.map((s) => loadVolume(studyId, s))).then(derive);
  p.catch(() => cache.delete(id));
  cache.set(id, p);
  return p;
}

/** Forgets every cached volume except those of `keepStudyId`. */
export function dropVolumesExcept(keepStudyId: string | null): void {
  for (const id of [...cache.keys()]) if (!id.startsWith(`${keepStudyId}/`)) cache.delete(id);
}

/**
 * Stable id of a volume for renderers that keep their own caches (Cornerstone). No ':' in it:
 * Cornerstone reads a scheme before the first ':' and would look for an image loader of that name.
 */
export function volumeUid(v: LoadedVolume): string {
  return `${VOLUME_UID_PREFIX}${v.studyId}_${v.key.replace(/[^a-zA-Z0-9-]/g, '-')}`;
}
export const VOLUME_UID_PREFIX = 'neuroward_';
