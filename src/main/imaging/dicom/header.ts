/**
 * Turns a parsed DICOM file into the plain facts the series assembler needs: geometry, pixel layout,
 * intensity scaling and diffusion encoding, per slice (classic), per frame (enhanced) or per mosaic.
 * Nothing here keeps a reference to the file buffer, so a folder scan holds only small objects.
 */
import { csaNumbers, parseCsaHeader, type CsaHeader } from './csa.js';
import { isNativeTransferSyntax, transferSyntaxName, type DicomDataset, type ParsedDicom } from './parser.js';
import { TAG } from './tags.js';

export type Vec3 = [number, number, number];
export type Vendor = 'GE' | 'Siemens' | 'Philips' | 'UIH' | 'other';
export type Layout = 'classic' | 'enhanced' | 'mosaic';

/** Diffusion encoding as stored, before any conversion (gradient in the vendor's own frame). */
export interface RawDiffusion {
  /** s/mm²; null if no b-value tag was present. */
  b: number | null;
  /** Gradient direction as stored; null if absent. */
  g: Vec3 | null;
  /** (0018,9075) or Siemens (0019,100d): DIRECTIONAL, ISOTROPIC, NONE, BMATRIX; null if absent. */
  directionality: string | null;
  /** Which tags supplied b and g. */
  source: 'standard' | 'ge' | 'siemens' | 'csa' | 'philips' | 'uih' | 'none';
}

/** One 2-D image: a classic file, an enhanced frame, or a whole mosaic (tiles are split later). */
export interface FrameHeader {
  /** Index of the frame within its file (0 for single-frame files). */
  frame: number;
  position: Vec3 | null;
  /** Row direction (along increasing column index) and column direction (along increasing row index). */
  orientation: [Vec3, Vec3] | null;
  /** (0028,0030): [spacing between rows, spacing between columns]. */
  pixelSpacing: [number, number] | null;
  sliceThickness: number | null;
  spacingBetweenSlices: number | null;
  /** Scaling to apply to stored values, already resolved as dcm2niix does (float32 values). */
  slope: number;
  intercept: number;
  diffusion: RawDiffusion;
  inStackPosition: number | null;
  temporalPositionIndex: number | null;
  dimensionIndexValues: number[] | null;
  philipsVolumeNumber: number | null;
  philipsBValueNumber: number | null;
  philipsGradientNumber: number | null;
}

export interface FileHeader {
  file: string;
  fileSize: number;
  seriesInstanceUid: string;
  seriesNumber: number | null;
  seriesDescription: string;
  manufacturer: string;
  vendor: Vendor;
  /** (0010,0010) as stored ('Family^Given^Middle^Prefix^Suffix'), in the file's character set. */
  patientName: string | null;
  /** (0010,0020) */
  patientId: string | null;
  /** (0010,0030) as stored, normally YYYYMMDD. */
  patientBirthDate: string | null;
  /** (0010,0040): M, F, O or empty. */
  patientSex: string | null;
  studyDate: string | null;
  instanceNumber: number | null;
  acquisitionTime: number | null;
  transferSyntaxUid: string;
  layout: Layout;
  imageType: string[];
  rows: number;
  columns: number;
  numberOfFrames: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
  isFloatPixels: boolean;
  littleEndian: boolean;
  /** Where the native pixel data lies in the file buffer (after inflation for deflated files). */
  pixelOffset: number;
  pixelLength: number;
  /** True if the file uses a deflated transfer syntax (pixel offsets refer to the inflated buffer). */
  deflated: boolean;
  patientPosition: string | null;
  phaseEncodingDirection: 'ROW' | 'COL' | null;
  imagesInAcquisition: number | null;
  geNumberOfDiffusionDirections: number | null;
  /**
   * Siemens mosaic or UIH grid: number of tiles holding slices, and (Siemens) the CSA slice normal or (UIH)
   * the slice positions of the tiles from the VFrame sequence (0065,1051), in order.
   */
  mosaic: { grid: 'siemens'; slices: number; sliceNormal: Vec3 | null } | { grid: 'uih'; slices: number; tilePositions: Vec3[] } | null;
  /** Why the pixel data cannot be decoded (compressed transfer syntax, inconsistent length), or null. */
  unsupported: string | null;
  /** (0020,9165) pointers of the dimension index, in order. */
  dimensionIndexPointers: number[];
  frames: FrameHeader[];
}

/** A file we cannot use, with the reason (for error messages). */
export class UnusableFileError extends Error {
  constructor(
    message: string,
    readonly kind: 'not-image' | 'unsupported' | 'corrupt',
  ) {
    super(message);
    this.name = 'UnusableFileError';
  }
}

export function vendorOf(manufacturer: string): Vendor {
  const m = manufacturer.trim().toUpperCase();
  if (m.startsWith('GE')) return 'GE';
  if (m.startsWith('SI')) return 'Siemens';
  if (m.startsWith('PH')) return 'Philips';
  // dcm2niix: 'UI' (Manufacturer "UIH", "United Imaging Healthcare").
  if (m.startsWith('UI')) return 'UIH';
  return 'other';
}

const f32 = Math.fround;

function vec3(v: number[]): Vec3 | null {
  return v.length >= 3 && v.slice(0, 3).every((x) => Number.isFinite(x)) ? [v[0]!, v[1]!, v[2]!] : null;
}

function orientationOf(v: number[]): [Vec3, Vec3] | null {
  if (v.length < 6 || !v.slice(0, 6).every((x) => Number.isFinite(x))) return null;
  return [
    [v[0]!, v[1]!, v[2]!],
    [v[3]!, v[4]!, v[5]!],
  ];
}

/** First item of a functional group macro: per-frame item first, then shared. */
function group(perFrame: DicomDataset | undefined, shared: DicomDataset | undefined, seqTag: number): DicomDataset | undefined {
  return perFrame?.item(seqTag) ?? shared?.item(seqTag);
}

/**
 * A text value in the file's character set (0008,0005): UTF-8 for ISO_IR 192, else Latin-1 (ISO_IR 100,
 * a superset of the default repertoire). Other character sets (ISO 2022 escapes) come out as Latin-1.
 */
function text(ds: DicomDataset, t: number): string | null {
  const el = ds.element(t);
  if (!el || el.items || el.length === 0) return null;
  const utf8 = ds.strings(TAG.SpecificCharacterSet).some((c) => c.toUpperCase() === 'ISO_IR 192');
  const value = ds.buffer
    .toString(utf8 ? 'utf8' : 'latin1', el.offset, el.offset + el.length)
    .replace(/[\0 ]+$/, '')
    .trim();
  return value.length > 0 ? value : null;
}

function numOrNull(v: number | undefined): number | null {
  return v === undefined || !Number.isFinite(v) ? null : v;
}

/** Where a frame's attributes can come from, most specific first. */
interface FrameSources {
  /** The frame's per-frame functional group item (enhanced only). */
  perFrame?: DicomDataset;
  /** The shared functional group item (enhanced only). */
  shared?: DicomDataset;
  /** Philips private per-frame item (2005,140F). */
  philips?: DicomDataset;
  /** The top-level dataset. */
  top: DicomDataset;
}

/** The diffusion encoding in the standard MR Diffusion macro (per-frame, shared, or top level). */
function standardDiffusion(src: FrameSources): { b: number | null; g: Vec3 | null; directionality: string | null } {
  let b: number | null = null;
  let g: Vec3 | null = null;
  let directionality: string | null = null;
  const macros = [src.perFrame?.item(TAG.MRDiffusionSequence), src.shared?.item(TAG.MRDiffusionSequence), src.top, src.top.item(TAG.MRDiffusionSequence)];
  for (const c of macros) {
    if (!c) continue;
    if (b === null) b = numOrNull(c.number(TAG.DiffusionBValue));
    if (directionality === null) directionality = c.string(TAG.DiffusionDirectionality)?.toUpperCase() ?? null;
    if (g === null) g = vec3(c.numbers(TAG.DiffusionGradientOrientation)) ?? vec3(c.item(TAG.DiffusionGradientDirectionSequence)?.numbers(TAG.DiffusionGradientOrientation) ?? []);
  }
  return { b, g, directionality };
}

function diffusionOf(vendor: Vendor, src: FrameSources, csa: CsaHeader | null): RawDiffusion {
  const std = standardDiffusion(src);
  const top = src.top;
  let b = std.b;
  let g = std.g;
  let directionality = std.directionality;
  let source: RawDiffusion['source'] = b !== null || g !== null ? 'standard' : 'none';
  if (vendor === 'GE') {
    if (b === null) {
      const raw = numOrNull(top.number(TAG.GEBValue));
      // dcm2niix: integer of the first value, modulo the 1e9 "bias" some GE software adds.
      if (raw !== null) {
        b = Math.trunc(raw) % 1_000_000_000;
        source = 'ge';
      }
    }
    if (g === null) {
      const x = numOrNull(top.number(TAG.GEDiffusionDirectionX));
      const y = numOrNull(top.number(TAG.GEDiffusionDirectionY));
      const z = numOrNull(top.number(TAG.GEDiffusionDirectionZ));
      if (x !== null && y !== null && z !== null) {
        g = [x, y, z];
        if (source === 'none') source = 'ge';
      }
    }
  } else if (vendor === 'Siemens') {
    if (b === null) {
      const csaB = csaNumbers(csa, 'B_value')[0];
      const privB = numOrNull(top.number(TAG.SiemensBValue));
      if (csaB !== undefined) {
        b = csaB;
        source = 'csa';
      } else if (privB !== null) {
        b = privB;
        source = 'siemens';
      }
    }
    if (g === null) g = vec3(csaNumbers(csa, 'DiffusionGradientDirection')) ?? vec3(top.numbers(TAG.SiemensDiffusionGradientDirection));
    if (directionality === null) {
      const d = csa?.get('DiffusionDirectionality')?.[0] ?? top.string(0x0019100d);
      directionality = d ? d.toUpperCase() : null;
    }
  } else if (vendor === 'Philips') {
    const get = (t: number): number | null => numOrNull(src.philips?.number(t)) ?? numOrNull(top.number(t));
    if (b === null) {
      b = get(TAG.PhilipsBValue);
      if (b !== null) source = 'philips';
    }
    if (g === null) {
      const x = get(TAG.PhilipsDiffusionRL);
      const y = get(TAG.PhilipsDiffusionAP);
      const z = get(TAG.PhilipsDiffusionFH);
      if (x !== null && y !== null && z !== null) g = [x, y, z];
    }
  } else if (vendor === 'UIH') {
    // dcm2niix v1.0.20220720 (nii_dicom.cpp, kDiffusion_bValueUIH / kDiffusionGradientDirectionUIH): the b-value
    // is (0065,1009), which comes after (0018,9087) in the file and replaces it; the gradient is (0065,1037) only
    // (in the image frame; (0018,9089) is not read for UIH). One exception, from the order dcm2niix reads tags in:
    // when (0018,9075) says non-directional, the volume's record is complete at the first (0020,0032) - in a
    // classic file (position at the top level, before group 0065) the (0018,9087) b-value then stays; in a grid
    // (positions in (0065,1051), after the UIH tags) the direction becomes zero.
    const uihB = numOrNull(top.number(TAG.UIHBValue));
    const nonDirectional = directionality !== null && directionality !== 'DIRECTIONAL' && directionality !== 'BMATRIX';
    const topPosition = vec3(top.numbers(TAG.ImagePositionPatient)) !== null;
    if (uihB !== null && !(nonDirectional && topPosition && b !== null)) {
      b = uihB;
      source = 'uih';
    }
    g = vec3(top.numbers(TAG.UIHDiffusionGradientDirection));
    if (g !== null && source === 'none') source = 'uih';
    if (nonDirectional && (g === null || !topPosition)) g = [0, 0, 0];
  }
  // A non-directional frame (trace/isotropic) has no meaningful direction: dcm2niix zeroes it.
  // (UIH: (0065,1037) comes later in the file and replaces what (0018,9075) implied.)
  if (vendor !== 'UIH' && directionality !== null && directionality !== 'DIRECTIONAL' && directionality !== 'BMATRIX') g = [0, 0, 0];
  return { b, g, directionality, source };
}

/** dcm2niix's PhilipsPreciseVal, in float32 arithmetic. */
function philipsPreciseVal(pv: number, rs: number, ri: number, ss: number): number {
  const denom = f32(rs * ss);
  if (denom === 0) return 0;
  return f32(f32(f32(pv * rs) + ri) / denom);
}

/** The scaling dcm2niix stores in scl_slope/scl_inter (as float32), per frame. */
function scalingOf(vendor: Vendor, src: FrameSources): { slope: number; intercept: number } {
  const pvt = src.perFrame?.item(TAG.PixelValueTransformationSequence) ?? src.shared?.item(TAG.PixelValueTransformationSequence);
  const fromSources = (t: number): number | null => numOrNull(pvt?.number(t)) ?? numOrNull(src.philips?.number(t)) ?? numOrNull(src.top.number(t));
  let slope = f32(fromSources(TAG.RescaleSlope) ?? 1);
  const intercept = f32(fromSources(TAG.RescaleIntercept) ?? 0);
  if (slope === 0) slope = 1;
  if (vendor === 'Philips') {
    const rwv =
      src.perFrame?.item(TAG.RealWorldValueMappingSequence) ??
      src.shared?.item(TAG.RealWorldValueMappingSequence) ??
      pvt?.item(TAG.RealWorldValueMappingSequence) ??
      src.top.item(TAG.RealWorldValueMappingSequence);
    const rwvSlope = numOrNull(rwv?.number(TAG.RealWorldValueSlope));
    if (rwvSlope !== null && Math.abs(rwvSlope) > 1e-7 && Math.abs(rwvSlope) < 1e38) {
      return { slope: f32(rwvSlope), intercept: f32(numOrNull(rwv?.number(TAG.RealWorldValueIntercept)) ?? 0) };
    }
    // Philips "precise" floating-point values, as dcm2niix writes by default (-p y): FP = (PV*RS + RI) / (RS*SS).
    const ss = fromSources(TAG.PhilipsScaleSlope);
    if (ss !== null && ss !== 0) {
      const l0 = philipsPreciseVal(0, slope, intercept, f32(ss));
      const l1 = philipsPreciseVal(1, slope, intercept, f32(ss));
      if (l0 !== l1) return { slope: f32(l1 - l0), intercept: l0 };
    }
  }
  return { slope, intercept };
}

function frameHeader(index: number, vendor: Vendor, src: FrameSources, csa: CsaHeader | null): FrameHeader {
  const { perFrame, shared, top } = src;
  const position = vec3(group(perFrame, shared, TAG.PlanePositionSequence)?.numbers(TAG.ImagePositionPatient) ?? []) ?? vec3(top.numbers(TAG.ImagePositionPatient));
  const orientation =
    orientationOf(group(perFrame, shared, TAG.PlaneOrientationSequence)?.numbers(TAG.ImageOrientationPatient) ?? []) ?? orientationOf(top.numbers(TAG.ImageOrientationPatient));
  const measures = group(perFrame, shared, TAG.PixelMeasuresSequence);
  const spacing = measures?.numbers(TAG.PixelSpacing) ?? [];
  const ps = spacing.length >= 2 ? spacing : top.numbers(TAG.PixelSpacing);
  const pixelSpacing: [number, number] | null = ps.length >= 2 && ps[0]! > 0 && ps[1]! > 0 ? [ps[0]!, ps[1]!] : null;
  const sliceThickness = numOrNull(measures?.number(TAG.SliceThickness)) ?? numOrNull(top.number(TAG.SliceThickness));
  const spacingBetweenSlices = numOrNull(measures?.number(TAG.SpacingBetweenSlices)) ?? numOrNull(top.number(TAG.SpacingBetweenSlices));
  const { slope, intercept } = scalingOf(vendor, src);
  const diffusion = diffusionOf(vendor, src, csa);
  const content = perFrame?.item(TAG.FrameContentSequence);
  const div = content?.numbers(TAG.DimensionIndexValues) ?? [];
  const philipsNumber = (t: number): number | null => (vendor === 'Philips' ? (numOrNull(src.philips?.number(t)) ?? numOrNull(top.number(t))) : null);
  return {
    frame: index,
    position,
    orientation,
    pixelSpacing,
    sliceThickness,
    spacingBetweenSlices,
    slope,
    intercept,
    diffusion,
    inStackPosition: numOrNull(content?.number(TAG.InStackPositionNumber)),
    temporalPositionIndex: numOrNull(content?.number(TAG.TemporalPositionIndex)),
    dimensionIndexValues: div.length > 0 ? div : null,
    philipsVolumeNumber: philipsNumber(TAG.PhilipsDiffVolumeNumber),
    philipsBValueNumber: philipsNumber(TAG.PhilipsDiffBValueNumber),
    philipsGradientNumber: philipsNumber(TAG.PhilipsGradientOrientationNumber),
  };
}

/** Extract the header facts of one parsed file. Throws UnusableFileError for files that are not usable images. */
export function fileHeader(file: string, fileSize: number, parsed: ParsedDicom): FileHeader {
  const ds = parsed.dataset;
  const ts = parsed.transferSyntaxUid;
  const pixel = ds.element(TAG.PixelData) ?? ds.element(TAG.FloatPixelData) ?? ds.element(TAG.DoubleFloatPixelData);
  const rows = ds.number(TAG.Rows);
  const columns = ds.number(TAG.Columns);
  if (!pixel || rows === undefined || columns === undefined || rows < 1 || columns < 1) throw new UnusableFileError('no image pixel data', 'not-image');
  let unsupported: string | null = null;
  if (!isNativeTransferSyntax(ts) || pixel.fragments) {
    const name = transferSyntaxName(ts);
    unsupported = `compressed pixel data in transfer syntax ${ts}${name ? ` (${name})` : ''} is not supported; decompress the files first (e.g. dcmdjpeg or gdcmconv --raw)`;
  }
  const manufacturer = ds.string(TAG.Manufacturer) ?? '';
  const vendor = vendorOf(manufacturer);
  const imageType = ds.strings(TAG.ImageType).map((s) => s.toUpperCase());
  const numberOfFrames = Math.max(1, Math.trunc(ds.number(TAG.NumberOfFrames) ?? 1));
  const perFrameSeq = ds.sequence(TAG.PerFrameFunctionalGroupsSequence);
  const shared = ds.item(TAG.SharedFunctionalGroupsSequence);
  const samplesPerPixel = ds.number(TAG.SamplesPerPixel) ?? 1;
  const bitsAllocated = ds.number(TAG.BitsAllocated) ?? (pixel.tag === TAG.PixelData ? 16 : pixel.tag === TAG.FloatPixelData ? 32 : 64);
  const isFloatPixels = pixel.tag !== TAG.PixelData;

  const csaEl = vendor === 'Siemens' ? ds.element(TAG.SiemensCSAImageHeader) : undefined;
  const csa = csaEl ? parseCsaHeader(ds.buffer.subarray(csaEl.offset, csaEl.offset + csaEl.length)) : null;

  let layout: Layout = 'classic';
  let mosaic: FileHeader['mosaic'] = null;
  if (numberOfFrames > 1) {
    if (perFrameSeq.length === 0) throw new UnusableFileError(`multi-frame image (${numberOfFrames} frames) without per-frame functional groups is not supported`, 'unsupported');
    if (perFrameSeq.length !== numberOfFrames)
      throw new UnusableFileError(`NumberOfFrames is ${numberOfFrames} but the per-frame functional groups describe ${perFrameSeq.length} frames`, 'corrupt');
    layout = 'enhanced';
  } else if (perFrameSeq.length === 1 && shared) {
    layout = 'enhanced';
  } else if (vendor === 'Siemens' && imageType.includes('MOSAIC')) {
    const n = ds.number(TAG.SiemensNumberOfImagesInMosaic) ?? csaNumbers(csa, 'NumberOfImagesInMosaic')[0];
    if (n === undefined || n < 1) throw new UnusableFileError('Siemens mosaic without NumberOfImagesInMosaic (0019,100a) or CSA header', 'unsupported');
    if (n > 1) {
      layout = 'mosaic';
      mosaic = { grid: 'siemens', slices: Math.trunc(n), sliceNormal: vec3(csaNumbers(csa, 'SliceNormalVector')) };
    }
  } else if (vendor === 'UIH' && Math.trunc(ds.number(TAG.UIHNumberOfImagesInGrid) ?? 0) >= 2) {
    // UIH grid ("VFRAME" in ImageType): one file per volume, the slices tiled like a Siemens mosaic; dcm2niix
    // goes by (0065,1050) alone. Each tile's Image Position (Patient) is in an item of (0065,1051).
    const tilePositions = ds
      .sequence(TAG.UIHVFrameSequence)
      .map((item) => vec3(item.numbers(TAG.ImagePositionPatient)))
      .filter((p): p is Vec3 => p !== null);
    layout = 'mosaic';
    mosaic = { grid: 'uih', slices: Math.trunc(ds.number(TAG.UIHNumberOfImagesInGrid)!), tilePositions };
  }

  const frames: FrameHeader[] = [];
  if (layout === 'enhanced') {
    for (let i = 0; i < perFrameSeq.length; i++) {
      const perFrame = perFrameSeq[i]!;
      frames.push(frameHeader(i, vendor, { perFrame, shared, philips: perFrame.item(TAG.PhilipsPerFrameSequence), top: ds }, csa));
    }
  } else {
    const frame = frameHeader(0, vendor, { top: ds }, csa);
    // UIH grid without a top-level position: dcm2niix takes the first (0020,0032) in the file, the first tile's.
    if (mosaic?.grid === 'uih' && !frame.position) frame.position = mosaic.tilePositions[0] ?? null;
    frames.push(frame);
  }
  const pointers = ds.sequence(TAG.DimensionIndexSequence).map((item) => item.number(TAG.DimensionIndexPointer) ?? 0);
  const pe = ds.string(TAG.InPlanePhaseEncodingDirection)?.toUpperCase() ?? null;
  const acqTime = ds.string(TAG.AcquisitionTime);

  return {
    file,
    fileSize,
    seriesInstanceUid: ds.string(TAG.SeriesInstanceUID) ?? '',
    seriesNumber: numOrNull(ds.number(TAG.SeriesNumber)),
    seriesDescription: ds.string(TAG.SeriesDescription) ?? '',
    manufacturer,
    vendor,
    patientName: text(ds, TAG.PatientName),
    patientId: text(ds, TAG.PatientID),
    patientBirthDate: text(ds, TAG.PatientBirthDate),
    patientSex: text(ds, TAG.PatientSex),
    studyDate: ds.string(TAG.StudyDate) ?? null,
    instanceNumber: numOrNull(ds.number(TAG.InstanceNumber)),
    acquisitionTime: acqTime !== undefined && Number.isFinite(Number(acqTime)) ? Number(acqTime) : null,
    transferSyntaxUid: ts,
    layout,
    imageType,
    rows,
    columns,
    numberOfFrames,
    samplesPerPixel,
    bitsAllocated,
    bitsStored: ds.number(TAG.BitsStored) ?? bitsAllocated,
    pixelRepresentation: ds.number(TAG.PixelRepresentation) ?? 0,
    isFloatPixels,
    littleEndian: ds.littleEndian,
    pixelOffset: pixel.offset,
    pixelLength: pixel.length,
    deflated: ts === '1.2.840.10008.1.2.1.99',
    patientPosition: ds.string(TAG.PatientPosition)?.toUpperCase() ?? null,
    phaseEncodingDirection: pe === 'ROW' || pe === 'COL' ? pe : null,
    imagesInAcquisition: numOrNull(ds.number(TAG.ImagesInAcquisition)),
    geNumberOfDiffusionDirections: vendor === 'GE' ? numOrNull(ds.number(TAG.GENumberOfDiffusionDirections)) : null,
    mosaic,
    unsupported: unsupported ?? pixelLengthProblem(rows, columns, numberOfFrames, bitsAllocated, samplesPerPixel, pixel.length, isNativeTransferSyntax(ts) && !pixel.fragments),
    dimensionIndexPointers: pointers,
    frames,
  };
}

function pixelLengthProblem(rows: number, columns: number, frames: number, bits: number, samples: number, length: number, native: boolean): string | null {
  if (!native) return null;
  if (bits !== 8 && bits !== 16 && bits !== 32 && bits !== 64) return `${bits}-bit pixels are not supported`;
  const expected = (rows * columns * frames * samples * bits) / 8;
  if (length < expected) return `pixel data holds ${length} bytes but ${columns}×${rows}×${frames} ${bits}-bit pixels need ${expected} (truncated)`;
  return null;
}
