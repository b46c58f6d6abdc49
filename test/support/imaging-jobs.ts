/** Waiting for an import started through the dispatcher: its `imaging.job` events arrive on the connection. */
import type { ImagingJob } from '../../src/shared/ipc.js';
import type { TestConnection } from './harness.js';

/** The job's final state (done or failed), from the events pushed to `connection`. */
export async function finishedJob(connection: TestConnection, jobId: string, timeoutMs = 90_000): Promise<ImagingJob> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const done = connection.events.map((e) => e.payload as ImagingJob).find((job) => job?.id === jobId && job.state !== 'running');
    if (done) return done;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`import ${jobId} did not finish in ${timeoutMs} ms`);
}
