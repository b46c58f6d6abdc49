/**
 * The imaging work that would block an event loop for long — reading a DICOM or NIfTI series, scanning a
 * folder of thousands of files, the brain mask's median filter, the diffusion-contrast check — as one
 * job of the `imaging-io` worker thread (io.worker.ts, started by io-client.ts). The readers are
 * synchronous (one blocking read per file is several times faster than the promise API for thousands of
 * small files); here they block only this worker's thread, never the main process's loop, where MQTT
 * ingest and the ward's alarms run.
 *
 * Series data travels on a SharedArrayBuffer: the worker that reads it and every later step (mask,
 * contrast, the tensor fit's workers) see the same memory, with no copy.
 */
import type { MessagePort } from 'node:worker_threads';
import { readDicomDwiSync, scanDicomFolderSync } from './dicom/index.js';
import { readNiftiDwi } from './fsl-gradients.js';
import { otsuBrainMask } from './mask.js';
import { diffusionContrast, type DiffusionContrast } from './contrast.js';
import { ImagingInputError, type DwiSeries, type ProgressReporter, type SeriesSummary } from './types.js';

export type ImagingIoRequest =
  | { op: 'scan-dicom'; dir: string }
  | { op: 'read-dicom'; input: string; seriesInstanceUid?: string | undefined }
  | { op: 'read-nifti'; nii: string; bval: string; bvec: string }
  | { op: 'brain-mask'; series: DwiSeries }
  | { op: 'contrast'; series: DwiSeries; mask: Uint8Array | null };

/** What each request resolves to. */
export interface ImagingIoResults {
  'scan-dicom': SeriesSummary[];
  'read-dicom': DwiSeries;
  'read-nifti': DwiSeries;
  'brain-mask': Uint8Array;
  contrast: DiffusionContrast;
}

export type ImagingIoMessage =
  | { type: 'progress'; stage: string; fraction: number; message?: string | undefined }
  | { type: 'result'; value: ImagingIoResults[ImagingIoRequest['op']] }
  | { type: 'error'; name: string; message: string; file: string | null };

/** The series' voxels on shared memory (a copy only when they are not there yet). */
export function onSharedMemory(series: DwiSeries): DwiSeries {
  if (series.data.buffer instanceof SharedArrayBuffer) return series;
  const data = new Float32Array(new SharedArrayBuffer(series.data.byteLength));
  data.set(series.data);
  return { ...series, data };
}

async function run(request: ImagingIoRequest, onProgress: ProgressReporter): Promise<ImagingIoResults[ImagingIoRequest['op']]> {
  switch (request.op) {
    case 'scan-dicom':
      return scanDicomFolderSync(request.dir);
    case 'read-dicom':
      return readDicomDwiSync(request.input, { seriesInstanceUid: request.seriesInstanceUid, onProgress });
    case 'read-nifti':
      return onSharedMemory(await readNiftiDwi(request.nii, request.bval, request.bvec));
    case 'brain-mask':
      return otsuBrainMask(request.series);
    case 'contrast':
      return diffusionContrast(request.series, request.mask);
  }
}

function isRequest(value: unknown): value is ImagingIoRequest {
  const op = (value as { op?: unknown } | null)?.op;
  return typeof op === 'string' && ['scan-dicom', 'read-dicom', 'read-nifti', 'brain-mask', 'contrast'].includes(op);
}

/** Runs one request and posts progress, then its result or its error, to `port`. */
export async function runImagingIoJob(port: Pick<MessagePort, 'postMessage'>, data: unknown): Promise<void> {
  const post = (message: ImagingIoMessage) => port.postMessage(message);
  try {
    if (!isRequest(data)) throw new Error(`bad worker data: not an imaging-io request`);
    post({ type: 'result', value: await run(data, (p) => post({ type: 'progress', ...p })) });
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    post({ type: 'error', name: e.name, message: e instanceof ImagingInputError ? e.message : (e.stack ?? e.message), file: e instanceof ImagingInputError ? e.file : null });
  }
}
