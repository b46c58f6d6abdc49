/**
 * Keeps ward alarms audible wherever the nurse is: on any screen of the app and on the lock screen,
 * not only while the ward board is open. Mounted once by the app for roles that see vitals; the ward
 * board's AlarmSound shows the detail; this shows, on every screen, that an alarm is sounding.
 */
import { useEffect, useSyncExternalStore } from 'react';
import { useNow } from '../../shell/hooks.js';
import { fetchBoard, startWard, useWard } from '../../stores/ward.js';
import { alarmSounder, wantedTone } from './alarm-sound.js';

const GESTURES = ['pointerdown', 'keydown'] as const;

/** `usable`: the session is neither locked nor waiting for a password change, so the board can load. */
export function AlarmWatch({ usable }: { usable: boolean }) {
  const alarms = useWard((s) => s.alarms);
  const now = useNow(1000);
  const wanted = wantedTone(alarms, now);
  const sound = useSyncExternalStore(alarmSounder.subscribe, alarmSounder.getSnapshot);

  useEffect(() => startWard(), []);
  useEffect(() => {
    if (usable && useWard.getState().status !== 'ready') void fetchBoard();
  }, [usable]);
  useEffect(() => {
    alarmSounder.setWanted(wanted);
  }, [wanted]);
  // Signed out, or a role that does not see vitals: silence.
  useEffect(() => () => alarmSounder.setWanted('none'), []);
  useEffect(() => {
    const onGesture = () => alarmSounder.unlock();
    for (const g of GESTURES) window.addEventListener(g, onGesture, { capture: true });
    return () => {
      for (const g of GESTURES) window.removeEventListener(g, onGesture, { capture: true });
    };
  }, []);
  return (
    <a
      href="#/ward"
      className={`alarm-pill alarm-pill--${sound.playing}`}
      data-testid="alarm-watch"
      data-playing={sound.playing}
      hidden={sound.playing === 'none'}
      aria-live="assertive"
    >
      {sound.playing === 'high' ? 'High-priority alarm sounding — open Ward' : sound.playing === 'medium' ? 'Medium-priority alarm sounding — open Ward' : ''}
    </a>
  );
}
