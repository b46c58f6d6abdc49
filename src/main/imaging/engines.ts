/** The readers and the tensor fit behind the imaging service and the CLI. */
import type { ImagingEngines } from './imaging-service.js';
import { readDicomDwi, scanDicomFolder } from './dicom/index.js';
import { readNiftiDwi } from './fsl-gradients.js';
import { fitTensors } from './tensor/index.js';

export function defaultImagingEngines(): ImagingEngines {
  return {
    scanDicomFolder,
    readDicomDwi: (dir, options) => readDicomDwi(dir, options),
    readNiftiDwi,
    fitTensors: (series, options) => fitTensors(series, options),
  };
}
