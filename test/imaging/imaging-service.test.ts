/**
 * The radiologist's import through the real dispatcher: browse, scan, import (real reader, real fit,
 * real encrypted store), progress events, studies, volumes, audit; and the failure paths.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImagingJob } from '../../src/shared/ipc.js';
import { setUpWorkstation, type TestConnection, type Workstation } from '../support/harness.js';
import { finishedJob } from '../support/imaging-jobs.js';
import { sharedData, SHARED_DATA } from '../support/shared-data.js';

let ws: Workstation;
let radiologist: TestConnection;
let junkDir: string;

beforeAll(async () => {
  sharedData('dwi-ge', 'In');
  junkDir = mkdtempSync(path.join(os.tmpdir(), 'nw-junk-'));
  writeFileSync(path.join(junkDir, 'notes.txt'), 'not an image');
  writeFileSync(path.join(junkDir, 'broken.dcm'), Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), Buffer.from([0x02, 0x00, 0x10])]));
  ws = await setUpWorkstation({ imaging: { importRoots: [SHARED_DATA, junkDir] } });
  ({ connection: radiologist } = await ws.signInAs('radiologist'));
});
afterAll(async () => ws?.app.close());

describe('imaging import', () => {
  it('browses only the import roots', async () => {
    const top = await radiologist.ok('imaging.browse', {});
    expect(top.roots).toEqual([SHARED_DATA, junkDir]);
    const ge = await radiologist.ok('imaging.browse', { path: sharedData('dwi-ge', 'In') });
    expect(ge.entries.map((e) => e.name)).toEqual(['01_Ax_DWI_TENSOR_R2', '02_Ax_DWI_TENSOR_R3', '03_Ax_DWI_TENSOR_R1p5']);
    expect((await radiologist.fail('imaging.browse', { path: '/etc' })).code).toBe('forbidden');
    expect((await radiologist.fail('imaging.browse', { path: path.join(SHARED_DATA, '..', '..', 'etc') })).code).toMatch(/forbidden|not-found/);
  });

  it('lists the series of a folder', async () => {
    const { series } = await radiologist.ok('imaging.scan', { path: sharedData('dwi-ge', 'In') });
    expect(series).toHaveLength(3);
    for (const s of series) expect(s).toMatchObject({ manufacturer: expect.stringMatching(/GE/i), isDiffusion: true, volumes: 7 });
  });

  it('imports a GE series: progress, study, FA in [0,1], audit entries', async () => {
    // The sample names patient "dicom", whom this workstation does not know: imported without a patient.
    const job = await radiologist.ok('imaging.import', { path: sharedData('dwi-ge', 'In', '01_Ax_DWI_TENSOR_R2'), mask: true, unlinked: true });
    expect(job.state).toBe('running');
    const done = await finishedJob(radiologist, job.id);
    expect(done.error).toBeNull();
    expect(done).toMatchObject({ state: 'done', fraction: 1 });
    const stages = new Set(radiologist.events.map((e) => (e.payload as ImagingJob).stage));
    expect([...stages]).toEqual(expect.arrayContaining(['reading', 'fitting', 'saving', 'done']));

    const { studies } = await radiologist.ok('imaging.studies', {});
    const study = studies.find((s) => s.id === done.studyId)!;
    expect(study.dims[3]).toBe(7);
    expect(study.bvals).toEqual([0, 1000, 1000, 1000, 1000, 1000, 1000]);
    expect(study.summary.maskedVoxels).toBeGreaterThan(0);

    const fa = await radiologist.ok('imaging.volume', { studyId: study.id, volume: 'fa' });
    const values = new Float32Array(Buffer.from(fa.dataBase64, 'base64').buffer.slice(0));
    expect(values.length).toBe(fa.dims[0] * fa.dims[1] * fa.dims[2]);
    expect(values.every((v) => Number.isFinite(v) && v >= 0 && v <= 1)).toBe(true);
    const colour = await radiologist.ok('imaging.volume', { studyId: study.id, volume: 'colour-fa' });
    expect(colour.components).toBe(3);
    const b0 = await radiologist.ok('imaging.volume', { studyId: study.id, volume: { dwi: 0 } });
    expect(b0.range[1]).toBeGreaterThan(0);

    const { connection: admin } = await ws.signInAs('admin');
    const entries = (await admin.ok('audit.list', { limit: 50 })).entries;
    expect(entries.some((e) => e.action === 'imaging.import' && e.outcome === 'success' && e.entityId === study.id)).toBe(true);
    expect(entries.filter((e) => e.action === 'imaging.read' && e.entityId === study.id).length).toBe(3);
  });

  it('lets a physician view but not import', async () => {
    const { connection: physician } = await ws.signInAs('physician');
    expect((await physician.ok('imaging.studies', {})).studies.length).toBeGreaterThan(0);
    expect((await physician.fail('imaging.import', { path: sharedData('dwi-ge', 'In') })).code).toBe('forbidden');
  });

  it('fails a folder without diffusion DICOM clearly, storing nothing, and stays up', async () => {
    const before = (await radiologist.ok('imaging.studies', {})).studies.length;
    const job = await radiologist.ok('imaging.import', { path: junkDir, mask: true });
    const failed = await finishedJob(radiologist, job.id);
    expect(failed.state).toBe('failed');
    expect(failed.error).toMatch(/broken\.dcm|no DICOM|No DICOM/i);
    expect((await radiologist.ok('imaging.studies', {})).studies.length).toBe(before);
    expect((await radiologist.fail('imaging.import', { path: '/etc/passwd' })).code).toMatch(/forbidden/);
    await radiologist.ok('imaging.jobs', {});
  });
});
