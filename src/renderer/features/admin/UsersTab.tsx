import { useCallback, useEffect, useState, type FormEvent } from 'react';
import type { SessionInfo, User } from '../../../shared/ipc.js';
import { roleSchema } from '../../../shared/ipc.js';
import { ROLES, ROLE_LABELS, type Role } from '../../../shared/roles.js';
import { call } from '../../api/client.js';
import { toApiError, type ApiError } from '../../api/errors.js';
import { Alert, Badge, Dialog, ErrorAlert, SelectField, TextField, formatDate, formatDateTime, useAction } from '../../components/ui.js';

const ROLE_OPTIONS = ROLES.map((r) => ({ value: r, label: ROLE_LABELS[r] }));
const PASSWORD_MIN = 10;

export function UsersTab({ session }: { session: SessionInfo }) {
  const [users, setUsers] = useState<User[] | null>(null);
  const [listError, setListError] = useState<ApiError | null>(null);
  const [actionError, setActionError] = useState<ApiError | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [resetFor, setResetFor] = useState<User | null>(null);
  const [pendingId, setPendingId] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const r = await call('users.list', {});
      setUsers(r.users);
      setListError(null);
    } catch (e) {
      setListError(toApiError(e));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  const act = async (user: User, what: string, fn: () => Promise<User>) => {
    setPendingId(user.id);
    setActionError(null);
    setNotice(null);
    try {
      const updated = await fn();
      setUsers((list) => list?.map((u) => (u.id === updated.id ? updated : u)) ?? null);
      setNotice(`${what}: ${updated.username}.`);
    } catch (e) {
      setActionError(toApiError(e));
      void load();
    } finally {
      setPendingId(null);
    }
  };

  return (
    <div className="users">
      <CreateUserForm
        onCreated={(u) => {
          setNotice(`Created ${u.username} (${ROLE_LABELS[u.role]}). They must change the temporary password at first sign-in.`);
          void load();
        }}
      />
      <h2 className="subhead">Accounts</h2>
      {notice ? <Alert tone="success">{notice}</Alert> : null}
      <ErrorAlert error={actionError} />
      <ErrorAlert error={listError} />
      {users ? (
        <div className="table-scroll">
          <table className="table" data-testid="users-table">
            <thead>
              <tr>
                <th scope="col">Username</th>
                <th scope="col">Display name</th>
                <th scope="col">Role</th>
                <th scope="col">Status</th>
                <th scope="col">Created</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {users.map((u) => {
                const self = u.id === session.user.id;
                const locked = !!u.lockedUntil && Date.parse(u.lockedUntil) > Date.now();
                const busy = pendingId === u.id;
                return (
                  <tr key={u.id} data-testid="user-row" data-username={u.username}>
                    <td className="mono">
                      {u.username}
                      {self ? <span className="muted small"> (you)</span> : null}
                    </td>
                    <td>{u.displayName}</td>
                    <td>
                      <select
                        className="role-select"
                        aria-label={`Role of ${u.username}`}
                        value={u.role}
                        disabled={busy || self}
                        title={self ? 'You cannot change your own role.' : undefined}
                        onChange={(e) => {
                          const role: Role = roleSchema.parse(e.target.value);
                          void act(u, `Role changed to ${ROLE_LABELS[role]}`, () => call('users.update', { id: u.id, role }));
                        }}
                      >
                        {ROLE_OPTIONS.map((o) => (
                          <option key={o.value} value={o.value}>
                            {o.label}
                          </option>
                        ))}
                      </select>
                    </td>
                    <td>
                      <div className="flags">
                      {u.disabled ? <Badge tone="danger">Disabled</Badge> : <Badge tone="success">Active</Badge>}
                      {locked ? (
                        <Badge tone="warning" title={`${u.failedSignIns} failed sign-ins`}>
                          Locked until {formatDateTime(u.lockedUntil)}
                        </Badge>
                      ) : null}
                      {u.mustChangePassword ? <Badge tone="neutral">Temporary password</Badge> : null}
                      {u.synthetic ? <Badge tone="synthetic">SYNTHETIC</Badge> : null}
                      </div>
                    </td>
                    <td className="small nowrap">{formatDate(u.createdAt)}</td>
                    <td>
                      <div className="actions">
                      <button
                        type="button"
                        className="btn btn--small"
                        disabled={busy || self}
                        title={self ? 'You cannot disable your own account.' : undefined}
                        onClick={() =>
                          void act(u, u.disabled ? 'Enabled' : 'Disabled', () => call('users.update', { id: u.id, disabled: !u.disabled }))
                        }
                      >
                        {u.disabled ? 'Enable' : 'Disable'}
                      </button>
                      {locked ? (
                        <button
                          type="button"
                          className="btn btn--small"
                          disabled={busy}
                          onClick={() => void act(u, 'Account unlocked', () => call('users.unlock', { id: u.id }))}
                        >
                          Unlock account
                        </button>
                      ) : null}
                      <button type="button" className="btn btn--small btn--ghost" disabled={busy} onClick={() => setResetFor(u)}>
                        Reset password
                      </button>
                      </div>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : !listError ? (
        <p className="muted" role="status">
          Loading accounts…
        </p>
      ) : null}
      <ResetPasswordDialog
        user={resetFor}
        onClose={() => setResetFor(null)}
        onDone={(u) => {
          setResetFor(null);
          setUsers((list) => list?.map((x) => (x.id === u.id ? u : x)) ?? null);
          setNotice(`Password reset for ${u.username}. They must change it at next sign-in.`);
        }}
      />
    </div>
  );
}

function CreateUserForm({ onCreated }: { onCreated: (u: User) => void }) {
  const [username, setUsername] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [role, setRole] = useState<Role>('nurse');
  const [password, setPassword] = useState('');
  const [local, setLocal] = useState<Record<string, string>>({});
  const { run, busy, error } = useAction(async () => {
    const created = await call('users.create', { username, displayName, role, password });
    setUsername('');
    setDisplayName('');
    setPassword('');
    onCreated(created);
  });
  const server = error?.fieldErrors() ?? {};
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const problems: Record<string, string> = {};
    if (username.trim().length < 3) problems.username = 'At least 3 characters.';
    if (!displayName.trim()) problems.displayName = 'Required.';
    if (password.length < PASSWORD_MIN) problems.password = `At least ${PASSWORD_MIN} characters.`;
    setLocal(problems);
    if (Object.keys(problems).length === 0) void run();
  };
  return (
    <form className="form panel" onSubmit={submit} noValidate aria-labelledby="create-user-title" data-testid="create-user-form">
      <h2 className="subhead" id="create-user-title">
        New account
      </h2>
      <div className="grid-4">
        <TextField label="Username" autoComplete="off" value={username} onChange={setUsername} error={local.username ?? server.username} />
        <TextField label="Display name" autoComplete="off" value={displayName} onChange={setDisplayName} error={local.displayName ?? server.displayName} />
        <SelectField label="Role" value={role} onChange={(v) => setRole(roleSchema.parse(v))} options={ROLE_OPTIONS} error={server.role} />
        <TextField
          label="Temporary password"
          type="password"
          autoComplete="new-password"
          value={password}
          onChange={setPassword}
          error={local.password ?? server.password}
          hint={`At least ${PASSWORD_MIN} characters; changed at first sign-in.`}
        />
      </div>
      <ErrorAlert error={error} shownFields={['username', 'displayName', 'role', 'password']} />
      <div className="form__actions">
        <button type="submit" className="btn btn--primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create user'}
        </button>
      </div>
    </form>
  );
}

function ResetPasswordDialog({ user, onClose, onDone }: { user: User | null; onClose: () => void; onDone: (u: User) => void }) {
  const [password, setPassword] = useState('');
  const [local, setLocal] = useState<string | undefined>(undefined);
  const { run, busy, error, setError } = useAction(async (id: string) => {
    const updated = await call('users.resetPassword', { id, password });
    onDone(updated);
  });
  useEffect(() => {
    setPassword('');
    setLocal(undefined);
    setError(null);
  }, [user, setError]);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!user) return;
    if (password.length < PASSWORD_MIN) {
      setLocal(`At least ${PASSWORD_MIN} characters.`);
      return;
    }
    setLocal(undefined);
    void run(user.id);
  };
  return (
    <Dialog title={user ? `Reset password — ${user.username}` : 'Reset password'} open={user !== null} onClose={onClose} testId="reset-password-dialog">
      <form className="form" onSubmit={submit} noValidate>
        <p className="muted">
          Give the new temporary password to {user?.displayName ?? 'the user'} in person. They must change it at their next sign-in.
        </p>
        <TextField
          label="New temporary password"
          type="password"
          autoComplete="new-password"
          value={password}
          onChange={setPassword}
          error={local ?? error?.fieldErrors().password}
          autoFocus
        />
        <ErrorAlert error={error} shownFields={['password']} />
        <div className="form__actions">
          <button type="submit" className="btn btn--primary" disabled={busy}>
            {busy ? 'Saving…' : 'Set temporary password'}
          </button>
          <button type="button" className="btn btn--ghost" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}
