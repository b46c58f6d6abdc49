/**
 * The job of one tensor-fit worker thread (its entry file is fit.worker.ts; fit.ts starts the threads):
 * take slices from the shared atomic counter until none are left and fit them with the kernel; the
 * series and the output maps are SharedArrayBuffers the kernel reads and writes in place. Messages to
 * the parent: `slice` after each slice, then `done`, or one `error`.
 *
 * workerData crosses a thread boundary as a structured clone, so it is checked here before the kernel
 * touches it: a wrong length would otherwise make the kernel read past the data silently, and an output
 * array that is not shared would be filled in the worker's own copy only.
 */
import type { MessagePort } from 'node:worker_threads';
import type { TensorPlan } from './design.js';
import { fitTensorSlices, type KernelInput } from './kernel.js';

export interface FitWorkerData {
  input: KernelInput;
  /** Int32Array(1) on a SharedArrayBuffer: the next slice to take, shared by all workers. */
  counter: Int32Array;
}

export type FitWorkerMessage = { type: 'slice'; z: number } | { type: 'done' } | { type: 'error'; message: string };

type TypedArrayConstructor = Float32ArrayConstructor | Float64ArrayConstructor | Int32ArrayConstructor | Uint8ArrayConstructor;

class BadWorkerData extends Error {}

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null) throw new BadWorkerData(`${what} is not an object`);
  return value as Record<string, unknown>;
}

function integer(value: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new BadWorkerData(`${what} must be an integer in [${min}, ${max}], got ${String(value)}`);
  return value;
}

function positive(value: unknown, what: string): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) throw new BadWorkerData(`${what} must be a positive number, got ${String(value)}`);
  return value;
}

function array<T extends TypedArrayConstructor>(value: unknown, type: T, what: string, length: number | null, shared: boolean): InstanceType<T> {
  if (!(value instanceof type)) throw new BadWorkerData(`${what} is not a ${type.name}`);
  if (length !== null && value.length !== length) throw new BadWorkerData(`${what} has ${value.length} values, expected ${length}`);
  if (shared && !(value.buffer instanceof SharedArrayBuffer)) throw new BadWorkerData(`${what} is not on a SharedArrayBuffer`);
  return value as InstanceType<T>;
}

function checkPlan(value: unknown): TensorPlan {
  const plan = record(value, 'input.plan');
  const nvol = integer(plan.nvol, 'plan.nvol', 7);
  integer(plan.nzero, 'plan.nzero', 0, nvol);
  const volOrder = array(plan.volOrder, Int32Array, 'plan.volOrder', nvol, false);
  for (const v of volOrder) integer(v, 'plan.volOrder entry', 0, nvol - 1);
  array(plan.pinvT, Float64Array, 'plan.pinvT', nvol * 7, false);
  array(plan.xr, Float64Array, 'plan.xr', nvol * 6, false);
  array(plan.f4, Float64Array, 'plan.f4', nvol * 15, false);
  if (typeof plan.singleShell !== 'boolean') throw new BadWorkerData('plan.singleShell is not a boolean');
  array(plan.f9, Float64Array, 'plan.f9', plan.singleShell ? nvol * 9 : null, false);
  const monoIndex = array(plan.monoIndex, Int32Array, 'plan.monoIndex', 36, false);
  for (const m of monoIndex) integer(m, 'plan.monoIndex entry', 0, 14);
  array(plan.monoCoef, Float64Array, 'plan.monoCoef', 36, false);
  positive(plan.bscale, 'plan.bscale');
  positive(plan.minSignal, 'plan.minSignal');
  positive(plan.minDiffusivity, 'plan.minDiffusivity');
  return value as TensorPlan;
}

/** Checks the shape of the data fit.ts sends; throws an Error saying what is wrong. */
export function checkFitWorkerData(value: unknown): FitWorkerData {
  const data = record(value, 'workerData');
  const counter = array(data.counter, Int32Array, 'workerData.counter', 1, true);
  const input = record(data.input, 'workerData.input');
  const plan = checkPlan(input.plan);
  if (!Array.isArray(input.dims) || input.dims.length !== 3) throw new BadWorkerData('input.dims must be [nx, ny, nz]');
  const [nx, ny, nz] = input.dims.map((n, i) => integer(n, `input.dims[${i}]`, 1)) as [number, number, number];
  const nvox = nx * ny * nz;
  array(input.data, Float32Array, 'input.data', nvox * plan.nvol, false);
  if (input.mask !== null) array(input.mask, Uint8Array, 'input.mask', nvox, false);
  for (const key of ['fa', 'md', 'ad', 'rd'] as const) array(input[key], Float32Array, `input.${key}`, nvox, true);
  for (const key of ['v1', 'colourFa'] as const) array(input[key], Float32Array, `input.${key}`, nvox * 3, true);
  return { input: input as unknown as KernelInput, counter };
}

/** The worker's whole job: false when it failed (and said why in an `error` message). */
export function runFitWorker(port: Pick<MessagePort, 'postMessage'>, data: unknown): boolean {
  const post = (message: FitWorkerMessage) => port.postMessage(message);
  try {
    const { input, counter } = checkFitWorkerData(data);
    fitTensorSlices(
      input,
      () => Atomics.add(counter, 0, 1),
      (z) => post({ type: 'slice', z }),
    );
    post({ type: 'done' });
    return true;
  } catch (error) {
    const message = error instanceof BadWorkerData ? `bad worker data: ${error.message}` : error instanceof Error ? (error.stack ?? error.message) : String(error);
    post({ type: 'error', message });
    return false;
  }
}
