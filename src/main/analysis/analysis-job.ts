/**
 * The AI read as one job of the `analysis` worker thread (analysis.worker.ts, started by
 * analysis-client.ts): the pipeline (pipeline.ts) with its progress posted as messages, cancelled by a
 * `cancel` message from the thread that started it. The series arrives on shared memory (no copy); the
 * result goes back as plain data (typed arrays, no tfjs objects).
 */
import type { MessagePort } from 'node:worker_threads';
import type { DwiSeries } from '../imaging/types.js';
import { ImagingInputError } from '../imaging/types.js';
import { isBackendName, type BackendName } from './backends.js';
import { analyzeSeries, type AnalysisResult, type StageProgress } from './pipeline.js';

export interface AnalysisRequest {
  series: DwiSeries;
  /** The model folder (model.json, weights.bin, manifest.json). */
  modelDir: string;
  backend?: BackendName | undefined;
  fitWorkers?: number | undefined;
  batchSize?: number | undefined;
}

/** From the starting thread to the job. */
export type AnalysisControl = { type: 'cancel'; reason: string };

/** From the job to the starting thread. */
export type AnalysisMessage =
  | ({ type: 'progress' } & StageProgress)
  | { type: 'result'; value: AnalysisResult }
  | { type: 'cancelled'; reason: string }
  | { type: 'error'; name: string; message: string; file: string | null };

/** Thrown in the job when a cancel message arrives; reported as `cancelled`. */
export class AnalysisCancelledError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'AnalysisCancelledError';
  }
}

function isRequest(value: unknown): value is AnalysisRequest {
  const r = value as Partial<AnalysisRequest> | null;
  return (
    typeof r?.modelDir === 'string' &&
    r.series?.data instanceof Float32Array &&
    Array.isArray(r.series.dims) &&
    (r.backend === undefined || isBackendName(r.backend))
  );
}

/** Runs the request; posts progress, then exactly one of result / cancelled / error. */
export async function runAnalysisJob(port: Pick<MessagePort, 'postMessage' | 'on'>, data: unknown): Promise<void> {
  const post = (message: AnalysisMessage) => port.postMessage(message);
  const controller = new AbortController();
  port.on('message', (message: AnalysisControl) => {
    if (message?.type === 'cancel') controller.abort(new AnalysisCancelledError(message.reason));
  });
  try {
    if (!isRequest(data)) throw new Error('bad worker data: not an analysis request');
    const value = await analyzeSeries(data.series, {
      model: data.modelDir,
      backend: data.backend,
      fitWorkers: data.fitWorkers,
      batchSize: data.batchSize,
      signal: controller.signal,
      onProgress: (p) => post({ type: 'progress', ...p }),
    });
    post({ type: 'result', value });
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    if (controller.signal.aborted) post({ type: 'cancelled', reason: e.message });
    else {
      const forUser = e instanceof ImagingInputError || e.name === 'ModelFileError';
      post({ type: 'error', name: e.name, message: forUser ? e.message : (e.stack ?? e.message), file: e instanceof ImagingInputError ? e.file : null });
    }
  }
}
