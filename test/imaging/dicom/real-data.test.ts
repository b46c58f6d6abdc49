/**
 * Real scanner data (GE classic, Siemens mosaic) against the dcm2niix reference conversions shipped with it.
 * The shared data folder is required: if it is missing the tests fail and say so.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readDicomDwi, scanDicomFolder } from '../../../src/main/imaging/dicom/index.js';
import { compareWithReference, SHARED_DATA } from './helpers.js';

const GE = path.join(SHARED_DATA, 'dwi-ge');
const SIEMENS = path.join(SHARED_DATA, 'dwi-siemens-mosaic');

function requireData(dir: string): void {
  if (!existsSync(path.join(dir, 'In')) || !existsSync(path.join(dir, 'Ref')))
    throw new Error(`Shared test data is missing: expected ${dir}/In and ${dir}/Ref (set NEUROWARD_SHARED_DATA to the folder holding dwi-ge and dwi-siemens-mosaic).`);
}

const cases = [
  { name: 'GE Ax DWI TENSOR R2', dir: path.join(GE, 'In/01_Ax_DWI_TENSOR_R2'), ref: path.join(GE, 'Ref/Ax_DWI_TENSOR_R2_1'), files: 14 },
  { name: 'GE Ax DWI TENSOR R3', dir: path.join(GE, 'In/02_Ax_DWI_TENSOR_R3'), ref: path.join(GE, 'Ref/Ax_DWI_TENSOR_R3_2'), files: 14 },
  { name: 'GE Ax DWI TENSOR R1p5', dir: path.join(GE, 'In/03_Ax_DWI_TENSOR_R1p5'), ref: path.join(GE, 'Ref/Ax_DWI_TENSOR_R1p5_3'), files: 14 },
  { name: 'Siemens mosaic DWI_SagAPmosaic', dir: path.join(SIEMENS, 'In/4_DWI_SagAPmosaic'), ref: path.join(SIEMENS, 'Ref/4_DWI_SagAPmosaic'), files: 21 },
];

describe('real scanner data matches dcm2niix', () => {
  it('has the shared data folder', () => {
    requireData(GE);
    requireData(SIEMENS);
  });

  for (const c of cases) {
    it(`${c.name}: dims, voxels, b-values, b-vectors and affine`, async () => {
      requireData(path.dirname(path.dirname(c.dir)));
      const series = await readDicomDwi(c.dir);
      const cmp = compareWithReference(series, c.ref);
      console.log(`${c.name}: dims ${cmp.dims.join('x')} (ref ${cmp.refDims.join('x')}), max|dVoxel| ${cmp.maxAbsVoxel} over ${cmp.voxels}, max|dBvec| ${cmp.maxAbsBvec.toExponential(2)}, max|dAffine| ${cmp.maxAbsAffine.toExponential(2)}, max|dPixdim| ${cmp.maxAbsPixdim.toExponential(2)}`);
      expect(cmp.dims).toEqual(cmp.refDims);
      expect(series.source.files).toHaveLength(c.files);
      expect(cmp.maxAbsVoxel).toBe(0);
      expect(cmp.bvals).toEqual(cmp.refBvals);
      expect(cmp.maxAbsBvec).toBeLessThanOrEqual(1e-4);
      expect(cmp.maxAbsAffine).toBeLessThanOrEqual(1e-3);
      expect(cmp.maxAbsPixdim).toBeLessThanOrEqual(1e-4);
    });
  }

  it('reports reading progress from 0 to 1', async () => {
    requireData(SIEMENS);
    const events: { stage: string; fraction: number }[] = [];
    await readDicomDwi(path.join(SIEMENS, 'In/4_DWI_SagAPmosaic'), { onProgress: (p) => events.push(p) });
    expect(events.length).toBeGreaterThan(10);
    for (let i = 1; i < events.length; i++) expect(events[i]!.fraction).toBeGreaterThanOrEqual(events[i - 1]!.fraction);
    expect(events.at(-1)!.fraction).toBe(1);
    expect(new Set(events.map((e) => e.stage))).toEqual(new Set(['reading']));
  });

  it('reads the same series from an explicit file list, in any order', async () => {
    requireData(GE);
    const dir = path.join(GE, 'In/02_Ax_DWI_TENSOR_R3');
    const files = readdirSync(dir)
      .map((f) => path.join(dir, f))
      .reverse();
    const cmp = compareWithReference(await readDicomDwi(files), path.join(GE, 'Ref/Ax_DWI_TENSOR_R3_2'));
    expect(cmp.maxAbsVoxel).toBe(0);
    expect(cmp.bvals).toEqual(cmp.refBvals);
  });

  it('needs a series choice for the GE folder holding three series', async () => {
    requireData(GE);
    await expect(readDicomDwi(path.join(GE, 'In'))).rejects.toThrow(/3 DICOM series; choose one/);
    const [, second] = await scanDicomFolder(path.join(GE, 'In'));
    const series = await readDicomDwi(path.join(GE, 'In'), { seriesInstanceUid: second!.seriesInstanceUid });
    expect(compareWithReference(series, path.join(GE, 'Ref/Ax_DWI_TENSOR_R3_2')).maxAbsVoxel).toBe(0);
    expect(series.source).toMatchObject({ kind: 'dicom', layout: 'classic', seriesDescription: 'Ax DWI TENSOR R3', manufacturer: 'GE MEDICAL SYSTEMS' });
  });

  it('scans the GE folder as three series', async () => {
    requireData(GE);
    const series = await scanDicomFolder(path.join(GE, 'In'));
    expect(series.map((s) => s.seriesNumber)).toEqual([1, 2, 3]);
    for (const s of series) {
      expect(s).toMatchObject({ layout: 'classic', manufacturer: 'GE MEDICAL SYSTEMS', volumes: 7, dims: [256, 256, 2], isDiffusion: true, bvals: [0, 1000, 1000, 1000, 1000, 1000, 1000] });
      expect(s.files).toHaveLength(14);
    }
  });

  it('summarises the Siemens mosaic from its headers', async () => {
    requireData(SIEMENS);
    const [s] = await scanDicomFolder(path.join(SIEMENS, 'In'));
    expect(s).toMatchObject({ layout: 'mosaic', manufacturer: 'SIEMENS', volumes: 21, dims: [82, 82, 48], isDiffusion: true, seriesNumber: 4 });
    expect(s!.bvals).toEqual([0, ...Array<number>(20).fill(2000)]);
  });
});
