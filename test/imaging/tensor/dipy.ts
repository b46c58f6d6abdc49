/** Runs DIPY 1.6 (Debian's /usr/bin/python3) on NIfTI/bval/bvec files, for the comparison tests. */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe } from 'vitest';
import { sharedData } from '../../support/shared-data.js';

export const PYTHON = '/usr/bin/python3';

/** True when /usr/bin/python3 has dipy and nibabel. */
export const HAVE_DIPY = (() => {
  if (!existsSync(PYTHON)) return false;
  const r = spawnSync(PYTHON, ['-c', 'import dipy, nibabel'], { stdio: 'ignore' });
  return r.status === 0;
})();

/** References are required, not optional: without DIPY or the scanner data the comparison fails, saying why. */
export function describeWithDipy(name: string, body: () => void): void {
  describe(name, () => {
    beforeAll(() => {
      if (!HAVE_DIPY) throw new Error('DIPY 1.6 is needed under /usr/bin/python3 (Debian python3-dipy; .ci/run installs it).');
      sharedData('dwi-ge', 'Ref');
    });
    body();
  });
}

const SCRIPT = String.raw`
import sys, json
import numpy as np, nibabel as nib
from dipy.core.gradients import gradient_table
from dipy.io.gradients import read_bvals_bvecs
import dipy.reconst.dti as dti
nii, bval, bvec, mask_file, out = sys.argv[1:6]
data = nib.load(nii).get_fdata()
b, v = read_bvals_bvecs(bval, bvec)
gtab = gradient_table(b, v)
mask = None if mask_file == '-' else nib.load(mask_file).get_fdata() > 0
fit = dti.TensorModel(gtab, fit_method='WLS').fit(data, mask=mask)
def dump(name, a):
    np.asarray(a, dtype='<f4').ravel(order='F').tofile(out + '_' + name + '.f32')
dump('fa', fit.fa)
dump('md', fit.md)
dump('ad', fit.ad)
dump('rd', fit.rd)
# V1 as x,y,z per voxel (voxels in NIfTI order)
v1 = fit.evecs[..., :, 0]
np.asarray(np.moveaxis(v1, -1, 0), dtype='<f4').reshape(3, -1, order='F').T.tofile(out + '_v1.f32')
print(json.dumps({'voxels': int(np.prod(data.shape[:3])), 'masked': int(mask.sum()) if mask is not None else None}))
`;

export interface DipyMaps {
  fa: Float32Array;
  md: Float32Array;
  ad: Float32Array;
  rd: Float32Array;
  v1: Float32Array;
}

function readF32(file: string): Float32Array {
  const buf = readFileSync(file);
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** DIPY TensorModel(gtab, fit_method='WLS').fit(data, mask) on the files; maps in NIfTI voxel order. */
export function dipyWls(dir: string, nii: string, bval: string, bvec: string, maskNii: string | null): DipyMaps {
  const script = path.join(dir, 'dipy_wls.py');
  writeFileSync(script, SCRIPT);
  const out = path.join(dir, 'dipy');
  execFileSync(PYTHON, [script, nii, bval, bvec, maskNii ?? '-', out], { stdio: ['ignore', 'pipe', 'pipe'] });
  return {
    fa: readF32(`${out}_fa.f32`),
    md: readF32(`${out}_md.f32`),
    ad: readF32(`${out}_ad.f32`),
    rd: readF32(`${out}_rd.f32`),
    v1: readF32(`${out}_v1.f32`),
  };
}

/** Run a Python snippet with /usr/bin/python3 and return its stdout. */
export function python(code: string, args: string[] = []): string {
  return execFileSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
