/**
 * Synthetic series written with pydicom (test/fixtures/dicom/write_synthetic.py), each read by our reader and
 * converted by Debian's dcm2niix in the same test; the two must agree voxel for voxel.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDicomDwi, scanDicomFolder } from '../../../src/main/imaging/dicom/index.js';
import { compareWithReference, readNifti, removeDir, runDcm2niix, tempDir, toolsAvailable, writeFixture } from './helpers.js';

let root = '';

beforeAll(() => {
  const missing = toolsAvailable();
  if (missing.length > 0) throw new Error(`Synthetic DICOM tests need ${missing.join(' and ')} (apt-get install -y python3-pydicom dcm2niix)`);
  root = tempDir('nw-dicom-syn-');
});

afterAll(() => {
  if (root) removeDir(root);
});

interface Case {
  kind: string;
  title: string;
  layout: string;
  dims: [number, number, number, number];
  bvals: number[];
}

const cases: Case[] = [
  {
    kind: 'classic',
    title: '(a) classic, standard diffusion tags, oblique, implicit VR, stack against the normal',
    layout: 'classic',
    dims: [24, 20, 5, 9],
    bvals: [0, 1000, 1000, 1000, 1000, 1000, 1000, 2000, 2000],
  },
  {
    kind: 'classic-be',
    title: '(a′) the same series in explicit VR big endian',
    layout: 'classic',
    dims: [24, 20, 5, 9],
    bvals: [0, 1000, 1000, 1000, 1000, 1000, 1000, 2000, 2000],
  },
  {
    kind: 'philips',
    title: '(b) Philips private tags (2001,1003)/(2005,10b0-b2), (2005,1596) order, rescale + (2005,100e), trace removed',
    layout: 'classic',
    dims: [24, 20, 5, 9],
    bvals: [0, 2000, 2000, 1000, 1000, 1000, 1000, 1000, 1000],
  },
  {
    kind: 'philips-derived',
    title: '(b′) the same Philips series with its trace image marked DERIVED',
    layout: 'classic',
    dims: [24, 20, 5, 9],
    bvals: [0, 2000, 2000, 1000, 1000, 1000, 1000, 1000, 1000],
  },
  {
    kind: 'enhanced',
    title: '(c) enhanced multi-frame, per-frame geometry, scaling and diffusion macros, frames out of order',
    layout: 'enhanced',
    dims: [24, 20, 5, 9],
    bvals: [0, 1000, 2000, 1000, 2000, 1000, 1000, 1000, 1000],
  },
  {
    kind: 'mosaic',
    title: '(e) Siemens mosaic, axial oblique, 8 slices in a 3×3 grid, diffusion and slice normal from the CSA header only',
    layout: 'mosaic',
    dims: [24, 20, 8, 9],
    bvals: [0, 1000, 1000, 1000, 1000, 1000, 1000, 2000, 2000],
  },
  {
    kind: 'mosaic-private',
    title: '(e′) Siemens mosaic, coronal, negative-determinant slice normal, diffusion from (0019,100a/100c/100e)',
    layout: 'mosaic',
    dims: [24, 20, 7, 9],
    bvals: [0, 1000, 1000, 1000, 1000, 1000, 1000, 2000, 2000],
  },
  {
    kind: 'ge',
    title: '(d) GE private tags with the 1e9 b-value offset, ROW phase encoding, |g| = 0.8 scaling',
    layout: 'classic',
    dims: [24, 20, 5, 7],
    bvals: [0, 640, 1000, 1000, 1000, 1000, 1000],
  },
];

describe('synthetic series match dcm2niix', () => {
  for (const c of cases) {
    it(c.title, async () => {
      const input = path.join(root, c.kind);
      const out = path.join(root, `${c.kind}-dcm2niix`);
      writeFixture('write_synthetic.py', input, c.kind);
      const refBase = runDcm2niix(input, out);
      const series = await readDicomDwi(input);
      const cmp = compareWithReference(series, refBase);
      console.log(
        `${c.kind}: dims ${cmp.dims.join('x')} (dcm2niix ${cmp.refDims.join('x')}), max|dVoxel| ${cmp.maxAbsVoxel} over ${cmp.voxels} voxels, ` +
          `bvals ${cmp.bvals.join(' ')} (dcm2niix ${cmp.refBvals.join(' ')}), max|dBvec| ${cmp.maxAbsBvec.toExponential(2)}, max|dAffine| ${cmp.maxAbsAffine.toExponential(2)}, max|dPixdim| ${cmp.maxAbsPixdim.toExponential(2)}`,
      );
      expect(series.source.layout).toBe(c.layout);
      expect(cmp.dims).toEqual(c.dims);
      expect(cmp.refDims).toEqual(c.dims);
      expect(cmp.maxAbsVoxel).toBe(0);
      expect(cmp.refBvals).toEqual(c.bvals);
      expect(cmp.bvals).toEqual(cmp.refBvals);
      expect(cmp.maxAbsBvec).toBeLessThanOrEqual(1e-4);
      expect(cmp.maxAbsAffine).toBeLessThanOrEqual(1e-3);
      expect(cmp.maxAbsPixdim).toBeLessThanOrEqual(1e-4);
      const [summary] = await scanDicomFolder(input);
      expect(summary).toMatchObject({ layout: c.layout, volumes: c.dims[3], dims: c.dims.slice(0, 3), bvals: c.bvals, isDiffusion: true });
    });
  }
});

describe('12 bits stored in 16', () => {
  it('unsigned: bits above the high bit are masked off, as dcm2niix does', async () => {
    const input = path.join(root, 'bits12');
    writeFixture('write_synthetic.py', input, 'bits12');
    const series = await readDicomDwi(path.join(input, 'unsigned'));
    const cmp = compareWithReference(series, runDcm2niix(path.join(input, 'unsigned'), path.join(root, 'bits12-unsigned-dcm2niix')));
    console.log(`12-bit unsigned: max|dVoxel| ${cmp.maxAbsVoxel} over ${cmp.voxels} voxels, max value ${Math.max(...series.data)}`);
    expect(cmp.maxAbsVoxel).toBe(0);
    expect(Math.max(...series.data)).toBeLessThanOrEqual(4095);
  });

  it('signed: values are sign-extended from bit 11 (dcm2niix masks them to 0..4095 instead)', async () => {
    const input = path.join(root, 'bits12');
    const series = await readDicomDwi(path.join(input, 'signed'));
    const ref = readNifti(`${runDcm2niix(path.join(input, 'signed'), path.join(root, 'bits12-signed-dcm2niix'))}.nii`);
    expect(series.data.length).toBe(ref.data.length);
    let negatives = 0;
    let mismatches = 0;
    for (let i = 0; i < ref.data.length; i++) {
      const masked = ref.data[i]!;
      const expected = masked >= 2048 ? masked - 4096 : masked;
      if (series.data[i]! < 0) negatives++;
      if (series.data[i] !== expected) mismatches++;
    }
    console.log(`12-bit signed: ${negatives} negative voxels of ${ref.data.length}; ${mismatches} differ from dcm2niix's masked values after sign extension`);
    expect(negatives).toBeGreaterThan(0);
    expect(mismatches).toBe(0);
  });
});
