import { useEffect, useState, type FormEvent } from 'react';
import { call } from '../../api/client.js';
import { Alert, Dialog, ErrorAlert, TextAreaField, TextField, useAction } from '../../components/ui.js';
import { useSession } from '../../stores/session.js';

const REASON_MIN = 15;
const MIN_MINUTES = 5;
const MAX_MINUTES = 60;

/** Emergency access to restricted records: a typed reason and a bounded duration, both audited. */
export function BreakGlassDialog({ open, mrn, onClose, onGranted }: { open: boolean; mrn: string | null; onClose: () => void; onGranted: () => void }) {
  const [reason, setReason] = useState('');
  const [minutes, setMinutes] = useState('15');
  const [local, setLocal] = useState<Record<string, string>>({});
  const { run, busy, error, setError } = useAction(async () => {
    const session = await call('auth.breakGlass', { reason: reason.trim(), minutes: Number(minutes) });
    useSession.getState().setSession(session);
    onGranted();
  });
  useEffect(() => {
    if (open) {
      setReason('');
      setMinutes('15');
      setLocal({});
      setError(null);
    }
  }, [open, setError]);
  const server = error?.fieldErrors() ?? {};
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const problems: Record<string, string> = {};
    if (reason.trim().length < REASON_MIN) problems.reason = `Say why in at least ${REASON_MIN} characters (${reason.trim().length} so far).`;
    const m = Number(minutes);
    if (!Number.isInteger(m) || m < MIN_MINUTES || m > MAX_MINUTES) problems.minutes = `A whole number of minutes from ${MIN_MINUTES} to ${MAX_MINUTES}.`;
    setLocal(problems);
    if (Object.keys(problems).length === 0) void run();
  };
  return (
    <Dialog title="Break glass" open={open} onClose={onClose} testId="break-glass-dialog">
      <form onSubmit={submit} className="form" noValidate>
        <Alert tone="warning">
          You are about to open restricted records{mrn ? <> (starting with MRN <span className="mono">{mrn}</span>)</> : null}. Emergency
          access is recorded in the audit trail with your name and reason, and is reviewed. Use it only when a patient&apos;s care needs it
          now.
        </Alert>
        <TextAreaField
          label="Reason"
          value={reason}
          onChange={setReason}
          rows={3}
          maxLength={500}
          autoFocus
          error={local.reason ?? server.reason}
          hint={`At least ${REASON_MIN} characters, e.g. “Unconscious patient in ED, need allergy history”.`}
        />
        <TextField
          label="Duration (minutes)"
          type="number"
          min={MIN_MINUTES}
          max={MAX_MINUTES}
          step={1}
          value={minutes}
          onChange={setMinutes}
          error={local.minutes ?? server.minutes}
          hint={`From ${MIN_MINUTES} to ${MAX_MINUTES} minutes. Access ends by itself when the time is up.`}
        />
        <ErrorAlert error={error} shownFields={['reason', 'minutes']} />
        <div className="form__actions">
          <button type="submit" className="btn btn--danger" disabled={busy}>
            {busy ? 'Granting…' : 'Grant emergency access'}
          </button>
          <button type="button" className="btn btn--ghost" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}
