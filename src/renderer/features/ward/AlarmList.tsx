/**
 * Active alarms, high priority first and unacknowledged first within a priority. Acknowledge and
 * Pause go through the audited channels and ask why (and, for a pause, for how long: at most 120 s).
 */
import { memo, useState, type FormEvent } from 'react';
import type { AlarmView } from '../../../shared/ipc.js';
import { toApiError } from '../../api/errors.js';
import { Dialog, ErrorAlert, TextField } from '../../components/ui.js';
import { useNow } from '../../shell/hooks.js';
import { acknowledgeAlarm, openBed, pauseAlarm, useWard } from '../../stores/ward.js';
import { bedKeyLabel, formatAge } from './vitals-display.js';
import { ALARM_COUNT_LEGEND, alarmCounts, priorityLabel } from './alarm-counts.js';

type Mode = 'acknowledge' | 'pause';
const MAX_PAUSE_S = 120;
const MIN_PAUSE_S = 10;
const REASONS = ['Patient assessed at bedside', 'Escalated to the doctor', 'Sensor repositioned', 'Known, treatment under way', 'Artefact: patient moving'];

export function AlarmList({ canAct }: { canAct: boolean }) {
  const alarms = useWard((s) => s.alarms);
  const now = useNow(1000);
  const [action, setAction] = useState<{ mode: Mode; alarm: AlarmView } | null>(null);
  const counts = alarmCounts(alarms, now);

  return (
    <section className="alarm-panel" aria-labelledby="alarm-list-title">
      <h2 id="alarm-list-title" className="alarm-panel__title">
        Alarms{' '}
        <span className="alarm-panel__count" title={ALARM_COUNT_LEGEND} data-testid="alarm-panel-count">
          {counts.active ? `${counts.unacknowledged} unacknowledged · ${counts.active} active` : 'none active'}
        </span>
      </h2>
      <ol className="alarm-list" data-testid="alarm-list" aria-live="polite" aria-relevant="additions">
        {alarms.map((a) => (
          <AlarmRow key={a.id} alarm={a} now={now} canAct={canAct} onAction={setAction} />
        ))}
      </ol>
      {!alarms.length ? <p className="muted small alarm-panel__empty">No active alarms.</p> : null}
      <AlarmActionDialog action={action} onClose={() => setAction(null)} />
    </section>
  );
}

interface RowProps {
  alarm: AlarmView;
  now: number;
  canAct: boolean;
  onAction: (a: { mode: Mode; alarm: AlarmView }) => void;
}

const AlarmRow = memo(function AlarmRow({ alarm: a, now, canAct, onAction }: RowProps) {
  const pausedMs = a.pausedUntil ? Date.parse(a.pausedUntil) - now : 0;
  const paused = pausedMs > 0;
  const acknowledged = a.acknowledged !== null;
  return (
    <li
      className={`alarm-row alarm-row--${a.priority} alarm-row--${a.kind}${acknowledged ? ' alarm-row--acknowledged' : ''}${paused ? ' alarm-row--paused' : ''}`}
      data-testid="alarm-row"
      data-priority={a.priority}
      data-acknowledged={acknowledged ? 'true' : 'false'}
      data-kind={a.kind}
      data-bed={a.bedKey ?? ''}
      data-alarm-id={a.id}
      data-raised-at={a.raisedAt}
    >
      <div className="alarm-row__head">
        <span className={`prio prio--${a.priority}`} data-testid="alarm-priority">
          {priorityLabel(a)}
        </span>
        {a.kind === 'technical' ? <span className="kind-tag">technical</span> : null}
        {a.bedKey ? (
          <button type="button" className="alarm-row__bed" onClick={() => openBed(a.bedKey ?? '')} title="Open this bed">
            {bedKeyLabel(a.bedKey)}
          </button>
        ) : (
          <span className="alarm-row__bed alarm-row__bed--ward">Whole ward</span>
        )}
        <span className="alarm-row__age" title={`Raised ${new Date(a.raisedAt).toLocaleTimeString()}`}>
          {formatAge(now - Date.parse(a.raisedAt))}
        </span>
      </div>
      <p className="alarm-row__message" title={a.message}>
        {a.message}
      </p>
      <div className="alarm-row__meta">
        {a.escalationLevel > 0 ? (
          <span className="meta-tag meta-tag--escalated" title="Escalation steps taken">
            escalation {a.escalationLevel}
          </span>
        ) : (
          <span className="meta-tag">escalation 0</span>
        )}
        {paused ? <span className="meta-tag meta-tag--paused">paused {Math.max(1, Math.round(pausedMs / 1000))} s</span> : null}
        {a.acknowledged ? (
          <span className="meta-tag meta-tag--ack" title={`${a.acknowledged.reason} (${new Date(a.acknowledged.at).toLocaleTimeString()})`}>
            acknowledged by {a.acknowledged.by}: {a.acknowledged.reason}
          </span>
        ) : null}
      </div>
      {canAct && !acknowledged ? (
        <div className="alarm-row__actions">
          <button type="button" className="btn btn--small btn--primary" onClick={() => onAction({ mode: 'acknowledge', alarm: a })}>
            Acknowledge
          </button>
          <button type="button" className="btn btn--small" onClick={() => onAction({ mode: 'pause', alarm: a })}>
            Pause
          </button>
        </div>
      ) : null}
    </li>
  );
});

function AlarmActionDialog({ action, onClose }: { action: { mode: Mode; alarm: AlarmView } | null; onClose: () => void }) {
  return (
    <Dialog title={action?.mode === 'pause' ? 'Pause alarm' : 'Acknowledge alarm'} open={action !== null} onClose={onClose} testId="alarm-action-dialog">
      {action ? <AlarmActionForm key={`${action.mode}:${action.alarm.id}`} mode={action.mode} alarm={action.alarm} onDone={onClose} /> : null}
    </Dialog>
  );
}

function AlarmActionForm({ mode, alarm, onDone }: { mode: Mode; alarm: AlarmView; onDone: () => void }) {
  const [reason, setReason] = useState('');
  const [seconds, setSeconds] = useState('60');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ReturnType<typeof toApiError> | null>(null);
  const [local, setLocal] = useState<{ reason?: string; seconds?: string }>({});

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const problems: { reason?: string; seconds?: string } = {};
    if (reason.trim().length < 3) problems.reason = 'say why in a few words';
    const s = Number(seconds);
    if (mode === 'pause' && (!Number.isInteger(s) || s < MIN_PAUSE_S || s > MAX_PAUSE_S)) problems.seconds = `a whole number from ${MIN_PAUSE_S} to ${MAX_PAUSE_S}`;
    setLocal(problems);
    if (problems.reason || problems.seconds) return;
    setBusy(true);
    setError(null);
    try {
      if (mode === 'pause') await pauseAlarm(alarm.id, reason.trim(), s);
      else await acknowledgeAlarm(alarm.id, reason.trim());
      onDone();
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };

  const fields = error?.fieldErrors() ?? {};
  return (
    <form className="form" onSubmit={(e) => void submit(e)} noValidate>
      <p className="alarm-dialog__what">
        <span className={`prio prio--${alarm.priority}`}>{alarm.priority}</span> {bedKeyLabel(alarm.bedKey)} — {alarm.message}
      </p>
      <TextField
        label="Reason"
        value={reason}
        onChange={setReason}
        error={local.reason ?? fields.reason}
        hint={mode === 'pause' ? 'Recorded in the audit trail with your name.' : 'Recorded in the audit trail with your name. Acknowledging silences this alarm for good.'}
        list="alarm-reasons"
        maxLength={300}
        autoFocus
        required
      />
      <datalist id="alarm-reasons">
        {REASONS.map((r) => (
          <option key={r} value={r} />
        ))}
      </datalist>
      {mode === 'pause' ? (
        <TextField
          label="Seconds"
          type="number"
          inputMode="numeric"
          min={MIN_PAUSE_S}
          max={MAX_PAUSE_S}
          step={1}
          value={seconds}
          onChange={setSeconds}
          error={local.seconds ?? fields.seconds}
          hint={`Silences for ${MIN_PAUSE_S}–${MAX_PAUSE_S} s; the alarm sounds again if it is still there.`}
          required
        />
      ) : null}
      <ErrorAlert error={error} shownFields={['reason', 'seconds']} />
      <div className="form__actions">
        <button type="submit" className="btn btn--primary" disabled={busy}>
          {mode === 'pause' ? 'Pause' : 'Acknowledge'}
        </button>
        <button type="button" className="btn btn--ghost" onClick={onDone} disabled={busy}>
          Cancel
        </button>
      </div>
    </form>
  );
}
