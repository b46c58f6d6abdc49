/**
 * The imaging-io worker (io-job.ts, run by io-client.ts from dist/workers/imaging-io.cjs): what the app
 * reads off its main thread comes back as the in-process reader gives it, on shared memory, and bad
 * input is still an ImagingInputError naming the file.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readDicomDwiSync } from '../../src/main/imaging/dicom/index.js';
import { runOnImagingWorker } from '../../src/main/imaging/io-client.js';
import { ImagingInputError } from '../../src/main/imaging/types.js';
import { SHARED_DATA } from './dicom/helpers.js';

const GE = path.join(SHARED_DATA, 'dwi-ge', 'In', '01_Ax_DWI_TENSOR_R2');
const dir = mkdtempSync(path.join(os.tmpdir(), 'nw-io-worker-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the imaging-io worker', () => {
  it('reads a series as the in-process reader does, onto shared memory', async () => {
    const progress: number[] = [];
    const series = await runOnImagingWorker({ op: 'read-dicom', input: GE }, (p) => progress.push(p.fraction));
    const local = readDicomDwiSync(GE);
    expect(series.dims).toEqual([256, 256, 2, 7]);
    expect(series.data.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(Buffer.from(series.data.buffer).equals(Buffer.from(local.data.buffer))).toBe(true);
    expect(series.bvals).toEqual(local.bvals);
    expect(progress.length).toBeGreaterThan(2);
    expect(progress[progress.length - 1]).toBe(1);
    // Mask and contrast on the worker, from the same shared voxels.
    const mask = await runOnImagingWorker({ op: 'brain-mask', series });
    expect(mask.length).toBe(256 * 256 * 2);
    const contrast = await runOnImagingWorker({ op: 'contrast', series, mask });
    // The GE sample's diffusion-weighted volumes equal its b=0 (test/imaging/import-checks.test.ts).
    expect(contrast.status).toBe('absent');
  });

  it('gives bad input back as an ImagingInputError naming the file', async () => {
    writeFileSync(path.join(dir, 'truncated.dcm'), Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), Buffer.from([2, 0, 0x10, 0])]));
    const error = await runOnImagingWorker({ op: 'read-dicom', input: path.join(dir, 'truncated.dcm') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImagingInputError);
    expect((error as ImagingInputError).message).toContain('truncated.dcm');
    expect((error as ImagingInputError).file).toBe(path.join(dir, 'truncated.dcm'));
    const missing = await runOnImagingWorker({ op: 'scan-dicom', dir: path.join(dir, 'nowhere') }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ImagingInputError);
    expect((missing as Error).message).toMatch(/does not exist/);
  });
});
