/**
 * Issue 8 items 8 and 9 (imaging): a series without diffusion contrast (the GE sample, whose
 * diffusion-weighted volumes are copies of its b=0) is detected and said so, on import and on the
 * stored study, while real contrast (the Siemens sample, synthetic attenuation with noise) is not
 * flagged; a relative path is refused as such; a .nii that is not a NIfTI diffusion series is refused at
 * scan time; an unmasked fit reports no masked voxels.
 */
import { gzipSync } from 'node:zlib';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffusionContrast, NO_CONTRAST_ATTENUATION } from '../../src/main/imaging/contrast.js';
import { readDicomDwi } from '../../src/main/imaging/dicom/index.js';
import type { DwiSeries } from '../../src/main/imaging/types.js';
import { setUpWorkstation, type TestConnection, type Workstation } from '../support/harness.js';
import { finishedJob } from '../support/imaging-jobs.js';
import { sharedData, SHARED_DATA } from '../support/shared-data.js';

let ws: Workstation;
let radiologist: TestConnection;
let niftiDir: string;

/** A 20×20×10 "brain" (a bright block in a dark background) at b=0 and `n` b=1000 volumes with `signal(v)` of b0, plus noise. */
function phantom(n: number, signal: (v: number) => number, noise: number, seed = 1): DwiSeries {
  const [nx, ny, nz] = [20, 20, 10];
  const nvox = nx * ny * nz;
  const data = new Float32Array(nvox * (n + 1));
  let state = seed;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
  const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  for (let v = 0; v <= n; v++) {
    for (let z = 0; z < nz; z++)
      for (let y = 0; y < ny; y++)
        for (let x = 0; x < nx; x++) {
          const inside = x >= 4 && x < 16 && y >= 4 && y < 16 && z >= 2 && z < 8;
          const s0 = inside ? 1000 : 20;
          const s = v === 0 ? s0 : s0 * (inside ? signal(v) : 1);
          data[v * nvox + (z * ny + y) * nx + x] = Math.abs(s + noise * gauss());
        }
  }
  const dirs: [number, number, number][] = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.707, 0.707, 0], [0.707, 0, 0.707], [0, 0.707, 0.707]];
  return {
    dims: [nx, ny, nz, n + 1],
    data,
    pixdim: [2, 2, 2],
    affine: [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]],
    bvals: [0, ...Array.from({ length: n }, () => 1000)],
    bvecs: [[0, 0, 0], ...Array.from({ length: n }, (_, i) => dirs[i % dirs.length]!)],
    source: { kind: 'nifti', files: ['phantom.nii'] },
  };
}

beforeAll(async () => {
  niftiDir = mkdtempSync(path.join(os.tmpdir(), 'nw-nifti-checks-'));
  writeFileSync(path.join(niftiDir, 'junk.nii'), 'definitely not a NIfTI file, just text');
  writeFileSync(path.join(niftiDir, 'junk.nii.gz'), gzipSync(Buffer.from('gzipped text, still not a NIfTI file')));
  writeFileSync(path.join(niftiDir, 'notgz.nii.gz'), Buffer.from([0x1f, 0x8b, 1, 2, 3, 4, 5]));
  // A real NIfTI-1 header cut down to one 3-D volume: a valid file that is no diffusion series.
  const ref = readFileSync(sharedData('dwi-siemens-mosaic', 'Ref', '4_DWI_SagAPmosaic.nii'));
  const header = Buffer.from(ref.subarray(0, 352));
  header.writeInt16LE(3, 40);
  header.writeInt16LE(1, 48);
  const voxels = 82 * 82 * 48 * (header.readInt16LE(72) / 8);
  writeFileSync(path.join(niftiDir, 'anatomy.nii'), Buffer.concat([header, ref.subarray(352, 352 + voxels)]));
  for (const base of ['junk', 'anatomy']) {
    writeFileSync(path.join(niftiDir, `${base}.bval`), '0 1000');
    writeFileSync(path.join(niftiDir, `${base}.bvec`), '0 1\n0 0\n0 0');
  }
  writeFileSync(path.join(niftiDir, 'good.nii'), ref);
  ws = await setUpWorkstation({ imaging: { importRoots: [SHARED_DATA, niftiDir] } });
  ({ connection: radiologist } = await ws.signInAs('radiologist'));
}, 120_000);
afterAll(async () => ws?.app.close());

describe('no diffusion contrast', () => {
  it('the GE sample (every DW volume a copy of b0) is detected; the Siemens sample is not', async () => {
    const ge = diffusionContrast(await readDicomDwi(sharedData('dwi-ge', 'In', '01_Ax_DWI_TENSOR_R2')));
    expect(ge).toMatchObject({ status: 'absent', decisiveVolumes: 6, flatVolumes: [1, 2, 3, 4, 5, 6], attenuation: { min: 0, max: 0 }, maxDifference: 0 });
    expect(ge.message).toMatch(/^No diffusion contrast: all 6 diffusion-weighted volumes are copies of the b=0 volume/);
    expect(ge.voxels).toBeGreaterThan(1000);
    for (const other of ['02_Ax_DWI_TENSOR_R3', '03_Ax_DWI_TENSOR_R1p5']) expect(diffusionContrast(await readDicomDwi(sharedData('dwi-ge', 'In', other))).status).toBe('absent');

    const siemens = diffusionContrast(await readDicomDwi(sharedData('dwi-siemens-mosaic', 'In', '4_DWI_SagAPmosaic')));
    expect(siemens).toMatchObject({ status: 'present', decisiveVolumes: 20, flatVolumes: [], message: null });
    expect(siemens.attenuation!.min).toBeGreaterThan(0.5);
  });

  it('decides on the mean signal drop, so noise neither hides a copy nor fakes contrast', () => {
    // Copies of b0 plus noise at SNR 10: every voxel differs, the mean does not move.
    const noisyCopies = diffusionContrast(phantom(6, () => 1, 100));
    expect(noisyCopies.status).toBe('absent');
    expect(noisyCopies.maxDifference!).toBeGreaterThan(0.05);
    expect(noisyCopies.message).toContain('within noise');
    // Real attenuation (b=1000, ADC 0.7e-3: a 50 % drop) at the same noise: not flagged.
    const real = diffusionContrast(phantom(6, () => Math.exp(-1000 * 0.7e-3), 100));
    expect(real.status).toBe('present');
    // A drop just above the threshold is contrast; one of six volumes left as a b0 copy is "partial".
    expect(diffusionContrast(phantom(6, () => 1 - 2 * NO_CONTRAST_ATTENUATION, 0)).status).toBe('present');
    const partial = diffusionContrast(phantom(6, (v) => (v === 3 ? 1 : 0.5), 0));
    expect(partial).toMatchObject({ status: 'partial', flatVolumes: [3] });
    expect(partial.message).toContain('1 of 6');
    // Nothing to decide on.
    expect(diffusionContrast({ ...phantom(6, () => 0.5, 0), bvals: [0, 100, 100, 100, 100, 100, 100] }).status).toBe('undetermined');
  });

  it('is said on import and stored with the study: job result, study warning and flag', async () => {
    const job = await radiologist.ok('imaging.import', { path: sharedData('dwi-ge', 'In', '02_Ax_DWI_TENSOR_R3'), unlinked: true });
    const done = await finishedJob(radiologist, job.id);
    expect(done.state).toBe('done');
    expect(done.warnings).toHaveLength(1);
    expect(done.warnings[0]).toMatch(/^No diffusion contrast/);
    const study = (await radiologist.ok('imaging.studies', {})).studies.find((s) => s.id === done.studyId)!;
    expect(study.diffusionContrast).toMatchObject({ status: 'absent', flatVolumes: [1, 2, 3, 4, 5, 6] });
    expect(study.warnings).toEqual(done.warnings);
    expect(study.summary.meanFa).toBe(0);
  });
});

describe('small checks at the door', () => {
  it('a relative path gets "paths must be absolute"', async () => {
    for (const [channel, request] of [
      ['imaging.browse', { path: 'shared/data' }],
      ['imaging.scan', { path: '../shared/data/dwi-ge' }],
      ['imaging.import', { path: 'dwi-ge/In/01_Ax_DWI_TENSOR_R2', unlinked: true }],
      ['imaging.import', { path: sharedData('dwi-ge', 'In', '01_Ax_DWI_TENSOR_R2'), bval: 'x.bval', unlinked: true }],
    ] as const) {
      const error = await radiologist.fail(channel, request as never);
      expect(error.code, channel).toBe('bad-request');
      expect(error.message, channel).toContain('paths must be absolute');
    }
  });

  it('a .nii/.nii.gz that is not a NIfTI diffusion series is refused at scan time, saying why', async () => {
    const { nifti } = await radiologist.ok('imaging.scan', { path: niftiDir });
    const problem = (name: string) => nifti.find((n) => path.basename(n.file) === name)!.problem;
    expect(problem('junk.nii')).toMatch(/junk\.nii: not a NIfTI/);
    expect(problem('junk.nii.gz')).toMatch(/junk\.nii\.gz: not a NIfTI file/);
    expect(problem('notgz.nii.gz')).toMatch(/notgz\.nii\.gz: not a NIfTI file/);
    expect(problem('anatomy.nii')).toMatch(/82×82×48 image, not a diffusion series/);
    expect(problem('good.nii')).toMatch(/no good\.bval next to it/);
    // Named itself, the file is refused; an import of it is refused before any job starts.
    for (const name of ['junk.nii', 'junk.nii.gz', 'anatomy.nii']) {
      const scan = await radiologist.fail('imaging.scan', { path: path.join(niftiDir, name) });
      expect(scan.code).toBe('bad-request');
      expect(scan.message).toContain(name);
    }
    const refused = await radiologist.fail('imaging.import', { path: path.join(niftiDir, 'junk.nii'), unlinked: true });
    expect(refused).toMatchObject({ code: 'bad-request', message: expect.stringContaining('not a NIfTI') });
    // The real one is fine.
    const { nifti: ok } = await radiologist.ok('imaging.scan', { path: sharedData('dwi-siemens-mosaic', 'Ref') });
    expect(ok).toEqual([{ file: sharedData('dwi-siemens-mosaic', 'Ref', '4_DWI_SagAPmosaic.nii'), bval: expect.any(String), bvec: expect.any(String), problem: null }]);
  });

  it('an unmasked fit reports no masked voxels (the fitted ones instead)', async () => {
    const job = await radiologist.ok('imaging.import', { path: sharedData('dwi-ge', 'In', '03_Ax_DWI_TENSOR_R1p5'), mask: false, unlinked: true });
    const done = await finishedJob(radiologist, job.id);
    expect(done.state).toBe('done');
    const study = (await radiologist.ok('imaging.studies', {})).studies.find((s) => s.id === done.studyId)!;
    expect(study.masked).toBe(false);
    expect(study.summary.maskedVoxels).toBeNull();
    expect(study.summary.fittedVoxels).toBe(256 * 256 * 2);
    // The contrast check still looks inside a brain mask (computed for it), not at the background.
    expect(study.diffusionContrast?.voxels).toBeLessThan(256 * 256 * 2);
    const masked = (await radiologist.ok('imaging.studies', {})).studies.find((s) => s.masked)!;
    expect(masked.summary.maskedVoxels).toBe(masked.summary.fittedVoxels);
  });
});
