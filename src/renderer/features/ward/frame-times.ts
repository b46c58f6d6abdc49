/**
 * Frame-time measurement for the end-to-end performance run: with `?frametimes=1` in the URL, the
 * ward screen records requestAnimationFrame deltas (ms) into `window.__wardFrameTimes` while it is
 * open. Without the parameter nothing is recorded.
 */
import { useEffect } from 'react';

export function frameTimesRequested(): boolean {
  return new URLSearchParams(window.location.search).get('frametimes') === '1';
}

export function useFrameTimes(): void {
  useEffect(() => {
    if (!frameTimesRequested()) return;
    // Read each frame: a test may replace the array to start a fresh measurement.
    const list = (): number[] => {
      const current: unknown = Reflect.get(window, '__wardFrameTimes');
      if (Array.isArray(current)) return current as number[];
      const fresh: number[] = [];
      Reflect.set(window, '__wardFrameTimes', fresh);
      return fresh;
    };
    list();
    let last: number | null = null;
    let handle = 0;
    const tick = (t: number) => {
      if (last !== null) list().push(t - last);
      last = t;
      handle = requestAnimationFrame(tick);
    };
    handle = requestAnimationFrame(tick);
    return () => cancelAnimationFrame(handle);
  }, []);
}
