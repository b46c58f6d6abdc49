/**
 * NIfTI-1 reading and writing (.nii and .nii.gz).
 *
 * Reading: single-file NIfTI-1 ('n+1'), either byte order, datatypes uint8, int8, int16, uint16, int32,
 * uint32, float32 and float64; scl_slope/scl_inter applied as the standard says (slope 0 or not finite
 * means "no scaling"); the affine is the sform when sform_code > 0, else the qform when qform_code > 0,
 * else the standard's "method 1" diag(pixdim). The header is decoded and the voxel bytes are cut out by
 * nifti-reader-js (isNIFTI1, readHeader, readImage); what that package gets wrong or lacks is done here,
 * each place saying why: the sizeof_hdr check (for the NIfTI-2 and sizeof messages), the magic's closing
 * NUL, the text fields, srow, the affine, image extents it does not compute, gzip detection and gunzip.
 *
 * Writing: NIfTI-1 single file, little-endian, float32 or uint8, sform and qform both set from the affine
 * (code 1, scanner), gzip when the name ends in .gz. A vector or RGB map is written as a 4-D image whose
 * 4th dimension has 3 frames (x, y, z or r, g, b), which FSL, MRtrix3 and nibabel all read as a 4-D
 * image of 3 volumes (that is how FSL's dtifit writes V1). Files are written to a temporary file in the
 * same folder and renamed into place, so a reader never sees a half-written file.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { constants as zlibConstants, createGunzip, createGzip, gunzip } from 'node:zlib';
import { NIFTI1, isNIFTI1, readHeader, readImage } from 'nifti-reader-js';
import { ImagingInputError } from './types.js';

const gunzipAsync = promisify(gunzip);

export type NiftiDatatype = 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64';

/** NIfTI-1 datatype codes this module reads. */
const DATATYPES: Record<number, { name: NiftiDatatype; bytes: number }> = {
  2: { name: 'uint8', bytes: 1 },
  4: { name: 'int16', bytes: 2 },
  8: { name: 'int32', bytes: 4 },
  16: { name: 'float32', bytes: 4 },
  64: { name: 'float64', bytes: 8 },
  256: { name: 'int8', bytes: 1 },
  512: { name: 'uint16', bytes: 2 },
  768: { name: 'uint32', bytes: 4 },
};

/** NIfTI-1 intent codes that matter here. */
export const NIFTI_INTENT_NONE = 0;
export const NIFTI_INTENT_VECTOR = 1007;
export const NIFTI_INTENT_RGB_VECTOR = 2003;

export type Affine = [number[], number[], number[], number[]];

/** The fields of a NIfTI-1 header, decoded. */
export interface NiftiHeader {
  littleEndian: boolean;
  /** dim[0..7] as stored. */
  dim: number[];
  /** pixdim[0..7] as stored (pixdim[0] is qfac). */
  pixdim: number[];
  datatypeCode: number;
  bitpix: number;
  voxOffset: number;
  sclSlope: number;
  sclInter: number;
  intentCode: number;
  intentName: string;
  intentP: [number, number, number];
  qformCode: number;
  sformCode: number;
  quatern: [number, number, number];
  qoffset: [number, number, number];
  srow: [number[], number[], number[]];
  xyztUnits: number;
  dimInfo: number;
  calMin: number;
  calMax: number;
  description: string;
  auxFile: string;
  magic: string;
}

export interface NiftiImage {
  header: NiftiHeader;
  /** dim[1..dim[0]]. */
  dims: number[];
  /** pixdim[1..dim[0]]. */
  pixdim: number[];
  /** Voxel (i,j,k,1) → mm, rows of a 4×4 matrix. */
  affine: Affine;
  /** Voxel values with scl_slope/scl_inter applied, NIfTI order (x fastest). */
  data: Float32Array;
  datatype: NiftiDatatype;
}

export interface ReadNiftiOptions {
  /** Put `data` on a SharedArrayBuffer (what the tensor fit's workers share without copying). */
  shared?: boolean;
}

export interface NiftiVolume {
  /** 3 to 7 dimensions; a vector/RGB map is [nx, ny, nz, 3]. */
  dims: number[];
  /** Voxel sizes in mm (at least 3). Written as the affine's column lengths when those are non-zero. */
  pixdim: number[];
  affine: Affine;
  /** NIfTI order (x fastest, then y, z, frame). Float32Array → float32; Uint8Array → uint8. */
  data: Float32Array | Uint8Array;
  intent?: { code: number; name?: string };
  description?: string;
}

export interface WriteNiftiOptions {
  /** zlib level for .nii.gz (default 6). */
  gzipLevel?: number;
}

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A C string of a fixed-size header field: up to the first NUL. (nifti-reader-js's text fields drop the NULs
 * and keep what follows them, so leftover bytes after the terminator end up in the string.)
 */
function readString(buf: Buffer, start: number, length: number): string {
  const bytes = buf.subarray(start, start + length);
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end < 0 ? bytes.length : end).toString('latin1');
}

/** Our header and nifti-reader-js's (which its readImage takes). */
interface ParsedHeader {
  header: NiftiHeader;
  nrj: NIFTI1;
}

function parseHeader(buf: Buffer, file: string): ParsedHeader {
  if (buf.length < 348) throw new ImagingInputError(`${file}: too short to be a NIfTI file (${buf.length} bytes)`, file);
  // nifti-reader-js's NIFTI1 checks sizeof_hdr = 348 too, but its error says neither what it found nor that
  // 540 is NIfTI-2 (its isNIFTI2 looks only at the 'n+2' magic), so this check stays here for the messages.
  const sizeLe = buf.readInt32LE(0);
  const sizeBe = buf.readInt32BE(0);
  if (sizeLe !== 348 && sizeBe !== 348) {
    if (sizeLe === 540 || sizeBe === 540)
      throw new ImagingInputError(`${file}: NIfTI-2 is not supported (only NIfTI-1)`, file);
    throw new ImagingInputError(`${file}: not a NIfTI-1 file (sizeof_hdr is ${sizeLe})`, file);
  }

  // nifti-reader-js wants an ArrayBuffer; it gets a copy of the 348-byte header alone, so a large file is not
  // copied and the extensions are not parsed (this reader ignores them, and nifti-reader-js throws on a
  // malformed one where nibabel and nifti1_io read the image).
  const ab = new Uint8Array(buf.subarray(0, 348)).buffer;
  // isNIFTI1 compares the magic's first 3 bytes; the magic is 'n+1\0' (or 'ni1\0' for a .hdr/.img pair), and
  // nifti1_io and nibabel both require the closing NUL, so that is checked here.
  if (!(isNIFTI1(ab) && buf[347] === 0)) {
    if (isNIFTI1(ab, true) && buf[347] === 0)
      throw new ImagingInputError(`${file}: a .hdr/.img pair is not supported; convert it to a single .nii`, file);
    throw new ImagingInputError(`${file}: bad NIfTI-1 magic '${readString(buf, 344, 4)}'`, file);
  }
  let nrj: NIFTI1;
  try {
    const h = readHeader(ab);
    if (!(h instanceof NIFTI1)) throw new Error('not a NIfTI-1 header');
    nrj = h;
  } catch (err) {
    throw new ImagingInputError(`${file}: cannot decode the NIfTI-1 header (${(err as Error).message})`, file);
  }

  // srow_x/y/z are not fields of nifti-reader-js's header: it copies them into its `affine` only when it
  // picks the sform over the qform (by a rule of its own, see decodeNifti), so they are read here.
  const le = nrj.littleEndian;
  const srowAt = (o: number) => [0, 4, 8, 12].map((k) => (le ? buf.readFloatLE(o + k) : buf.readFloatBE(o + k)));
  const header: NiftiHeader = {
    littleEndian: le,
    dim: nrj.dims,
    pixdim: nrj.pixDims,
    datatypeCode: nrj.datatypeCode,
    bitpix: nrj.numBitsPerVoxel,
    voxOffset: nrj.vox_offset,
    sclSlope: nrj.scl_slope,
    sclInter: nrj.scl_inter,
    intentCode: nrj.intent_code,
    intentName: readString(buf, 328, 16),
    intentP: [nrj.intent_p1, nrj.intent_p2, nrj.intent_p3],
    qformCode: nrj.qform_code,
    sformCode: nrj.sform_code,
    quatern: [nrj.quatern_b, nrj.quatern_c, nrj.quatern_d],
    qoffset: [nrj.qoffset_x, nrj.qoffset_y, nrj.qoffset_z],
    srow: [srowAt(280), srowAt(296), srowAt(312)],
    xyztUnits: nrj.xyzt_units,
    dimInfo: nrj.dim_info,
    calMax: nrj.cal_max,
    calMin: nrj.cal_min,
    description: readString(buf, 148, 80),
    auxFile: readString(buf, 228, 24),
    magic: nrj.magic,
  };
  return { header, nrj };
}

/** Decode the 348-byte NIfTI-1 header; throws ImagingInputError naming `file` when it is not one. */
export function parseNiftiHeader(buf: Buffer, file: string): NiftiHeader {
  return parseHeader(buf, file).header;
}

/**
 * The qform as a 4×4 matrix (NIfTI-1 "method 2"), as nifti1_io's nifti_quatern_to_mat44 and nibabel.
 * nifti-reader-js's header.affine is not used for this: it takes a = sqrt(1 − (b² + c² + d²)), which is NaN
 * when float32 rounding puts b² + c² + d² just above 1 (a 180° rotation; nifti1_io and nibabel take a = 0
 * and renormalise), uses pixdim[0] itself as qfac instead of its sign, and keeps non-positive voxel sizes
 * (nifti1_io takes 1).
 */
export function qformToAffine(
  quatern: readonly number[],
  qoffset: readonly number[],
  pixdim: readonly number[],
): Affine {
  let b = quatern[0] ?? 0;
  let c = quatern[1] ?? 0;
  let d = quatern[2] ?? 0;
  let a = 1 - (b * b + c * c + d * d);
  if (a < 1e-7) {
    a = 1 / Math.sqrt(b * b + c * c + d * d);
    b *= a;
    c *= a;
    d *= a;
    a = 0;
  } else a = Math.sqrt(a);
  const dx = pixdim[1]! > 0 ? pixdim[1]! : 1;
  const dy = pixdim[2]! > 0 ? pixdim[2]! : 1;
  let dz = pixdim[3]! > 0 ? pixdim[3]! : 1;
  if ((pixdim[0] ?? 1) < 0) dz = -dz;
  return [
    [(a * a + b * b - c * c - d * d) * dx, 2 * (b * c - a * d) * dy, 2 * (b * d + a * c) * dz, qoffset[0] ?? 0],
    [2 * (b * c + a * d) * dx, (a * a + c * c - b * b - d * d) * dy, 2 * (c * d - a * b) * dz, qoffset[1] ?? 0],
    [2 * (b * d - a * c) * dx, 2 * (c * d + a * b) * dy, (a * a + d * d - c * c - b * b) * dz, qoffset[2] ?? 0],
    [0, 0, 0, 1],
  ];
}

function det3(m: number[][]): number {
  const [r0, r1, r2] = m as [number[], number[], number[]];
  return (
    r0[0]! * (r1[1]! * r2[2]! - r1[2]! * r2[1]!) -
    r0[1]! * (r1[0]! * r2[2]! - r1[2]! * r2[0]!) +
    r0[2]! * (r1[0]! * r2[1]! - r1[1]! * r2[0]!)
  );
}

function inv3(m: number[][]): number[][] {
  const [r0, r1, r2] = m as [number[], number[], number[]];
  const det = det3(m);
  const c = (a: number, b: number, e: number, f: number) => (a * f - b * e) / det;
  return [
    [c(r1[1]!, r1[2]!, r2[1]!, r2[2]!), -c(r0[1]!, r0[2]!, r2[1]!, r2[2]!), c(r0[1]!, r0[2]!, r1[1]!, r1[2]!)],
    [-c(r1[0]!, r1[2]!, r2[0]!, r2[2]!), c(r0[0]!, r0[2]!, r2[0]!, r2[2]!), -c(r0[0]!, r0[2]!, r1[0]!, r1[2]!)],
    [c(r1[0]!, r1[1]!, r2[0]!, r2[1]!), -c(r0[0]!, r0[1]!, r2[0]!, r2[1]!), c(r0[0]!, r0[1]!, r1[0]!, r1[1]!)],
  ];
}

/**
 * Quaternion, offsets, voxel sizes and qfac for an affine, as nifti1_io's nifti_mat44_to_quatern
 * (columns normalised, then the nearest orthogonal matrix by polar decomposition).
 */
export function affineToQform(affine: Affine): {
  quatern: [number, number, number];
  qoffset: [number, number, number];
  voxelSize: [number, number, number];
  qfac: 1 | -1;
} {
  const r = [0, 1, 2].map((i) => [0, 1, 2].map((j) => affine[i]![j]!));
  const size: [number, number, number] = [0, 0, 0];
  for (let j = 0; j < 3; j++) {
    let n = Math.hypot(r[0]![j]!, r[1]![j]!, r[2]![j]!);
    if (!(n > 0)) {
      for (let i = 0; i < 3; i++) r[i]![j] = i === j ? 1 : 0;
      n = 1;
    }
    size[j] = n;
    for (let i = 0; i < 3; i++) r[i]![j] = r[i]![j]! / n;
  }
  // Polar decomposition: the orthogonal factor, by the Newton iteration X ← (X + X^-T) / 2.
  let q = r;
  for (let iter = 0; iter < 100; iter++) {
    const inv = inv3(q);
    if (!inv.every((row) => row.every(Number.isFinite))) break;
    const next = q.map((row, i) => row.map((v, j) => 0.5 * (v + inv[j]![i]!)));
    let diff = 0;
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) diff = Math.max(diff, Math.abs(next[i]![j]! - q[i]![j]!));
    q = next;
    if (diff < 1e-15) break;
  }
  let qfac: 1 | -1 = 1;
  if (det3(q) < 0) {
    qfac = -1;
    for (let i = 0; i < 3; i++) q[i]![2] = -q[i]![2]!;
  }
  const [r11, r12, r13] = q[0] as [number, number, number];
  const [r21, r22, r23] = q[1] as [number, number, number];
  const [r31, r32, r33] = q[2] as [number, number, number];
  let a = r11 + r22 + r33 + 1;
  let b: number;
  let c: number;
  let d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33);
    const yd = 1 + r22 - (r11 + r33);
    const zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r12 + r21)) / b;
      d = (0.25 * (r13 + r31)) / b;
      a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r12 + r21)) / c;
      d = (0.25 * (r23 + r32)) / c;
      a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r13 + r31)) / d;
      c = (0.25 * (r23 + r32)) / d;
      a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) {
      b = -b;
      c = -c;
      d = -d;
    }
  }
  return {
    quatern: [b, c, d],
    qoffset: [affine[0]![3]!, affine[1]![3]!, affine[2]![3]!],
    voxelSize: size,
    qfac,
  };
}

/**
 * Whether `buf` is gzip data (1f 8b). Not nifti-reader-js's isCompressed: it answers yes when either byte
 * matches (so a foreign file starting 1f would be reported as corrupt gzip instead of not NIfTI), and throws
 * a RangeError on a file shorter than 2 bytes.
 */
function isGzip(buf: Buffer): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

/** How many bytes nifti-reader-js's readImage cuts out for `h` (its formula: dim[0], dim[6] and dim[7] play no part). */
function readImageExtent(h: NIFTI1): number {
  const d = h.dims;
  return d[1]! * d[2]! * d[3]! * (d[4] === 0 ? 1 : d[4]!) * (d[5] === 0 ? 1 : d[5]!) * (h.numBitsPerVoxel / 8);
}

/** Read a NIfTI-1 .nii or .nii.gz. Throws ImagingInputError naming the file for anything it cannot read. */
export async function readNifti(file: string, options: ReadNiftiOptions = {}): Promise<NiftiImage> {
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch (err) {
    throw new ImagingInputError(`${file}: cannot read (${(err as Error).message})`, file);
  }
  if (isGzip(raw)) {
    // node:zlib, not nifti-reader-js's decompress (fflate) or decompressAsync (DecompressionStream): on the
    // 13.6 MB Siemens mosaic series gzipped, zlib took 56–81 ms, fflate 121–144 ms and DecompressionStream
    // 64–80 ms (best of 11, two runs), and fflate runs on this thread, which in Electron's main process
    // freezes the app; zlib runs on the libuv pool.
    try {
      raw = await gunzipAsync(raw);
    } catch (err) {
      throw new ImagingInputError(`${file}: corrupt gzip data (${(err as Error).message})`, file);
    }
  }
  return decodeNifti(raw, file, options);
}

/** Decode an uncompressed NIfTI-1 file held in memory. */
export function decodeNifti(raw: Buffer, file: string, options: ReadNiftiOptions = {}): NiftiImage {
  const { header, nrj } = parseHeader(raw, file);
  const ndim = header.dim[0]!;
  if (!(ndim >= 1 && ndim <= 7)) throw new ImagingInputError(`${file}: bad dim[0] = ${ndim}`, file);
  const dims = header.dim.slice(1, 1 + ndim);
  if (dims.some((n) => !(n >= 1))) throw new ImagingInputError(`${file}: bad dimensions [${dims.join(', ')}]`, file);
  const type = DATATYPES[header.datatypeCode];
  if (!type)
    throw new ImagingInputError(
      `${file}: NIfTI datatype ${header.datatypeCode} is not supported (uint8, int8, int16, uint16, int32, uint32, float32, float64 are)`,
      file,
    );
  const count = dims.reduce((a, b) => a * b, 1);
  const offset = Math.max(352, Math.round(header.voxOffset));
  const byteLength = count * type.bytes;
  if (offset + byteLength > raw.length)
    throw new ImagingInputError(
      `${file}: truncated: [${dims.join('×')}] ${type.name} needs ${byteLength} bytes of voxels after offset ${offset}, the file has ${Math.max(0, raw.length - offset)}`,
      file,
    );

  // The voxel bytes. nifti-reader-js's readImage copies dims[1]·dims[2]·dims[3]·(dims[4] or 1)·(dims[5] or 1)
  // ·bitpix/8 bytes from vox_offset as stored, out of an ArrayBuffer holding the whole file: it ignores
  // dim[0] (a 2-D image with dim[3] = 0 comes out empty, leftover dims beyond dim[0] are multiplied in),
  // drops dim[6] and dim[7], trusts bitpix over the datatype, takes a vox_offset below 352 or fractional
  // as it is, and returns whatever is there when the file is short. So it is used when its extent is this
  // image's (checked before and after), and otherwise the bytes are a view of `raw`, copied only when they
  // must be byte-swapped or are misaligned for their type.
  let bytes: Uint8Array | undefined;
  let own = false;
  const whole = raw.buffer;
  if (raw.byteOffset === 0 && whole instanceof ArrayBuffer && nrj.vox_offset === offset && readImageExtent(nrj) === byteLength) {
    const cut = readImage(nrj, whole);
    if (cut.byteLength === byteLength) {
      bytes = new Uint8Array(cut);
      own = true;
    }
  }
  const swap = header.littleEndian !== HOST_LITTLE_ENDIAN && type.bytes > 1;
  if (!bytes) {
    bytes = raw.subarray(offset, offset + byteLength);
    if (swap || bytes.byteOffset % type.bytes !== 0) {
      bytes = new Uint8Array(bytes); // own, aligned copy
      own = true;
    }
  }
  if (swap) {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, byteLength); // `bytes` is our own copy here
    if (type.bytes === 2) b.swap16();
    else if (type.bytes === 4) b.swap32();
    else b.swap64();
  }
  const ab = bytes.buffer;
  const bo = bytes.byteOffset;
  let src: ArrayLike<number>;
  switch (type.name) {
    case 'uint8': src = new Uint8Array(ab, bo, count); break;
    case 'int8': src = new Int8Array(ab, bo, count); break;
    case 'int16': src = new Int16Array(ab, bo, count); break;
    case 'uint16': src = new Uint16Array(ab, bo, count); break;
    case 'int32': src = new Int32Array(ab, bo, count); break;
    case 'uint32': src = new Uint32Array(ab, bo, count); break;
    case 'float32': src = new Float32Array(ab, bo, count); break;
    case 'float64': src = new Float64Array(ab, bo, count); break;
  }
  const slope = header.sclSlope;
  const inter = Number.isFinite(header.sclInter) ? header.sclInter : 0;
  const scaled = Number.isFinite(slope) && slope !== 0 && !(slope === 1 && inter === 0);
  let data: Float32Array;
  if (!scaled && own && !options.shared && src instanceof Float32Array && bo === 0 && ab.byteLength === count * 4) {
    data = src; // our own copy already is the result (its ArrayBuffer holds exactly the voxels)
  } else {
    data = new Float32Array(options.shared ? new SharedArrayBuffer(count * 4) : new ArrayBuffer(count * 4));
    if (scaled) {
      for (let i = 0; i < count; i++) data[i] = src[i]! * slope + inter;
    } else if (src instanceof Float32Array) {
      data.set(src);
    } else {
      for (let i = 0; i < count; i++) data[i] = src[i]!;
    }
  }

  // The affine is computed here rather than taken from nifti-reader-js's header.affine: that one prefers the
  // qform whenever qform_code > sform_code (nibabel, FSL and this reader take the sform whenever
  // sform_code > 0), and its qform matrix differs from nifti1_io's (see qformToAffine).
  let affine: Affine;
  if (header.sformCode > 0) affine = [header.srow[0].slice(), header.srow[1].slice(), header.srow[2].slice(), [0, 0, 0, 1]];
  else if (header.qformCode > 0) affine = qformToAffine(header.quatern, header.qoffset, header.pixdim);
  else affine = [
    [header.pixdim[1]!, 0, 0, 0],
    [0, header.pixdim[2]!, 0, 0],
    [0, 0, header.pixdim[3]!, 0],
    [0, 0, 0, 1],
  ];
  return { header, dims, pixdim: header.pixdim.slice(1, 1 + ndim), affine, data, datatype: type.name };
}

/** Build the 352-byte header (348 + an empty extension flag) for `volume`. */
export function encodeNiftiHeader(volume: NiftiVolume): Buffer {
  const { dims, affine } = volume;
  if (dims.length < 1 || dims.length > 7 || dims.some((n) => !Number.isInteger(n) || n < 1 || n > 32767))
    throw new RangeError(`writeNifti: bad dims [${dims.join(', ')}]`);
  const count = dims.reduce((a, b) => a * b, 1);
  if (volume.data.length !== count)
    throw new RangeError(`writeNifti: data has ${volume.data.length} values, dims [${dims.join('×')}] need ${count}`);
  const isFloat = volume.data instanceof Float32Array;
  const h = Buffer.alloc(352);
  h.writeInt32LE(348, 0);
  h.writeUInt8('r'.charCodeAt(0), 38); // regular
  h.writeInt16LE(dims.length, 40);
  for (let k = 0; k < 7; k++) h.writeInt16LE(dims[k] ?? 1, 42 + 2 * k);
  const intent = volume.intent ?? { code: NIFTI_INTENT_NONE };
  h.writeInt16LE(intent.code, 68);
  h.writeInt16LE(isFloat ? 16 : 2, 70);
  h.writeInt16LE(isFloat ? 32 : 8, 72);

  const q = affineToQform(affine);
  const pix = [q.qfac as number, 1, 1, 1, 1, 1, 1, 1];
  for (let k = 0; k < 3; k++) {
    const given = volume.pixdim[k];
    pix[k + 1] = q.voxelSize[k]! > 0 ? q.voxelSize[k]! : given && given > 0 ? given : 1;
  }
  for (let k = 3; k < 7; k++) pix[k + 1] = volume.pixdim[k] ?? 1;
  for (let k = 0; k < 8; k++) h.writeFloatLE(pix[k]!, 76 + 4 * k);
  h.writeFloatLE(352, 108); // vox_offset
  h.writeFloatLE(1, 112); // scl_slope
  h.writeFloatLE(0, 116); // scl_inter
  h.writeUInt8(2, 123); // xyzt_units: mm
  if (volume.description) h.write(volume.description.slice(0, 79), 148, 'latin1');
  h.writeInt16LE(1, 252); // qform_code: scanner
  h.writeInt16LE(1, 254); // sform_code: scanner
  h.writeFloatLE(q.quatern[0], 256);
  h.writeFloatLE(q.quatern[1], 260);
  h.writeFloatLE(q.quatern[2], 264);
  h.writeFloatLE(q.qoffset[0], 268);
  h.writeFloatLE(q.qoffset[1], 272);
  h.writeFloatLE(q.qoffset[2], 276);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) h.writeFloatLE(affine[i]![j]!, 280 + 16 * i + 4 * j);
  if (intent.name) h.write(intent.name.slice(0, 15), 328, 'latin1');
  h.write('n+1\0', 344, 'latin1');
  return h;
}

function dataBytes(data: Float32Array | Uint8Array): Buffer {
  const view = Buffer.from(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  if (HOST_LITTLE_ENDIAN || data instanceof Uint8Array) return view;
  const copy = Buffer.from(view);
  copy.swap32();
  return copy;
}

/**
 * Write `volume` as NIfTI-1 (.nii.gz is gzipped, .nii is not). The file appears complete or not at all:
 * it is written to a temporary name in the same folder, then renamed.
 */
export async function writeNifti(file: string, volume: NiftiVolume, options: WriteNiftiOptions = {}): Promise<void> {
  const header = encodeNiftiHeader(volume);
  const body = dataBytes(volume.data);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    // The body goes over in 16 MiB pieces so neither the stream nor zlib holds one huge chunk.
    const piece = 16 << 20;
    const parts: Buffer[] = [header];
    for (let o = 0; o < body.length; o += piece) parts.push(body.subarray(o, Math.min(body.length, o + piece)));
    const source = Readable.from(parts, { objectMode: false });
    if (/\.gz$/i.test(file)) {
      await pipeline(
        source,
        createGzip({ level: options.gzipLevel ?? zlibConstants.Z_DEFAULT_COMPRESSION }),
        createWriteStream(tmp, { flags: 'wx' }),
      );
    } else {
      await pipeline(source, createWriteStream(tmp, { flags: 'wx' }));
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/**
 * Checks, from its header alone, that `file` is a NIfTI-1 diffusion series (4-D, at least 2 volumes, a
 * datatype this module reads, and, for an uncompressed .nii, long enough for its voxels): what a scan
 * says about a .nii/.nii.gz before anyone tries to import it. Throws ImagingInputError naming the file.
 * A .nii.gz is inflated only as far as its header.
 */
export async function probeNiftiDwi(file: string): Promise<{ dims: number[] }> {
  let head: Buffer;
  let size: number;
  let gz: boolean;
  try {
    const handle = await open(file, 'r');
    try {
      size = (await handle.stat()).size;
      const first = Buffer.alloc(Math.min(size, 64 * 1024));
      await handle.read(first, 0, first.length, 0);
      gz = isGzip(first);
      head = gz ? await inflateHead(first, 352) : first;
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (err instanceof ImagingInputError) throw err;
    throw new ImagingInputError(`${file}: cannot read (${(err as Error).message})`, file);
  }
  if (head.length < 348) throw new ImagingInputError(`${file}: not a NIfTI file (${head.length} bytes${gz ? ' after gunzip' : ''}; a NIfTI-1 header alone is 348)`, file);
  const header = parseNiftiHeader(head, file);
  const ndim = header.dim[0]!;
  const dims = header.dim.slice(1, 1 + Math.max(0, Math.min(7, ndim)));
  if (!(ndim >= 1 && ndim <= 7) || dims.some((n) => !(n >= 1))) throw new ImagingInputError(`${file}: bad NIfTI dimensions (dim = [${header.dim.join(', ')}])`, file);
  if (ndim < 4 || dims[3]! < 2 || dims.slice(4).some((n) => n !== 1))
    throw new ImagingInputError(`${file}: a ${dims.join('×')} image, not a diffusion series (a 4-D NIfTI with one volume per b-value)`, file);
  const type = DATATYPES[header.datatypeCode];
  if (!type) throw new ImagingInputError(`${file}: NIfTI datatype ${header.datatypeCode} is not supported`, file);
  if (!gz) {
    const needed = Math.max(352, Math.round(header.voxOffset)) + dims.reduce((a, b) => a * b, 1) * type.bytes;
    if (size < needed) throw new ImagingInputError(`${file}: truncated: [${dims.join('×')}] ${type.name} needs ${needed} bytes, the file has ${size}`, file);
  }
  return { dims };
}

/** The first `bytes` of a gzip stream (less if it is shorter), from its first 64 KB (a header is in the first few). */
function inflateHead(compressed: Buffer, bytes: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    let got = 0;
    let done = false;
    const inflate = createGunzip();
    const finish = () => {
      if (done) return;
      done = true;
      inflate.destroy();
      resolve(Buffer.concat(chunks));
    };
    inflate.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= bytes) finish();
    });
    inflate.on('end', finish);
    // Corrupt or cut-off data: whatever came out before is judged (too short: "not a NIfTI file").
    inflate.on('error', finish);
    inflate.end(compressed);
  });
}
