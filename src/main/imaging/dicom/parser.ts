/**
 * A small DICOM Part 10 parser: enough of the standard to read MR diffusion series.
 *
 * It reads the whole file into an index of elements (offset + length into the file buffer) and decodes
 * values lazily, so parsing a header costs one pass over the tags and no copies of large values.
 * Supported transfer syntaxes: implicit VR little endian, explicit VR little and big endian, and deflated
 * explicit VR little endian. Encapsulated (compressed) pixel data is recognised and reported as unsupported.
 */
import { inflateRawSync } from 'node:zlib';
import { IMPLICIT_VR, TAG, tagName, tagString } from './tags.js';

export const TS = {
  implicitLittle: '1.2.840.10008.1.2',
  explicitLittle: '1.2.840.10008.1.2.1',
  deflatedExplicitLittle: '1.2.840.10008.1.2.1.99',
  explicitBig: '1.2.840.10008.1.2.2',
} as const;

const TRANSFER_SYNTAX_NAMES: Record<string, string> = {
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless SV1',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Near-Lossless',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000',
  '1.2.840.10008.1.2.4.201': 'HTJ2K Lossless',
  '1.2.840.10008.1.2.4.203': 'HTJ2K',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
  '1.2.840.10008.1.2.4.100': 'MPEG2',
  '1.2.840.10008.1.2.4.102': 'MPEG-4 AVC/H.264',
};

/** Why a file could not be parsed. `kind` separates "not DICOM at all" from "DICOM but broken". */
export class DicomParseError extends Error {
  constructor(
    message: string,
    readonly kind: 'not-dicom' | 'truncated' | 'corrupt' | 'unsupported',
  ) {
    super(message);
    this.name = 'DicomParseError';
  }
}

export interface DicomElement {
  tag: number;
  vr: string;
  /** Byte offset of the value in the dataset buffer. */
  offset: number;
  /** Value length in bytes (for sequences and encapsulated pixel data: the bytes spanned). */
  length: number;
  items?: DicomDataset[];
  /** Encapsulated pixel data fragments. */
  fragments?: { offset: number; length: number }[];
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT', 'SV', 'UV']);
const KNOWN_VRS = new Set([
  'AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FD', 'FL', 'IS', 'LO', 'LT', 'OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'PN', 'SH',
  'SL', 'SQ', 'SS', 'ST', 'SV', 'TM', 'UC', 'UI', 'UL', 'UN', 'UR', 'US', 'UT', 'UV',
]);
const ITEM = 0xfffee000;
const ITEM_DELIMITER = 0xfffee00d;
const SEQUENCE_DELIMITER = 0xfffee0dd;
const UNDEFINED = 0xffffffff;
const MAX_DEPTH = 32;

/** One dataset (the file's top level, or an item of a sequence) over a shared buffer. */
export class DicomDataset {
  constructor(
    readonly buffer: Buffer,
    readonly littleEndian: boolean,
    readonly elements: Map<number, DicomElement>,
  ) {}

  has(tag: number): boolean {
    return this.elements.has(tag);
  }

  element(tag: number): DicomElement | undefined {
    return this.elements.get(tag);
  }

  /** The raw text value (all values, backslash-separated), trimmed; undefined if absent or empty. */
  string(tag: number): string | undefined {
    const el = this.elements.get(tag);
    if (!el || el.items || el.length === 0) return undefined;
    const text = this.buffer
      .toString('latin1', el.offset, el.offset + el.length)
      .replace(/[\0 ]+$/, '')
      .replace(/^ +/, '');
    return text.length > 0 ? text : undefined;
  }

  strings(tag: number): string[] {
    const s = this.string(tag);
    return s === undefined ? [] : s.split('\\').map((v) => v.trim());
  }

  /** All numeric values of an element, decoded by its VR (text VRs DS/IS are parsed). */
  numbers(tag: number): number[] {
    const el = this.elements.get(tag);
    if (!el || el.items || el.length === 0) return [];
    let vr = el.vr;
    if (vr === 'UN' || vr === 'OB') vr = IMPLICIT_VR.get(tag) ?? vr;
    const b = this.buffer;
    const le = this.littleEndian;
    const out: number[] = [];
    const read = (size: number, fn: (o: number) => number): number[] => {
      for (let o = el.offset; o + size <= el.offset + el.length; o += size) out.push(fn(o));
      return out;
    };
    switch (vr) {
      case 'US':
        return read(2, (o) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o)));
      case 'SS':
        return read(2, (o) => (le ? b.readInt16LE(o) : b.readInt16BE(o)));
      case 'UL':
        return read(4, (o) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o)));
      case 'SL':
        return read(4, (o) => (le ? b.readInt32LE(o) : b.readInt32BE(o)));
      case 'FL':
      case 'OF':
        return read(4, (o) => (le ? b.readFloatLE(o) : b.readFloatBE(o)));
      case 'FD':
      case 'OD':
        return read(8, (o) => (le ? b.readDoubleLE(o) : b.readDoubleBE(o)));
      case 'AT':
        return read(4, (o) =>
          le ? b.readUInt16LE(o) * 65536 + b.readUInt16LE(o + 2) : b.readUInt16BE(o) * 65536 + b.readUInt16BE(o + 2),
        );
      default: {
        const text = this.string(tag);
        if (text === undefined) return [];
        for (const part of text.split('\\')) {
          const t = part.trim();
          if (t === '') continue;
          const v = Number(t);
          out.push(Number.isFinite(v) ? v : Number.parseFloat(t));
        }
        return out.filter((v) => Number.isFinite(v));
      }
    }
  }

  number(tag: number, index = 0): number | undefined {
    const v = this.numbers(tag)[index];
    return v === undefined || !Number.isFinite(v) ? undefined : v;
  }

  sequence(tag: number): DicomDataset[] {
    return this.elements.get(tag)?.items ?? [];
  }

  /** First item of a sequence, if any. */
  item(tag: number): DicomDataset | undefined {
    return this.sequence(tag)[0];
  }
}

export interface ParsedDicom {
  dataset: DicomDataset;
  transferSyntaxUid: string;
  /** True if the file had the 128-byte preamble and 'DICM'. */
  hasPreamble: boolean;
  meta: DicomDataset;
}

export interface ParseOptions {
  /** Stop after this tag (top level), e.g. before pixel data when only the header is needed. */
  stopAtTag?: number;
}

/** Returns true if the buffer starts like a Part 10 file (preamble + 'DICM'). */
export function hasDicmPrefix(buf: Buffer): boolean {
  return buf.length >= 132 && buf[128] === 0x44 && buf[129] === 0x49 && buf[130] === 0x43 && buf[131] === 0x4d;
}

/** Parse a DICOM file held in memory. Throws DicomParseError. */
export function parseDicom(buf: Buffer, options: ParseOptions = {}): ParsedDicom {
  const hasPreamble = hasDicmPrefix(buf);
  let offset = hasPreamble ? 132 : 0;
  if (!hasPreamble) {
    if (buf.length < 8) throw new DicomParseError('not a DICOM file (too short)', 'not-dicom');
    const group = buf.readUInt16LE(0);
    if (group !== 0x0002 && group !== 0x0008) throw new DicomParseError('not a DICOM file (no DICM preamble)', 'not-dicom');
  }
  // File meta information: always explicit VR little endian.
  const meta = new Map<number, DicomElement>();
  if (buf.length >= offset + 4 && buf.readUInt16LE(offset) === 0x0002) {
    try {
      const end = metaEnd(buf, offset);
      offset = parseElements(buf, offset, end, true, true, meta, 0, undefined, 0x0002);
    } catch (e) {
      if (!hasPreamble) throw new DicomParseError(`not a DICOM file (no DICM preamble; ${e instanceof Error ? e.message : String(e)})`, 'not-dicom');
      throw e;
    }
  }
  const metaDs = new DicomDataset(buf, true, meta);
  let ts = metaDs.string(TAG.TransferSyntaxUID) ?? '';
  if (ts === '') ts = guessTransferSyntax(buf, offset);

  let body = buf;
  let explicit: boolean;
  let little: boolean;
  switch (ts) {
    case TS.implicitLittle:
      explicit = false;
      little = true;
      break;
    case TS.explicitLittle:
      explicit = true;
      little = true;
      break;
    case TS.explicitBig:
      explicit = true;
      little = false;
      break;
    case TS.deflatedExplicitLittle: {
      try {
        body = Buffer.concat([buf.subarray(0, offset), inflateRawSync(buf.subarray(offset))]);
      } catch {
        throw new DicomParseError('deflated dataset could not be inflated (truncated or corrupt)', 'truncated');
      }
      explicit = true;
      little = true;
      break;
    }
    default: {
      const name = TRANSFER_SYNTAX_NAMES[ts];
      if (name || ts.startsWith('1.2.840.10008.1.2.4.') || ts === '1.2.840.10008.1.2.5') {
        // Encapsulated: parse the header anyway (explicit little endian) so callers can say what it is,
        // but mark it unsupported.
        explicit = true;
        little = true;
      } else {
        throw new DicomParseError(`unknown transfer syntax ${ts}`, 'unsupported');
      }
    }
  }
  const elements = new Map<number, DicomElement>();
  try {
    parseElements(body, offset, body.length, explicit, little, elements, 0, options.stopAtTag);
  } catch (e) {
    // Without the DICM prefix there is no claim to be DICOM: anything unparseable is simply not DICOM.
    if (!hasPreamble) throw new DicomParseError(`not a DICOM file (no DICM preamble; ${e instanceof Error ? e.message : String(e)})`, 'not-dicom');
    throw e;
  }
  if (!hasPreamble) {
    // Without a preamble, demand a plausible dataset before calling it DICOM.
    const ds = new DicomDataset(body, little, elements);
    if (!ds.has(TAG.SOPClassUID) && !ds.has(TAG.Modality) && !ds.has(TAG.PixelData)) {
      throw new DicomParseError('not a DICOM file (no DICM preamble, no recognisable tags)', 'not-dicom');
    }
  }
  return { dataset: new DicomDataset(body, little, elements), transferSyntaxUid: ts, hasPreamble, meta: metaDs };
}

export function transferSyntaxName(uid: string): string | undefined {
  return TRANSFER_SYNTAX_NAMES[uid];
}

export function isNativeTransferSyntax(uid: string): boolean {
  return uid === TS.implicitLittle || uid === TS.explicitLittle || uid === TS.explicitBig || uid === TS.deflatedExplicitLittle;
}

function metaEnd(buf: Buffer, offset: number): number {
  // Use (0002,0000) group length when present, else walk while the group is 0002.
  if (buf.length >= offset + 12 && buf.readUInt16LE(offset + 2) === 0x0000 && buf.toString('latin1', offset + 4, offset + 6) === 'UL') {
    const len = buf.readUInt32LE(offset + 8);
    const end = offset + 12 + len;
    if (end <= buf.length) return end;
    throw new DicomParseError('file meta information is truncated', 'truncated');
  }
  let o = offset;
  while (o + 8 <= buf.length && buf.readUInt16LE(o) === 0x0002) {
    const vr = buf.toString('latin1', o + 4, o + 6);
    if (LONG_VRS.has(vr)) {
      if (o + 12 > buf.length) break;
      o += 12 + buf.readUInt32LE(o + 8);
    } else o += 8 + buf.readUInt16LE(o + 6);
  }
  return Math.min(o, buf.length);
}

function guessTransferSyntax(buf: Buffer, offset: number): string {
  if (buf.length < offset + 8) return TS.implicitLittle;
  const vr = buf.toString('latin1', offset + 4, offset + 6);
  return KNOWN_VRS.has(vr) ? TS.explicitLittle : TS.implicitLittle;
}

function readTag(buf: Buffer, o: number, little: boolean): number {
  return little ? buf.readUInt16LE(o) * 65536 + buf.readUInt16LE(o + 2) : buf.readUInt16BE(o) * 65536 + buf.readUInt16BE(o + 2);
}

function u32(buf: Buffer, o: number, little: boolean): number {
  return little ? buf.readUInt32LE(o) : buf.readUInt32BE(o);
}

function truncated(tag: number, need: number, end: number): DicomParseError {
  return new DicomParseError(`truncated: element ${tagString(tag)}${tagName(tag)} needs ${need} bytes beyond the end of the data (${end})`, 'truncated');
}

/**
 * Parse elements from `offset` to `end` into `out`. Returns the offset after the last element read.
 * Stops at an item delimiter (returning the offset after it) when parsing an undefined-length item.
 */
function parseElements(
  buf: Buffer,
  offset: number,
  end: number,
  explicit: boolean,
  little: boolean,
  out: Map<number, DicomElement>,
  depth: number,
  stopAtTag?: number,
  onlyGroup?: number,
): number {
  if (depth > MAX_DEPTH) throw new DicomParseError('sequences nested too deeply', 'corrupt');
  let o = offset;
  while (o < end) {
    if (o + 8 > end) {
      // Trailing padding of fewer than 8 bytes at top level is tolerated if it is zeros.
      if (depth === 0 && buf.subarray(o, end).every((x) => x === 0)) return end;
      throw new DicomParseError(`truncated: ${end - o} stray bytes at the end of the data`, 'truncated');
    }
    const tag = readTag(buf, o, little);
    if (onlyGroup !== undefined && tag >>> 16 !== onlyGroup) return o;
    if (tag === ITEM_DELIMITER) return o + 8;
    if (tag === SEQUENCE_DELIMITER) return o + 8;
    if (stopAtTag !== undefined && depth === 0 && tag >= stopAtTag) return o;
    let vr: string;
    let length: number;
    let valueOffset: number;
    const vrText = buf.toString('latin1', o + 4, o + 6);
    if (tag === ITEM) {
      throw new DicomParseError(`unexpected item tag at offset ${o}`, 'corrupt');
    }
    if (explicit && KNOWN_VRS.has(vrText)) {
      vr = vrText;
      if (LONG_VRS.has(vr)) {
        if (o + 12 > end) throw truncated(tag, 12, end);
        length = u32(buf, o + 8, little);
        valueOffset = o + 12;
      } else {
        length = little ? buf.readUInt16LE(o + 6) : buf.readUInt16BE(o + 6);
        valueOffset = o + 8;
      }
    } else {
      // Implicit VR (or an explicit file with a broken VR: read as implicit, like dcm2niix does).
      vr = IMPLICIT_VR.get(tag) ?? 'UN';
      length = u32(buf, o + 4, little);
      valueOffset = o + 8;
    }

    if (length === UNDEFINED) {
      if (tag === TAG.PixelData) {
        const { fragments, next } = parseFragments(buf, valueOffset, end, little);
        out.set(tag, { tag, vr: vr === 'UN' ? 'OB' : vr, offset: valueOffset, length: next - valueOffset, fragments });
        o = next;
        continue;
      }
      // Undefined length: a sequence (an UN with undefined length is implicit VR little endian inside).
      const innerExplicit = vr === 'UN' ? false : explicit;
      const innerLittle = vr === 'UN' ? true : little;
      const { items, next } = parseSequence(buf, valueOffset, end, innerExplicit, innerLittle, depth, true);
      out.set(tag, { tag, vr: 'SQ', offset: valueOffset, length: next - valueOffset, items });
      o = next;
      continue;
    }
    if (valueOffset + length > end) throw truncated(tag, valueOffset + length - end, end);
    if (vr === 'SQ' || (vr === 'UN' && looksLikeSequence(buf, valueOffset, length, little))) {
      const innerExplicit = vr === 'UN' ? false : explicit;
      const innerLittle = vr === 'UN' ? true : little;
      const { items } = parseSequence(buf, valueOffset, valueOffset + length, innerExplicit, innerLittle, depth, false);
      out.set(tag, { tag, vr: 'SQ', offset: valueOffset, length, items });
    } else {
      out.set(tag, { tag, vr, offset: valueOffset, length });
    }
    o = valueOffset + length;
  }
  return o;
}

function looksLikeSequence(buf: Buffer, offset: number, length: number, little: boolean): boolean {
  if (length < 8) return false;
  if (readTag(buf, offset, little) !== ITEM) return false;
  const itemLen = u32(buf, offset + 4, little);
  return itemLen === UNDEFINED || offset + 8 + itemLen <= offset + length;
}

function parseSequence(
  buf: Buffer,
  offset: number,
  end: number,
  explicit: boolean,
  little: boolean,
  depth: number,
  undefinedLength: boolean,
): { items: DicomDataset[]; next: number } {
  const items: DicomDataset[] = [];
  let o = offset;
  while (o < end) {
    if (o + 8 > end) throw new DicomParseError('truncated: sequence ends inside an item header', 'truncated');
    const tag = readTag(buf, o, little);
    if (tag === SEQUENCE_DELIMITER) return { items, next: o + 8 };
    if (tag !== ITEM) {
      if (undefinedLength) throw new DicomParseError(`corrupt sequence: expected an item at offset ${o}, found ${tagString(tag)}`, 'corrupt');
      // Defined-length sequence padded oddly: stop here.
      return { items, next: end };
    }
    const itemLen = u32(buf, o + 4, little);
    const elements = new Map<number, DicomElement>();
    if (itemLen === UNDEFINED) {
      o = parseElements(buf, o + 8, end, explicit, little, elements, depth + 1);
    } else {
      const itemEnd = o + 8 + itemLen;
      if (itemEnd > end) throw new DicomParseError('truncated: sequence item runs past the end of the data', 'truncated');
      parseElements(buf, o + 8, itemEnd, explicit, little, elements, depth + 1);
      o = itemEnd;
    }
    items.push(new DicomDataset(buf, little, elements));
  }
  if (undefinedLength) throw new DicomParseError('truncated: sequence without its delimiter', 'truncated');
  return { items, next: o };
}

function parseFragments(buf: Buffer, offset: number, end: number, little: boolean): { fragments: { offset: number; length: number }[]; next: number } {
  const fragments: { offset: number; length: number }[] = [];
  let o = offset;
  while (o + 8 <= end) {
    const tag = readTag(buf, o, little);
    const len = u32(buf, o + 4, little);
    if (tag === SEQUENCE_DELIMITER) return { fragments, next: o + 8 };
    if (tag !== ITEM) throw new DicomParseError('corrupt encapsulated pixel data', 'corrupt');
    if (o + 8 + len > end) throw new DicomParseError('truncated: encapsulated pixel data fragment runs past the end of the file', 'truncated');
    fragments.push({ offset: o + 8, length: len });
    o += 8 + len;
  }
  throw new DicomParseError('truncated: encapsulated pixel data without its delimiter', 'truncated');
}
