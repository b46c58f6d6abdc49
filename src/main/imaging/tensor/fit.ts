/**
 * DTI tensor fit of a DwiSeries: DIPY 1.6 `TensorModel(gtab, fit_method='WLS')` (see design.ts),
 * run over worker threads that share the series and the output maps through SharedArrayBuffers.
 *
 * Workers: each worker runs the kernel's own source (`fitTensorSlices.toString()`) as an eval worker,
 * so there is no separate worker file to bundle or resolve: the same code path works from the
 * TypeScript sources under vitest, from the esbuild bundle (dist/main/*.js) and inside an Electron
 * asar. Workers take slices from a shared atomic counter until none are left, so a slice-heavy mask
 * does not leave one core idle.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { otsuBrainMask, type OtsuMaskOptions } from '../mask.js';
import { ImagingInputError, type DwiSeries, type ProgressReporter, type TensorMaps } from '../types.js';
import { buildTensorPlan, type TensorPlan } from './design.js';
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

let workerSource: string | null = null;
function getWorkerSource(): string {
  // A bundler's keepNames wraps the kernel's inner functions in its name helper (esbuild's `__name`,
  // renamed when minified). The worker defines `__name` and, should the kernel stop on another
  // undefined helper before taking its first slice, defines that one as the identity and starts over.
  workerSource ??= `'use strict';
const { parentPort, workerData } = require('node:worker_threads');
var __name = (f) => f;
const fitTensorSlices = (${fitTensorSlices.toString()});
const counter = workerData.counter;
for (let attempt = 0; ; attempt++) {
  let taken = 0;
  try {
    fitTensorSlices(
      workerData.input,
      () => (taken++, Atomics.add(counter, 0, 1)),
      (z) => parentPort.postMessage({ type: 'slice', z }),
    );
    parentPort.postMessage({ type: 'done' });
    break;
  } catch (err) {
    const missing = err instanceof ReferenceError && /^([\\w$]+) is not defined$/.exec(err.message);
    if (missing && taken === 0 && attempt < 8) {
      globalThis[missing[1]] = (f) => f;
      continue;
    }
    parentPort.postMessage({ type: 'error', message: String((err && err.stack) || err) });
    break;
  }
}
`;
  return workerSource;
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
      await runWorkers(input, workers, sliceDone, options.signal);
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

function runWorkers(input: KernelInput, count: number, sliceDone: () => void, signal?: AbortSignal): Promise<void> {
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const source = getWorkerSource();
  return new Promise<void>((resolve, reject) => {
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
        worker = new Worker(source, { eval: true, workerData: { input, counter } });
      } catch (err) {
        fail(new WorkerSpawnError(String(err)));
        return;
      }
      pool.push(worker);
      let ok = false;
      worker.on('message', (msg: { type: string; message?: string }) => {
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
      worker.on('error', fail);
      worker.on('exit', (code) => {
        if (!ok) fail(new Error(`tensor fit worker exited with code ${code} before finishing`));
      });
    }
  });
}
