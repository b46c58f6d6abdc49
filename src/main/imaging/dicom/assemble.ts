/**
 * Arranges the files (or frames, or mosaic tiles) of one series into a 4-D volume the way dcm2niix does:
 * which image is which slice of which volume, the voxel-to-RAS affine, and each volume's raw diffusion
 * encoding. Pure header logic: no pixel data is touched here.
 */
import { ImagingInputError } from '../types.js';
import type { FileHeader, FrameHeader, Layout, RawDiffusion, Vec3, Vendor } from './header.js';

/** One 2-D slice of the output: a frame of a file, or a tile of a mosaic frame. */
export interface SliceRef {
  header: FileHeader;
  frame: FrameHeader;
  /** Mosaic tile index, or -1. */
  tile: number;
}

export interface VolumePlan {
  /** nz slices in output order (ascending along the slice axis of the affine). */
  slices: SliceRef[];
  /** The slice whose diffusion tags speak for the volume (dcm2niix uses the first slice position). */
  representative: SliceRef;
  diffusion: RawDiffusion;
}

export interface SeriesPlan {
  layout: Layout;
  vendor: Vendor;
  first: FileHeader;
  /** [nx, ny, nz, volumes] */
  dims: [number, number, number, number];
  pixdim: [number, number, number];
  affine: [number[], number[], number[], number[]];
  /** Row/column direction cosines and the slice normal (row × column), in DICOM patient (LPS) space. */
  frame: { row: Vec3; column: Vec3; normal: Vec3 };
  /** dcm2niix's slice orientation code for the slice axis: 1 sagittal, 2 coronal, 3 axial, 0 single slice. */
  sliceAxis: 0 | 1 | 2 | 3;
  /** Siemens mosaic whose CSA slice normal makes a negative determinant (dcm2niix flips the slice axis). */
  mosaicNegativeDeterminant: boolean;
  volumes: VolumePlan[];
  files: string[];
}

const POSITION_TOLERANCE = 1e-3; // mm
const DIRECTION_TOLERANCE = 1e-4;

export const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
export const add = (a: Vec3, b: Vec3): Vec3 => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
export const scale = (a: Vec3, s: number): Vec3 => [a[0] * s, a[1] * s, a[2] * s];
export const dot = (a: Vec3, b: Vec3): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
export const cross = (a: Vec3, b: Vec3): Vec3 => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
export const norm = (a: Vec3): number => Math.sqrt(dot(a, a));
export const normalize = (a: Vec3): Vec3 => {
  const n = norm(a);
  return n > 0 ? scale(a, 1 / n) : [0, 0, 0];
};
const det3 = (a: Vec3, b: Vec3, c: Vec3): number => dot(a, cross(b, c));

function fail(message: string, file: string | null): never {
  throw new ImagingInputError(message, file);
}

/** Checks that every image of the series has the same shape, sampling and orientation. */
function checkUniform(headers: FileHeader[]): void {
  const first = headers[0]!;
  const f0 = first.frames[0]!;
  for (const h of headers) {
    if (h.layout !== first.layout)
      fail(`Mixed image layouts within one series: ${h.file} is ${h.layout} but ${first.file} is ${first.layout}.`, h.file);
    if (h.rows !== first.rows || h.columns !== first.columns)
      fail(
        `Mixed dimensions within one series: ${h.file} is ${h.columns}×${h.rows} pixels but ${first.file} is ${first.columns}×${first.rows}.`,
        h.file,
      );
    if (h.samplesPerPixel !== 1) fail(`${h.file} is a colour image (${h.samplesPerPixel} samples per pixel); diffusion images must be greyscale.`, h.file);
    if (h.bitsAllocated !== first.bitsAllocated || h.pixelRepresentation !== first.pixelRepresentation || h.isFloatPixels !== first.isFloatPixels)
      fail(`Mixed pixel formats within one series: ${h.file} stores ${h.bitsAllocated}-bit pixels, ${first.file} ${first.bitsAllocated}-bit.`, h.file);
    if ((h.mosaic?.slices ?? 0) !== (first.mosaic?.slices ?? 0))
      fail(`Mixed mosaic sizes within one series: ${h.file} holds ${h.mosaic?.slices ?? 1} slices, ${first.file} ${first.mosaic?.slices ?? 1}.`, h.file);
    for (const fr of h.frames) {
      const where = h.frames.length > 1 ? `${h.file} frame ${fr.frame + 1}` : h.file;
      if (!fr.position) fail(`${where} has no Image Position (Patient) (0020,0032): cannot place the slice.`, h.file);
      if (!fr.orientation) fail(`${where} has no Image Orientation (Patient) (0020,0037): cannot orient the slice.`, h.file);
      if (!fr.pixelSpacing) fail(`${where} has no Pixel Spacing (0028,0030).`, h.file);
      for (let k = 0; k < 2; k++)
        for (let i = 0; i < 3; i++)
          if (Math.abs(fr.orientation[k]![i]! - f0.orientation![k]![i]!) > DIRECTION_TOLERANCE)
            fail(`Slice orientation varies within the series (${where} differs from ${first.file}): not a single stack.`, h.file);
      if (Math.abs(fr.pixelSpacing[0] - f0.pixelSpacing![0]) > DIRECTION_TOLERANCE || Math.abs(fr.pixelSpacing[1] - f0.pixelSpacing![1]) > DIRECTION_TOLERANCE)
        fail(`Pixel spacing varies within the series (${where} differs from ${first.file}).`, h.file);
    }
  }
}

type Key = (number | string)[];

function compareKeys(a: Key, b: Key): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return 0;
}

/** The key that orders the images of one slice position into volumes (acquisition order). */
function volumeKeyFn(headers: FileHeader[], layout: Layout, slices: SliceRef[]): (s: SliceRef) => Key {
  const vendor = headers[0]!.vendor;
  const fileIndex = new Map(headers.map((h, i) => [h.file, i]));
  const tail = (s: SliceRef): Key => [s.header.instanceNumber ?? Number.MAX_SAFE_INTEGER, s.header.file, fileIndex.get(s.header.file) ?? 0, s.frame.frame];
  const all = <T>(fn: (s: SliceRef) => T | null): boolean => slices.every((s) => fn(s) !== null);
  if (vendor === 'Philips' && all((s) => s.frame.philipsVolumeNumber)) return (s) => [s.frame.philipsVolumeNumber!, ...tail(s)];
  if (layout === 'enhanced' && all((s) => s.frame.dimensionIndexValues)) {
    const first = headers[0]!;
    const n = Math.min(...slices.map((s) => s.frame.dimensionIndexValues!.length));
    // As dcm2niix: the index that points at the in-stack position (or the position itself) is the spatial one;
    // if it comes before the last varying index, later indices are more significant (Philips), else earlier
    // ones are (Canon, Bruker).
    const stackItem = first.dimensionIndexPointers.findIndex((p) => p === 0x00209057 || p === 0x00200032);
    let maxVariable = 0;
    for (let j = 0; j < n; j++) {
      const v0 = slices[0]!.frame.dimensionIndexValues![j];
      if (slices.some((s) => s.frame.dimensionIndexValues![j] !== v0)) maxVariable = j;
    }
    const lastMostSignificant = Math.max(stackItem, 0) < maxVariable;
    return (s) => {
      const div = s.frame.dimensionIndexValues!.slice(0, n).filter((_, j) => j !== stackItem);
      return [...(lastMostSignificant ? div.reverse() : div), ...tail(s)];
    };
  }
  if (vendor === 'Philips' && all((s) => s.frame.philipsBValueNumber) && all((s) => s.frame.philipsGradientNumber))
    return (s) => [s.frame.philipsBValueNumber!, s.frame.philipsGradientNumber!, ...tail(s)];
  if (layout === 'enhanced') {
    if (all((s) => s.frame.temporalPositionIndex)) return (s) => [s.frame.temporalPositionIndex!, ...tail(s)];
    return tail;
  }
  return (s) => [s.header.instanceNumber ?? Number.MAX_SAFE_INTEGER, s.header.acquisitionTime ?? 0, ...tail(s)];
}

const DERIVED_TYPES = new Set(['DERIVED', 'ADC', 'TRACEW', 'TRACE', 'FA']);

/** ImageType (0008,0008) marks a vendor-derived map (as dcm2niix's isDerived). */
export function isDerivedImage(h: FileHeader): boolean {
  return h.imageType.some((t) => DERIVED_TYPES.has(t));
}

/** dcm2niix's verify_slice_dir: the axis (1..3) of the largest slice-vector component, ties to the later axis. */
function sliceAxisOf(v: Vec3): 1 | 2 | 3 {
  const a = v.map(Math.abs) as Vec3;
  let axis: 1 | 2 | 3 = 1;
  if (a[1] >= a[0] && a[1] >= a[2]) axis = 2;
  if (a[2] >= a[0] && a[2] >= a[1]) axis = 3;
  return axis;
}

const FLT_EPSILON = 1.1920928955078125e-7;

/**
 * dcm2niix's verify_slice_dir for a UIH grid: true if the tiles run against row × column (dcm2niix then
 * reverses them, nii_flipZ). The position it compares along the slice axis is the next file's first one if
 * that differs (float32, isSameFloat), else the file's last (0020,0032), i.e. its last tile; with neither it
 * guesses from the sign of the summed slice normal.
 */
function uihGridReversed(headers: FileHeader[], sliceVector: Vec3, nz: number): boolean {
  const first = headers[0]!;
  const p0 = first.frames[0]!.position!;
  const axis = sliceAxisOf(sliceVector) - 1;
  const differs = (p: Vec3 | null | undefined): p is Vec3 => !!p && Math.abs(Math.fround(p[axis]!) - Math.fround(p0[axis]!)) > FLT_EPSILON;
  const next = headers[1]?.frames[0]?.position;
  const tiles = first.mosaic?.grid === 'uih' ? first.mosaic.tilePositions : [];
  const last = tiles[tiles.length - 1];
  const ref = differs(next) ? next : differs(last) ? last : null;
  if (!ref) return sliceVector[0] + sliceVector[1] + sliceVector[2] < 0;
  const start = p0[axis]!;
  const end = start + sliceVector[axis]! * (nz - 1);
  return ref[axis]! > start !== end > start;
}

/**
 * Plan the series: order slices and volumes, compute the affine as dcm2niix writes it.
 * Throws ImagingInputError (naming a file) when the images do not form one consistent 4-D series.
 */
export function planSeries(headersIn: FileHeader[]): SeriesPlan {
  if (headersIn.length === 0) fail('No DICOM images to read.', null);
  // A series that mixes acquired and derived images (vendor ADC/trace/FA maps): dcm2niix writes the derived
  // ones to a separate file, so the diffusion series is the acquired images alone.
  const acquired = headersIn.filter((h) => !isDerivedImage(h));
  const chosen = acquired.length > 0 ? acquired : headersIn;
  const headers = [...chosen].sort((a, b) => compareKeys([a.instanceNumber ?? Number.MAX_SAFE_INTEGER, a.file], [b.instanceNumber ?? Number.MAX_SAFE_INTEGER, b.file]));
  checkUniform(headers);
  const first = headers[0]!;
  const layout = first.layout;
  const f0 = first.frames[0]!;
  const [rowDirRaw, colDirRaw] = f0.orientation!;
  const row = normalize(rowDirRaw);
  const column = normalize(colDirRaw);
  const normal = cross(row, column);
  if (norm(normal) < 0.5) fail(`${first.file} has a degenerate Image Orientation (Patient).`, first.file);
  const [rowSpacing, colSpacing] = f0.pixelSpacing!;

  let nx: number;
  let ny: number;
  let volumes: VolumePlan[];
  let dx: number;
  let originLps: Vec3;
  let sliceVector: Vec3;
  let mosaicNegativeDeterminant = false;
  let nz: number;

  if (layout === 'mosaic') {
    const mosaic = first.mosaic!;
    const n = mosaic.slices;
    // dcm2niix's nii_demosaic: ceil(sqrt(n)) tile columns; Siemens as many tile rows, UIH only the rows it
    // fills (20 slices: 5×5 Siemens, 5 columns × 4 rows UIH). Tiles run along rows, then down.
    const tileColumns = Math.ceil(Math.sqrt(n));
    const tileRows = mosaic.grid === 'uih' ? Math.ceil(n / tileColumns) : tileColumns;
    const what = mosaic.grid === 'uih' ? 'UIH grid' : 'mosaic';
    if (first.columns % tileColumns !== 0 || first.rows % tileRows !== 0)
      fail(`${first.file}: a ${first.columns}×${first.rows} ${what} cannot hold ${n} slices in a ${tileColumns}×${tileRows} grid.`, first.file);
    nx = first.columns / tileColumns;
    ny = first.rows / tileRows;
    nz = n;
    dx = f0.spacingBetweenSlices && f0.spacingBetweenSlices > 0 ? f0.spacingBetweenSlices : f0.sliceThickness && f0.sliceThickness > 0 ? f0.sliceThickness : 1;
    sliceVector = scale(normal, dx);
    let reversed = false;
    if (mosaic.grid === 'uih') {
      // The position is the first tile's own (no corner shift, dcm2niix applies that to Siemens only); the
      // stack direction is dcm2niix's verify_slice_dir, as for classic series.
      const p0 = f0.position!;
      originLps = p0;
      if (nz > 1) {
        reversed = uihGridReversed(headers, sliceVector, nz);
        if (reversed) originLps = sub(p0, scale(sliceVector, nz - 1));
      }
    } else {
      // dcm2niix: the DICOM position is the corner of the whole mosaic; move it to the corner of the first tile.
      const lFactorX = (first.columns - first.columns / tileColumns) / 2;
      const lFactorY = (first.rows - first.rows / tileRows) / 2;
      originLps = add(f0.position!, add(scale(row, colSpacing * lFactorX), scale(column, rowSpacing * lFactorY)));
      const csaNormal = mosaic.sliceNormal;
      if (csaNormal && det3(row, column, csaNormal) < 0) {
        mosaicNegativeDeterminant = true;
        sliceVector = scale(sliceVector, -1);
      }
    }
    // One file per volume, in instance order (dcm2niix sorts by instance number).
    volumes = headers.map((h) => {
      const slices = Array.from({ length: n }, (_, k) => ({ header: h, frame: h.frames[0]!, tile: reversed ? n - 1 - k : k }));
      return { slices, representative: slices[0]!, diffusion: h.frames[0]!.diffusion };
    });
  } else {
    nx = first.columns;
    ny = first.rows;
    const slices: SliceRef[] = headers.flatMap((h) => h.frames.map((frame) => ({ header: h, frame, tile: -1 })));
    // Group images by slice position.
    const groups: { position: Vec3; along: number; members: SliceRef[] }[] = [];
    for (const s of slices) {
      const p = s.frame.position!;
      let g = groups.find((x) => norm(sub(x.position, p)) < POSITION_TOLERANCE);
      if (!g) {
        g = { position: p, along: dot(p, normal), members: [] };
        groups.push(g);
      }
      g.members.push(s);
    }
    groups.sort((a, b) => a.along - b.along);
    nz = groups.length;
    const counts = groups.map((g) => g.members.length);
    const nv = Math.max(...counts);
    const short = groups.find((g) => g.members.length !== nv);
    if (short) {
      const example = short.members[0]!;
      fail(
        `Inconsistent volume count: the slice at ${short.position.map((v) => v.toFixed(2)).join(', ')} mm has ${short.members.length} image(s) ` +
          `but other slices have ${nv} (e.g. ${example.header.file}); the series is incomplete or mixes acquisitions.`,
        example.header.file,
      );
    }
    const keyOf = volumeKeyFn(headers, layout, slices);
    for (const g of groups) g.members.sort((a, b) => compareKeys(keyOf(a), keyOf(b)));
    // Slices of volume 0 in the order dcm2niix loads them (instance number / in-stack position).
    const vol0 = groups.map((g) => g.members[0]!);
    const loadOrder = [...vol0].sort((a, b) =>
      layout === 'enhanced'
        ? compareKeys([a.frame.inStackPosition ?? 0, a.frame.frame], [b.frame.inStackPosition ?? 0, b.frame.frame])
        : compareKeys([a.header.instanceNumber ?? Number.MAX_SAFE_INTEGER, a.header.file], [b.header.instanceNumber ?? Number.MAX_SAFE_INTEGER, b.header.file]),
    );
    const s0 = loadOrder[0]!;
    const p0 = s0.frame.position!;
    if (nz > 1) {
      const sLast = loadOrder[nz - 1]!;
      if (layout === 'enhanced') {
        dx = f0.spacingBetweenSlices && f0.spacingBetweenSlices > 0 ? f0.spacingBetweenSlices : norm(sub(sLast.frame.position!, p0)) / (nz - 1);
      } else {
        dx = norm(sub(loadOrder[1]!.frame.position!, p0));
      }
      // dcm2niix's verify_slice_dir: flip the slice axis if the stack runs against row × column.
      sliceVector = scale(normal, dx);
      const axis = sliceAxisOf(sliceVector) - 1;
      const pos = (layout === 'enhanced' ? sLast : loadOrder[1]!).frame.position![axis]!;
      const pos1 = p0[axis]! + sliceVector[axis]! * (nz - 1);
      const flip = pos > p0[axis]! !== pos1 > p0[axis]!;
      // After dcm2niix flips the slice order back (nii_flipZ), the origin is the far end of the stack.
      originLps = flip ? sub(p0, scale(sliceVector, nz - 1)) : p0;
    } else {
      dx = f0.spacingBetweenSlices && f0.spacingBetweenSlices > 0 ? f0.spacingBetweenSlices : f0.sliceThickness && f0.sliceThickness > 0 ? f0.sliceThickness : 1;
      sliceVector = scale(normal, dx);
      originLps = p0;
    }
    const repGroup = groups.find((g) => g.members.includes(s0))!;
    volumes = Array.from({ length: nv }, (_, v) => {
      const volSlices = groups.map((g) => g.members[v]!);
      const representative = repGroup.members[v]!;
      return { slices: volSlices, representative, diffusion: representative.frame.diffusion };
    });
  }

  // Voxel → LPS, then LPS → RAS (negate x and y), then dcm2niix's row flip (nii_flipY).
  const colVec = scale(row, colSpacing);
  const rowVec = scale(column, rowSpacing);
  const ras = (v: Vec3): Vec3 => [-v[0], -v[1], v[2]];
  const c0 = ras(colVec);
  let c1 = ras(rowVec);
  const c2 = ras(sliceVector);
  let t = ras(originLps);
  t = add(t, scale(c1, ny - 1));
  c1 = scale(c1, -1);
  const affine: SeriesPlan['affine'] = [
    [c0[0], c1[0], c2[0], t[0]],
    [c0[1], c1[1], c2[1], t[1]],
    [c0[2], c1[2], c2[2], t[2]],
    [0, 0, 0, 1],
  ];
  return {
    layout,
    vendor: first.vendor,
    first,
    dims: [nx, ny, nz, volumes.length],
    pixdim: [colSpacing, rowSpacing, dx],
    affine,
    frame: { row, column, normal },
    sliceAxis: nz < 2 ? 0 : sliceAxisOf(scale(normal, dx)),
    mosaicNegativeDeterminant,
    volumes,
    files: headers.map((h) => h.file),
  };
}
