/**
 * United Imaging (UIH) diffusion series, written with pydicom (test/fixtures/dicom/write_synthetic.py, kinds
 * uih*) the way uMR scanners write them, each read by our reader and converted by Debian's dcm2niix in the
 * same test: classic single-slice files with the UIH private diffusion tags, and the UIH grid ("VFRAME"), one
 * file per volume whose slices are tiled in ceil(sqrt(n)) columns × only the rows they fill, with no top-level
 * Image Position (Patient): the tiles' positions are in the private VFrame sequence (0065,1051).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDicomDwi, scanDicomFolder, scanDicomFolderDetailed } from '../../../src/main/imaging/dicom/index.js';
import { ImagingInputError } from '../../../src/main/imaging/types.js';
import { compareWithReference, readBval, readBvec, removeDir, runDcm2niix, tempDir, toolsAvailable, writeFixture } from './helpers.js';

const CLI = path.resolve('dist/cli/neuroward.js');

let root = '';

beforeAll(() => {
  const missing = toolsAvailable();
  if (missing.length > 0) throw new Error(`UIH DICOM tests need ${missing.join(' and ')} (apt-get install -y python3-pydicom dcm2niix)`);
  root = tempDir('nw-dicom-uih-');
});

afterAll(() => {
  if (root) removeDir(root);
});

const B1 = 929.75;
const B2 = 1859.5;

interface Case {
  kind: string;
  title: string;
  layout: string;
  files: number;
  dims: [number, number, number, number];
  bvals: number[];
}

const cases: Case[] = [
  {
    kind: 'uih',
    title: 'classic UIH: (0065,1009) b-value and image-frame (0065,1037) gradient win over (0018,9087/9089); NONE keeps b = 0',
    layout: 'classic',
    files: 45,
    dims: [24, 20, 5, 9],
    bvals: [0, B1, B1, B1, B1, B1, B1, B2, B2],
  },
  {
    kind: 'uih-grid',
    title: 'UIH grid: 6 slices in 3×2 tiles, positions only in (0065,1051), SpacingBetweenSlices, b = 1.25 reference',
    layout: 'mosaic',
    files: 9,
    dims: [24, 20, 6, 9],
    bvals: [1.25126, B1, B1, B1, B1, B1, B1, B2, B2],
  },
  {
    kind: 'uih-grid-desc',
    title: 'UIH grid: coronal, 5 slices in 3×2 tiles (one empty) running against row × column, SliceThickness only',
    layout: 'mosaic',
    files: 9,
    dims: [24, 20, 5, 9],
    bvals: [1.25126, B1, B1, B1, B1, B1, B1, B2, B2],
  },
];

describe('UIH series match dcm2niix', () => {
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
      expect(series.source).toMatchObject({ kind: 'dicom', manufacturer: 'UIH', layout: c.layout });
      expect(series.source.files).toHaveLength(c.files);
      expect(cmp.dims).toEqual(c.dims);
      expect(cmp.refDims).toEqual(c.dims);
      expect(cmp.maxAbsVoxel).toBe(0);
      expect(cmp.refBvals).toEqual(c.bvals);
      expect(cmp.bvals).toEqual(cmp.refBvals);
      expect(cmp.maxAbsBvec).toBeLessThanOrEqual(1e-4);
      expect(cmp.maxAbsAffine).toBeLessThanOrEqual(1e-3);
      expect(cmp.maxAbsPixdim).toBeLessThanOrEqual(1e-4);
      const [summary] = await scanDicomFolder(input);
      expect(summary).toMatchObject({ manufacturer: 'UIH', layout: c.layout, volumes: c.dims[3], dims: c.dims.slice(0, 3), bvals: c.bvals, isDiffusion: true });
    });
  }
});

describe('UIH grid without any slice position', () => {
  it('fails with the clear message naming the file, as before', async () => {
    const input = path.join(root, 'uih-grid-nopos');
    writeFixture('write_synthetic.py', input, 'uih-grid-nopos');
    const first = path.join(input, '00000001.dcm');
    const message = `${first} has no Image Position (Patient) (0020,0032): cannot place the slice.`;
    await expect(readDicomDwi(input)).rejects.toThrow(ImagingInputError);
    await expect(readDicomDwi(input)).rejects.toThrow(message);
    await expect(readDicomDwi(first)).rejects.toThrow(message);
    const scan = await scanDicomFolderDetailed(input);
    expect(scan.series).toHaveLength(1);
    expect(scan.series[0]!.problems[0]).toEqual({ file: first, reason: message });
  });
});

describe('neuroward dti info on a UIH grid', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

  it('prints dims, b-values and b-vectors equal to dcm2niix', () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`node scripts/build.mjs --no-renderer\` (or npm run build) first.`);
    const input = path.join(root, 'uih-grid-cli');
    writeFixture('write_synthetic.py', input, 'uih-grid');
    const refBase = runDcm2niix(input, path.join(root, 'uih-grid-cli-dcm2niix'));
    expect(readdirSync(input)).toHaveLength(9);

    const result = cli('dti', 'info', input, '--json');
    expect(result.status, result.stderr).toBe(0);
    const info = JSON.parse(result.stdout) as { manufacturer: string; layout: string; files: number; dims: number[]; volumes: number; bvals: number[]; bvecs: number[][] };
    expect(info).toMatchObject({ manufacturer: 'UIH', layout: 'mosaic', files: 9, dims: [24, 20, 6], volumes: 9 });
    expect(info.bvals).toEqual(readBval(`${refBase}.bval`));
    const ref = readBvec(`${refBase}.bvec`);
    expect(info.bvecs).toHaveLength(ref.length);
    info.bvecs.forEach((v, i) => v.forEach((c, axis) => expect(Math.abs(c - ref[i]![axis]!)).toBeLessThanOrEqual(1e-4)));

    const text = cli('dti', 'info', input);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toContain('synthetic UIH grid DWI (UIH, dicom, mosaic, 9 files)');
    expect(text.stdout).toContain('dimensions: 24 × 20 × 6 voxels × 9 volumes');
    expect(text.stdout).toContain(`b-values:   1.25126 ${B1}`);
  });
});
