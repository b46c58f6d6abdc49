import { useState, type FormEvent } from 'react';
import type { AppStatus } from '../../shared/ipc.js';
import { ROLE_LABELS } from '../../shared/roles.js';
import { call } from '../api/client.js';
import { Alert, Checkbox, ErrorAlert, Gate, TextField, useAction } from '../components/ui.js';
import { useApp, type DemoAccount } from '../stores/app.js';

const PASSPHRASE_MIN = 12;
const PASSWORD_MIN = 10;

/** First run: store passphrase (when prompted), the first administrator, demo data. */
export function SetupScreen({ status }: { status: AppStatus }) {
  const needsPassphrase = status.passphraseSource === 'prompt' && status.store === 'uninitialized';
  const [passphrase, setPassphrase] = useState('');
  const [passphrase2, setPassphrase2] = useState('');
  const [username, setUsername] = useState('admin');
  const [displayName, setDisplayName] = useState('');
  const [password, setPassword] = useState('');
  const [password2, setPassword2] = useState('');
  const [demoData, setDemoData] = useState(status.demo);
  const [local, setLocal] = useState<Record<string, string>>({});

  const { run, busy, error } = useAction(async () => {
    const result = await call('setup.initialize', {
      ...(needsPassphrase ? { storePassphrase: passphrase } : {}),
      admin: { username, displayName, password },
      demoData,
    });
    const app = useApp.getState();
    app.setDemoAccounts(result.demoAccounts);
    app.setStatus(result.status);
  });

  const server = error?.fieldErrors() ?? {};
  const fieldError = (local: string | undefined, path: string) => local ?? server[path];

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const problems: Record<string, string> = {};
    if (needsPassphrase) {
      if (passphrase.length < PASSPHRASE_MIN) problems.storePassphrase = `At least ${PASSPHRASE_MIN} characters.`;
      else if (passphrase !== passphrase2) problems.storePassphrase2 = 'The two passphrases do not match.';
    }
    if (username.trim().length < 3) problems.username = 'At least 3 characters.';
    if (!displayName.trim()) problems.displayName = 'Required.';
    if (password.length < PASSWORD_MIN) problems.password = `At least ${PASSWORD_MIN} characters.`;
    else if (password !== password2) problems.password2 = 'The two passwords do not match.';
    setLocal(problems);
    if (Object.keys(problems).length === 0) void run();
  };

  return (
    <Gate title="Set up this workstation" testId="screen-setup" wide>
      <p className="lead">This is the first start of NeuroWard on this workstation. Create the administrator account to continue.</p>
      <form onSubmit={submit} className="form" noValidate>
        {needsPassphrase ? (
          <fieldset className="fieldset">
            <legend>Store passphrase</legend>
            <p className="field__hint">
              The store passphrase encrypts all data kept on this workstation. It is asked for every time NeuroWard starts.{' '}
              <strong>It cannot be recovered:</strong> if it is lost, the data on this workstation cannot be read by anyone.
            </p>
            <div className="grid-2">
              <TextField
                label="Store passphrase"
                type="password"
                autoComplete="new-password"
                value={passphrase}
                onChange={setPassphrase}
                error={fieldError(local.storePassphrase, 'storePassphrase')}
                hint={`At least ${PASSPHRASE_MIN} characters.`}
                autoFocus
              />
              <TextField
                label="Confirm store passphrase"
                type="password"
                autoComplete="new-password"
                value={passphrase2}
                onChange={setPassphrase2}
                error={local.storePassphrase2}
              />
            </div>
          </fieldset>
        ) : null}
        <fieldset className="fieldset">
          <legend>Administrator account</legend>
          <p className="field__hint">
            The administrator manages staff accounts and reads the audit trail. It does not open patient records.
          </p>
          <div className="grid-2">
            <TextField
              label="Username"
              autoComplete="off"
              value={username}
              onChange={setUsername}
              error={fieldError(local.username, 'admin.username')}
              hint="Letters, digits, dot, underscore and hyphen."
              autoFocus={!needsPassphrase}
            />
            <TextField
              label="Display name"
              autoComplete="off"
              value={displayName}
              onChange={setDisplayName}
              error={fieldError(local.displayName, 'admin.displayName')}
            />
            <TextField
              label="Password"
              type="password"
              autoComplete="new-password"
              value={password}
              onChange={setPassword}
              error={fieldError(local.password, 'admin.password')}
              hint={`At least ${PASSWORD_MIN} characters.`}
            />
            <TextField
              label="Confirm password"
              type="password"
              autoComplete="new-password"
              value={password2}
              onChange={setPassword2}
              error={local.password2}
            />
          </div>
        </fieldset>
        <Checkbox
          label="Load synthetic demo data"
          checked={demoData}
          onChange={setDemoData}
          hint="Fictional patients and staff accounts for training and evaluation; every synthetic record is marked SYNTHETIC."
        />
        <ErrorAlert error={error} shownFields={['storePassphrase', 'admin.username', 'admin.displayName', 'admin.password']} />
        <div className="form__actions">
          <button type="submit" className="btn btn--primary" disabled={busy}>
            {busy ? 'Setting up…' : 'Set up workstation'}
          </button>
        </div>
      </form>
    </Gate>
  );
}

/** After setup: the demo accounts, shown this once. */
export function DemoAccountsScreen({ accounts }: { accounts: DemoAccount[] }) {
  const done = () => useApp.getState().setDemoAccounts(null);
  return (
    <Gate title="Workstation set up" testId="screen-setup-done" wide>
      {accounts.length ? (
        <>
          <Alert tone="warning" testId="demo-accounts-notice">
            <strong>Demo account passwords are shown once — record them now.</strong> They are not stored in clear text and cannot be shown
            again; an administrator can only reset them.
          </Alert>
          <table className="table" data-testid="demo-accounts">
            <caption className="visually-hidden">Synthetic demo accounts</caption>
            <thead>
              <tr>
                <th scope="col">Username</th>
                <th scope="col">Role</th>
                <th scope="col">Password</th>
              </tr>
            </thead>
            <tbody>
              {accounts.map((a) => (
                <tr key={a.username}>
                  <td className="mono">{a.username}</td>
                  <td>{ROLE_LABELS[a.role]}</td>
                  <td className="mono selectable">{a.password}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : (
        <p className="lead">The administrator account is ready. Sign in with it to create staff accounts.</p>
      )}
      <div className="form__actions">
        <button type="button" className="btn btn--primary" onClick={done} autoFocus>
          Continue to sign-in
        </button>
      </div>
    </Gate>
  );
}
