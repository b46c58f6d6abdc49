/**
 * The readers, the checks and the tensor fit behind the imaging service and the CLI.
 *
 * defaultImagingEngines (the app): every step that takes long runs off the calling thread — reads,
 * folder scans, the brain mask and the contrast check on an imaging-io worker (io-job.ts), the fit on
 * the tensor-fit workers — so the main process's loop keeps serving MQTT ingest and alarms during an
 * import. inProcessImagingEngines (the CLI, whose thread has nothing else to do): the same code called
 * directly, without the workers' start-up.
 */
import type { ImagingEngines } from './imaging-service.js';
import { readDicomDwi, scanDicomFolder } from './dicom/index.js';
import { readNiftiDwi } from './fsl-gradients.js';
import { diffusionContrast } from './contrast.js';
import { fitTensors } from './tensor/index.js';
import { runOnImagingWorker } from './io-client.js';
import { onSharedMemory } from './io-job.js';
import { availableParallelism } from 'node:os';

/**
 * Fit workers in the app. On Linux the imaging workers run at a lower priority than the main thread
 * (workers/background-priority.ts), so the fit may use every core and the main process's loop (MQTT
 * ingest, the alarm engine) still gets the CPU first; elsewhere every core but one, so that it keeps a
 * core while a study is fitted (bench/ward-load --import).
 */
function appFitWorkers(): number {
  const cores = availableParallelism();
  return process.platform === 'linux' ? cores : Math.max(1, cores - 1);
}

export function defaultImagingEngines(): ImagingEngines {
  return {
    scanDicomFolder: (dir) => runOnImagingWorker({ op: 'scan-dicom', dir }),
    readDicomDwi: (input, options) => runOnImagingWorker({ op: 'read-dicom', input, seriesInstanceUid: options.seriesInstanceUid }, options.onProgress),
    readNiftiDwi: (nii, bval, bvec) => runOnImagingWorker({ op: 'read-nifti', nii, bval, bvec }),
    fitTensors: async (input, options) => {
      const series = onSharedMemory(input);
      if (options.mask === 'none') return fitTensors(series, { mask: 'none', workers: appFitWorkers(), onProgress: options.onProgress });
      options.onProgress?.({ stage: 'mask', fraction: 0, message: 'Otsu brain mask' });
      const mask = await runOnImagingWorker({ op: 'brain-mask', series });
      options.onProgress?.({ stage: 'mask', fraction: 1 });
      return fitTensors(series, { mask, workers: appFitWorkers(), onProgress: options.onProgress });
    },
    diffusionContrast: (series, mask) => runOnImagingWorker({ op: 'contrast', series: onSharedMemory(series), mask }),
  };
}

export function inProcessImagingEngines(): ImagingEngines {
  return {
    scanDicomFolder,
    readDicomDwi: (dir, options) => readDicomDwi(dir, options),
    readNiftiDwi,
    fitTensors: (series, options) => fitTensors(series, options),
    diffusionContrast: async (series, mask) => diffusionContrast(series, mask),
  };
}
