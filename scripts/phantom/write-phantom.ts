/**
 * Writes a brain phantom as a scanner export converted by dcm2niix would look (4-D NIfTI + FSL .bval /
 * .bvec), next to its truth: lesion labels, tissue labels and brain fraction as NIfTI in the same grid,
 * and `truth.json` (acquisition, noise, every lesion with centroid, volume, slices and contrast).
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeNifti } from '../../src/main/imaging/nifti.js';
import { fslGradientText } from '../../src/main/imaging/tensor/phantom.js';
import type { BrainPhantom } from './brain-phantom.js';

export interface WrittenPhantom {
  dir: string;
  dwi: string;
  bval: string;
  bvec: string;
  lesions: string;
  tissue: string;
  truth: string;
}

/** Writes into `dir` (created); every file appears whole (written aside, then renamed). */
export async function writeBrainPhantom(phantom: BrainPhantom, dir: string): Promise<WrittenPhantom> {
  await mkdir(dir, { recursive: true });
  const { series } = phantom;
  const grid = { pixdim: [...series.pixdim], affine: series.affine };
  const dims3 = series.dims.slice(0, 3);
  const files: WrittenPhantom = {
    dir,
    dwi: path.join(dir, 'dwi.nii.gz'),
    bval: path.join(dir, 'dwi.bval'),
    bvec: path.join(dir, 'dwi.bvec'),
    lesions: path.join(dir, 'lesions.nii.gz'),
    tissue: path.join(dir, 'tissue.nii.gz'),
    truth: path.join(dir, 'truth.json'),
  };
  await writeNifti(files.dwi, { dims: [...series.dims], ...grid, data: series.data, description: series.source.seriesDescription ?? 'brain phantom' });
  await writeNifti(files.lesions, { dims: dims3, ...grid, data: phantom.lesionLabels, description: 'lesion labels (truth)' });
  await writeNifti(files.tissue, { dims: dims3, ...grid, data: phantom.tissue, description: 'tissue: 0 air 1 CSF 2 grey 3 white 4 deep grey' });
  const text = fslGradientText(series.bvals, series.bvecs);
  const truth = {
    seed: phantom.seed,
    generator: 'neuroward brain phantom 1',
    dims: series.dims,
    voxelMm: series.pixdim,
    acquisition: phantom.acquisition,
    noiseSigma: phantom.sigma,
    lesionCount: phantom.lesions.length,
    lesions: phantom.lesions,
  };
  for (const [file, content] of [
    [files.bval, text.bval],
    [files.bvec, text.bvec],
    [files.truth, JSON.stringify(truth, null, 2) + '\n'],
  ] as const) {
    await writeFile(`${file}.part`, content);
    await rename(`${file}.part`, file);
  }
  return files;
}
