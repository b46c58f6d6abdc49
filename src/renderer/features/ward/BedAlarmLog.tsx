/**
 * The bed view's alarm log: every raise, escalation, priority change, pause, acknowledgement and
 * clearing of the bed's alarms (and of the ward-wide ones) in the last 24 h, newest first, with who
 * and why, from `alarms.log` (the read is audited). Read when the bed opens and again a moment after
 * the bed's active alarms change (the host logs the engine's events a moment after they happen), and
 * with "Reload".
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { ResponseOf } from '../../../shared/ipc.js';
import { call } from '../../api/client.js';
import { errorMessage } from '../../api/errors.js';
import { Alert, formatDateTime } from '../../components/ui.js';
import { useWard } from '../../stores/ward.js';
import { patientLabel, technicalLabel } from './vitals-display.js';

type AlarmLogEvent = ResponseOf<'alarms.log'>['events'][number];

const HOURS = 24;
/** After a change of the bed's alarms: long enough for the host to have logged the event. */
const REFRESH_DELAY_MS = 1500;

const UPDATE_LABEL: Record<string, string> = {
  'priority-raised': 'Priority raised',
  latched: 'Latched: condition over, waits for acknowledgement',
  recurred: 'Recurred',
  'pause-expired': 'Pause ended',
};
const LIMIT_LABEL: Record<string, string> = { hr: 'Heart rate', spo2: 'SpO₂', rr: 'Respiration rate', tempC: 'Temperature', sbp: 'Systolic BP', dbp: 'Diastolic BP' };

export function alarmEventLabel(e: Pick<AlarmLogEvent, 'event' | 'detail' | 'escalationLevel' | 'at' | 'pausedUntil'>): string {
  switch (e.event) {
    case 'raised':
      return 'Raised';
    case 'escalated':
      return `Escalated to ${e.detail ?? 'the next step'} (step ${e.escalationLevel})`;
    case 'acknowledged':
      return 'Acknowledged';
    case 'paused': {
      const s = e.pausedUntil ? Math.round((Date.parse(e.pausedUntil) - Date.parse(e.at)) / 1000) : null;
      return s !== null && Number.isFinite(s) ? `Paused ${s} s` : 'Paused';
    }
    case 'cleared':
      return e.detail === 'acknowledged' ? 'Cleared by the acknowledgement' : e.detail === 'bed-removed' ? 'Cleared: bed removed' : 'Cleared';
    case 'updated':
      return (e.detail && UPDATE_LABEL[e.detail]) || 'Updated';
  }
}

export function alarmConditionLabel(condition: string): string {
  if (condition === 'news2') return 'NEWS2';
  if (condition === 'monitoring-lost') return 'Monitoring lost';
  const limit = /^limit:([A-Za-z0-9]+):(below|above)$/.exec(condition);
  if (limit) return `${LIMIT_LABEL[limit[1] ?? ''] ?? limit[1]} ${limit[2]} limit`;
  return technicalLabel(condition).label;
}

export function BedAlarmLog({ bedKey, patientRef }: { bedKey: string; patientRef: string | null }) {
  const [events, setEvents] = useState<AlarmLogEvent[] | null>(null);
  const [truncated, setTruncated] = useState(false);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const request = useRef(0);
  // Changes whenever one of the bed's (or the ward's) active alarms is raised, changes or clears.
  const signature = useWard((s) =>
    s.alarms
      .filter((a) => a.bedKey === bedKey || a.bedKey === null)
      .map((a) => `${a.id}:${a.priority}:${a.state}:${a.acknowledged ? 1 : 0}:${a.pausedUntil ?? ''}:${a.escalationLevel}`)
      .join('|'),
  );

  const load = useCallback(async () => {
    const mine = ++request.current;
    setLoading(true);
    try {
      const r = await call('alarms.log', { bedKey, hours: HOURS });
      if (mine !== request.current) return;
      setEvents([...r.events].reverse());
      setTruncated(r.truncated);
      setError(null);
    } catch (e) {
      if (mine === request.current) setError(errorMessage(e));
    } finally {
      if (mine === request.current) setLoading(false);
    }
  }, [bedKey]);

  useEffect(() => {
    setEvents(null);
    void load();
  }, [load]);

  const seen = useRef<string | null>(null);
  useEffect(() => {
    if (seen.current === null || seen.current === signature) {
      seen.current = signature;
      return;
    }
    seen.current = signature;
    const timer = setTimeout(() => void load(), REFRESH_DELAY_MS);
    return () => clearTimeout(timer);
  }, [signature, load]);

  return (
    <section className="bed-alarm-log" data-testid="alarm-log" data-events={events?.length ?? ''} aria-busy={loading} aria-labelledby="bed-alarm-log-title">
      <div className="bed-view__head">
        <h2 id="bed-alarm-log-title" className="alarm-panel__title">
          Alarm log <span className="muted small">last {HOURS} h, newest first</span>
        </h2>
        <button type="button" className="btn btn--small btn--ghost" onClick={() => void load()} disabled={loading}>
          Reload log
        </button>
      </div>
      {error ? <Alert tone="error">Could not read the alarm log: {error}</Alert> : null}
      {events && events.length ? (
        <div className="table-scroll">
          <table className="table table--dense">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Event</th>
                <th scope="col">Alarm</th>
                <th scope="col">By, reason</th>
                <th scope="col">NEWS2</th>
              </tr>
            </thead>
            <tbody>
              {events.map((e) => (
                <tr key={e.id} data-testid="alarm-log-row" data-event={e.event} data-alarm-id={e.alarmId} title={e.message}>
                  <td>{formatDateTime(e.at, true)}</td>
                  <td>{alarmEventLabel(e)}</td>
                  <td>
                    <span className={`prio prio--${e.priority}`}>{e.priority}</span> {e.kind === 'technical' ? <span className="kind-tag">technical</span> : null} {alarmConditionLabel(e.condition)}
                    {e.bedKey === null ? <span className="muted small"> · whole ward</span> : null}
                    {e.patientRef !== patientRef && e.bedKey !== null ? <span className="muted small"> · {patientLabel(e.patientRef)}</span> : null}
                  </td>
                  <td className="detail">{e.by ? `${e.by}: ${e.reason ?? ''}` : '—'}</td>
                  <td>{e.news2 ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {events && !events.length && !error ? <p className="muted small">No alarm events in the last {HOURS} h.</p> : null}
      {truncated ? <p className="muted small">Only the newest events are shown.</p> : null}
    </section>
  );
}
