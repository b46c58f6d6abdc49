/**
 * DICOM Part 10 parsing for the diffusion reader, built on the `dicom-parser` package.
 *
 * dicom-parser walks the file once and indexes its elements (offset + length into the file buffer); this
 * module wraps that index in DicomDataset, which decodes values lazily (no copies of large values), and adds
 * what the reader needs on top of it:
 * - a typed error (DicomParseError) that says whether a file is not DICOM, truncated, corrupt or unsupported,
 *   naming the element where the data ends (dicom-parser throws bare strings, and does not notice some
 *   truncations at all, e.g. in implicit VR data, so its index is checked against the buffer);
 * - files without the 128-byte preamble (raw datasets, with or without file meta information), files whose
 *   meta information names no transfer syntax (it is guessed), and deflated files: their dataset is parsed
 *   with dicom-parser's dataset parser from the right offset (its parseDicom cannot: it needs the preamble
 *   and a transfer syntax, and its deflate path re-parses the inflated file from byte 0, preamble included);
 * - tolerance for padding or a stray delimiter after the items of a defined-length sequence (dicom-parser
 *   gives up on the whole file): that sequence is read item by item here, and parsing resumes after it;
 * - OV, SV and UV values (VRs added in 2019), which dicom-parser reads with a 2-byte length: re-read with
 *   their 4-byte length, and parsing resumes after them;
 * - private sequences in implicit VR and sequences stored as UN with a defined length, which dicom-parser
 *   leaves unparsed (they are parsed on first access, as implicit VR little endian, like dcm2niix does).
 * Supported transfer syntaxes: implicit VR little endian, explicit VR little and big endian, and deflated
 * explicit VR little endian. Encapsulated (compressed) pixel data is recognised and reported as unsupported.
 */
import { inflateRawSync } from 'node:zlib';
import dicomParser from 'dicom-parser';
import type { ByteArrayParser, DataSet as RawDataSet, Element as RawElement } from 'dicom-parser';
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
/** VRs with a 4-byte length that dicom-parser (1.8) reads with a 2-byte one: added to DICOM in 2019. */
const NEW_LONG_VRS = new Set(['OV', 'SV', 'UV']);
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

const byteArrayParser = (little: boolean): ByteArrayParser => (little ? dicomParser.littleEndianByteArrayParser : dicomParser.bigEndianByteArrayParser);

/** Where a dataset's elements come from: dicom-parser's index (offsets into the dataset's buffer). */
interface Source {
  elements: Record<string, RawElement>;
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
    const implicit = this.source.implicit;
    const offset = raw.dataOffset;
    // Implicit VR, or an explicit VR that is not one: the VR from the small dictionary, else UN.
    let vr = raw.vr !== undefined && KNOWN_VRS.has(raw.vr) ? raw.vr : (IMPLICIT_VR.get(tag) ?? 'UN');
    if (raw.encapsulatedPixelData) {
      const fragments = (raw.fragments ?? []).map((f) => ({ offset: f.position, length: f.length }));
      return { tag, vr: vr === 'UN' ? 'OB' : vr, offset, length: raw.length, fragments };
    }
    // The bytes an undefined-length sequence spans include its delimiter (dicom-parser's length does not).
    const length = elementEnd(raw, this.buffer, this.littleEndian) - offset;
    if (raw.items) {
      // Items of a UN element of undefined length were read as implicit VR (dicom-parser does so, as does dcm2niix).
      const itemImplicit = implicit || raw.vr === 'UN';
      const items = raw.items.map(
        (item) => new DicomDataset(this.buffer, this.littleEndian, { elements: item.dataSet?.elements ?? {}, implicit: itemImplicit }),
      );
      return { tag, vr: 'SQ', offset, length, items };
    }
    // Sequences dicom-parser leaves as bytes: private sequences in implicit VR data, sequences stored as UN
    // (their content is implicit VR little endian), and sequences it could not parse (see parseFrom).
    if (vr === 'SQ' || (vr === 'UN' && (raw.hadUndefinedLength === true || looksLikeSequence(this.buffer, offset, raw.length, this.littleEndian)))) {
      const items = this.readItems(offset, raw.hadUndefinedLength ? UNDEFINED : raw.length, vr === 'UN' || implicit);
      if (items) return { tag, vr: 'SQ', offset, length, items };
    }
    if (vr === 'SQ') vr = 'UN';
    return { tag, vr, offset, length };
  }

  /** The items of a sequence dicom-parser did not parse (see readItems). Null if they do not parse: left as bytes. */
  private readItems(offset: number, length: number, implicit: boolean): DicomDataset[] | null {
    const little = implicit || this.littleEndian;
    try {
      const { items } = readItems(offset, length, { bytes: this.buffer, little, implicit });
      return items.map((item) => new DicomDataset(this.buffer, little, { elements: item.dataSet?.elements ?? {}, implicit }));
    } catch {
      return null;
    }
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
  const meta = new DicomDataset(buf, true, { elements: metaElements, implicit: false });
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
      // Encapsulated: the header is explicit VR little endian; parse it so callers can say what the file is.
      const name = TRANSFER_SYNTAX_NAMES[ts];
      if (!name && !ts.startsWith('1.2.840.10008.1.2.4.') && ts !== '1.2.840.10008.1.2.5')
        throw new DicomParseError(`unknown transfer syntax ${ts}`, 'unsupported');
    }
  }

  let parsed: { elements: Record<string, RawElement>; buffer: Buffer };
  try {
    parsed = parseDataset(buf, { standard: hasPreamble && metaTs !== '', ts, dataStart, metaElements, little, implicit, stopAtTag: options.stopAtTag });
  } catch (e) {
    throw hasPreamble ? e : notDicom(e);
  }
  const dataset = new DicomDataset(parsed.buffer, little, { elements: parsed.elements, implicit });
  if (!hasPreamble && !dataset.has(TAG.SOPClassUID) && !dataset.has(TAG.Modality) && !dataset.has(TAG.PixelData)) {
    // Without a preamble, demand a plausible dataset before calling it DICOM.
    throw new DicomParseError('not a DICOM file (no DICM preamble, no recognisable tags)', 'not-dicom');
  }
  return { dataset, transferSyntaxUid: ts, hasPreamble, meta };
}

/**
 * The file meta information from `start` on: group 0002, read with dicom-parser's element reader as its
 * readPart10Header does (which insists on the DICM prefix), up to the end its group length (0002,0000) gives.
 */
function readMeta(buf: Buffer, start: number): { elements: Record<string, RawElement>; end: number } {
  const elements: Record<string, RawElement> = {};
  let end = buf.length;
  if (buf.length >= start + 12 && buf.readUInt16LE(start + 2) === 0x0000 && buf.toString('latin1', start + 4, start + 6) === 'UL') {
    end = start + 12 + buf.readUInt32LE(start + 8);
    if (end > buf.length) throw new DicomParseError('file meta information is truncated', 'truncated');
  }
  const stream = new dicomParser.ByteStream(dicomParser.littleEndianByteArrayParser, buf, start);
  try {
    while (stream.position < end) {
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
  if (stream.position > end) throw new DicomParseError('file meta information is truncated', 'truncated');
  return { elements, end: stream.position };
}

function guessTransferSyntax(buf: Buffer, offset: number): string {
  if (buf.length < offset + 8) return TS.implicitLittle;
  const vr = buf.toString('latin1', offset + 4, offset + 6);
  return KNOWN_VRS.has(vr) ? TS.explicitLittle : TS.implicitLittle;
}

interface DatasetPlan {
  /** A Part 10 file (preamble, meta information naming the transfer syntax): dicomParser.parseDicom reads it. */
  standard: boolean;
  ts: string;
  /** Offset of the dataset (after the file meta information). */
  dataStart: number;
  metaElements: Record<string, RawElement>;
  little: boolean;
  implicit: boolean;
  stopAtTag: number | undefined;
}

/** What dicom-parser parses: the bytes (the inflated file for deflated data) and how they are encoded. */
interface ParseContext {
  bytes: Buffer;
  little: boolean;
  implicit: boolean;
}

interface TopContext extends ParseContext {
  /** Where the dataset starts in `bytes`. */
  start: number;
  stopAtTag: number | undefined;
  /** stopAtTag as dicom-parser's untilTag. */
  untilTag: string | undefined;
}

/** The file with its deflated dataset inflated in place: the bytes before `start`, then the inflated rest. */
function inflate(buf: Buffer, start: number): Buffer {
  try {
    return Buffer.concat([buf.subarray(0, start), inflateRawSync(buf.subarray(start))]);
  } catch {
    throw new DicomParseError('deflated dataset could not be inflated (truncated or corrupt)', 'truncated');
  }
}

function newDataSet(ctx: ParseContext): RawDataSet {
  const ds = new dicomParser.DataSet(byteArrayParser(ctx.little), ctx.bytes, {});
  ds.warnings = [];
  return ds;
}

/**
 * Index the dataset with dicom-parser: a standard Part 10 file with dicomParser.parseDicom; anything else
 * (deflated, no preamble, no transfer syntax in the meta information) with dicom-parser's dataset parser,
 * started at the dataset. Returns the elements and the buffer their offsets refer to (inflated if deflated).
 */
function parseDataset(buf: Buffer, plan: DatasetPlan): { elements: Record<string, RawElement>; buffer: Buffer } {
  const bytes = plan.ts === TS.deflatedExplicitLittle ? inflate(buf, plan.dataStart) : buf;
  if (plan.dataStart >= bytes.length) return { elements: {}, buffer: bytes };
  const untilTag = plan.stopAtTag === undefined ? undefined : tagKey(plan.stopAtTag);
  const ctx: TopContext = { bytes, little: plan.little, implicit: plan.implicit, start: plan.dataStart, stopAtTag: plan.stopAtTag, untilTag };
  let raw: RawDataSet;
  if (plan.standard && plan.ts !== TS.deflatedExplicitLittle) {
    try {
      raw = dicomParser.parseDicom(bytes, { untilTag, vrCallback: implicitVr });
      // parseDicom merges the file meta information into the dataset: keep the two apart.
      for (const key in plan.metaElements) delete raw.elements[key];
    } catch (e) {
      // What was read before the failure, then on from there as below.
      raw = failure(e).dataSet ?? newDataSet(ctx);
      raw = continueFrom(raw, rereadNewLongVr(raw, ctx.start, ctx) ?? resumeAfter(raw, ctx.start, bytes.length, ctx), e, ctx);
    }
  } else {
    raw = continueFrom(newDataSet(ctx), ctx.start, undefined, ctx);
  }
  if (plan.stopAtTag !== undefined) stopAt(raw.elements, plan.stopAtTag);
  for (;;) {
    try {
      checkDataSet(raw, bytes.length, ctx, 0);
      break;
    } catch (e) {
      // An OV, SV or UV value dicom-parser read with the wrong length (checkDataSet stops at one): read it again.
      const next = rereadNewLongVr(raw, ctx.start, ctx) ?? rereadNested(raw, ctx);
      if (next === undefined) throw e;
      raw = continueFrom(raw, next, undefined, ctx);
    }
  }
  return { elements: raw.elements, buffer: bytes };
}

/** Parse the top-level dataset on from `from` (undefined: not possible after `error`, which is then reported). */
function continueFrom(ds: RawDataSet, from: number | undefined, error: unknown, ctx: TopContext): RawDataSet {
  if (from === undefined) return recover(error, ds, ctx);
  if (from >= ctx.bytes.length) return ds;
  try {
    parseFrom(ds, from, ctx.bytes.length, ctx, ctx.untilTag);
    return ds;
  } catch (e) {
    return recover(e, ds, ctx);
  }
}

function failure(e: unknown): { exception: unknown; dataSet?: RawDataSet } {
  return typeof e === 'object' && e !== null && 'exception' in e ? (e as { exception: unknown; dataSet?: RawDataSet }) : { exception: e };
}

/**
 * Run dicom-parser's dataset parser over `ds` from `from` to `max` (or up to `untilTag`), going on past what
 * it gets wrong or gives up on: an OV, SV or UV value (rereadNewLongVr) and a sequence it cannot read but
 * readItems can (resumeAfter). Throws what dicom-parser threw otherwise. Returns where parsing ended.
 */
function parseFrom(ds: RawDataSet, from: number, max: number, ctx: ParseContext, untilTag?: string): number {
  let position = from;
  for (;;) {
    const stream = new dicomParser.ByteStream(byteArrayParser(ctx.little), ctx.bytes, position);
    let error: unknown;
    let failed = false;
    try {
      if (ctx.implicit) dicomParser.parseDicomDataSetImplicit(ds, stream, max, { untilTag, vrCallback: implicitVr });
      else dicomParser.parseDicomDataSetExplicit(ds, stream, max, { untilTag });
    } catch (e) {
      error = e;
      failed = true;
    }
    const next = rereadNewLongVr(ds, from, ctx) ?? (failed ? resumeAfter(ds, from, max, ctx) : undefined);
    if (next === undefined) {
      if (failed) throw error;
      return stream.position;
    }
    if (next >= max) return next;
    position = next;
  }
}

const reread = new WeakSet<RawElement>();

function holdsNewLongVr(items: RawElement[], depth = 0): boolean {
  if (depth > MAX_DEPTH) return false;
  for (const item of items) {
    const elements = item.dataSet?.elements ?? {};
    for (const key in elements) {
      const el = elements[key]!;
      if ((el.vr !== undefined && NEW_LONG_VRS.has(el.vr)) || (el.items && holdsNewLongVr(el.items, depth + 1))) return true;
    }
  }
  return false;
}

/**
 * Before reporting an error: the first top-level sequence that dicom-parser read an OV, SV or UV value in (and
 * so probably went astray after) is read again with readItems, what follows it dropped; returns where it ends
 * (parsing goes on from there), or undefined if there is none or it still does not parse.
 */
function rereadNested(ds: RawDataSet, ctx: TopContext): number | undefined {
  if (ctx.implicit) return undefined;
  let found: RawElement | undefined;
  let end = 0;
  for (const key in ds.elements) {
    const el = ds.elements[key]!;
    if (found) {
      delete ds.elements[key];
      continue;
    }
    if (!el.items || reread.has(el) || !holdsNewLongVr(el.items)) continue;
    reread.add(el);
    try {
      const itemCtx = el.vr === 'UN' ? { bytes: ctx.bytes, little: true, implicit: true } : ctx;
      const read = readItems(el.dataOffset, el.hadUndefinedLength ? UNDEFINED : el.length, itemCtx);
      setItems(el, read.items, read.end);
      end = read.end;
      found = el;
    } catch {
      return undefined;
    }
  }
  return found ? end : undefined;
}

/**
 * dicom-parser reads OV, SV and UV values with a 2-byte length (the reserved bytes), so it reads on from the
 * middle of the real length: take the first such element read into `ds` from `from` on, give it its 4-byte
 * length, drop what was read after it, and return where it ends (parsing goes on from there); else undefined.
 */
function rereadNewLongVr(ds: RawDataSet, from: number, ctx: ParseContext): number | undefined {
  if (ctx.implicit) return undefined;
  let found: RawElement | undefined;
  for (const key in ds.elements) {
    const el = ds.elements[key]!;
    if (found) delete ds.elements[key];
    else if (el.vr !== undefined && NEW_LONG_VRS.has(el.vr) && el.dataOffset >= from && !reread.has(el)) found = el;
  }
  if (!found) return undefined;
  reread.add(found);
  const { bytes, little } = ctx;
  // Cut short inside its 4-byte length: an empty value past the end of the data (reported as truncated).
  found.length = found.dataOffset + 4 > bytes.length ? 0 : little ? bytes.readUInt32LE(found.dataOffset) : bytes.readUInt32BE(found.dataOffset);
  found.dataOffset += 4;
  return found.dataOffset + found.length;
}

/**
 * After dicom-parser failed inside the element that follows those it read into `ds`: if that element is a
 * sequence (or may hold one) and its items can be read by readItems, keep it with them in `ds` and return
 * where it ends; else undefined. This gets past what dicom-parser gives up on that the old parser, dcm2niix
 * and dcmtk accept: padding or a stray delimiter after the items of a defined-length sequence, and OV/SV/UV
 * values (see rereadNewLongVr) inside items.
 */
function resumeAfter(ds: RawDataSet, from: number, max: number, ctx: ParseContext): number | undefined {
  const position = endOfElements(ds, from, ctx);
  if (position + 8 > max) return undefined;
  const header = elementHeaderAt(ctx.bytes, position, readTag(ctx.bytes, position, ctx.little), ctx);
  if (!header) return undefined;
  const vr = header.vr ?? implicitVr(header.tag) ?? 'UN';
  if (vr !== 'SQ' && vr !== 'UN') return undefined;
  try {
    const itemCtx = vr === 'UN' ? { bytes: ctx.bytes, little: true, implicit: true } : ctx;
    const { items, end } = readItems(header.dataOffset, header.length, itemCtx, max);
    if (end > max) return undefined;
    setItems(header, items, end);
    ds.elements[header.tag] = header;
    return end;
  } catch {
    return undefined;
  }
}

/** Give a sequence element the items read by readItems (which end at `end`), in dicom-parser's terms. */
function setItems(el: RawElement, items: RawElement[], end: number): void {
  el.items = items;
  // dicom-parser's length of an undefined-length sequence stops before its delimiter.
  if (el.hadUndefinedLength) el.length = end - 8 - el.dataOffset;
}

/**
 * The items of the sequence whose value starts at `offset` (length UNDEFINED: up to its delimiter), read one
 * by one with dicom-parser's item reader and, for each item, parseFrom (so what it recovers from is recovered
 * from at any depth). Anything that is not an item after the items of a defined-length sequence ends it quietly,
 * as before. Throws DicomParseError (or what dicom-parser throws) if the items do not parse or overrun.
 */
function readItems(offset: number, length: number, ctx: ParseContext, max = ctx.bytes.length): { items: RawElement[]; end: number } {
  const { bytes, little } = ctx;
  const undefinedLength = length === UNDEFINED;
  const end = undefinedLength ? max : offset + length;
  if (end > max) throw new DicomParseError('truncated: sequence runs past the end of the data', 'truncated');
  const items: RawElement[] = [];
  for (let p = offset; p + 8 <= end; ) {
    const tag = readTag(bytes, p, little);
    if (undefinedLength && tag === SEQUENCE_DELIMITER) return { items, end: p + 8 };
    if (tag !== ITEM) {
      if (undefinedLength) throw new DicomParseError(`corrupt sequence: expected an item at offset ${p}, found ${tagString(tag)}`, 'corrupt');
      break;
    }
    const item: RawElement = { ...dicomParser.readSequenceItem(new dicomParser.ByteStream(byteArrayParser(little), bytes, p)) };
    const ds = newDataSet(ctx);
    if (item.length === UNDEFINED) {
      item.hadUndefinedLength = true;
      p = parseFrom(ds, item.dataOffset, end, ctx, ITEM_DELIMITER_KEY);
      if (!ds.elements[ITEM_DELIMITER_KEY]) throw new DicomParseError('truncated: sequence item without its delimiter', 'truncated');
      item.length = p - item.dataOffset;
      checkDataSet(ds, end, ctx, 1);
    } else {
      p = item.dataOffset + item.length;
      if (p > end) throw new DicomParseError('truncated: sequence item runs past the end of the data', 'truncated');
      parseFrom(ds, item.dataOffset, p, ctx);
      checkDataSet(ds, p, ctx, 1);
    }
    item.dataSet = ds;
    items.push(item);
  }
  if (undefinedLength) throw new DicomParseError('truncated: sequence without its delimiter', 'truncated');
  return { items, end };
}

/** Where the elements read into `ds` end (`from` if none). */
function endOfElements(ds: RawDataSet, from: number, ctx: ParseContext): number {
  let position = from;
  for (const key in ds.elements) {
    const el = ds.elements[key]!;
    if (el.dataOffset >= from) position = Math.max(position, el.encapsulatedPixelData ? el.dataOffset + el.length : elementEnd(el, ctx.bytes, ctx.little));
  }
  return position;
}

/** Where an element ends: after its value, or after the delimiter of an undefined-length sequence. */
function elementEnd(el: RawElement, bytes: Buffer, little: boolean): number {
  const end = el.dataOffset + el.length;
  return el.hadUndefinedLength && delimiterAt(bytes, end, bytes.length, little, SEQUENCE_DELIMITER) ? end + 8 : end;
}

/**
 * Drop the elements from the first one whose tag is `stopAtTag` or more on. (dicom-parser's untilTag stops
 * after reading the header of that exact tag, or never if the file does not have it.) Returns that element.
 */
function stopAt(elements: Record<string, RawElement>, stopAtTag: number): RawElement | undefined {
  let first: RawElement | undefined;
  for (const key in elements) {
    if (!first && keyTag(key) >= stopAtTag) first = elements[key];
    if (first) delete elements[key];
  }
  return first;
}

function truncatedElement(tag: number, need: number, end: number): DicomParseError {
  return new DicomParseError(`truncated: element ${tagString(tag)}${tagName(tag)} needs ${need} bytes beyond the end of the data (${end})`, 'truncated');
}

function readTag(bytes: Buffer, o: number, little: boolean): number {
  return little ? bytes.readUInt16LE(o) * 65536 + bytes.readUInt16LE(o + 2) : bytes.readUInt16BE(o) * 65536 + bytes.readUInt16BE(o + 2);
}

function delimiterAt(bytes: Buffer, o: number, end: number, little: boolean, tag: number): boolean {
  return o >= 0 && o + 8 <= end && readTag(bytes, o, little) === tag;
}

function describeTag(tag: number): string {
  if (tag === ITEM) return 'a sequence item header';
  if (tag === ITEM_DELIMITER) return 'an item delimiter';
  if (tag === SEQUENCE_DELIMITER) return 'a sequence delimiter';
  return `element ${tagString(tag)}${tagName(tag)}`;
}

/**
 * Check dicom-parser's index against the data: every value inside its container, every undefined length
 * closed by its delimiter. dicom-parser does not check this everywhere (not at all in implicit VR data), and
 * where it does it throws without naming the element. Throws DicomParseError for the innermost problem.
 */
function checkDataSet(ds: RawDataSet, end: number, ctx: ParseContext, depth: number): void {
  if (depth > MAX_DEPTH) throw new DicomParseError('sequences nested too deeply', 'corrupt');
  const { bytes, little } = ctx;
  const elements = ds.elements;
  for (const key in elements) {
    const el = elements[key]!;
    if (el.items === undefined && el.hadUndefinedLength !== true) {
      // The common case: a value of defined length (or an item delimiter, of length 0).
      if (el.dataOffset + el.length > end) throw truncatedElement(keyTag(key), el.dataOffset + el.length - end, end);
      const vr = el.vr;
      if (depth === 0 && (vr === 'OV' || vr === 'SV' || vr === 'UV') && !ctx.implicit && !reread.has(el))
        throw new DicomParseError(`corrupt: ${describeTag(keyTag(key))} (${vr}) was read with a 2-byte length`, 'corrupt');
      continue;
    }
    if (key === ITEM_DELIMITER_KEY) continue;
    if (el.encapsulatedPixelData) {
      if ((el.fragments ?? []).some((f) => f.position + f.length > end))
        throw new DicomParseError('truncated: encapsulated pixel data fragment runs past the end of the file', 'truncated');
      if (el.length === UNDEFINED) throw new DicomParseError('truncated: encapsulated pixel data without its delimiter', 'truncated');
      // dicom-parser takes an unexpected tag among the fragments for the last fragment, with a warning.
      if ((ds.warnings as string[] | undefined)?.some((w) => w.startsWith('unexpected tag'))) throw new DicomParseError('corrupt encapsulated pixel data', 'corrupt');
      continue;
    }
    if (el.items) {
      const seqEnd = el.hadUndefinedLength ? end : el.dataOffset + el.length;
      if (seqEnd > end) throw truncatedElement(keyTag(key), seqEnd - end, end);
      for (const item of el.items) {
        if (item.hadUndefinedLength) {
          checkDataSet(item.dataSet!, seqEnd, ctx, depth + 1);
          if (!item.dataSet!.elements[ITEM_DELIMITER_KEY]) throw new DicomParseError('truncated: sequence item without its delimiter', 'truncated');
        } else {
          const itemEnd = item.dataOffset + item.length;
          if (itemEnd > seqEnd) throw new DicomParseError('truncated: sequence item runs past the end of the data', 'truncated');
          checkDataSet(item.dataSet!, itemEnd, ctx, depth + 1);
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
        throw new DicomParseError(`truncated: ${describeTag(keyTag(key))} of undefined length without its delimiter`, 'truncated');
    }
  }
}

/**
 * dicom-parser failed on the top-level dataset (it throws a string, an Error, or { exception, dataSet }):
 * turn that into a DicomParseError naming the element where it failed. `ds` holds the elements read before.
 * Returns `ds` instead when the failure does not matter: a few bytes of zero padding at the end (tolerated,
 * as before), or a failure after the tag where the caller asked to stop.
 */
function recover(e: unknown, ds: RawDataSet, ctx: TopContext): RawDataSet {
  const { exception } = failure(e);
  if (exception instanceof DicomParseError) throw exception;
  if (exception instanceof RangeError && /call stack/i.test(exception.message)) throw new DicomParseError('sequences nested too deeply', 'corrupt');
  const message = (exception instanceof Error ? exception.message : String(exception)).replace(/^[\w.:]*(dicomParser|ByteArrayParser)[\w.:]*:?\s*/i, '');
  const { bytes } = ctx;
  const next = rereadNested(ds, ctx);
  if (next !== undefined) return continueFrom(ds, next, undefined, ctx);
  const stop = ctx.stopAtTag === undefined ? undefined : stopAt(ds.elements, ctx.stopAtTag);
  if (stop && stop.dataOffset <= bytes.length) return ds;
  // The innermost element that overruns the data, if any, is the best name for the problem.
  checkDataSet(ds, bytes.length, ctx, 0);
  const position = endOfElements(ds, ctx.start, ctx);
  const left = bytes.length - position;
  if (left >= 0 && left < 8) {
    // Trailing padding of fewer than 8 bytes at top level is tolerated if it is zeros.
    if (bytes.subarray(position).every((x) => x === 0)) return ds;
    throw new DicomParseError(`truncated: ${left} stray bytes at the end of the data`, 'truncated');
  }
  const tag = left >= 4 ? readTag(bytes, position, ctx.little) : undefined;
  // Stopping before this element anyway: whatever is wrong with it does not matter.
  if (tag !== undefined && ctx.stopAtTag !== undefined && tag >= ctx.stopAtTag) return ds;
  const where = tag === undefined ? `at offset ${position}` : `inside ${describeTag(tag)}`;
  if (/item tag \(FFFE,E000\) not found|basic offset table not found/i.test(message))
    throw new DicomParseError(`corrupt sequence or pixel data ${where}: ${message}`, 'corrupt');
  if (tag !== undefined) {
    // dicom-parser failed inside this element (e.g. in its sequence items): if its own length runs past the
    // end of the data, say so.
    const header = elementHeaderAt(bytes, position, tag, ctx);
    if (header && header.length !== UNDEFINED && header.dataOffset + header.length > bytes.length)
      throw truncatedElement(tag, header.dataOffset + header.length - bytes.length, bytes.length);
  }
  throw new DicomParseError(`truncated: data ends ${where}`, 'truncated');
}

/** The header (tag, VR, length, value offset) of the element at `position`, read by dicom-parser; undefined if cut short. */
function elementHeaderAt(bytes: Buffer, position: number, tag: number, ctx: ParseContext): RawElement | undefined {
  try {
    const stream = new dicomParser.ByteStream(byteArrayParser(ctx.little), bytes, position);
    // Reading "until" the element's own tag stops after its header.
    return ctx.implicit ? dicomParser.readDicomElementImplicit(stream, tagKey(tag)) : dicomParser.readDicomElementExplicit(stream, [], tagKey(tag));
  } catch {
    return undefined;
  }
}

function looksLikeSequence(buf: Buffer, offset: number, length: number, little: boolean): boolean {
  if (length < 8 || length === UNDEFINED || offset + 8 > buf.length) return false;
  if (readTag(buf, offset, little) !== ITEM) return false;
  const itemLen = little ? buf.readUInt32LE(offset + 4) : buf.readUInt32BE(offset + 4);
  return itemLen === UNDEFINED || offset + 8 + itemLen <= offset + length;
}
