/**
 * Runs an imaging-io request (io-job.ts) on its own worker thread and resolves with its result; progress
 * arrives on this thread's loop as messages. An ImagingInputError raised in the worker is raised here
 * as one (same message and file), so callers tell bad input from failures as they do in-process.
 */
import { Worker } from 'node:worker_threads';
import { workerFile } from '../workers/locate.js';
import type { ImagingIoMessage, ImagingIoRequest, ImagingIoResults } from './io-job.js';
import { ImagingInputError, type ProgressReporter } from './types.js';

export function runOnImagingWorker<R extends ImagingIoRequest>(request: R, onProgress?: ProgressReporter): Promise<ImagingIoResults[R['op']]> {
  return new Promise((resolve, reject) => {
    let worker: Worker;
    try {
      worker = new Worker(workerFile('imaging-io'), { workerData: request });
    } catch (error) {
      reject(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
    };
    worker.on('message', (message: ImagingIoMessage) => {
      if (message.type === 'progress') onProgress?.(message);
      else if (message.type === 'result') settle(() => resolve(message.value as ImagingIoResults[R['op']]));
      else
        settle(() =>
          reject(message.name === 'ImagingInputError' ? new ImagingInputError(message.message, message.file) : new Error(`imaging worker (${request.op}) failed: ${message.message}`)),
        );
    });
    worker.on('error', (error) => settle(() => reject(new Error(`imaging worker (${request.op}) failed: ${error.message}`, { cause: error }))));
    worker.on('exit', (code) => settle(() => reject(new Error(`imaging worker (${request.op}) exited with code ${code} before it answered`))));
  });
}
