/**
 * The parser on dicom-parser: what it adds where the library alone would fail or misread, on hand-built buffers.
 * (Deflated files with a non-zero preamble, private and UN sequences, truncation in implicit VR data, padding
 * after the items of a defined-length sequence, OV/SV/UV values, raw datasets, stopping before a tag.)
 */
import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DicomParseError, parseDicom, type ParsedDicom } from '../../../src/main/imaging/dicom/parser.js';
import { TAG } from '../../../src/main/imaging/dicom/tags.js';
import { explicit, fd, implicit, item, SEQ_END, text, uid, us } from './bytes.js';

const IMPLICIT = '1.2.840.10008.1.2';
const EXPLICIT = '1.2.840.10008.1.2.1';
const DEFLATED = '1.2.840.10008.1.2.1.99';

function meta(transferSyntax: string | null): Buffer {
  const elements = [explicit(0x0002, 0x0001, 'OB', Buffer.from([0, 1]))];
  if (transferSyntax !== null) elements.push(explicit(0x0002, 0x0010, 'UI', uid(transferSyntax)));
  const body = Buffer.concat(elements);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(body.length, 0);
  return Buffer.concat([explicit(0x0002, 0x0000, 'UL', groupLength), body]);
}

function part10(transferSyntax: string | null, body: Buffer, preamble = Buffer.alloc(128)): Buffer {
  return Buffer.concat([preamble, Buffer.from('DICM'), meta(transferSyntax), body]);
}

function parseError(buf: Buffer): DicomParseError {
  try {
    parseDicom(buf);
  } catch (e) {
    expect(e).toBeInstanceOf(DicomParseError);
    return e as DicomParseError;
  }
  throw new Error('expected a DicomParseError');
}

const diffusion = (b: number): Buffer => item(Buffer.concat([explicit(0x0018, 0x9087, 'FD', fd(b)), explicit(0x0018, 0x9089, 'FD', fd(0, 0.6, 0.8))]));
const bValues = (p: ParsedDicom): (number | undefined)[] => p.dataset.sequence(TAG.MRDiffusionSequence).map((i) => i.number(TAG.DiffusionBValue));

describe('DICOM parser on dicom-parser', () => {
  it('inflates a deflated dataset after a preamble that is not zeros', () => {
    const body = Buffer.concat([explicit(0x0008, 0x0060, 'CS', text('MR')), explicit(0x0018, 0x9117, 'SQ', diffusion(700)), explicit(0x0028, 0x0010, 'US', us(4))]);
    const preamble = Buffer.alloc(128, 0x41);
    preamble.write('II*\0', 0, 'latin1');
    const parsed = parseDicom(part10(DEFLATED, deflateRawSync(body), preamble));
    expect(parsed.transferSyntaxUid).toBe(DEFLATED);
    expect(parsed.dataset.string(TAG.Modality)).toBe('MR');
    expect(bValues(parsed)).toEqual([700]);
    expect(parsed.dataset.number(TAG.Rows)).toBe(4);
    // Offsets refer to the inflated file (what index.ts reads pixels from for deflated files).
    expect(parsed.dataset.buffer.length).toBe(132 + meta(DEFLATED).length + body.length);
    expect([...parsed.dataset.elements.keys()]).toEqual([TAG.Modality, TAG.MRDiffusionSequence, TAG.Rows]);
  });

  it('keeps the items of private sequences in implicit VR data, of defined and undefined length', () => {
    const undefinedSequence = Buffer.concat([item(implicit(0x0028, 0x0010, us(7)), true), SEQ_END]);
    const body = Buffer.concat([
      implicit(0x0008, 0x0060, text('MR')),
      implicit(0x2005, 0x0010, text('Philips MR Imaging DD 001')),
      implicit(0x2005, 0x140f, item(implicit(0x0018, 0x9087, fd(1200)))),
      implicit(0x2007, 0x1001, undefinedSequence, true),
      implicit(0x0028, 0x0011, us(5)),
    ]);
    const ds = parseDicom(part10(IMPLICIT, body)).dataset;
    expect(ds.item(TAG.PhilipsPerFrameSequence)?.number(TAG.DiffusionBValue)).toBe(1200);
    expect(ds.item(0x20071001)?.number(TAG.Rows)).toBe(7);
    expect(ds.element(0x20071001)?.length).toBe(undefinedSequence.length); // the bytes spanned, delimiter included
    expect(ds.number(TAG.Columns)).toBe(5);
  });

  it('reads sequences stored as UN (defined and undefined length) as implicit VR little endian', () => {
    const inner = item(Buffer.concat([implicit(0x0018, 0x9087, fd(2000)), implicit(0x0018, 0x9089, fd(1, 0, 0))]));
    const body = Buffer.concat([
      explicit(0x0008, 0x0060, 'CS', text('MR')),
      explicit(0x0018, 0x9117, 'UN', inner),
      explicit(0x2005, 0x140f, 'UN', Buffer.concat([item(implicit(0x0028, 0x0010, us(9)), true), SEQ_END]), true),
      explicit(0x0028, 0x0011, 'US', us(3)),
    ]);
    const ds = parseDicom(part10(EXPLICIT, body)).dataset;
    expect(ds.item(TAG.MRDiffusionSequence)?.numbers(TAG.DiffusionGradientOrientation)).toEqual([1, 0, 0]);
    expect(ds.item(TAG.MRDiffusionSequence)?.number(TAG.DiffusionBValue)).toBe(2000);
    expect(ds.item(TAG.PhilipsPerFrameSequence)?.number(TAG.Rows)).toBe(9);
    expect(ds.number(TAG.Columns)).toBe(3);
  });

  it('reports truncation in implicit VR data, naming the element (dicom-parser does not notice it there)', () => {
    const full = part10(IMPLICIT, Buffer.concat([implicit(0x0008, 0x0060, text('MR')), implicit(0x7fe0, 0x0010, Buffer.alloc(64))]));
    const e = parseError(full.subarray(0, full.length - 10));
    expect(e.kind).toBe('truncated');
    expect(e.message).toMatch(/^truncated: element \(7fe0,0010\) PixelData needs 10 bytes/);
    const nested = part10(IMPLICIT, Buffer.concat([implicit(0x0008, 0x0060, text('MR')), implicit(0x0018, 0x9117, Buffer.concat([item(implicit(0x0018, 0x9087, fd(5)), true), SEQ_END]), true)]));
    for (const cut of [4, 9, 14, 20]) expect(parseError(nested.subarray(0, nested.length - cut)).kind).toBe('truncated');
  });

  it('ignores padding or a stray delimiter after the items of a defined-length sequence, at any depth', () => {
    const rows = explicit(0x0028, 0x0010, 'US', us(4));
    const delimiter = part10(EXPLICIT, Buffer.concat([explicit(0x0018, 0x9117, 'SQ', Buffer.concat([diffusion(1000), SEQ_END])), rows]));
    const padding = part10(EXPLICIT, Buffer.concat([explicit(0x0018, 0x9117, 'SQ', Buffer.concat([diffusion(1000), Buffer.alloc(8)])), rows]));
    for (const buf of [delimiter, padding]) {
      const parsed = parseDicom(buf);
      expect(bValues(parsed)).toEqual([1000]);
      expect(parsed.dataset.number(TAG.Rows)).toBe(4);
    }
    const frame = item(explicit(0x0018, 0x9117, 'SQ', Buffer.concat([diffusion(500), SEQ_END])));
    const nested = parseDicom(part10(EXPLICIT, Buffer.concat([explicit(0x5200, 0x9230, 'SQ', Buffer.concat([frame, frame])), rows]))).dataset;
    expect(nested.sequence(TAG.PerFrameFunctionalGroupsSequence).map((f) => f.item(TAG.MRDiffusionSequence)?.number(TAG.DiffusionBValue))).toEqual([500, 500]);
    expect(nested.number(TAG.Rows)).toBe(4);
  });

  it('reads OV, SV and UV values with their 4-byte length, at the top level and in items', () => {
    const body = Buffer.concat([
      explicit(0x0008, 0x0060, 'CS', text('MR')),
      explicit(0x0018, 0x9117, 'SQ', Buffer.concat([item(Buffer.concat([explicit(0x0019, 0x1003, 'UV', Buffer.alloc(40, 3)), explicit(0x0018, 0x9087, 'FD', fd(900))]), true), SEQ_END]), true),
      explicit(0x0019, 0x1001, 'SV', Buffer.alloc(16, 1)),
      explicit(0x0019, 0x1002, 'OV', Buffer.alloc(24, 2)),
      explicit(0x0028, 0x0010, 'US', us(6)),
    ]);
    const parsed = parseDicom(part10(EXPLICIT, body));
    expect(bValues(parsed)).toEqual([900]);
    expect(parsed.dataset.element(0x00191001)).toMatchObject({ vr: 'SV', length: 16 });
    expect(parsed.dataset.element(0x00191002)).toMatchObject({ vr: 'OV', length: 24 });
    expect(parsed.dataset.number(TAG.Rows)).toBe(6);
  });

  it('reads raw datasets: meta information without preamble, and no transfer syntax in the meta information', () => {
    const body = Buffer.concat([implicit(0x0008, 0x0016, uid('1.2.840.10008.5.1.4.1.1.4')), implicit(0x0008, 0x0060, text('MR')), implicit(0x0028, 0x0010, us(2))]);
    const noPreamble = parseDicom(Buffer.concat([meta(IMPLICIT), body]));
    expect(noPreamble.hasPreamble).toBe(false);
    expect(noPreamble.meta.string(TAG.TransferSyntaxUID)).toBe(IMPLICIT);
    expect(noPreamble.dataset.number(TAG.Rows)).toBe(2);
    const noTs = parseDicom(part10(null, body));
    expect(noTs.transferSyntaxUid).toBe(IMPLICIT);
    expect(noTs.dataset.string(TAG.Modality)).toBe('MR');
  });

  it('stops before stopAtTag, even if the data after it is cut short', () => {
    const full = part10(EXPLICIT, Buffer.concat([explicit(0x0008, 0x0060, 'CS', text('MR')), explicit(0x0028, 0x0010, 'US', us(4)), explicit(0x7fe0, 0x0010, 'OW', Buffer.alloc(64))]));
    for (const buf of [full, full.subarray(0, full.length - 30)]) {
      const ds = parseDicom(buf, { stopAtTag: TAG.PixelData }).dataset;
      expect(ds.has(TAG.PixelData)).toBe(false);
      expect(ds.number(TAG.Rows)).toBe(4);
    }
    expect(parseError(full.subarray(0, full.length - 30)).message).toMatch(/PixelData/);
  });
});
