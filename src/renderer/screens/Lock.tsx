import { useState, type FormEvent } from 'react';
import type { SessionInfo } from '../../shared/ipc.js';
import { ROLE_LABELS } from '../../shared/roles.js';
import { call } from '../api/client.js';
import { ErrorAlert, Gate, TextField, useAction } from '../components/ui.js';
import { signOut } from '../stores/actions.js';
import { useSession } from '../stores/session.js';

/** The session is locked (idle or by hand): only its owner's password opens it again. */
export function LockScreen({ session }: { session: SessionInfo }) {
  const [password, setPassword] = useState('');
  const { run, busy, error } = useAction(async () => {
    const next = await call('auth.unlock', { password });
    setPassword('');
    useSession.getState().setSession(next);
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run();
  };
  return (
    <Gate title={`Locked — ${session.user.displayName}`} testId="screen-lock">
      <p className="lead">
        {ROLE_LABELS[session.user.role]} · <span className="mono">{session.user.username}</span>. Enter your password to continue where you
        left off.
      </p>
      <form onSubmit={submit} className="form" noValidate>
        <TextField label="Password" type="password" autoComplete="current-password" autoFocus value={password} onChange={setPassword} />
        <ErrorAlert error={error} />
        <div className="form__actions">
          <button type="submit" className="btn btn--primary" disabled={busy || !password}>
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
