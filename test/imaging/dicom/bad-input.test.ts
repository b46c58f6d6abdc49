/**
 * Bad input gives an ImagingInputError that names the file and the reason: never a crash, never partial output.
 * Cases are written by test/fixtures/dicom/write_synthetic.py (kind "bad").
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDicomDwi, scanDicomFolder, scanDicomFolderDetailed } from '../../../src/main/imaging/dicom/index.js';
import { parseDicom } from '../../../src/main/imaging/dicom/parser.js';
import { TAG } from '../../../src/main/imaging/dicom/tags.js';
import { ImagingInputError } from '../../../src/main/imaging/types.js';
import { removeDir, tempDir, toolsAvailable, writeFixture } from './helpers.js';

let root = '';
const dir = (name: string): string => path.join(root, name);
const filesIn = (name: string): string[] =>
  readdirSync(dir(name))
    .sort()
    .map((f) => path.join(dir(name), f));

async function inputError(p: Promise<unknown>): Promise<ImagingInputError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ImagingInputError);
    console.log(`  → ${(e as Error).message.slice(0, 400)}`);
    return e as ImagingInputError;
  }
  throw new Error('expected an ImagingInputError, but the call succeeded');
}

beforeAll(() => {
  const missing = toolsAvailable();
  if (missing.length > 0) throw new Error(`Bad-input DICOM tests need ${missing.join(' and ')}`);
  root = tempDir('nw-dicom-bad-');
  writeFixture('write_synthetic.py', root, 'bad');
});

afterAll(() => {
  if (root) removeDir(root);
});

describe('bad DICOM input', () => {
  it('a truncated file given explicitly is reported by name', async () => {
    const victim = readFileSync(dir('truncated.txt'), 'utf8').trim();
    const e = await inputError(readDicomDwi(filesIn('truncated')));
    expect(e.file).toBe(victim);
    expect(e.message).toContain(victim);
    expect(e.message).toMatch(/truncated/);
  });

  it('a truncated file in a folder fails the scan and the read, naming it', async () => {
    const victim = readFileSync(dir('truncated.txt'), 'utf8').trim();
    const scan = await inputError(scanDicomFolder(dir('truncated')));
    expect(scan.file).toBe(victim);
    expect(scan.message).toMatch(/truncated/);
    const read = await inputError(readDicomDwi(dir('truncated')));
    expect(read.file).toBe(victim);
    const detailed = await scanDicomFolderDetailed(dir('truncated'));
    expect(detailed.problems.map((p) => p.file)).toEqual([victim]);
    expect(detailed.series).toHaveLength(1);
  });

  it('a file truncated inside its pixel data is reported by name', async () => {
    const victim = readFileSync(dir('truncated-pixels.txt'), 'utf8').trim();
    const e = await inputError(readDicomDwi(dir('truncated-pixels')));
    expect(e.file).toBe(victim);
    expect(e.message).toMatch(/truncated: element \(7fe0,0010\) PixelData/);
    expect((await inputError(readDicomDwi(filesIn('truncated-pixels')))).file).toBe(victim);
  });

  it('non-DICOM files in a folder are skipped silently', async () => {
    const series = await scanDicomFolder(dir('with-junk'));
    expect(series).toHaveLength(1);
    expect(series[0]!.files.some((f) => /README|notes/.test(f))).toBe(false);
    const dwi = await readDicomDwi(dir('with-junk'));
    expect(dwi.dims).toEqual([24, 20, 5, 9]);
  });

  it('a non-DICOM file given explicitly is an error naming it', async () => {
    const junk = path.join(dir('with-junk'), 'notes.bin');
    const dicom = filesIn('with-junk').filter((f) => f.endsWith('.dcm'));
    const e = await inputError(readDicomDwi([...dicom, junk]));
    expect(e.file).toBe(junk);
    expect(e.message).toContain(`${junk} is not a DICOM file`);
    const text = path.join(dir('with-junk'), 'README.txt');
    expect((await inputError(readDicomDwi(text))).file).toBe(text);
  });

  it('a non-diffusion series is refused', async () => {
    const e = await inputError(readDicomDwi(dir('no-diffusion')));
    expect(e.message).toMatch(/not a diffusion series/);
    expect(filesIn('no-diffusion')).toContain(e.file);
    const [summary] = await scanDicomFolder(dir('no-diffusion'));
    expect(summary!.isDiffusion).toBe(false);
  });

  it('diffusion-weighted volumes without b-vectors are refused, naming a file', async () => {
    const e = await inputError(readDicomDwi(dir('missing-bvec')));
    expect(e.message).toMatch(/Missing b-vector/);
    expect(e.message).toContain(e.file!);
    const ds = parseDicom(readFileSync(e.file!)).dataset;
    expect(ds.number(TAG.DiffusionBValue)).toBeGreaterThan(0);
    expect(ds.has(TAG.DiffusionGradientOrientation)).toBe(false);
  });

  it('mixed dimensions within a series are refused, naming the odd file', async () => {
    const odd = filesIn('mixed-dims').find((f) => parseDicom(readFileSync(f)).dataset.number(TAG.Rows) !== 20)!;
    const e = await inputError(readDicomDwi(dir('mixed-dims')));
    expect(e.message).toMatch(/Mixed dimensions/);
    expect(e.file).toBe(odd);
    expect(e.message).toContain(odd);
  });

  it('a compressed transfer syntax is named and refused', async () => {
    const file = path.join(dir('jpeg'), 'jpeg.dcm');
    const e = await inputError(readDicomDwi(dir('jpeg')));
    expect(e.file).toBe(file);
    expect(e.message).toContain('1.2.840.10008.1.2.4.50');
    expect(e.message).toMatch(/not supported/);
    expect((await inputError(readDicomDwi([file]))).message).toContain('1.2.840.10008.1.2.4.50');
  });

  it('an inconsistent volume count is refused', async () => {
    const removed = readFileSync(dir('incomplete.txt'), 'utf8').trim();
    const e = await inputError(readDicomDwi(dir('incomplete')));
    expect(e.message).toMatch(/Inconsistent volume count/);
    expect(filesIn('incomplete')).toContain(e.file);
    expect(e.message).toContain(e.file!);
    expect(filesIn('incomplete')).not.toContain(removed);
  });

  it('several series and none chosen: the error lists them; choosing one reads it', async () => {
    const e = await inputError(readDicomDwi(dir('two-series')));
    expect(e.message).toMatch(/2 DICOM series; choose one/);
    const series = await scanDicomFolder(dir('two-series'));
    expect(series).toHaveLength(2);
    for (const s of series) expect(e.message).toContain(s.seriesInstanceUid);
    const dwi = series.find((s) => s.isDiffusion)!;
    const read = await readDicomDwi(dir('two-series'), { seriesInstanceUid: dwi.seriesInstanceUid });
    expect(read.dims).toEqual([24, 20, 5, 9]);
    expect(read.source.files.every((f) => path.basename(f).startsWith('A'))).toBe(true);
    const other = series.find((s) => !s.isDiffusion)!;
    expect((await inputError(readDicomDwi(dir('two-series'), { seriesInstanceUid: other.seriesInstanceUid }))).message).toMatch(/not a diffusion series/);
    expect((await inputError(readDicomDwi(dir('two-series'), { seriesInstanceUid: '1.2.3.4' }))).message).toMatch(/not in/);
  });

  it('a folder that does not exist is an input error', async () => {
    const missing = dir('no-such-folder');
    expect((await inputError(readDicomDwi(missing))).file).toBe(missing);
    expect((await inputError(scanDicomFolder(missing))).file).toBe(missing);
  });
});
