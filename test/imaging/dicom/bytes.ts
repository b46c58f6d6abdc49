/** Hand-built DICOM bytes for the parser tests: elements, items and values in little endian. */

/** VRs with a 4-byte length in explicit VR (and 2 reserved bytes). */
export const LONG = new Set(['OB', 'OW', 'OF', 'SQ', 'UN', 'UT', 'OV', 'SV', 'UV']);

export function tagBytes(group: number, element: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16LE(group, 0);
  b.writeUInt16LE(element, 2);
  return b;
}

/** Explicit VR little endian element; length 0xffffffff for undefined length. */
export function explicit(group: number, element: number, vr: string, value: Buffer, undefinedLength = false): Buffer {
  const head = Buffer.alloc(LONG.has(vr) ? 8 : 4);
  head.write(vr, 0, 'latin1');
  if (LONG.has(vr)) head.writeUInt32LE(undefinedLength ? 0xffffffff : value.length, 4);
  else head.writeUInt16LE(value.length, 2);
  return Buffer.concat([tagBytes(group, element), head, value]);
}

/** Implicit VR little endian element. */
export function implicit(group: number, element: number, value: Buffer, undefinedLength = false): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(undefinedLength ? 0xffffffff : value.length, 0);
  return Buffer.concat([tagBytes(group, element), len, value]);
}

/** Text padded with a space to even length. */
export const text = (s: string): Buffer => Buffer.from(s.length % 2 ? `${s} ` : s, 'latin1');
/** A UID padded with NUL to even length. */
export const uid = (s: string): Buffer => (s.length % 2 ? Buffer.concat([Buffer.from(s, 'latin1'), Buffer.from([0])]) : Buffer.from(s, 'latin1'));
export const us = (v: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v, 0);
  return b;
};
export const fd = (...v: number[]): Buffer => {
  const b = Buffer.alloc(8 * v.length);
  v.forEach((x, i) => b.writeDoubleLE(x, 8 * i));
  return b;
};
/** A sequence item; with undefined length it ends with an item delimiter. */
export const item = (content: Buffer, undefinedLength = false): Buffer => {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(0xfffe, 0);
  head.writeUInt16LE(0xe000, 2);
  head.writeUInt32LE(undefinedLength ? 0xffffffff : content.length, 4);
  const parts = [head, content];
  if (undefinedLength) parts.push(Buffer.from([0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0]));
  return Buffer.concat(parts);
};
/** Sequence delimitation item. */
export const SEQ_END = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
