/**
 * DICOM Part 10 parsing for the diffusion reader, built on the `dicom-parser` package.
 *
 * dicom-parser walks the file once and indexes its elements (offset + length into the file buffer); this
 * module wraps that index in DicomDataset, which decodes values lazily (no copies of large values), and adds
 * what the reader needs on top of it:
 * - a typed error (DicomParseError) that says whether a file is not DICOM, truncated, corrupt or unsupported,
 *   naming the element where the data ends (dicom-parser throws bare strings, and does not notice some
 *   truncations at all, e.g. in implicit VR data, so the parsed index is checked against the buffer);
 * - files without the 128-byte preamble (raw datasets, with or without file meta information);
 * - a transfer syntax guess when the file meta information does not name one;
 * - private sequences in implicit VR and sequences stored as UN with a defined length, which dicom-parser
 *   leaves unparsed (they are parsed on first access, as implicit VR little endian).
 * Supported transfer syntaxes: implicit VR little endian, explicit VR little and big endian, and deflated
 * explicit VR little endian. Encapsulated (compressed) pixel data is recognised and reported as unsupported.
 */
import { inflateRawSync } from 'node:zlib';
import dicomParser from 'dicom-parser';
import type { DataSet as RawDataSet, Element as RawElement } from 'dicom-parser';
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
  /** Encapsulated pixel data fragments (the basic offset table item is not one of them). */
  fragments?: { offset: number; length: number }[];
}

const KNOWN_VRS = new Set([
  'AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FD', 'FL', 'IS', 'LO', 'LT', 'OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'PN', 'SH',
  'SL', 'SQ', 'SS', 'ST', 'SV', 'TM', 'UC', 'UI', 'UL', 'UN', 'UR', 'US', 'UT', 'UV',
]);
const ITEM = 0xfffee000;
const ITEM_DELIMITER = 0xfffee00d;
const SEQUENCE_DELIMITER = 0xfffee0dd;
const UNDEFINED = 0xffffffff;
const MAX_DEPTH = 32;

/** dicom-parser keys elements by 'xggggeeee' (lower-case hex). */
const keyCache = new Map<number, string>();
function tagKey(tag: number): string {
  let key = keyCache.get(tag);
  if (key === undefined) {
    key = `x${tag.toString(16).padStart(8, '0')}`;
    if (keyCache.size < 4096) keyCache.set(tag, key);
  }
  return key;
}
const keyTag = (key: string): number => Number.parseInt(key.slice(1), 16);
const ITEM_DELIMITER_KEY = tagKey(ITEM_DELIMITER);

/** VRs dicom-parser should assume in implicit VR data (it otherwise guesses sequences by peeking for an item). */
const IMPLICIT_VR_BY_KEY = new Map([...IMPLICIT_VR].map(([tag, vr]) => [tagKey(tag), vr]));
const implicitVr = (key: string): string | undefined => IMPLICIT_VR_BY_KEY.get(key);

/** Where a dataset's elements came from: dicom-parser's index, over `buffer` starting at `base`. */
interface Source {
  elements: Record<string, RawElement>;
  /** Offset of dicom-parser's byte array in `buffer` (non-zero when a dataset was parsed from a sub-array). */
  base: number;
  /** Implicit VR: elements carry no VR of their own. */
  implicit: boolean;
}

/** One dataset (the file's top level, or an item of a sequence) over a shared buffer. Made by parseDicom. */
export class DicomDataset {
  private readonly cache = new Map<number, DicomElement | null>();
  private all: Map<number, DicomElement> | undefined;

  constructor(
    readonly buffer: Buffer,
    readonly littleEndian: boolean,
    private readonly source: Source,
  ) {}

  /** Every element of the dataset, by tag (decoded on first use). */
  get elements(): ReadonlyMap<number, DicomElement> {
    if (!this.all) {
      this.all = new Map();
      for (const key in this.source.elements) {
        if (key === ITEM_DELIMITER_KEY) continue;
        const tag = keyTag(key);
        const el = this.element(tag);
        if (el) this.all.set(tag, el);
      }
    }
    return this.all;
  }

  has(tag: number): boolean {
    return this.element(tag) !== undefined;
  }

  element(tag: number): DicomElement | undefined {
    let el = this.cache.get(tag);
    if (el === undefined) {
      const raw = tag === ITEM_DELIMITER ? undefined : this.source.elements[tagKey(tag)];
      el = raw ? this.convert(tag, raw) : null;
      this.cache.set(tag, el);
    }
    return el ?? undefined;
  }

  /** The raw text value (all values, backslash-separated), trimmed; undefined if absent or empty. */
  string(tag: number): string | undefined {
    const el = this.element(tag);
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
    const el = this.element(tag);
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
    return this.element(tag)?.items ?? [];
  }

  /** First item of a sequence, if any. */
  item(tag: number): DicomDataset | undefined {
    return this.sequence(tag)[0];
  }

  private convert(tag: number, raw: RawElement): DicomElement {
    const { base, implicit } = this.source;
    const offset = base + raw.dataOffset;
    let vr = raw.vr ?? (implicit ? (IMPLICIT_VR.get(tag) ?? 'UN') : 'UN');
    // The bytes an undefined-length sequence spans include its delimiter (dicom-parser's length does not).
    const length =
      raw.hadUndefinedLength && !raw.encapsulatedPixelData && delimiterAt(this.buffer, offset + raw.length, this.buffer.length, this.littleEndian, SEQUENCE_DELIMITER)
        ? raw.length + 8
        : raw.length;
    if (raw.encapsulatedPixelData) {
      const fragments = (raw.fragments ?? []).map((f) => ({ offset: base + f.position, length: f.length }));
      return { tag, vr: vr === 'UN' ? 'OB' : vr, offset, length: raw.length, fragments };
    }
    if (raw.items) {
      // Items of a UN element of undefined length were read as implicit VR (dicom-parser does so, as does dcm2niix).
      const itemImplicit = implicit || raw.vr === 'UN';
      const items = raw.items.map(
        (item) => new DicomDataset(this.buffer, this.littleEndian, { elements: item.dataSet?.elements ?? {}, base, implicit: itemImplicit }),
      );
      return { tag, vr: 'SQ', offset, length, items };
    }
    // Sequences dicom-parser leaves as bytes: private sequences in implicit VR data, and sequences stored as UN
    // (their content is implicit VR little endian).
    if (vr === 'SQ' || (vr === 'UN' && (raw.hadUndefinedLength === true || looksLikeSequence(this.buffer, offset, raw.length, this.littleEndian)))) {
      const items = this.readItems(offset, raw.hadUndefinedLength ? UNDEFINED : raw.length, vr === 'UN' || implicit);
      if (items) return { tag, vr: 'SQ', offset, length, items };
    }
    if (vr === 'SQ') vr = 'UN';
    return { tag, vr, offset, length };
  }

  /** Parse the items of a sequence dicom-parser did not parse. Null if they do not parse (left as bytes). */
  private readItems(offset: number, length: number, implicit: boolean): DicomDataset[] | null {
    if (length === 0) return [];
    if (offset >= this.buffer.length) return null;
    const little = implicit || this.littleEndian;
    const parser = little ? dicomParser.littleEndianByteArrayParser : dicomParser.bigEndianByteArrayParser;
    const stream = new dicomParser.ByteStream(parser, this.buffer, offset);
    const element: RawElement = { tag: '', length, dataOffset: offset };
    try {
      if (implicit) dicomParser.readSequenceItemsImplicit(stream, element, implicitVr as (tag: string) => string);
      else dicomParser.readSequenceItemsExplicit(stream, element, []);
    } catch {
      return null;
    }
    return (element.items ?? []).map((item) => new DicomDataset(this.buffer, little, { elements: item.dataSet?.elements ?? {}, base: 0, implicit }));
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
  /** Stop before this tag (top level), e.g. before pixel data when only the header is needed. */
  stopAtTag?: number;
}

/** Returns true if the buffer starts like a Part 10 file (preamble + 'DICM'). */
export function hasDicmPrefix(buf: Buffer): boolean {
  return buf.length >= 132 && buf[128] === 0x44 && buf[129] === 0x49 && buf[130] === 0x43 && buf[131] === 0x4d;
}

export function transferSyntaxName(uid: string): string | undefined {
  return TRANSFER_SYNTAX_NAMES[uid];
}

export function isNativeTransferSyntax(uid: string): boolean {
  return uid === TS.implicitLittle || uid === TS.explicitLittle || uid === TS.explicitBig || uid === TS.deflatedExplicitLittle;
}

/** Parse a DICOM file held in memory. Throws DicomParseError. */
export function parseDicom(buf: Buffer, options: ParseOptions = {}): ParsedDicom {
  const hasPreamble = hasDicmPrefix(buf);
  if (!hasPreamble) {
    if (buf.length < 8) throw new DicomParseError('not a DICOM file (too short)', 'not-dicom');
    const group = buf.readUInt16LE(0);
    if (group !== 0x0002 && group !== 0x0008) throw new DicomParseError('not a DICOM file (no DICM preamble)', 'not-dicom');
  }
  // Without the DICM prefix there is no claim to be DICOM: anything unparseable is simply not DICOM.
  const notDicom = (e: unknown): DicomParseError =>
    new DicomParseError(`not a DICOM file (no DICM preamble; ${e instanceof Error ? e.message : String(e)})`, 'not-dicom');

  // File meta information: always explicit VR little endian.
  let dataStart = hasPreamble ? 132 : 0;
  let metaElements: Record<string, RawElement> = {};
  if (buf.length >= dataStart + 4 && buf.readUInt16LE(dataStart) === 0x0002) {
    try {
      ({ elements: metaElements, end: dataStart } = readMeta(buf, dataStart));
    } catch (e) {
      throw hasPreamble ? e : notDicom(e);
    }
  }
  const meta = new DicomDataset(buf, true, { elements: metaElements, base: 0, implicit: false });
  const metaTs = meta.string(TAG.TransferSyntaxUID) ?? '';
  const ts = metaTs || guessTransferSyntax(buf, dataStart);

  let little = true;
  let implicit = false;
  switch (ts) {
    case TS.implicitLittle:
      implicit = true;
      break;
    case TS.explicitLittle:
    case TS.deflatedExplicitLittle:
      break;
    case TS.explicitBig:
      little = false;
      break;
    default: {
      // Encapsulated: dicom-parser reads the header (explicit little endian) so callers can say what it is.
      const name = TRANSFER_SYNTAX_NAMES[ts];
      if (!name && !ts.startsWith('1.2.840.10008.1.2.4.') && ts !== '1.2.840.10008.1.2.5')
        throw new DicomParseError(`unknown transfer syntax ${ts}`, 'unsupported');
    }
  }

  let parsed: { elements: Record<string, RawElement>; buffer: Buffer; base: number };
  try {
    parsed = parseDataset(buf, { hasPreamble, metaTs, ts, dataStart, metaElements, little, stopAtTag: options.stopAtTag });
  } catch (e) {
    throw hasPreamble ? e : notDicom(e);
  }
  const dataset = new DicomDataset(parsed.buffer, little, { elements: parsed.elements, base: parsed.base, implicit });
  if (!hasPreamble && !dataset.has(TAG.SOPClassUID) && !dataset.has(TAG.Modality) && !dataset.has(TAG.PixelData)) {
    // Without a preamble, demand a plausible dataset before calling it DICOM.
    throw new DicomParseError('not a DICOM file (no DICM preamble, no recognisable tags)', 'not-dicom');
  }
  return { dataset, transferSyntaxUid: ts, hasPreamble, meta };
}

/** The group 0002 elements from `start` on, read as dicom-parser's readPart10Header does (which needs the DICM prefix). */
function readMeta(buf: Buffer, start: number): { elements: Record<string, RawElement>; end: number } {
  const elements: Record<string, RawElement> = {};
  const stream = new dicomParser.ByteStream(dicomParser.littleEndianByteArrayParser, buf, start);
  try {
    while (stream.position < buf.length) {
      const position = stream.position;
      const el = dicomParser.readDicomElementExplicit(stream, []);
      if (el.tag > 'x0002ffff') {
        stream.position = position;
        break;
      }
      elements[el.tag] = el;
    }
  } catch {
    throw new DicomParseError('file meta information is truncated', 'truncated');
  }
  if (stream.position > buf.length) throw new DicomParseError('file meta information is truncated', 'truncated');
  return { elements, end: stream.position };
}

function guessTransferSyntax(buf: Buffer, offset: number): string {
  if (buf.length < offset + 8) return TS.implicitLittle;
  const vr = buf.toString('latin1', offset + 4, offset + 6);
  return KNOWN_VRS.has(vr) ? TS.explicitLittle : TS.implicitLittle;
}

interface DatasetPlan {
  hasPreamble: boolean;
  /** Transfer syntax named by the file meta information ('' if none). */
  metaTs: string;
  ts: string;
  /** Offset of the dataset (after the file meta information). */
  dataStart: number;
  metaElements: Record<string, RawElement>;
  little: boolean;
  stopAtTag: number | undefined;
}

/** Inflate a deflated dataset for dicom-parser: the bytes before `position` followed by the inflated rest. */
function inflater(bytes: Uint8Array, position: number | undefined): Buffer {
  const start = position ?? 0;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  try {
    return Buffer.concat([buf.subarray(0, start), inflateRawSync(buf.subarray(start))]);
  } catch {
    throw new DicomParseError('deflated dataset could not be inflated (truncated or corrupt)', 'truncated');
  }
}

/**
 * Index the dataset with dicom-parser. A Part 10 file naming its transfer syntax goes to parseDicom whole;
 * otherwise (no preamble, or no transfer syntax in the meta information) the dataset after the meta
 * information is parsed on its own, with the transfer syntax given (or guessed), and its offsets shifted.
 */
function parseDataset(buf: Buffer, plan: DatasetPlan): { elements: Record<string, RawElement>; buffer: Buffer; base: number } {
  if (plan.dataStart >= buf.length) return { elements: {}, buffer: buf, base: 0 };
  const whole = plan.hasPreamble && plan.metaTs !== '';
  const base = whole ? 0 : plan.dataStart;
  const bytes = whole ? buf : buf.subarray(base);
  if (!whole && hasDicmPrefix(bytes)) throw new DicomParseError('corrupt: the dataset after the file meta information looks like another DICOM file', 'corrupt');
  const options = {
    untilTag: plan.stopAtTag === undefined ? undefined : tagKey(plan.stopAtTag),
    vrCallback: implicitVr,
    inflater,
    ...(whole ? {} : { TransferSyntaxUID: plan.ts }),
  };
  let raw: RawDataSet;
  const ctx: CheckContext = { bytes, base, little: plan.little, start: whole ? plan.dataStart : 0 };
  try {
    raw = dicomParser.parseDicom(bytes, options);
  } catch (e) {
    raw = recover(e, ctx);
  }
  const elements = raw.elements;
  // dicom-parser merges the file meta information into the dataset (or, given a transfer syntax, a stand-in
  // for it): keep the two apart.
  if (whole) for (const key in plan.metaElements) delete elements[key];
  else delete elements[tagKey(TAG.TransferSyntaxUID)];
  if (plan.stopAtTag !== undefined) {
    for (const key in elements) if (keyTag(key) >= plan.stopAtTag) delete elements[key];
  }
  const out = raw.byteArray as Buffer;
  ctx.bytes = out;
  checkDataSet(raw, ctx.start, out.length, ctx, 0);
  return { elements, buffer: whole ? out : buf, base };
}

interface CheckContext {
  /** dicom-parser's byte array (the inflated one for deflated data). */
  bytes: Buffer;
  /** Offset of `bytes` in the file buffer (for messages). */
  base: number;
  little: boolean;
  /** Where the dataset starts in `bytes`. */
  start: number;
}

function truncatedElement(tag: number, need: number, end: number): DicomParseError {
  return new DicomParseError(`truncated: element ${tagString(tag)}${tagName(tag)} needs ${need} bytes beyond the end of the data (${end})`, 'truncated');
}

function u16(bytes: Buffer, o: number, little: boolean): number {
  return little ? bytes.readUInt16LE(o) : bytes.readUInt16BE(o);
}

function readTag(bytes: Buffer, o: number, little: boolean): number {
  return u16(bytes, o, little) * 65536 + u16(bytes, o + 2, little);
}

function delimiterAt(bytes: Buffer, o: number, end: number, little: boolean, tag: number): boolean {
  return o >= 0 && o + 8 <= end && readTag(bytes, o, little) === tag;
}

/**
 * Check dicom-parser's index against the data: every value inside its container, every undefined length
 * closed by its delimiter. dicom-parser does not check this everywhere (not at all in implicit VR data), and
 * where it does it throws without naming the element. Throws DicomParseError for the innermost problem.
 */
function checkDataSet(ds: RawDataSet, start: number, end: number, ctx: CheckContext, depth: number): void {
  if (depth > MAX_DEPTH) throw new DicomParseError('sequences nested too deeply', 'corrupt');
  const { bytes, little } = ctx;
  for (const key in ds.elements) {
    if (key === ITEM_DELIMITER_KEY) continue;
    const el = ds.elements[key]!;
    const tag = keyTag(key);
    if (el.encapsulatedPixelData) {
      const fragments = el.fragments ?? [];
      if (fragments.some((f) => f.position + f.length > end))
        throw new DicomParseError('truncated: encapsulated pixel data fragment runs past the end of the file', 'truncated');
      if (el.length === UNDEFINED) throw new DicomParseError('truncated: encapsulated pixel data without its delimiter', 'truncated');
      if ((ds.warnings ?? []).some((w) => w.startsWith('unexpected tag'))) throw new DicomParseError('corrupt encapsulated pixel data', 'corrupt');
      continue;
    }
    if (el.items) {
      if (!el.hadUndefinedLength && el.dataOffset + el.length > end) throw truncatedElement(tag, el.dataOffset + el.length - end, ctx.base + end);
      for (const item of el.items) {
        const itemEnd = item.dataOffset + item.length;
        if (item.hadUndefinedLength) {
          checkDataSet(item.dataSet!, item.dataOffset, end, ctx, depth + 1);
          if (!item.dataSet!.elements[ITEM_DELIMITER_KEY]) throw new DicomParseError('truncated: sequence item without its delimiter', 'truncated');
        } else {
          if (itemEnd > end) throw new DicomParseError('truncated: sequence item runs past the end of the data', 'truncated');
          checkDataSet(item.dataSet!, item.dataOffset, itemEnd, ctx, depth + 1);
        }
      }
      if (el.hadUndefinedLength && !delimiterAt(bytes, el.dataOffset + el.length, end, little, SEQUENCE_DELIMITER))
        throw new DicomParseError('truncated: sequence without its delimiter', 'truncated');
      continue;
    }
    if (el.hadUndefinedLength) {
      // A sequence dicom-parser walked but did not keep (its length stops before the delimiter), or a value it
      // scanned to its item delimiter (its length includes the delimiter).
      const o = el.dataOffset + el.length;
      if (!delimiterAt(bytes, o, end, little, SEQUENCE_DELIMITER) && !delimiterAt(bytes, o - 8, end, little, ITEM_DELIMITER))
        throw new DicomParseError(`truncated: element ${tagString(tag)}${tagName(tag)} of undefined length without its delimiter`, 'truncated');
      continue;
    }
    if (el.dataOffset + el.length > end) throw truncatedElement(tag, el.dataOffset + el.length - end, ctx.base + end);
  }
}

/** End of an element in the data (after the delimiter of an undefined-length sequence). */
function elementEnd(el: RawElement): number {
  return el.dataOffset + el.length + (el.items && el.hadUndefinedLength ? 8 : 0);
}

/**
 * dicom-parser threw: turn what it says (a string, an Error, or { exception, dataSet } with the elements read
 * so far) into a DicomParseError naming the element where it failed. Returns the partial dataset instead
 * when all that is left is a few bytes of zero padding at the end (tolerated, as before).
 */
function recover(e: unknown, ctx: CheckContext): RawDataSet {
  if (e instanceof DicomParseError) throw e;
  const wrapped = typeof e === 'object' && e !== null && 'exception' in e;
  const inner: unknown = wrapped ? (e as { exception: unknown }).exception : e;
  const partial = wrapped ? (e as { dataSet?: RawDataSet }).dataSet : undefined;
  if (inner instanceof DicomParseError) throw inner;
  if (inner instanceof RangeError && /call stack/i.test(inner.message)) throw new DicomParseError('sequences nested too deeply', 'corrupt');
  const message = (inner instanceof Error ? inner.message : String(inner)).replace(/^[\w.:]*(dicomParser|ByteArrayParser)[\w.:]*:?\s*/i, '');
  const bytes = partial ? (partial.byteArray as Buffer) : ctx.bytes;
  let position = ctx.start;
  if (partial) {
    // The innermost element that overruns the data, if any, is the best name for the problem.
    checkDataSet(partial, ctx.start, bytes.length, { ...ctx, bytes }, 0);
    for (const key in partial.elements) {
      const el = partial.elements[key]!;
      if (el.dataOffset >= ctx.start) position = Math.max(position, elementEnd(el));
    }
  }
  const left = bytes.length - position;
  if (partial && left >= 0 && left < 8) {
    // Trailing padding of fewer than 8 bytes at top level is tolerated if it is zeros.
    if (bytes.subarray(position).every((x) => x === 0)) return partial;
    throw new DicomParseError(`truncated: ${left} stray bytes at the end of the data`, 'truncated');
  }
  const tag = left >= 4 ? readTag(bytes, position, ctx.little) : undefined;
  const where = tag === undefined ? `at offset ${ctx.base + position}` : `inside element ${tagString(tag)}${tagName(tag)}`;
  if (/item tag \(FFFE,E000\) not found|basic offset table not found/i.test(message))
    throw new DicomParseError(`corrupt sequence or pixel data ${where}: ${message}`, 'corrupt');
  throw new DicomParseError(`truncated: data ends ${where} (${message})`, 'truncated');
}

function looksLikeSequence(buf: Buffer, offset: number, length: number, little: boolean): boolean {
  if (length < 8 || length === UNDEFINED || offset + 8 > buf.length) return false;
  if (readTag(buf, offset, little) !== ITEM) return false;
  const itemLen = little ? buf.readUInt32LE(offset + 4) : buf.readUInt32BE(offset + 4);
  return itemLen === UNDEFINED || offset + 8 + itemLen <= offset + length;
}
