/**
 * FSL-format gradient files (.bval / .bvec, as dcm2niix and FSL write them) and the NIfTI DWI reader.
 *
 * .bval: the b-values (s/mm²), whitespace-separated, normally on one row (one per line is accepted too).
 * .bvec: three rows (x, y, z) of one number per volume, in the image frame (FSL convention); the
 *        transposed layout (one row of three per volume), which DIPY also accepts, is read too.
 * Each non-zero gradient vector is normalised to unit length. A b ≤ 50 volume may have a zero or a NaN
 * vector (DIPY's small_64D has "nan nan nan" for its b0), which becomes [0, 0, 0]; a NaN, an infinity,
 * a negative b-value, a zero vector on a b > 50 volume, or counts that do not match the image's volumes
 * raise an ImagingInputError that names the file and says what is wrong.
 */
import { readFile } from 'node:fs/promises';
import { readNifti } from './nifti.js';
import { ImagingInputError, type DwiSeries } from './types.js';

/** Volumes with b ≤ this (s/mm²) count as b0, as DIPY's gradient_table default b0_threshold. */
export const B0_THRESHOLD = 50;

export interface FslGradients {
  bvals: number[];
  bvecs: [number, number, number][];
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function parseRows(text: string, file: string, allowNaN: boolean): number[][] {
  const rows: number[][] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, li) => {
    const tokens = line.trim().split(/[\s,]+/).filter((t) => t.length > 0);
    if (tokens.length === 0) return;
    rows.push(
      tokens.map((tok, ti) => {
        if (NUMBER.test(tok)) return Number(tok);
        if (allowNaN && /^[+-]?nan$/i.test(tok)) return Number.NaN;
        throw new ImagingInputError(
          `${file}: '${tok}' at line ${li + 1}, item ${ti + 1} is not a number`,
          file,
        );
      }),
    );
  });
  return rows;
}

/**
 * Parse FSL bval/bvec text for an image of `volumes` volumes. `bvalFile`/`bvecFile` are only used to
 * name the file in errors.
 */
export function parseFslGradients(
  bvalText: string,
  bvecText: string,
  volumes: number,
  bvalFile = 'bval',
  bvecFile = 'bvec',
): FslGradients {
  const bvalRows = parseRows(bvalText, bvalFile, false);
  const bvals = bvalRows.flat();
  if (bvals.length === 0) throw new ImagingInputError(`${bvalFile}: no b-values`, bvalFile);
  if (bvalRows.length > 1 && !bvalRows.every((r) => r.length === 1))
    throw new ImagingInputError(
      `${bvalFile}: expected one row of ${volumes} b-values, found ${bvalRows.length} rows (${bvalRows.map((r) => r.length).join(', ')} values)`,
      bvalFile,
    );
  if (bvals.length !== volumes)
    throw new ImagingInputError(
      `${bvalFile}: has ${bvals.length} b-values but the image has ${volumes} volumes`,
      bvalFile,
    );
  bvals.forEach((b, i) => {
    if (!Number.isFinite(b) || b < 0)
      throw new ImagingInputError(`${bvalFile}: b-value ${b} of volume ${i + 1} is not a finite number ≥ 0`, bvalFile);
  });

  const rows = parseRows(bvecText, bvecFile, true);
  let vectors: number[][];
  if (rows.length === 3 && rows.every((r) => r.length === volumes)) {
    vectors = Array.from({ length: volumes }, (_, i) => [rows[0]![i]!, rows[1]![i]!, rows[2]![i]!]);
  } else if (rows.length === volumes && rows.every((r) => r.length === 3)) {
    vectors = rows;
  } else {
    const shape = rows.length === 0 ? 'no numbers' : `${rows.length} rows of ${[...new Set(rows.map((r) => r.length))].join('/')} numbers`;
    throw new ImagingInputError(
      `${bvecFile}: expected 3 rows of ${volumes} numbers (one per volume), found ${shape}`,
      bvecFile,
    );
  }
  const bvecs = vectors.map((v, i): [number, number, number] => {
    const b = bvals[i]!;
    const [x, y, z] = v as [number, number, number];
    if ([x, y, z].some((c) => Number.isNaN(c))) {
      if (b <= B0_THRESHOLD) return [0, 0, 0];
      throw new ImagingInputError(`${bvecFile}: volume ${i + 1} (b=${b}) has a NaN gradient direction`, bvecFile);
    }
    if (![x, y, z].every(Number.isFinite))
      throw new ImagingInputError(`${bvecFile}: volume ${i + 1} has a gradient direction that is not finite`, bvecFile);
    const n = Math.hypot(x, y, z);
    if (n === 0) {
      if (b <= B0_THRESHOLD) return [0, 0, 0];
      throw new ImagingInputError(
        `${bvecFile}: volume ${i + 1} has b=${b} s/mm² but a zero gradient direction`,
        bvecFile,
      );
    }
    return [x / n, y / n, z / n];
  });
  return { bvals, bvecs };
}

/** Read and check FSL .bval/.bvec files for an image of `volumes` volumes. */
export async function readFslGradients(bvalFile: string, bvecFile: string, volumes: number): Promise<FslGradients> {
  const read = async (file: string) => {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw new ImagingInputError(`${file}: cannot read (${(err as Error).message})`, file);
    }
  };
  const [bvalText, bvecText] = await Promise.all([read(bvalFile), read(bvecFile)]);
  return parseFslGradients(bvalText, bvecText, volumes, bvalFile, bvecFile);
}

/**
 * A diffusion series from a 4-D NIfTI (.nii/.nii.gz) with its FSL .bval/.bvec (dcm2niix's output).
 * The voxel data lands on a SharedArrayBuffer so the tensor fit's workers share it without copying.
 * A dcm2niix JSON sidecar beside the image (same name, .json), when present, supplies the series
 * description and manufacturer.
 */
export async function readNiftiDwi(niiFile: string, bvalFile: string, bvecFile: string): Promise<DwiSeries> {
  const img = await readNifti(niiFile, { shared: true });
  const d = img.dims;
  if (d.length < 4 || d.slice(4).some((n) => n !== 1))
    throw new ImagingInputError(`${niiFile}: expected a 4-D diffusion series, found dimensions [${d.join('×')}]`, niiFile);
  const volumes = d[3] ?? 1;
  const { bvals, bvecs } = await readFslGradients(bvalFile, bvecFile, volumes);
  const series: DwiSeries = {
    dims: [d[0]!, d[1]!, d[2]!, volumes],
    data: img.data,
    pixdim: [Math.abs(img.pixdim[0]!), Math.abs(img.pixdim[1]!), Math.abs(img.pixdim[2]!)],
    affine: img.affine,
    bvals,
    bvecs,
    source: { kind: 'nifti', files: [niiFile, bvalFile, bvecFile] },
  };
  const sidecar = niiFile.replace(/\.nii(\.gz)?$/i, '.json');
  if (sidecar !== niiFile) {
    try {
      const json = JSON.parse(await readFile(sidecar, 'utf8')) as Record<string, unknown>;
      if (typeof json.SeriesDescription === 'string') series.source.seriesDescription = json.SeriesDescription;
      if (typeof json.Manufacturer === 'string') series.source.manufacturer = json.Manufacturer;
    } catch {
      // No sidecar, or not JSON: it is optional.
    }
  }
  return series;
}
