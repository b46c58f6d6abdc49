/** NIfTI-1 reading/writing: round trips, nibabel agreement both ways, datatypes, byte order, atomic writes. */
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  affineToQform,
  encodeNiftiHeader,
  qformToAffine,
  readNifti,
  writeNifti,
  type Affine,
} from '../../../src/main/imaging/nifti.js';
import { ImagingInputError } from '../../../src/main/imaging/types.js';
import { describeWithDipy, python } from '../tensor/dipy.js';
import { SHARED_DATA } from '../../support/shared-data.js';

const GE = path.join(SHARED_DATA, 'dwi-ge/Ref/Ax_DWI_TENSOR_R2_1.nii');
// The GE series' oblique sform (rotation × voxel size + offset).
const OBLIQUE: Affine = [
  [-0.737562597, 0.698100865, 0.0295366719, 0.535903931],
  [0.692318261, 0.733182728, -0.356700748, -186.351257],
  [0.0902229324, 0.0808800906, 2.97857285, -41.2156677],
  [0, 0, 0, 1],
];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nw-nifti-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function ramp(n: number, f: (i: number) => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = f(i);
  return a;
}

function f32(file: string): Float32Array {
  const b = readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

describe('writeNifti → readNifti', () => {
  for (const name of ['map.nii.gz', 'map.nii']) {
    it(`round-trips a float32 4-D ${name} exactly`, async () => {
      const dims = [5, 4, 3, 3];
      const data = ramp(5 * 4 * 3 * 3, (i) => Math.sin(i) * 1e3 + i / 7);
      const file = path.join(dir, name);
      await writeNifti(file, { dims, pixdim: [0.9, 0.9, 3], affine: OBLIQUE, data, description: 'round trip' });
      const img = await readNifti(file);
      expect(img.dims).toEqual(dims);
      expect(img.datatype).toBe('float32');
      expect(Buffer.from(img.data.buffer).equals(Buffer.from(data.buffer))).toBe(true);
      for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) expect(img.affine[i]![j]).toBe(Math.fround(OBLIQUE[i]![j]!));
      expect(img.header.description).toBe('round trip');
      expect(img.header.sformCode).toBe(1);
      expect(img.header.qformCode).toBe(1);
      // The qform says the same as the sform.
      const q = qformToAffine(img.header.quatern, img.header.qoffset, img.header.pixdim);
      for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) expect(q[i]![j]!).toBeCloseTo(OBLIQUE[i]![j]!, 4);
      // pixdim[1..3] are the affine's column lengths (what the qform needs), here 1.0156, 1.0156, 3.
      for (let j = 0; j < 3; j++)
        expect(img.pixdim[j]!).toBeCloseTo(Math.hypot(OBLIQUE[0]![j]!, OBLIQUE[1]![j]!, OBLIQUE[2]![j]!), 5);
    });
  }

  it('round-trips a uint8 3-D mask and reads it as float', async () => {
    const data = new Uint8Array(6 * 5 * 4).map((_, i) => (i % 3 === 0 ? 1 : 0));
    const file = path.join(dir, 'mask.nii.gz');
    await writeNifti(file, { dims: [6, 5, 4], pixdim: [2, 2, 2], affine: [[2, 0, 0, 1], [0, 2, 0, 2], [0, 0, 2, 3], [0, 0, 0, 1]], data });
    const img = await readNifti(file);
    expect(img.datatype).toBe('uint8');
    expect(Array.from(img.data)).toEqual(Array.from(data));
  });

  it('turns a left-handed affine into qfac = −1 and back', () => {
    const lh: Affine = [[-2, 0, 0, 10], [0, 2, 0, -5], [0, 0, 3, 1], [0, 0, 0, 1]];
    const q = affineToQform(lh);
    const back = qformToAffine(q.quatern, q.qoffset, [q.qfac, ...q.voxelSize]);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) expect(back[i]![j]!).toBeCloseTo(lh[i]![j]!, 10);
  });

  it('writes atomically: no temporary file is left, a failed write leaves nothing, a rewrite replaces', async () => {
    const sub = await mkdtemp(path.join(dir, 'atomic-'));
    const file = path.join(sub, 'fa.nii.gz');
    const vol = { dims: [4, 4, 4], pixdim: [1, 1, 1], affine: OBLIQUE, data: ramp(64, (i) => i) };
    await writeNifti(file, vol);
    await writeNifti(file, { ...vol, data: ramp(64, (i) => -i) });
    expect(await readdir(sub)).toEqual(['fa.nii.gz']);
    expect((await readNifti(file)).data[5]).toBe(-5);
    await expect(writeNifti(path.join(sub, 'missing', 'x.nii.gz'), vol)).rejects.toThrow();
    expect(() => encodeNiftiHeader({ ...vol, data: ramp(63, (i) => i) })).toThrow(/63 values/);
    await expect(writeNifti(path.join(sub, 'short.nii.gz'), { ...vol, data: ramp(63, (i) => i) })).rejects.toThrow();
    expect(await readdir(sub)).toEqual(['fa.nii.gz']);
  });
});

describe('readNifti errors', () => {
  it('names the file for a truncated, foreign or NIfTI-2 file', async () => {
    const good = path.join(dir, 'good.nii');
    await writeNifti(good, { dims: [4, 4, 4], pixdim: [1, 1, 1], affine: OBLIQUE, data: ramp(64, (i) => i) });
    const bytes = readFileSync(good);
    const cut = path.join(dir, 'cut.nii.gz');
    await writeFile(cut, gzipSync(bytes.subarray(0, bytes.length - 10)));
    const e1 = await readNifti(cut).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(ImagingInputError);
    expect((e1 as ImagingInputError).file).toBe(cut);
    expect((e1 as Error).message).toMatch(/truncated/);
    const junk = path.join(dir, 'junk.nii');
    await writeFile(junk, Buffer.alloc(400, 7));
    await expect(readNifti(junk)).rejects.toThrow(/not a NIfTI-1 file/);
    const n2 = Buffer.alloc(600);
    n2.writeInt32LE(540, 0);
    const n2file = path.join(dir, 'n2.nii');
    await writeFile(n2file, n2);
    await expect(readNifti(n2file)).rejects.toThrow(/NIfTI-2 is not supported/);
    await expect(readNifti(path.join(dir, 'nope.nii'))).rejects.toThrow(ImagingInputError);
  });
});

describeWithDipy('agreement with nibabel', () => {
  it('nibabel reads what writeNifti writes (data, affine, qform, 4-D vector map)', async () => {
    const data = ramp(6 * 5 * 4 * 3, (i) => (i % 17) / 16);
    const file = path.join(dir, 'v1.nii.gz');
    await writeNifti(file, { dims: [6, 5, 4, 3], pixdim: [1, 1, 3], affine: OBLIQUE, data });
    const mfile = path.join(dir, 'm.nii.gz');
    const mask = new Uint8Array(120).map((_, i) => i & 1);
    await writeNifti(mfile, { dims: [6, 5, 4], pixdim: [1, 1, 3], affine: OBLIQUE, data: mask });
    const out = JSON.parse(
      python(
        `import sys, json, numpy as np, nibabel as nib
im = nib.load(sys.argv[1]); d = im.get_fdata(dtype=np.float32)
d.ravel(order='F').tofile(sys.argv[3])
m = nib.load(sys.argv[2])
print(json.dumps({'shape': list(d.shape), 'dtype': str(im.get_data_dtype()), 'affine': im.affine.tolist(),
  'qform': im.get_qform().tolist(), 'codes': [int(im.header['sform_code']), int(im.header['qform_code'])],
  'mshape': list(m.shape), 'mdtype': str(m.get_data_dtype()), 'msum': int(np.asarray(m.dataobj).sum())}))`,
        [file, mfile, path.join(dir, 'nib.f32')],
      ),
    ) as { shape: number[]; dtype: string; affine: number[][]; qform: number[][]; codes: number[]; mshape: number[]; mdtype: string; msum: number };
    expect(out.shape).toEqual([6, 5, 4, 3]);
    expect(out.dtype).toBe('float32');
    expect(out.codes).toEqual([1, 1]);
    expect(Buffer.from(f32(path.join(dir, 'nib.f32')).buffer).equals(Buffer.from(data.buffer))).toBe(true);
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 4; j++) {
        expect(out.affine[i]![j]!).toBeCloseTo(OBLIQUE[i]![j]!, 5);
        expect(out.qform[i]![j]!).toBeCloseTo(OBLIQUE[i]![j]!, 4);
      }
    expect(out.mshape).toEqual([6, 5, 4]);
    expect(out.mdtype).toBe('uint8');
    expect(out.msum).toBe(60);
  });

  it('reads every supported datatype, both byte orders, scaling and qform-only files as nibabel does', async () => {
    const cases = python(
      `import sys, json, numpy as np, nibabel as nib
out = sys.argv[1]; res = []
rng = np.random.default_rng(5)
aff = np.array([[-1.2, 0.1, 0, 30], [0.1, 1.2, 0.05, -20], [0, -0.05, 2.5, 10], [0, 0, 0, 1]])
for name, dtype, endian, slope, inter, qonly in [
    ('u8', np.uint8, '<', None, None, False), ('i8', np.int8, '<', None, None, False),
    ('i16be_scaled', np.int16, '>', 2.5, 10.0, False), ('u16', np.uint16, '<', None, None, False),
    ('i32', np.int32, '<', 0.5, -3.0, False), ('u32', np.uint32, '>', None, None, False),
    ('f32be', np.float32, '>', None, None, False), ('f64', np.float64, '<', None, None, True)]:
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    lo, hi = (max(info.min, -30000), min(info.max, 60000)) if info else (-1e4, 1e4)
    arr = rng.uniform(lo, hi, (7, 6, 5, 2)).astype(dtype)
    hdr = nib.Nifti1Header(endianness=endian)
    hdr.set_data_dtype(dtype)
    img = nib.Nifti1Image(arr, aff, hdr)
    img.set_data_dtype(dtype)
    if qonly:  # a rigid oblique affine (a sheared one has no exact qform)
        c, s_ = np.cos(0.5), np.sin(0.5)
        rigid = np.array([[c * 1.1, -s_ * 1.1, 0, 12], [s_ * 1.1, c * 1.1, 0, -7], [0, 0, 2.2, 3], [0, 0, 0, 1]])
        img.set_sform(None, code=0); img.set_qform(rigid, code=1)
    raw = f'{out}/{name}.nii'
    nib.save(img, raw)
    b = bytearray(open(raw, 'rb').read())
    if slope is not None:  # nibabel rescales on save; write the scaling fields directly
        b[112:120] = np.array([slope, inter], dtype=endian + 'f4').tobytes()
    f = raw + ('.gz' if name.startswith('i16') else '')
    if f.endswith('.gz'):
        import gzip; open(f, 'wb').write(gzip.compress(bytes(b)))
    else:
        open(f, 'wb').write(bytes(b))
    back = nib.load(f)
    back.get_fdata().astype(np.float32).ravel(order='F').tofile(f + '.f32')
    res.append({'file': f, 'affine': back.affine.tolist(), 'dtype': np.dtype(dtype).name})
print(json.dumps(res))`,
      [dir],
    );
    const list = JSON.parse(cases) as { file: string; affine: number[][]; dtype: string }[];
    expect(list.length).toBe(8);
    for (const c of list) {
      const img = await readNifti(c.file);
      expect(img.datatype, c.file).toBe(c.dtype);
      expect(img.dims).toEqual([7, 6, 5, 2]);
      const ref = f32(`${c.file}.f32`);
      let maxd = 0;
      for (let i = 0; i < ref.length; i++) maxd = Math.max(maxd, Math.abs(img.data[i]! - ref[i]!) / Math.max(1, Math.abs(ref[i]!)));
      expect(maxd, c.file).toBeLessThan(1e-6);
      for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) expect(img.affine[i]![j]!, c.file).toBeCloseTo(c.affine[i]![j]!, 5);
    }
  });

  it('reads the real GE series exactly as nibabel', async () => {
    const img = await readNifti(GE);
    const out = JSON.parse(
      python(
        `import sys, json, numpy as np, nibabel as nib
im = nib.load(sys.argv[1]); im.get_fdata().astype(np.float32).ravel(order='F').tofile(sys.argv[2])
print(json.dumps({'shape': list(im.shape), 'affine': im.affine.tolist()}))`,
        [GE, path.join(dir, 'ge.f32')],
      ),
    ) as { shape: number[]; affine: number[][] };
    expect(img.dims).toEqual(out.shape);
    expect(img.datatype).toBe('int16');
    expect(Buffer.from(img.data.buffer).equals(Buffer.from(f32(path.join(dir, 'ge.f32')).buffer))).toBe(true);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) expect(img.affine[i]![j]!).toBeCloseTo(out.affine[i]![j]!, 6);
  });
});
