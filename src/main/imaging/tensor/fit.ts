/**
 * DTI tensor fit of a DwiSeries: DIPY 1.6 `TensorModel(gtab, fit_method='WLS')` (see design.ts),
 * run over worker threads that share the series and the output maps through SharedArrayBuffers.
 *
 * Workers: each runs the real entry file fit.worker.ts (its job: fit-job.ts), bundled by esbuild to
 * dist/workers/tensor-fit.cjs and located at run time by src/main/workers/locate.ts, from the bundles,
 * from the sources under vitest and inside an Electron asar alike. Workers take slices from a shared
 * atomic counter until none are left, so a slice-heavy mask does not leave one core idle.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { workerFile } from '../../workers/locate.js';
import { otsuBrainMask, type OtsuMaskOptions } from '../mask.js';
import { ImagingInputError, type DwiSeries, type ProgressReporter, type TensorMaps } from '../types.js';
import { buildTensorPlan, type TensorPlan } from './design.js';
import type { FitWorkerData, FitWorkerMessage } from './fit-job.js';
import { fitTensorSlices, type KernelInput } from './kernel.js';

export interface FitTensorsOptions {
  /**
   * Which voxels to fit: a Uint8Array of nx*ny*nz (non-zero = fit), 'otsu' (median filter + Otsu on the
   * mean b0, see mask.ts; the default) or 'none' (every voxel).
   */
  mask?: Uint8Array | 'otsu' | 'none';
  /** Options of the 'otsu' mask. */
  maskOptions?: OtsuMaskOptions;
  /** Worker threads (default: the machine's available parallelism, at most one per slice). 0 = fit in this thread. */
  workers?: number;
  onProgress?: ProgressReporter;
  /** Aborting terminates the workers and rejects with the signal's reason. */
  signal?: AbortSignal;
}

function sharedFloat32(length: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(length * 4));
}

function checkSeries(series: DwiSeries): void {
  const file = series.source?.files?.[0] ?? null;
  const [nx, ny, nz, nvol] = series.dims;
  if (![nx, ny, nz, nvol].every((n) => Number.isInteger(n) && n >= 1))
    throw new ImagingInputError(`bad series dimensions [${series.dims.join('×')}]`, file);
  if (series.data.length !== nx * ny * nz * nvol)
    throw new ImagingInputError(
      `series data has ${series.data.length} values but [${series.dims.join('×')}] needs ${nx * ny * nz * nvol}`,
      file,
    );
  if (series.bvals.length !== nvol || series.bvecs.length !== nvol)
    throw new ImagingInputError(
      `the series has ${nvol} volumes but ${series.bvals.length} b-values and ${series.bvecs.length} gradient directions`,
      file,
    );
}

/**
 * Fit the diffusion tensor in every voxel of the mask and return FA, MD, AD, RD (mm²/s), V1 and colour
 * FA; voxels outside the mask are 0. The maps (and `mask`) live on SharedArrayBuffers, which the
 * workers wrote in place; `.slice()` gives an ordinary copy where one is needed (e.g. Electron IPC).
 * Throws ImagingInputError for a series that cannot be fitted (counts, too few volumes, gradient table
 * without 6 independent directions).
 */
export async function fitTensors(series: DwiSeries, options: FitTensorsOptions = {}): Promise<TensorMaps> {
  checkSeries(series);
  options.signal?.throwIfAborted();
  const [nx, ny, nz] = series.dims;
  const nvox = nx * ny * nz;
  const report = options.onProgress ?? (() => undefined);
  const plan: TensorPlan = buildTensorPlan(series.bvals, series.bvecs, { file: series.source?.files?.[0] ?? null });

  // Mask, on shared memory.
  const maskOpt = options.mask ?? 'otsu';
  const mask = new Uint8Array(new SharedArrayBuffer(nvox));
  let kernelMask: Uint8Array | null = mask;
  if (maskOpt === 'none') {
    mask.fill(1);
    kernelMask = null;
  } else if (maskOpt === 'otsu') {
    report({ stage: 'mask', fraction: 0, message: 'Otsu brain mask' });
    mask.set(otsuBrainMask(series, options.maskOptions));
    report({ stage: 'mask', fraction: 1 });
  } else {
    if (maskOpt.length !== nvox)
      throw new ImagingInputError(`the mask has ${maskOpt.length} voxels but the series has ${nvox}`, series.source?.files?.[0] ?? null);
    for (let i = 0; i < nvox; i++) mask[i] = maskOpt[i] ? 1 : 0;
  }

  // The series on shared memory (no copy when the reader already put it there).
  let data = series.data;
  if (!(data.buffer instanceof SharedArrayBuffer)) {
    const shared = sharedFloat32(data.length);
    shared.set(data);
    data = shared;
  }
  const input: KernelInput = {
    plan,
    dims: [nx, ny, nz],
    data,
    mask: kernelMask,
    fa: sharedFloat32(nvox),
    md: sharedFloat32(nvox),
    ad: sharedFloat32(nvox),
    rd: sharedFloat32(nvox),
    v1: sharedFloat32(nvox * 3),
    colourFa: sharedFloat32(nvox * 3),
  };

  let done = 0;
  const sliceDone = () => {
    done++;
    report({ stage: 'fit', fraction: done / nz, message: `slice ${done} of ${nz}` });
  };
  report({ stage: 'fit', fraction: 0, message: `fitting ${nvox} voxels` });

  const workers = Math.max(0, Math.min(options.workers ?? availableParallelism(), nz));
  const inThread = () => {
    let next = 0;
    done = 0;
    fitTensorSlices(input, () => next++, sliceDone);
  };
  if (workers === 0) inThread();
  else {
    try {
      await fitOnWorkers(input, workers, sliceDone, options.signal);
    } catch (err) {
      // No worker threads here (e.g. a sandbox that forbids them): the same kernel in this thread.
      if (!(err instanceof WorkerSpawnError)) throw err;
      inThread();
    }
  }

  return {
    dims: [nx, ny, nz],
    pixdim: [...series.pixdim],
    affine: series.affine.map((row) => [...row]) as TensorMaps['affine'],
    mask,
    fa: input.fa,
    md: input.md,
    ad: input.ad,
    rd: input.rd,
    v1: input.v1,
    colourFa: input.colourFa,
  };
}

class WorkerSpawnError extends Error {}

/**
 * Runs the kernel on `count` worker threads over `input` (whose output maps must be on
 * SharedArrayBuffers) and resolves when every slice is done; `sliceDone` is called once per slice, in
 * this thread. Rejects when a worker reports an error or exits early (the other workers are
 * terminated), and with the signal's reason on abort. Throws WorkerFileMissingError, naming
 * `npm run build`, when dist/workers/tensor-fit.cjs is not there: the fit does not fall back to this
 * thread then, since that would stall the main process (ward monitoring) for the whole fit on an
 * incomplete build. Exported for the tests; the API is fitTensors.
 */
export function fitOnWorkers(input: KernelInput, count: number, sliceDone: () => void, signal?: AbortSignal): Promise<void> {
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const workerData: FitWorkerData = { input, counter };
  return new Promise<void>((resolve, reject) => {
    const file = workerFile('tensor-fit'); // throwing here rejects
    const pool: Worker[] = [];
    let finished = 0;
    let settled = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      for (const w of pool) void w.terminate();
      reject(err);
    };
    const onAbort = () => fail(signal?.reason ?? new Error('aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    for (let k = 0; k < count; k++) {
      let worker: Worker;
      try {
        worker = new Worker(file, { workerData });
      } catch (err) {
        fail(new WorkerSpawnError(String(err)));
        return;
      }
      pool.push(worker);
      let ok = false;
      worker.on('message', (msg: FitWorkerMessage) => {
        if (msg.type === 'slice') sliceDone();
        else if (msg.type === 'done') {
          ok = true;
          if (++finished === count && !settled) {
            settled = true;
            signal?.removeEventListener('abort', onAbort);
            resolve();
          }
        } else if (msg.type === 'error') fail(new Error(`tensor fit worker failed: ${msg.message}`));
      });
      // An uncaught error in the thread (fit-job.ts catches the kernel's): e.g. a bundle that fails to load.
      worker.on('error', (err) => fail(new Error(`tensor fit worker failed: ${err.message}`, { cause: err })));
      worker.on('exit', (code) => {
        if (!ok) fail(new Error(`tensor fit worker exited with code ${code} before finishing`));
      });
    }
  });
}
