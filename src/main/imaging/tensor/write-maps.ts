/** Writing a fit's maps as NIfTI-1 .nii.gz (float32), the vector maps as 4-D images of 3 frames. */
import { writeNifti } from '../nifti.js';
import type { TensorMaps } from '../types.js';

export interface WrittenTensorMaps {
  fa: string;
  md: string;
  ad: string;
  rd: string;
  v1: string;
  colourFa: string;
  mask: string;
}

/** 3-per-voxel interleaved (x,y,z,x,y,z,…) → NIfTI frame order (all x, then all y, then all z). */
export function deinterleave3(v: Float32Array, nvox: number): Float32Array {
  const out = new Float32Array(nvox * 3);
  for (let i = 0; i < nvox; i++) {
    out[i] = v[3 * i]!;
    out[nvox + i] = v[3 * i + 1]!;
    out[2 * nvox + i] = v[3 * i + 2]!;
  }
  return out;
}

/**
 * Write `${prefix}_FA.nii.gz`, `_MD`, `_AD`, `_RD` (mm²/s), `_V1` and `_colFA` (4-D, 3 frames) and
 * `_mask` (uint8), FSL dtifit's naming. Each file is written atomically.
 */
export async function writeTensorMaps(maps: TensorMaps, prefix: string): Promise<WrittenTensorMaps> {
  const [nx, ny, nz] = maps.dims;
  const nvox = nx * ny * nz;
  const base = { pixdim: [...maps.pixdim], affine: maps.affine };
  const files: WrittenTensorMaps = {
    fa: `${prefix}_FA.nii.gz`,
    md: `${prefix}_MD.nii.gz`,
    ad: `${prefix}_AD.nii.gz`,
    rd: `${prefix}_RD.nii.gz`,
    v1: `${prefix}_V1.nii.gz`,
    colourFa: `${prefix}_colFA.nii.gz`,
    mask: `${prefix}_mask.nii.gz`,
  };
  const scalar = (file: string, data: Float32Array | Uint8Array, description: string) =>
    writeNifti(file, { ...base, dims: [nx, ny, nz], data, description });
  const vector = (file: string, data: Float32Array, description: string) =>
    writeNifti(file, { ...base, dims: [nx, ny, nz, 3], data: deinterleave3(data, nvox), description });
  await Promise.all([
    scalar(files.fa, maps.fa, 'NeuroWard DTI FA'),
    scalar(files.md, maps.md, 'NeuroWard DTI MD mm2/s'),
    scalar(files.ad, maps.ad, 'NeuroWard DTI AD mm2/s'),
    scalar(files.rd, maps.rd, 'NeuroWard DTI RD mm2/s'),
    vector(files.v1, maps.v1, 'NeuroWard DTI V1'),
    vector(files.colourFa, maps.colourFa, 'NeuroWard DTI colour FA'),
    scalar(files.mask, maps.mask, 'NeuroWard DTI mask'),
  ]);
  return files;
}
