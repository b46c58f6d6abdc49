import { useState, type FormEvent } from 'react';
import type { SessionInfo } from '../../shared/ipc.js';
import { ROLE_LABELS } from '../../shared/roles.js';
import { call } from '../api/client.js';
import { ApiError } from '../api/errors.js';
import { Alert, ErrorAlert, asSentence, Gate, TextField, useAction } from '../components/ui.js';
import { signOut } from '../stores/actions.js';
import { useSession } from '../stores/session.js';

/** The session is locked (idle or by hand): only its owner's password opens it again. */
export function LockScreen({ session }: { session: SessionInfo }) {
  const lockReason = useSession((s) => s.lockReason);
  const [password, setPassword] = useState('');
  const { run, busy, error, setError } = useAction(async () => {
    const next = await call('auth.unlock', { password });
    setPassword('');
    useSession.getState().setSession(next);
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!password) setError(new ApiError('bad-request', 'Enter your password.'));
    else void run();
  };
  return (
    <Gate title={`Locked — ${session.user.displayName}`} testId="screen-lock">
      {lockReason ? (
        <Alert tone="info" testId="lock-reason">
          {asSentence(lockReason)}
        </Alert>
      ) : null}
      <p className="lead">
        {ROLE_LABELS[session.user.role]} · <span className="mono">{session.user.username}</span>. Enter your password to continue where you
        left off.
      </p>
      <form onSubmit={submit} className="form" noValidate>
        <TextField label="Password" type="password" autoComplete="current-password" autoFocus value={password} onChange={setPassword} />
        <ErrorAlert error={error} />
        <div className="form__actions">
          <button type="submit" className="btn btn--primary" disabled={busy}>
            {busy ? 'Unlocking…' : 'Unlock'}
          </button>
          <button type="button" className="btn btn--ghost" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </form>
    </Gate>
  );
}
