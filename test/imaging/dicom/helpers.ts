/** Test helpers: read reference NIfTI/.bval/.bvec, run dcm2niix and the fixture writers, compare results. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DwiSeries } from '../../../src/main/imaging/types.js';
import { SHARED_DATA as DEFAULT_SHARED_DATA } from '../../support/shared-data.js';

export const PYTHON = '/usr/bin/python3';
export const DCM2NIIX = 'dcm2niix';
export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/dicom');
// ../shared/data beside the project, like every other test (test/support/shared-data.ts); overridable.
export const SHARED_DATA = process.env.NEUROWARD_SHARED_DATA ?? DEFAULT_SHARED_DATA;

export interface NiftiRef {
  dims: number[];
  pixdim: number[];
  /** srow_x, srow_y, srow_z, [0,0,0,1] */
  affine: number[][];
  sclSlope: number;
  sclInter: number;
  datatype: number;
  /** Values a NIfTI reader gets after applying scl_slope/scl_inter, rounded to float32. */
  data: Float32Array;
}

/** Minimal NIfTI-1 (.nii, little endian, uncompressed) reader for the reference files. */
export function readNifti(file: string): NiftiRef {
  const buf = readFileSync(file);
  if (buf.readInt32LE(0) !== 348) throw new Error(`${file}: not a little-endian NIfTI-1 file`);
  const dims = Array.from({ length: 8 }, (_, i) => buf.readInt16LE(40 + 2 * i));
  const datatype = buf.readInt16LE(70);
  const pixdim = Array.from({ length: 8 }, (_, i) => buf.readFloatLE(76 + 4 * i));
  const voxOffset = buf.readFloatLE(108);
  const sclSlope = buf.readFloatLE(112);
  const sclInter = buf.readFloatLE(116);
  const srow = (o: number): number[] => [0, 1, 2, 3].map((i) => buf.readFloatLE(o + 4 * i));
  const affine = [srow(280), srow(296), srow(312), [0, 0, 0, 1]];
  const n = dims.slice(1, 1 + dims[0]!).reduce((a, b) => a * b, 1);
  const off = Math.round(voxOffset);
  const read: Record<number, [number, (o: number) => number]> = {
    2: [1, (o) => buf.readUInt8(o)],
    4: [2, (o) => buf.readInt16LE(o)],
    8: [4, (o) => buf.readInt32LE(o)],
    16: [4, (o) => buf.readFloatLE(o)],
    64: [8, (o) => buf.readDoubleLE(o)],
    256: [1, (o) => buf.readInt8(o)],
    512: [2, (o) => buf.readUInt16LE(o)],
    768: [4, (o) => buf.readUInt32LE(o)],
  };
  const r = read[datatype];
  if (!r) throw new Error(`${file}: unsupported NIfTI datatype ${datatype}`);
  const [size, fn] = r;
  const scaled = Number.isFinite(sclSlope) && sclSlope !== 0;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const raw = fn(off + i * size);
    data[i] = scaled ? raw * sclSlope + sclInter : raw;
  }
  return { dims: dims.slice(1, 1 + dims[0]!), pixdim: pixdim.slice(1, 4), affine, sclSlope, sclInter, datatype, data };
}

export function readBval(file: string): number[] {
  return readFileSync(file, 'utf8').trim().split(/\s+/).map(Number);
}

export function readBvec(file: string): [number, number, number][] {
  const rows = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number));
  return rows[0]!.map((_, i) => [rows[0]![i]!, rows[1]![i]!, rows[2]![i]!]);
}

export interface Comparison {
  dims: number[];
  refDims: number[];
  voxels: number;
  maxAbsVoxel: number;
  maxAbsAffine: number;
  maxAbsBvec: number;
  maxAbsPixdim: number;
  bvals: number[];
  refBvals: number[];
}

/** Compare a DwiSeries with a dcm2niix output (base path without extension). */
export function compareWithReference(series: DwiSeries, refBase: string): Comparison {
  const ref = readNifti(`${refBase}.nii`);
  const refBvals = readBval(`${refBase}.bval`);
  const refBvecs = readBvec(`${refBase}.bvec`);
  const refDims = ref.dims.length === 3 ? [...ref.dims, 1] : ref.dims;
  let maxAbsVoxel = Number.POSITIVE_INFINITY;
  if (series.data.length === ref.data.length) {
    maxAbsVoxel = 0;
    for (let i = 0; i < ref.data.length; i++) {
      const d = Math.abs(series.data[i]! - ref.data[i]!);
      if (!(d <= maxAbsVoxel)) maxAbsVoxel = d;
    }
  }
  let maxAbsAffine = 0;
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) maxAbsAffine = Math.max(maxAbsAffine, Math.abs(series.affine[r]![c]! - ref.affine[r]![c]!));
  let maxAbsBvec = series.bvecs.length === refBvecs.length ? 0 : Number.POSITIVE_INFINITY;
  if (Number.isFinite(maxAbsBvec))
    series.bvecs.forEach((v, i) => {
      for (let k = 0; k < 3; k++) maxAbsBvec = Math.max(maxAbsBvec, Math.abs(v[k]! - refBvecs[i]![k]!));
    });
  const maxAbsPixdim = Math.max(...series.pixdim.map((p, i) => Math.abs(p - ref.pixdim[i]!)));
  return { dims: [...series.dims], refDims, voxels: ref.data.length, maxAbsVoxel, maxAbsAffine, maxAbsBvec, maxAbsPixdim, bvals: series.bvals, refBvals };
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Run dcm2niix (uncompressed .nii, no sidecar) on a folder into a fresh outDir; returns the output base path
 * of the main series (dcm2niix may add e.g. ref_ADC.nii for the derived volumes it removes).
 */
export function runDcm2niix(inputDir: string, outDir: string): string {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const r = spawnSync(DCM2NIIX, ['-z', 'n', '-b', 'n', '-f', 'ref', '-o', outDir, inputDir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dcm2niix failed (${r.status}): ${r.stderr}\n${r.stdout}`);
  if (!existsSync(path.join(outDir, 'ref.nii'))) throw new Error(`dcm2niix wrote no ref.nii (${readdirSync(outDir).join(', ')}):\n${r.stdout}`);
  return path.join(outDir, 'ref');
}

/** Run a fixture writer (test/fixtures/dicom/<script>) into outDir. */
export function writeFixture(script: string, outDir: string, ...args: string[]): void {
  const r = spawnSync(PYTHON, [path.join(FIXTURES, script), outDir, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${script} failed (${r.status}): ${r.stderr}\n${r.stdout}`);
}

export function toolsAvailable(): string[] {
  const missing: string[] = [];
  if (!existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import pydicom, numpy'], { encoding: 'utf8' }).status !== 0) missing.push(`${PYTHON} with pydicom and numpy`);
  if (spawnSync(DCM2NIIX, ['-v'], { encoding: 'utf8' }).error) missing.push('dcm2niix');
  return missing;
}
