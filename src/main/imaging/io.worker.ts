/**
 * Worker-thread entry of the imaging reads and the per-series checks, bundled to
 * dist/workers/imaging-io.cjs (scripts/workers.mjs; located by src/main/workers/locate.ts) and started
 * by io-client.ts, one thread per request. The job itself is io-job.ts.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { runImagingIoJob } from './io-job.js';
import { lowerThisThreadPriority } from '../workers/background-priority.js';

if (isMainThread || !parentPort) throw new Error('io.worker.ts is the entry of a worker thread: start it with new Worker(), see io-client.ts');
lowerThisThreadPriority();
void runImagingIoJob(parentPort, workerData);
