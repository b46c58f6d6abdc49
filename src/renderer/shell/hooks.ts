/** Side effects that run while someone is signed in and unlocked. */
import { useEffect, useState } from 'react';
import type { SessionInfo } from '../../shared/ipc.js';
import { call } from '../api/client.js';
import { refreshStatus } from '../stores/app.js';
import { CONNECTIVITY_POLL_MS, fetchConnectivity } from '../stores/connectivity.js';

export const TOUCH_INTERVAL_MS = 30_000;
const ACTIVITY_EVENTS = ['keydown', 'mousedown', 'mousemove', 'pointerdown', 'wheel', 'touchstart'] as const;

/**
 * Sends auth.touch at most once every 30 s while there is keyboard/mouse/pointer activity, so the
 * host's idle lock fires only when nobody is working. If the host's lock notice were missed, a local
 * check re-reads the status once the idle time has passed.
 */
export function useActivityHeartbeat(session: SessionInfo | null): void {
  const active = !!session && !session.locked;
  const idleLockMs = session?.idleLockMs ?? 0;
  const token = session?.token;
  useEffect(() => {
    if (!active) return;
    let lastTouch = Date.now();
    let lastActivity = Date.now();
    const onActivity = () => {
      const now = Date.now();
      lastActivity = now;
      if (now - lastTouch >= TOUCH_INTERVAL_MS) {
        lastTouch = now;
        call('auth.touch', {}).catch(() => {
          // A refusal (locked, expired) is handled by the global error reaction.
        });
      }
    };
    for (const name of ACTIVITY_EVENTS) window.addEventListener(name, onActivity, { capture: true, passive: true });
    const idleCheck =
      idleLockMs > 0
        ? setInterval(() => {
            if (Date.now() - lastActivity > idleLockMs + 5_000) void refreshStatus();
          }, 15_000)
        : null;
    return () => {
      for (const name of ACTIVITY_EVENTS) window.removeEventListener(name, onActivity, { capture: true });
      if (idleCheck) clearInterval(idleCheck);
    };
  }, [active, idleLockMs, token]);
}

/** Polls system.connectivity every 30 s while signed in and unlocked. */
export function useConnectivityPolling(active: boolean): void {
  useEffect(() => {
    if (!active) return;
    void fetchConnectivity();
    const timer = setInterval(() => void fetchConnectivity(), CONNECTIVITY_POLL_MS);
    return () => clearInterval(timer);
  }, [active]);
}

/** Re-renders every `ms` (for countdowns). */
export function useNow(ms: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms, setNow]);
  return now;
}
