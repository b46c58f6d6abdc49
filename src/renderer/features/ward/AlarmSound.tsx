/**
 * Drives the audible alarm from the alarm list and shows whether it can sound. Until the browser lets
 * audio start (a click or key press on the page), a banner asks for that click: an alarm that cannot
 * be heard must not look as if it could.
 *
 * For tests: `data-testid="alarm-sound"` with `data-playing` = what is sounding (high | medium | none),
 * `data-wanted` = what the alarms call for, `data-audio` = running | suspended | unavailable.
 */
import { useEffect, useSyncExternalStore } from 'react';
import { useNow } from '../../shell/hooks.js';
import { useWard } from '../../stores/ward.js';
import { alarmSounder, wantedTone } from './alarm-sound.js';

const GESTURES = ['pointerdown', 'keydown'] as const;

export function AlarmSound() {
  const alarms = useWard((s) => s.alarms);
  const now = useNow(1000);
  const wanted = wantedTone(alarms, now);
  const sound = useSyncExternalStore(alarmSounder.subscribe, alarmSounder.getSnapshot);

  useEffect(() => {
    alarmSounder.setWanted(wanted);
  }, [wanted]);

  // No silencing when the board closes: AlarmWatch keeps the tone going on every screen.

  // Any gesture on the page may start audio, not only the banner's button.
  useEffect(() => {
    if (sound.audio === 'running') return;
    const onGesture = () => alarmSounder.unlock();
    for (const g of GESTURES) window.addEventListener(g, onGesture, { capture: true });
    // Under a permissive autoplay policy the context can start without a gesture.
    alarmSounder.unlock();
    return () => {
      for (const g of GESTURES) window.removeEventListener(g, onGesture, { capture: true });
    };
  }, [sound.audio]);

  const needsClick = sound.audio === 'suspended';
  return (
    <div className="alarm-sound" data-testid="alarm-sound" data-playing={sound.playing} data-wanted={wanted} data-audio={sound.audio}>
      {needsClick ? (
        <button
          type="button"
          className={`sound-banner${wanted !== 'none' ? ' sound-banner--urgent' : ''}`}
          onClick={() => alarmSounder.unlock()}
          data-testid="sound-banner"
        >
          <SpeakerIcon muted /> Click to enable alarm sound
        </button>
      ) : sound.audio === 'unavailable' ? (
        <span className="sound-state sound-state--off" role="alert">
          Alarm sound unavailable in this browser — watch the alarm list
        </span>
      ) : (
        <span className={`sound-state sound-state--${sound.playing}`} role="status">
          <SpeakerIcon muted={false} />{' '}
          {sound.playing === 'high' ? 'Sounding: high priority' : sound.playing === 'medium' ? 'Sounding: medium priority' : 'Alarm sound on'}
        </span>
      )}
    </div>
  );
}

function SpeakerIcon({ muted }: { muted: boolean }) {
  return (
    <svg className="speaker-icon" width="16" height="16" viewBox="0 0 16 16" aria-hidden="true" focusable="false">
      <path d="M2 6h3l4-3.5v11L5 10H2z" fill="currentColor" />
      {muted ? (
        <path d="M11 5.5l4 5M15 5.5l-4 5" stroke="currentColor" strokeWidth="1.6" strokeLinecap="round" />
      ) : (
        <path d="M11 5.2a4 4 0 0 1 0 5.6M12.8 3.5a6.4 6.4 0 0 1 0 9" stroke="currentColor" strokeWidth="1.4" fill="none" strokeLinecap="round" />
      )}
    </svg>
  );
}
