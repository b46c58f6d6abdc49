/**
 * Copies stored pixel values into the output volume: one slice (a frame, or a mosaic tile) at a time,
 * rows reversed as dcm2niix stores them, scaled by the slice's slope and intercept.
 */
import type { FileHeader } from './header.js';

export interface SliceCopy {
  /** Frame index within the file. */
  frame: number;
  /** Mosaic tile, or -1. */
  tile: number;
  /** Tiles per mosaic row (1 when not a mosaic). */
  tilesPerRow: number;
  slope: number;
  intercept: number;
  /** Destination offset (first voxel of the slice) in `out`. */
  outOffset: number;
}

type Reader = (index: number) => number;

/**
 * Stored values with the bits above BitsStored removed: unsigned values are masked (as dcm2niix does for
 * 12-bit data), signed values are sign-extended from their high bit as the standard defines. (dcm2niix
 * masks signed 12-bit data too, turning negative values positive; we do not copy that.)
 */
function sampleReader(buf: Buffer, header: FileHeader): Reader {
  const raw = rawReader(buf, header);
  const { bitsStored, bitsAllocated, pixelRepresentation, isFloatPixels } = header;
  if (isFloatPixels || bitsStored >= bitsAllocated || bitsStored < 1 || bitsAllocated > 32) return raw;
  if (pixelRepresentation === 1) {
    const shift = 32 - bitsStored;
    return (i) => (raw(i) << shift) >> shift;
  }
  const mask = bitsStored >= 32 ? 0xffffffff : 2 ** bitsStored - 1;
  return (i) => (raw(i) & mask) >>> 0;
}

/** A typed view on the pixel data of one file, whatever its alignment and endianness. */
function rawReader(buf: Buffer, header: FileHeader): Reader {
  const { bitsAllocated, pixelRepresentation, isFloatPixels, littleEndian } = header;
  const start = buf.byteOffset + header.pixelOffset;
  const length = header.pixelLength;
  const ab = buf.buffer;
  const aligned = (size: number): boolean => start % size === 0 && littleEndian;
  const dv = new DataView(ab, start, length);
  if (isFloatPixels) {
    if (bitsAllocated === 64) return (i) => dv.getFloat64(i * 8, littleEndian);
    if (aligned(4)) {
      const a = new Float32Array(ab, start, Math.floor(length / 4));
      return (i) => a[i]!;
    }
    return (i) => dv.getFloat32(i * 4, littleEndian);
  }
  switch (bitsAllocated) {
    case 8: {
      const a = pixelRepresentation === 1 ? new Int8Array(ab, start, length) : new Uint8Array(ab, start, length);
      return (i) => a[i]!;
    }
    case 16:
      if (aligned(2)) {
        const a = pixelRepresentation === 1 ? new Int16Array(ab, start, length >> 1) : new Uint16Array(ab, start, length >> 1);
        return (i) => a[i]!;
      }
      return pixelRepresentation === 1 ? (i) => dv.getInt16(i * 2, littleEndian) : (i) => dv.getUint16(i * 2, littleEndian);
    case 32:
      if (aligned(4)) {
        const a = pixelRepresentation === 1 ? new Int32Array(ab, start, length >> 2) : new Uint32Array(ab, start, length >> 2);
        return (i) => a[i]!;
      }
      return pixelRepresentation === 1 ? (i) => dv.getInt32(i * 4, littleEndian) : (i) => dv.getUint32(i * 4, littleEndian);
    default:
      throw new Error(`${bitsAllocated}-bit pixels are not supported`);
  }
}

/** Bytes one frame of the file takes. */
export function frameBytes(header: FileHeader): number {
  return header.rows * header.columns * (header.bitsAllocated / 8);
}

/**
 * Copy the listed slices of one file into `out` (x fastest, rows flipped: output row j is stored row ny-1-j).
 * nx, ny: slice size in the output (a tile for mosaics).
 */
export function copySlices(buf: Buffer, header: FileHeader, copies: SliceCopy[], out: Float32Array, nx: number, ny: number): void {
  const typed = typedSamples(buf, header);
  if (typed) {
    copyTyped(typed.samples, typed.mask, header, copies, out, nx, ny);
    return;
  }
  const read = sampleReader(buf, header);
  const cols = header.columns;
  const perFrame = header.rows * header.columns;
  for (const c of copies) {
    const tileRow = c.tile < 0 ? 0 : Math.floor(c.tile / c.tilesPerRow);
    const tileCol = c.tile < 0 ? 0 : c.tile % c.tilesPerRow;
    const frameBase = c.frame * perFrame + tileRow * ny * cols + tileCol * nx;
    const identity = c.slope === 1 && c.intercept === 0;
    for (let j = 0; j < ny; j++) {
      const src = frameBase + (ny - 1 - j) * cols;
      const dst = c.outOffset + j * nx;
      if (identity) for (let i = 0; i < nx; i++) out[dst + i] = read(src + i);
      else for (let i = 0; i < nx; i++) out[dst + i] = read(src + i) * c.slope + c.intercept;
    }
  }
}

type Samples = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

/**
 * The pixel data as a typed array when one can hold the stored values as they are (little endian, and
 * no sign extension from a BitsStored below BitsAllocated), with the mask for unused high bits (0: none).
 * Unaligned pixel data is copied once to aligned memory. Null: the general per-sample reader is needed.
 */
function typedSamples(buf: Buffer, header: FileHeader): { samples: Samples; mask: number } | null {
  const { bitsAllocated, bitsStored, pixelRepresentation, isFloatPixels, littleEndian } = header;
  if (!littleEndian) return null;
  const masked = !isFloatPixels && bitsStored >= 1 && bitsStored < bitsAllocated;
  if (masked && (pixelRepresentation === 1 || bitsAllocated > 16)) return null;
  const size = bitsAllocated / 8;
  if (![1, 2, 4, 8].includes(size) || (isFloatPixels && size < 4) || (!isFloatPixels && size > 4)) return null;
  const count = Math.floor(header.pixelLength / size);
  let start = buf.byteOffset + header.pixelOffset;
  let ab: ArrayBufferLike = buf.buffer;
  if (start % size !== 0) {
    ab = buf.buffer.slice(start, start + count * size);
    start = 0;
  }
  const mask = masked ? 2 ** bitsStored - 1 : 0;
  const signed = pixelRepresentation === 1;
  let samples: Samples;
  if (isFloatPixels) samples = size === 8 ? new Float64Array(ab, start, count) : new Float32Array(ab, start, count);
  else if (size === 1) samples = signed ? new Int8Array(ab, start, count) : new Uint8Array(ab, start, count);
  else if (size === 2) samples = signed ? new Int16Array(ab, start, count) : new Uint16Array(ab, start, count);
  else samples = signed ? new Int32Array(ab, start, count) : new Uint32Array(ab, start, count);
  return { samples, mask };
}

/** copySlices on a typed array: the same copy, without a function call per sample. */
function copyTyped(a: Samples, mask: number, header: FileHeader, copies: SliceCopy[], out: Float32Array, nx: number, ny: number): void {
  const cols = header.columns;
  const perFrame = header.rows * header.columns;
  for (const c of copies) {
    const tileRow = c.tile < 0 ? 0 : Math.floor(c.tile / c.tilesPerRow);
    const tileCol = c.tile < 0 ? 0 : c.tile % c.tilesPerRow;
    const frameBase = c.frame * perFrame + tileRow * ny * cols + tileCol * nx;
    const { slope, intercept } = c;
    const identity = slope === 1 && intercept === 0;
    for (let j = 0; j < ny; j++) {
      const src = frameBase + (ny - 1 - j) * cols;
      const dst = c.outOffset + j * nx;
      if (mask !== 0) {
        if (identity) for (let i = 0; i < nx; i++) out[dst + i] = a[src + i]! & mask;
        else for (let i = 0; i < nx; i++) out[dst + i] = (a[src + i]! & mask) * slope + intercept;
      } else if (identity) for (let i = 0; i < nx; i++) out[dst + i] = a[src + i]!;
      else for (let i = 0; i < nx; i++) out[dst + i] = a[src + i]! * slope + intercept;
    }
  }
}
