/**
 * Worker-thread entry of the AI read, bundled to dist/workers/analysis.cjs (scripts/workers.mjs; located
 * by src/main/workers/locate.ts) and started by analysis-client.ts, one thread per read. At a lower
 * priority than the main thread, like the imaging workers, so the ward's alarms keep the CPU first.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { lowerThisThreadPriority } from '../workers/background-priority.js';
import { runAnalysisJob } from './analysis-job.js';

if (isMainThread || !parentPort) throw new Error('analysis.worker.ts is the entry of a worker thread: start it with new Worker(), see analysis-client.ts');
lowerThisThreadPriority();
void runAnalysisJob(parentPort, workerData).then(() => parentPort?.close());
