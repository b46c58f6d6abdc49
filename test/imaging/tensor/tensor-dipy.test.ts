/**
 * NeuroWard's WLS tensor fit against DIPY 1.6 `TensorModel(gtab, fit_method='WLS')` on the same
 * NIfTI/bval/bvec files: DIPY's bundled small_64D, a synthetic phantom written here, and a real GE
 * series converted by dcm2niix. Inside the mask: max |ΔFA| ≤ 1e-3 and max relative ΔMD ≤ 1e-3.
 * The mask is NeuroWard's Otsu mask, written with writeNifti and handed to DIPY (so nibabel reads it).
 *
 * Maps are float32 on both sides, so agreement below float32 resolution shows as 0. One known
 * difference: NeuroWard normalises the b-vectors (FSL convention) while DIPY uses them as written, and
 * DIPY's eigenvalue floor min_diffusivity = 1e-6 / −min(design) depends on their length; dcm2niix's
 * 6-decimal GE vectors are up to 4e-4 off unit length, which moves the floor by 6.6e-4 (relative). That
 * shows only in voxels whose eigenvalues all sit at the floor (MD ~1e-9 mm²/s), reported separately.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readNiftiDwi } from '../../../src/main/imaging/fsl-gradients.js';
import { otsuBrainMask } from '../../../src/main/imaging/mask.js';
import { writeNifti } from '../../../src/main/imaging/nifti.js';
import { fitTensors } from '../../../src/main/imaging/tensor/fit.js';
import { writeTensorMaps } from '../../../src/main/imaging/tensor/write-maps.js';
import { fslGradientText, makePhantom } from '../../../src/main/imaging/tensor/phantom.js';
import type { DwiSeries, TensorMaps } from '../../../src/main/imaging/types.js';
import { describeWithDipy, dipyWls, python, type DipyMaps } from './dipy.js';
import { SHARED_DATA } from '../../support/shared-data.js';

const DIPY_FILES = '/usr/lib/python3/dist-packages/dipy/data/files';
const GE = path.join(SHARED_DATA, 'dwi-ge/Ref/Ax_DWI_TENSOR_R2_1');

interface Agreement {
  voxels: number;
  maxAbsDFa: number;
  maxRelDMd: number;
  maxRelDAd: number;
  maxRelDRd: number;
  /** Smallest |V1·V1_dipy| where FA > 0.2. */
  minV1Dot: number;
  /** Voxels whose MD sits at DIPY's eigenvalue floor (all three eigenvalues clipped, MD < 1e-8 mm²/s). */
  floorVoxels: number;
  /** Max relative ΔMD over the other voxels. */
  maxRelDMdAboveFloor: number;
}

function agreement(maps: TensorMaps, dipy: DipyMaps): Agreement {
  const a: Agreement = {
    voxels: 0,
    maxAbsDFa: 0,
    maxRelDMd: 0,
    maxRelDAd: 0,
    maxRelDRd: 0,
    minV1Dot: 1,
    floorVoxels: 0,
    maxRelDMdAboveFloor: 0,
  };
  const rel = (x: number, y: number) => Math.abs(x - y) / Math.max(Math.abs(y), 1e-30);
  for (let i = 0; i < maps.fa.length; i++) {
    if (!maps.mask[i]) continue;
    a.voxels++;
    a.maxAbsDFa = Math.max(a.maxAbsDFa, Math.abs(maps.fa[i]! - dipy.fa[i]!));
    a.maxRelDMd = Math.max(a.maxRelDMd, rel(maps.md[i]!, dipy.md[i]!));
    if (dipy.md[i]! < 1e-8) a.floorVoxels++;
    else a.maxRelDMdAboveFloor = Math.max(a.maxRelDMdAboveFloor, rel(maps.md[i]!, dipy.md[i]!));
    a.maxRelDAd = Math.max(a.maxRelDAd, rel(maps.ad[i]!, dipy.ad[i]!));
    a.maxRelDRd = Math.max(a.maxRelDRd, rel(maps.rd[i]!, dipy.rd[i]!));
    if (dipy.fa[i]! > 0.2) {
      const dot = maps.v1[3 * i]! * dipy.v1[3 * i]! + maps.v1[3 * i + 1]! * dipy.v1[3 * i + 1]! + maps.v1[3 * i + 2]! * dipy.v1[3 * i + 2]!;
      a.minV1Dot = Math.min(a.minV1Dot, Math.abs(dot));
    }
  }
  return a;
}

function expectSane(maps: TensorMaps): void {
  for (const key of ['fa', 'md', 'ad', 'rd', 'v1', 'colourFa'] as const) {
    const arr = maps[key];
    let bad = 0;
    for (let i = 0; i < arr.length; i++) if (!Number.isFinite(arr[i]!)) bad++;
    expect(bad, `${key} has non-finite values`).toBe(0);
  }
  let outOfRange = 0;
  for (let i = 0; i < maps.fa.length; i++) {
    const fa = maps.fa[i]!;
    if (fa < 0 || fa > 1) outOfRange++;
    if (!maps.mask[i] && (fa !== 0 || maps.md[i] !== 0)) outOfRange++;
  }
  expect(outOfRange).toBe(0);
  for (let i = 0; i < maps.colourFa.length; i++) expect(maps.colourFa[i]! >= 0 && maps.colourFa[i]! <= 1).toBe(true);
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nw-tensor-dipy-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function compareWithDipy(name: string, series: DwiSeries, nii: string, bval: string, bvec: string) {
  const mask = otsuBrainMask(series);
  const maskFile = path.join(dir, `${name}_mask.nii.gz`);
  await writeNifti(maskFile, { dims: series.dims.slice(0, 3), pixdim: series.pixdim, affine: series.affine, data: mask });
  const maps = await fitTensors(series, { mask, workers: 2 });
  const dipy = dipyWls(dir, nii, bval, bvec, maskFile);
  const a = agreement(maps, dipy);
  console.log(
    `[DIPY WLS vs NeuroWard] ${name}: ${a.voxels} voxels in mask; max |ΔFA| = ${a.maxAbsDFa.toExponential(2)}, ` +
      `max rel ΔMD = ${a.maxRelDMd.toExponential(2)}, max rel ΔAD = ${a.maxRelDAd.toExponential(2)}, ` +
      `max rel ΔRD = ${a.maxRelDRd.toExponential(2)}, min |V1·V1dipy| (FA>0.2) = ${a.minV1Dot.toFixed(6)}; ` +
      `${a.floorVoxels} voxels at the eigenvalue floor, max rel ΔMD above it = ${a.maxRelDMdAboveFloor.toExponential(2)}`,
  );
  expect(a.voxels).toBeGreaterThan(0);
  expect(a.maxAbsDFa).toBeLessThanOrEqual(1e-3);
  expect(a.maxRelDMd).toBeLessThanOrEqual(1e-3);
  expect(a.minV1Dot).toBeGreaterThan(0.999);
  expectSane(maps);
  return { maps, dipy, a };
}

describeWithDipy('WLS tensor fit matches DIPY 1.6 TensorModel(fit_method="WLS")', () => {
  it('on DIPY\'s bundled small_64D (N×3 bvec with a NaN b0 row)', async () => {
    const nii = `${DIPY_FILES}/small_64D.nii`;
    const bval = `${DIPY_FILES}/small_64D.bval`;
    const bvec = `${DIPY_FILES}/small_64D.bvec`;
    const series = await readNiftiDwi(nii, bval, bvec);
    expect(series.dims).toEqual([10, 10, 10, 65]);
    await compareWithDipy('small_64D', series, nii, bval, bvec);
  });

  it('on a synthetic phantom with Rician noise written as .nii.gz', async () => {
    const { series: ph } = makePhantom({ dims: [24, 20, 8], b0: 3, directions: 30, bvalue: 1000, sigma: 25, border: 3, seed: 11 });
    const nii = path.join(dir, 'phantom.nii.gz');
    const bval = path.join(dir, 'phantom.bval');
    const bvec = path.join(dir, 'phantom.bvec');
    await writeNifti(nii, { dims: ph.dims, pixdim: [...ph.pixdim, 1], affine: ph.affine, data: ph.data });
    const text = fslGradientText(ph.bvals, ph.bvecs);
    await writeFile(bval, text.bval);
    await writeFile(bvec, text.bvec);
    const series = await readNiftiDwi(nii, bval, bvec);
    await compareWithDipy('phantom', series, nii, bval, bvec);
  });

  it('on a real GE series (dcm2niix output)', async () => {
    const series = await readNiftiDwi(`${GE}.nii`, `${GE}.bval`, `${GE}.bvec`);
    expect(series.source.manufacturer).toBe('GE');
    await compareWithDipy('ge_R2_1', series, `${GE}.nii`, `${GE}.bval`, `${GE}.bvec`);
  });

  it('unmasked: every voxel of small_64D agrees too', async () => {
    const nii = `${DIPY_FILES}/small_64D.nii`;
    const series = await readNiftiDwi(nii, `${DIPY_FILES}/small_64D.bval`, `${DIPY_FILES}/small_64D.bvec`);
    const maps = await fitTensors(series, { mask: 'none', workers: 1 });
    const dipy = dipyWls(dir, nii, `${DIPY_FILES}/small_64D.bval`, `${DIPY_FILES}/small_64D.bvec`, null);
    const a = agreement(maps, dipy);
    console.log(`[DIPY WLS vs NeuroWard] small_64D unmasked: ${a.voxels} voxels; max |ΔFA| = ${a.maxAbsDFa.toExponential(2)}, max rel ΔMD = ${a.maxRelDMd.toExponential(2)}`);
    expect(a.voxels).toBe(1000);
    expect(a.maxAbsDFa).toBeLessThanOrEqual(1e-3);
    expect(a.maxRelDMd).toBeLessThanOrEqual(1e-3);
    expectSane(maps);
  });
});

describeWithDipy('Otsu mask matches DIPY median_otsu', () => {
  const cases: [string, () => Promise<DwiSeries>, string][] = [
    ['small_64D', () => readNiftiDwi(`${DIPY_FILES}/small_64D.nii`, `${DIPY_FILES}/small_64D.bval`, `${DIPY_FILES}/small_64D.bvec`), `${DIPY_FILES}/small_64D`],
  ];
  if (existsSync(`${GE}.nii`)) cases.push(['GE R2_1', () => readNiftiDwi(`${GE}.nii`, `${GE}.bval`, `${GE}.bvec`), GE]);
  for (const [name, load, base] of cases) {
    it(`${name}: same voxels as median_otsu(b0s, median_radius=2, numpass=1) and (1, 2)`, async () => {
      const series = await load();
      for (const [radius, passes] of [[2, 1], [1, 2]] as const) {
        const ours = otsuBrainMask(series, { medianRadius: radius, numPasses: passes });
        const out = path.join(dir, `mask_${name.replace(/\W/g, '')}_${radius}_${passes}.u8`);
        python(
          `import sys, numpy as np, nibabel as nib
from dipy.segment.mask import median_otsu
from dipy.io.gradients import read_bvals_bvecs
d = nib.load(sys.argv[1] + '.nii').get_fdata()
b, v = read_bvals_bvecs(sys.argv[1] + '.bval', sys.argv[1] + '.bvec')
_, m = median_otsu(d, vol_idx=np.where(b <= 50)[0], median_radius=int(sys.argv[3]), numpass=int(sys.argv[4]))
m.astype(np.uint8).ravel(order='F').tofile(sys.argv[2])`,
          [base, out, String(radius), String(passes)],
        );
        const theirs = new Uint8Array(readFileSync(out));
        let diff = 0;
        let inside = 0;
        for (let i = 0; i < ours.length; i++) {
          if (ours[i] !== theirs[i]) diff++;
          inside += ours[i]!;
        }
        console.log(`[median_otsu vs NeuroWard] ${name} r=${radius} passes=${passes}: ${inside} voxels in mask, ${diff} differ`);
        expect(theirs.length).toBe(ours.length);
        expect(diff).toBe(0);
      }
    });
  }
});

describeWithDipy('writeTensorMaps', () => {
  it('writes FSL-named maps that nibabel reads: scalar 3-D, V1 and colour FA as 4-D with 3 frames', async () => {
    const { series } = makePhantom({ dims: [9, 8, 5], sigma: 10, seed: 4 });
    const maps = await fitTensors(series, { mask: 'none', workers: 0 });
    const files = await writeTensorMaps(maps, path.join(dir, 'sub'));
    expect(files.fa.endsWith('sub_FA.nii.gz')).toBe(true);
    const out = JSON.parse(
      python(
        `import sys, json, numpy as np, nibabel as nib
fa = nib.load(sys.argv[1]); v1 = nib.load(sys.argv[2]); m = nib.load(sys.argv[3])
np.asarray(v1.get_fdata(), dtype='<f4').transpose(3, 0, 1, 2).reshape(3, -1, order='F').T.tofile(sys.argv[4])
print(json.dumps({'fa': list(fa.shape), 'v1': list(v1.shape), 'mask': list(m.shape), 'mdtype': str(m.get_data_dtype()),
  'famax': float(fa.get_fdata().max())}))`,
        [files.fa, files.v1, files.mask, path.join(dir, 'v1.f32')],
      ),
    ) as { fa: number[]; v1: number[]; mask: number[]; mdtype: string; famax: number };
    expect(out.fa).toEqual([9, 8, 5]);
    expect(out.v1).toEqual([9, 8, 5, 3]);
    expect(out.mask).toEqual([9, 8, 5]);
    expect(out.mdtype).toBe('uint8');
    expect(out.famax).toBeCloseTo(Math.max(...maps.fa), 6);
    const v1 = new Float32Array(readFileSync(path.join(dir, 'v1.f32')).buffer.slice(0));
    expect(Buffer.from(v1.buffer).equals(Buffer.from(maps.v1.slice().buffer))).toBe(true);
  });
});
