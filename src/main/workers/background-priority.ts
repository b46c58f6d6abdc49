/**
 * Imaging worker threads run at a lower CPU priority than the main thread, so that on a busy
 * workstation (2 cores: a fit, the ward's MQTT ingest and alarms, the screen) the alarms get the CPU
 * first and the fit takes what is left (bench/ward-load --import, bench/alarm-screen --import).
 *
 * Linux only: there the nice value is a per-thread attribute and setpriority(PRIO_PROCESS, 0) changes
 * the calling thread alone (man 2 setpriority, NOTES; checked here through /proc/self/task/<tid>/stat).
 * On macOS and Windows the same call would lower the whole process, the alarms included, so it is not
 * made there.
 */
import os from 'node:os';

/** Nice value of the imaging workers (0 normal, 19 lowest). */
export const IMAGING_WORKER_NICE = 10;

/** Lowers the calling worker thread's priority (Linux); returns whether it did. */
export function lowerThisThreadPriority(): boolean {
  if (process.platform !== 'linux') return false;
  try {
    os.setPriority(0, IMAGING_WORKER_NICE);
    return true;
  } catch {
    // Not permitted (a sandbox): the worker runs at normal priority.
    return false;
  }
}
