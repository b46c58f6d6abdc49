/** FSL .bval/.bvec parsing and readNiftiDwi: layouts, normalisation, and errors that name the file. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFslGradients, readFslGradients, readNiftiDwi } from '../../../src/main/imaging/fsl-gradients.js';
import { writeNifti } from '../../../src/main/imaging/nifti.js';
import { ImagingInputError } from '../../../src/main/imaging/types.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nw-grad-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function caught(p: Promise<unknown>): Promise<ImagingInputError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ImagingInputError);
  return e as ImagingInputError;
}

describe('parseFslGradients', () => {
  it('reads three rows, normalises, keeps b0 vectors zero', () => {
    const g = parseFslGradients('0 1000 1000\n', '0 0.6 0\n0 0.8 0\n0 0 2\n', 3);
    expect(g.bvals).toEqual([0, 1000, 1000]);
    expect(g.bvecs).toEqual([[0, 0, 0], [0.6, 0.8, 0], [0, 0, 1]]);
  });

  it('reads the transposed layout (one row per volume) and NaN b0 rows as DIPY small_64D has', () => {
    const g = parseFslGradients('0\n1000\n', 'nan nan nan\n1 0 0\n', 2);
    expect(g.bvecs).toEqual([[0, 0, 0], [1, 0, 0]]);
  });

  it('accepts tabs, CRLF, exponents and trailing blank lines', () => {
    const g = parseFslGradients('0\t1e3\t1.0E+03\r\n\r\n', '0 1 0\r\n0 0 1\r\n0 0 0\r\n\n', 3);
    expect(g.bvals).toEqual([0, 1000, 1000]);
    expect(g.bvecs[1]).toEqual([1, 0, 0]);
  });

  it('rejects counts that do not match the volumes, naming the file', () => {
    expect(() => parseFslGradients('0 1000', '0 1\n0 0\n0 0', 3, '/d/s.bval', '/d/s.bvec')).toThrow(
      '/d/s.bval: has 2 b-values but the image has 3 volumes',
    );
    try {
      parseFslGradients('0 1000 1000', '0 1 0\n0 0 1\n0 0', 3, '/d/s.bval', '/d/s.bvec');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ImagingInputError);
      expect((e as ImagingInputError).file).toBe('/d/s.bvec');
      expect((e as Error).message).toMatch(/\/d\/s\.bvec: expected 3 rows of 3 numbers/);
    }
  });

  it('rejects bad numbers, NaN/zero directions on b>0 volumes and negative b-values', () => {
    expect(() => parseFslGradients('0 abc', '0 1\n0 0\n0 0', 2, 'a.bval', 'a.bvec')).toThrow(/a\.bval: 'abc' at line 1, item 2 is not a number/);
    expect(() => parseFslGradients('0 1000', '0 nan\n0 0\n0 0', 2, 'a.bval', 'a.bvec')).toThrow(/a\.bvec: volume 2 \(b=1000\) has a NaN/);
    expect(() => parseFslGradients('0 1000', '0 0\n0 0\n0 0', 2, 'a.bval', 'a.bvec')).toThrow(/a\.bvec: volume 2 has b=1000 s\/mm² but a zero gradient direction/);
    expect(() => parseFslGradients('0 -5', '0 1\n0 0\n0 0', 2, 'a.bval', 'a.bvec')).toThrow(/a\.bval: b-value -5/);
    expect(() => parseFslGradients('0 1000', '0 1\n0 inf\n0 0', 2, 'a.bval', 'a.bvec')).toThrow(/a\.bvec: 'inf'/);
    expect(() => parseFslGradients('', '', 2, 'a.bval', 'a.bvec')).toThrow(/a\.bval: no b-values/);
  });
});

describe('readFslGradients / readNiftiDwi', () => {
  it('reads a DWI NIfTI with its gradients and checks the counts against the volumes', async () => {
    const nii = path.join(dir, 'dwi.nii.gz');
    const data = new Float32Array(3 * 2 * 2 * 7).map((_, i) => 100 + i);
    await writeNifti(nii, { dims: [3, 2, 2, 7], pixdim: [2, 2, 2, 1], affine: [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]], data });
    const bval = path.join(dir, 'dwi.bval');
    const bvec = path.join(dir, 'dwi.bvec');
    await writeFile(bval, '0 1000 1000 1000 1000 1000 1000\n');
    await writeFile(bvec, '0 1 0 0 0.7071 0.7071 0\n0 0 1 0 0.7071 0 0.7071\n0 0 0 1 0 0.7071 0.7071\n');
    const s = await readNiftiDwi(nii, bval, bvec);
    expect(s.dims).toEqual([3, 2, 2, 7]);
    expect(s.data.buffer instanceof SharedArrayBuffer).toBe(true);
    expect(s.source).toMatchObject({ kind: 'nifti', files: [nii, bval, bvec] });
    expect(Math.hypot(...s.bvecs[4]!)).toBeCloseTo(1, 12);

    const short = path.join(dir, 'short.bval');
    await writeFile(short, '0 1000 1000 1000 1000 1000\n');
    const e = await caught(readNiftiDwi(nii, short, bvec));
    expect(e.file).toBe(short);
    expect(e.message).toBe(`${short}: has 6 b-values but the image has 7 volumes`);

    const e2 = await caught(readFslGradients(bval, path.join(dir, 'absent.bvec'), 7));
    expect(e2.file).toBe(path.join(dir, 'absent.bvec'));
  });

  it('rejects a 3-D image as a diffusion series', async () => {
    const nii = path.join(dir, 'flat.nii');
    await writeNifti(nii, { dims: [3, 3, 3], pixdim: [1, 1, 1], affine: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], data: new Float32Array(27) });
    await writeFile(path.join(dir, 'flat.bval'), '0\n');
    await writeFile(path.join(dir, 'flat.bvec'), '0\n0\n0\n');
    const e = await caught(readNiftiDwi(nii, path.join(dir, 'flat.bval'), path.join(dir, 'flat.bvec')));
    expect(e.message).toMatch(/expected a 4-D diffusion series/);
  });
});
