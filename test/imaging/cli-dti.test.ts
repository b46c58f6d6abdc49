/** `neuroward dti info|fit` as a user runs them (the built CLI), on real scanner data and on bad input. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { sharedData } from '../support/shared-data.js';

const CLI = path.resolve('dist/cli/neuroward.js');
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
const refLines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does).`);
});

describe('neuroward dti', () => {
  it('lists the series of a folder holding several and asks to choose', () => {
    const result = cli('dti', 'info', sharedData('dwi-ge', 'In'));
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('3 series in');
    expect(result.stdout).toContain('Ax DWI TENSOR R2');
  });

  it('prints dims, b-values and b-vectors equal to dcm2niix reference files', () => {
    const result = cli('dti', 'info', sharedData('dwi-ge', 'In', '01_Ax_DWI_TENSOR_R2'), '--json');
    expect(result.status, result.stderr).toBe(0);
    const info = JSON.parse(result.stdout) as { dims: number[]; volumes: number; bvals: number[]; bvecs: number[][] };
    expect([...info.dims, info.volumes]).toEqual([256, 256, 2, 7]);
    expect(info.bvals).toEqual(refLines(sharedData('dwi-ge', 'Ref', 'Ax_DWI_TENSOR_R2_1.bval'))[0]);
    const bvec = refLines(sharedData('dwi-ge', 'Ref', 'Ax_DWI_TENSOR_R2_1.bvec'));
    info.bvecs.forEach((v, i) => v.forEach((c, axis) => expect(Math.abs(c - bvec[axis]![i]!)).toBeLessThanOrEqual(1e-4)));
  });

  it('fits a Siemens mosaic series and writes maps that nibabel reads', () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'nw-dti-'));
    const result = cli('dti', 'fit', sharedData('dwi-siemens-mosaic', 'In', '4_DWI_SagAPmosaic'), '--out', out);
    expect(result.status, result.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['ad.nii.gz', 'colour-fa.nii.gz', 'fa.nii.gz', 'mask.nii.gz', 'md.nii.gz', 'rd.nii.gz', 'summary.json', 'v1.nii.gz']);
    const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { dims: number[]; maskedVoxels: number; meanFa: number };
    expect(summary.dims).toEqual([82, 82, 48, 21]);
    expect(summary.maskedVoxels).toBeGreaterThan(1000);
    expect(summary.meanFa).toBeGreaterThan(0.05);
    expect(summary.meanFa).toBeLessThan(0.6);
    const nib = spawnSync('/usr/bin/python3', ['-c', `import nibabel as n, numpy as np, sys
for f in ['fa','md','colour-fa']:
    img = n.load(sys.argv[1] + '/' + f + '.nii.gz'); d = img.get_fdata()
    print(f, d.shape, bool(np.isfinite(d).all()), float(d.min()) >= 0)
fa = n.load(sys.argv[1] + '/fa.nii.gz').get_fdata(); v1 = n.load(sys.argv[1] + '/v1.nii.gz').get_fdata()
norms = np.linalg.norm(v1[fa > 0.2], axis=-1)
print('v1 unit', bool(np.all(np.abs(norms - 1) < 1e-3)), int(norms.size) > 100)`, out], { encoding: 'utf8' });
    expect(nib.status, nib.stderr).toBe(0);
    expect(nib.stdout).toContain('fa (82, 82, 48) True True');
    expect(nib.stdout).toContain('colour-fa (82, 82, 48, 3) True True');
    // Vector maps are stored frame after frame: read back, V1 is a unit vector wherever FA says it means something.
    expect(nib.stdout).toContain('v1 unit True True');
  });

  it('refuses bad input with a clear message naming the file and writes nothing', () => {
    const junk = mkdtempSync(path.join(os.tmpdir(), 'nw-junk-'));
    writeFileSync(path.join(junk, 'scan.nii'), 'definitely not nifti');
    writeFileSync(path.join(junk, 'scan.bval'), '0 1000');
    writeFileSync(path.join(junk, 'scan.bvec'), '0 1\n0 0\n0 0');
    const out = path.join(junk, 'out');
    const result = cli('dti', 'fit', path.join(junk, 'scan.nii'), '--out', out);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('scan.nii');
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);

    const noOut = cli('dti', 'fit', sharedData('dwi-ge', 'In', '01_Ax_DWI_TENSOR_R2'));
    expect(noOut.status).toBe(2);
    expect(noOut.stderr).toContain('--out');
    const missing = cli('dti', 'info', '/nonexistent/folder');
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('/nonexistent/folder does not exist');
  });
});
