import { useState, type FormEvent } from 'react';
import type { AppStatus } from '../../shared/ipc.js';
import { call } from '../api/client.js';
import { ApiError } from '../api/errors.js';
import { ErrorAlert, Gate, TextField, useAction } from '../components/ui.js';
import { readSessionToken } from '../api/session-token.js';
import { refreshStatus, useApp } from '../stores/app.js';

/** The store exists but is locked: the passphrase opens it. */
export function StoreUnlockScreen({ status }: { status: AppStatus }) {
  const [passphrase, setPassphrase] = useState('');
  const { run, busy, error, setError } = useAction(async () => {
    const next = await call('store.unlock', { passphrase });
    setPassphrase('');
    useApp.getState().setStatus(next);
    // A session held before the store closed may resume now.
    if (!next.session && readSessionToken()) await refreshStatus();
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!passphrase) setError(new ApiError('bad-request', 'Enter the store passphrase.'));
    else void run();
  };
  return (
    <Gate title="Unlock this workstation's data" testId="screen-store-unlock">
      <p className="lead">
        All patient data on this workstation is encrypted. Enter the store passphrase chosen when the workstation was set up.
      </p>
      <form onSubmit={submit} className="form" noValidate>
        <TextField
          label="Store passphrase"
          type="password"
          autoComplete="off"
          autoFocus
          value={passphrase}
          onChange={setPassphrase}
          required
        />
        <ErrorAlert error={error} />
        <div className="form__actions">
          <button type="submit" className="btn btn--primary" disabled={busy}>
            {busy ? 'Unlocking…' : 'Unlock'}
          </button>
        </div>
      </form>
      <p className="muted small">
        The passphrase cannot be recovered. If it is lost, the data on this workstation cannot be read. NeuroWard {status.version}
      </p>
    </Gate>
  );
}
