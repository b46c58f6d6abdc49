import { useState, type FormEvent } from 'react';
import type { AppStatus } from '../../shared/ipc.js';
import { call } from '../api/client.js';
import { ApiError } from '../api/errors.js';
import { Alert, ErrorAlert, asSentence, Gate, TextField, useAction } from '../components/ui.js';
import { navigate } from '../stores/route.js';
import { useSession } from '../stores/session.js';

export function SignInScreen({ status }: { status: AppStatus }) {
  const endedReason = useSession((s) => s.endedReason);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const { run, busy, error, setError } = useAction(async () => {
    const session = await call('auth.signIn', { username, password });
    setPassword('');
    navigate('/');
    useSession.getState().setSession(session);
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!username.trim() || !password) setError(new ApiError('bad-request', 'Enter your username and password.'));
    else void run();
  };
  return (
    <Gate title="Sign in" testId="screen-sign-in">
      {endedReason && !error ? (
        <Alert tone="info" testId="session-ended-reason">
          {asSentence(endedReason)}
        </Alert>
      ) : null}
      <form onSubmit={submit} className="form" noValidate>
        <TextField label="Username" autoComplete="username" autoFocus value={username} onChange={setUsername} required />
        <TextField label="Password" type="password" autoComplete="current-password" value={password} onChange={setPassword} required />
        <ErrorAlert error={error} shownFields={[]} />
        <div className="form__actions">
          <button type="submit" className="btn btn--primary" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </div>
      </form>
      <p className="muted small gate__foot">
        NeuroWard {status.version} · {status.host === 'electron' ? 'desktop' : 'browser mode (headless host)'}
      </p>
    </Gate>
  );
}
