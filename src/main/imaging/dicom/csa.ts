/**
 * Siemens CSA header (private tag (0029,1010) "CSA Image Header Info"), formats CSA1 and CSA2 ("SV10").
 * Only the text of each item is kept; callers parse numbers from it.
 */

export type CsaHeader = Map<string, string[]>;

export function parseCsaHeader(buf: Buffer): CsaHeader | null {
  const out: CsaHeader = new Map();
  if (buf.length < 16) return null;
  let o = 0;
  let csa2 = false;
  if (buf.toString('latin1', 0, 4) === 'SV10') {
    csa2 = true;
    o = 8;
  }
  const nTags = buf.readUInt32LE(o);
  if (nTags < 1 || nTags > 1000) return null;
  o += 8; // n_tags, unused (77)
  let firstTagItems = -1;
  for (let t = 0; t < nTags; t++) {
    if (o + 84 > buf.length) return out.size > 0 ? out : null;
    const name = buf.toString('latin1', o, o + 64).split('\0')[0] ?? '';
    const vm = buf.readInt32LE(o + 64);
    const nItems = buf.readInt32LE(o + 76);
    o += 84;
    if (firstTagItems < 0) firstTagItems = nItems;
    const values: string[] = [];
    const nValues = vm === 0 ? nItems : vm;
    for (let i = 0; i < nItems; i++) {
      if (o + 16 > buf.length) return out;
      const x0 = buf.readInt32LE(o);
      const x1 = buf.readInt32LE(o + 4);
      o += 16;
      let itemLen: number;
      if (csa2) itemLen = x1;
      else {
        itemLen = x0 - firstTagItems;
        if (itemLen < 0 || o + itemLen > buf.length) break;
      }
      if (itemLen < 0 || o + itemLen > buf.length) return out;
      if (i < nValues && itemLen > 0) values.push(buf.toString('latin1', o, o + itemLen).split('\0')[0]!.trim());
      o += itemLen + ((4 - (itemLen % 4)) % 4);
    }
    out.set(name, values.filter((v) => v.length > 0));
  }
  return out;
}

export function csaNumbers(csa: CsaHeader | null, name: string): number[] {
  const v = csa?.get(name);
  if (!v) return [];
  return v.map((s) => Number.parseFloat(s)).filter((x) => Number.isFinite(x));
}
