/**
 * Runs the AI read (analysis-job.ts) on its own worker thread: progress arrives as messages on this
 * thread's loop; aborting the signal sends the job a cancel message (it stops between stages or CNN
 * batches) and the promise rejects with the signal's reason; a job that does not answer within
 * CANCEL_GRACE_MS is terminated. Errors of bad input or a bad model come back as ImagingInputError /
 * ModelFileError with their message, so callers tell them from failures as they do in-process.
 */
import { Worker } from 'node:worker_threads';
import { onSharedMemory } from '../imaging/io-job.js';
import { ImagingInputError, type DwiSeries } from '../imaging/types.js';
import { workerFile } from '../workers/locate.js';
import type { AnalysisControl, AnalysisMessage, AnalysisRequest } from './analysis-job.js';
import { ModelFileError } from './model/model-check.js';
import type { AnalysisResult, StageProgress } from './pipeline.js';

export const CANCEL_GRACE_MS = 5000;

export interface WorkerAnalyzeOptions extends Omit<AnalysisRequest, 'series'> {
  onProgress?: ((progress: StageProgress) => void) | undefined;
  signal?: AbortSignal | undefined;
}

export function analyzeOnWorker(series: DwiSeries, options: WorkerAnalyzeOptions): Promise<AnalysisResult> {
  return new Promise((resolve, reject) => {
    const { onProgress, signal, ...rest } = options;
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const request: AnalysisRequest = { ...rest, series: onSharedMemory(series) };
    let worker: Worker;
    try {
      worker = new Worker(workerFile('analysis'), { workerData: request });
    } catch (error) {
      reject(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    let settled = false;
    let grace: NodeJS.Timeout | undefined;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = () => {
      const reason: unknown = signal?.reason;
      worker.postMessage({ type: 'cancel', reason: reason instanceof Error ? reason.message : String(reason) } satisfies AnalysisControl);
      grace = setTimeout(() => void worker.terminate(), CANCEL_GRACE_MS);
      settle(() => reject(reason));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (message: AnalysisMessage) => {
      if (message.type === 'progress') {
        if (!settled) onProgress?.({ stage: message.stage, fraction: message.fraction });
      } else if (message.type === 'result') settle(() => resolve(message.value));
      else if (message.type === 'cancelled') settle(() => reject(new Error(`analysis cancelled: ${message.reason}`)));
      else
        settle(() =>
          reject(
            message.name === 'ImagingInputError'
              ? new ImagingInputError(message.message, message.file)
              : message.name === 'ModelFileError'
                ? new ModelFileError(message.message)
                : new Error(`analysis worker failed: ${message.message}`),
          ),
        );
    });
    worker.on('error', (error) => settle(() => reject(new Error(`analysis worker failed: ${error.message}`, { cause: error }))));
    worker.on('exit', (code) => {
      if (grace) clearTimeout(grace);
      settle(() => reject(new Error(`analysis worker exited with code ${code} before it answered`)));
    });
  });
}
