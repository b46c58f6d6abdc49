import { useState, type FormEvent } from 'react';
import type { SessionInfo } from '../../shared/ipc.js';
import { call } from '../api/client.js';
import { Alert, ErrorAlert, Gate, TextField, useAction } from '../components/ui.js';
import { signOut } from '../stores/actions.js';
import { useSession } from '../stores/session.js';

const PASSWORD_MIN = 10;

/** Forced before anything else when the account carries a temporary password. */
export function ChangePasswordScreen({ session }: { session: SessionInfo }) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [confirm, setConfirm] = useState('');
  const [local, setLocal] = useState<Record<string, string>>({});
  const { run, busy, error } = useAction(async () => {
    const updated = await call('auth.changePassword', { currentPassword: current, newPassword: next });
    useSession.getState().setSession(updated);
  });
  const server = error?.fieldErrors() ?? {};
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const problems: Record<string, string> = {};
    if (!current) problems.current = 'Required.';
    if (next.length < PASSWORD_MIN) problems.next = `At least ${PASSWORD_MIN} characters.`;
    else if (next === current) problems.next = 'Choose a password different from the current one.';
    else if (next !== confirm) problems.confirm = 'The two passwords do not match.';
    setLocal(problems);
    if (Object.keys(problems).length === 0) void run();
  };
  return (
    <Gate title="Change your password" testId="screen-change-password">
      <Alert tone="info">
        {session.user.displayName}, your account has a temporary password. Choose your own password before continuing.
      </Alert>
      <form onSubmit={submit} className="form" noValidate>
        <TextField
          label="Current password"
          type="password"
          autoComplete="current-password"
          autoFocus
          value={current}
          onChange={setCurrent}
          error={local.current ?? server.currentPassword}
        />
        <TextField
          label="New password"
          type="password"
          autoComplete="new-password"
          value={next}
          onChange={setNext}
          error={local.next ?? server.newPassword}
          hint={`At least ${PASSWORD_MIN} characters.`}
        />
        <TextField
          label="Confirm password"
          type="password"
          autoComplete="new-password"
          value={confirm}
          onChange={setConfirm}
          error={local.confirm}
        />
        <ErrorAlert error={error} shownFields={['currentPassword', 'newPassword']} />
        <div className="form__actions">
          <button type="submit" className="btn btn--primary" disabled={busy}>
            {busy ? 'Saving…' : 'Change password'}
          </button>
          <button type="button" className="btn btn--ghost" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </form>
    </Gate>
  );
}
