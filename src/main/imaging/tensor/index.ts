/** DTI tensor fit: DIPY-equivalent WLS over worker threads, and writing its maps as NIfTI. */
export { fitTensors, type FitTensorsOptions } from './fit.js';
export { buildTensorPlan, designMatrix, MIN_POSITIVE_SIGNAL, type TensorPlan } from './design.js';
export { deinterleave3, writeTensorMaps, type WrittenTensorMaps } from './write-maps.js';
