/**
 * Worker-thread entry of the tensor fit, bundled to dist/workers/tensor-fit.cjs (scripts/workers.mjs;
 * located by src/main/workers/locate.ts) and started by fit.ts. The job itself is fit-job.ts.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { runFitWorker } from './fit-job.js';
import { lowerThisThreadPriority } from '../../workers/background-priority.js';

if (isMainThread || !parentPort) throw new Error('fit.worker.ts is the entry of a worker thread: start it with new Worker(), see fit.ts');
lowerThisThreadPriority();
// An error has been reported to the parent: the thread ends with code 1.
if (!runFitWorker(parentPort, workerData)) process.exitCode = 1;
