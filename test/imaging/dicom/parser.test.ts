/** The low-level parser on hand-built buffers: encodings the fixture writers do not produce. */
import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parseCsaHeader } from '../../../src/main/imaging/dicom/csa.js';
import { DicomParseError, parseDicom } from '../../../src/main/imaging/dicom/parser.js';
import { TAG } from '../../../src/main/imaging/dicom/tags.js';
import { explicit, fd, implicit, item, SEQ_END, text, uid, us } from './bytes.js';

function part10(transferSyntax: string, body: Buffer): Buffer {
  const metaBody = Buffer.concat([explicit(0x0002, 0x0001, 'OB', Buffer.from([0, 1])), explicit(0x0002, 0x0010, 'UI', uid(transferSyntax))]);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(metaBody.length, 0);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), explicit(0x0002, 0x0000, 'UL', groupLength), metaBody, body]);
}

describe('DICOM parser', () => {
  it('reads an implicit-VR dataset without preamble, decoding numbers through its small dictionary', () => {
    const buf = Buffer.concat([
      implicit(0x0008, 0x0016, uid('1.2.840.10008.5.1.4.1.1.4')),
      implicit(0x0008, 0x0060, text('MR')),
      implicit(0x0018, 0x9087, fd(1500)),
      implicit(0x0028, 0x0010, us(2)),
      implicit(0x0028, 0x0011, us(3)),
      implicit(0x7fe0, 0x0010, Buffer.alloc(12)),
    ]);
    const parsed = parseDicom(buf);
    expect(parsed.hasPreamble).toBe(false);
    expect(parsed.transferSyntaxUid).toBe('1.2.840.10008.1.2');
    expect(parsed.dataset.string(TAG.Modality)).toBe('MR');
    expect(parsed.dataset.number(TAG.Rows)).toBe(2);
    expect(parsed.dataset.number(TAG.Columns)).toBe(3);
    expect(parsed.dataset.number(TAG.DiffusionBValue)).toBe(1500);
  });

  it('calls junk without a DICM prefix "not DICOM", even if it starts like a dataset', () => {
    const junk = Buffer.concat([Buffer.from([0x08, 0x00, 0x16, 0x00, 0xff, 0xff, 0xff, 0x7f]), Buffer.alloc(100, 7)]);
    expect(() => parseDicom(junk)).toThrow(DicomParseError);
    try {
      parseDicom(junk);
    } catch (e) {
      expect((e as DicomParseError).kind).toBe('not-dicom');
    }
    expect(() => parseDicom(Buffer.from('hello, world\n'))).toThrow(/not a DICOM file/);
  });

  it('inflates a deflated dataset and walks undefined-length sequences and items', () => {
    const macro = Buffer.concat([explicit(0x0018, 0x9087, 'FD', fd(1000)), explicit(0x0018, 0x9089, 'FD', fd(0.6, 0, 0.8))]);
    const body = Buffer.concat([
      explicit(0x0008, 0x0060, 'CS', text('MR')),
      explicit(0x0018, 0x9117, 'SQ', Buffer.concat([item(macro, true), item(explicit(0x0018, 0x9087, 'FD', fd(0)), false), SEQ_END]), true),
      explicit(0x0028, 0x0010, 'US', us(4)),
    ]);
    const parsed = parseDicom(part10('1.2.840.10008.1.2.1.99', deflateRawSync(body)));
    const seq = parsed.dataset.sequence(TAG.MRDiffusionSequence);
    expect(seq).toHaveLength(2);
    expect(seq[0]!.number(TAG.DiffusionBValue)).toBe(1000);
    expect(seq[0]!.numbers(TAG.DiffusionGradientOrientation)).toEqual([0.6, 0, 0.8]);
    expect(seq[1]!.number(TAG.DiffusionBValue)).toBe(0);
    expect(parsed.dataset.number(TAG.Rows)).toBe(4);
  });

  it('reports a Part 10 file cut short as truncated', () => {
    const full = part10('1.2.840.10008.1.2.1', Buffer.concat([explicit(0x0008, 0x0060, 'CS', text('MR')), explicit(0x7fe0, 0x0010, 'OW', Buffer.alloc(64))]));
    try {
      parseDicom(full.subarray(0, full.length - 10));
      throw new Error('no error');
    } catch (e) {
      expect(e).toBeInstanceOf(DicomParseError);
      expect((e as DicomParseError).kind).toBe('truncated');
      expect((e as Error).message).toMatch(/PixelData/);
    }
  });

  it('reads CSA1 and rejects garbage CSA data', () => {
    // CSA1: n_tags, unused, then tags; item length = x0 - n_items of the first tag.
    const name = Buffer.alloc(64);
    name.write('B_value');
    const head = Buffer.alloc(20);
    head.writeInt32LE(1, 0); // vm
    head.write('IS', 4);
    head.writeInt32LE(6, 8); // syngodt
    head.writeInt32LE(1, 12); // n items
    head.writeInt32LE(77, 16);
    const value = Buffer.from('1000\0\0\0\0');
    const itemHead = Buffer.alloc(16);
    itemHead.writeInt32LE(value.length + 1, 0);
    itemHead.writeInt32LE(value.length, 4);
    const csa1 = Buffer.concat([Buffer.from([1, 0, 0, 0, 77, 0, 0, 0]), name, head, itemHead, value]);
    expect(parseCsaHeader(csa1)?.get('B_value')).toEqual(['1000']);
    expect(parseCsaHeader(Buffer.alloc(40, 0xff))).toBeNull();
  });
});
