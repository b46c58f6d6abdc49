import { useCallback, useEffect, useState, type FormEvent } from 'react';
import type { MonitorCredential, MonitorCredentialsFile } from '../../../shared/ipc.js';
import { call } from '../../api/client.js';
import { toApiError, type ApiError } from '../../api/errors.js';
import { Alert, Badge, Dialog, ErrorAlert, TextAreaField, TextField, formatDate, formatDateTime, useAction } from '../../components/ui.js';

const SEGMENT = /^[A-Za-z0-9_-]{1,32}$/;
const MAX_BEDS = 1000;

/** "1-12, 14 ICU-3" → ['1', …, '12', '14', 'ICU-3']; a numeric range a-b (a ≤ b) expands; anything else is a name. */
export function parseBeds(text: string): { beds: string[]; problem: string | null } {
  const beds: string[] = [];
  for (const part of text.split(/[\s,;]+/).filter(Boolean)) {
    const range = /^(\d+)-(\d+)$/.exec(part);
    if (range) {
      const from = Number(range[1]);
      const to = Number(range[2]);
      if (from > to) return { beds: [], problem: `The range ${part} runs backwards.` };
      if (to - from >= MAX_BEDS) return { beds: [], problem: `At most ${MAX_BEDS} beds at a time.` };
      for (let b = from; b <= to; b++) beds.push(String(b));
    } else if (SEGMENT.test(part)) beds.push(part);
    else return { beds: [], problem: `"${part}" is not a bed name: letters, digits, _ and - only (at most 32).` };
  }
  if (beds.length === 0) return { beds, problem: 'Name at least one bed, e.g. 1-12.' };
  if (beds.length > MAX_BEDS) return { beds: [], problem: `At most ${MAX_BEDS} beds at a time.` };
  if (new Set(beds).size !== beds.length) return { beds: [], problem: 'A bed is named twice.' };
  return { beds, problem: null };
}

/**
 * Admin → Monitors: credentials of bedside monitors for the embedded MQTT broker. Each is bound to one
 * bed's topic; the passwords are shown once, after creation, as the file monitors (and
 * `neuroward simulate-ward --credentials FILE`) are configured from.
 */
export function MonitorsTab() {
  const [monitors, setMonitors] = useState<MonitorCredential[] | null>(null);
  const [embedded, setEmbedded] = useState(true);
  const [listError, setListError] = useState<ApiError | null>(null);
  const [actionError, setActionError] = useState<ApiError | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [created, setCreated] = useState<MonitorCredentialsFile | null>(null);
  const [revokeFor, setRevokeFor] = useState<MonitorCredential | null>(null);
  const [pendingId, setPendingId] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const r = await call('monitors.list', {});
      setMonitors(r.monitors);
      setEmbedded(r.embedded);
      setListError(null);
    } catch (e) {
      setListError(toApiError(e));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  const revoke = async (monitor: MonitorCredential) => {
    setPendingId(monitor.id);
    setActionError(null);
    setNotice(null);
    try {
      const updated = await call('monitors.revoke', { id: monitor.id });
      setMonitors((list) => list?.map((m) => (m.id === updated.id ? updated : m)) ?? null);
      setNotice(`Revoked ${updated.username}: it can no longer connect${monitor.connected ? ', and its connection was closed' : ''}.`);
    } catch (e) {
      setActionError(toApiError(e));
      void load();
    } finally {
      setPendingId(null);
      setRevokeFor(null);
    }
  };

  return (
    <div className="users monitors" data-testid="monitors">
      {!embedded ? (
        <Alert tone="info" testId="monitors-external-broker">
          This workstation subscribes to the ward&apos;s own MQTT broker: bedside monitors get their credentials on that broker, not here.
        </Alert>
      ) : (
        <CreateMonitorsForm
          onCreated={(file) => {
            setCreated(file);
            setNotice(null);
            void load();
          }}
        />
      )}
      {created ? <CreatedCredentials file={created} onDone={() => setCreated(null)} /> : null}
      <h2 className="subhead">Monitor credentials</h2>
      <p className="muted small">
        Each monitor may publish to its own bed&apos;s topic only and subscribe to nothing; anonymous connections are refused. Revoke a
        credential when its monitor is retired or lost.
      </p>
      {notice ? <Alert tone="success">{notice}</Alert> : null}
      <ErrorAlert error={actionError} />
      <ErrorAlert error={listError} />
      {monitors ? (
        monitors.length ? (
          <div className="table-scroll">
            <table className="table" data-testid="monitors-table">
              <thead>
                <tr>
                  <th scope="col">User name</th>
                  <th scope="col">Bed</th>
                  <th scope="col">Label</th>
                  <th scope="col">Status</th>
                  <th scope="col">Created</th>
                  <th scope="col">Last connected</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {monitors.map((m) => (
                  <tr key={m.id} data-testid="monitor-row" data-username={m.username} data-bed={`${m.ward}/${m.bed}`} data-revoked={m.revokedAt !== null}>
                    <td className="mono">{m.username}</td>
                    <td className="mono" title={m.topic}>
                      {m.ward}/{m.bed}
                    </td>
                    <td>{m.label ?? ''}</td>
                    <td>
                      <div className="flags">
                        {m.revokedAt ? (
                          <Badge tone="danger" title={`Revoked by ${m.revokedBy ?? '?'} on ${formatDateTime(m.revokedAt)}`}>
                            Revoked
                          </Badge>
                        ) : (
                          <Badge tone="success">Active</Badge>
                        )}
                        {m.connected ? <Badge tone="accent">Connected</Badge> : null}
                      </div>
                    </td>
                    <td className="small nowrap" title={`by ${m.createdBy}`}>
                      {formatDate(m.createdAt)}
                    </td>
                    <td className="small nowrap">{m.lastConnectedAt ? formatDateTime(m.lastConnectedAt) : 'never'}</td>
                    <td>
                      <div className="actions">
                        {m.revokedAt ? null : (
                          <button type="button" className="btn btn--small" disabled={pendingId === m.id} onClick={() => setRevokeFor(m)}>
                            Revoke
                          </button>
                        )}
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <p className="muted" data-testid="monitors-empty">
            No monitor credentials yet.
          </p>
        )
      ) : !listError ? (
        <p className="muted" role="status">
          Loading monitor credentials…
        </p>
      ) : null}
      <Dialog title={revokeFor ? `Revoke ${revokeFor.username}` : 'Revoke'} open={revokeFor !== null} onClose={() => setRevokeFor(null)} testId="revoke-monitor-dialog">
        <p>
          The monitor of bed <span className="mono">{revokeFor ? `${revokeFor.ward}/${revokeFor.bed}` : ''}</span> will be disconnected and refused from
          now on; its bed gets no readings until a new credential is set up on it. This cannot be undone.
        </p>
        <div className="form__actions">
          <button type="button" className="btn btn--primary" disabled={revokeFor !== null && pendingId === revokeFor.id} onClick={() => revokeFor && void revoke(revokeFor)}>
            Revoke credential
          </button>
          <button type="button" className="btn btn--ghost" onClick={() => setRevokeFor(null)}>
            Cancel
          </button>
        </div>
      </Dialog>
    </div>
  );
}

function CreateMonitorsForm({ onCreated }: { onCreated: (file: MonitorCredentialsFile) => void }) {
  const [ward, setWard] = useState('');
  const [beds, setBeds] = useState('');
  const [label, setLabel] = useState('');
  const [local, setLocal] = useState<Record<string, string>>({});
  const { run, busy, error } = useAction(async (bedList: string[]) => {
    const result = await call('monitors.create', { ward: ward.trim(), beds: bedList, ...(label.trim() ? { label: label.trim() } : {}) });
    setBeds('');
    onCreated(result.credentials);
  });
  const server = error?.fieldErrors() ?? {};
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const problems: Record<string, string> = {};
    if (!SEGMENT.test(ward.trim())) problems.ward = 'Letters, digits, _ and - only (at most 32), as in the topic ward/<ward>/bed/<bed>/vitals.';
    const parsed = parseBeds(beds);
    if (parsed.problem) problems.beds = parsed.problem;
    setLocal(problems);
    if (Object.keys(problems).length === 0) void run(parsed.beds);
  };
  return (
    <form className="form panel" onSubmit={submit} noValidate aria-labelledby="create-monitors-title" data-testid="create-monitors-form">
      <h2 className="subhead" id="create-monitors-title">
        New monitor credentials
      </h2>
      <div className="grid-4">
        <TextField label="Ward" autoComplete="off" value={ward} onChange={setWard} error={local.ward ?? server.ward} hint="As in the monitor's topic, e.g. 4A." />
        <TextField label="Beds" autoComplete="off" value={beds} onChange={setBeds} error={local.beds ?? server.beds} hint="One credential per bed, e.g. 1-12, 14." />
        <TextField label="Label" autoComplete="off" value={label} onChange={setLabel} error={server.label} hint="Optional, e.g. the monitors' make or asset numbers." />
      </div>
      <ErrorAlert error={error} shownFields={['ward', 'beds', 'label']} />
      <div className="form__actions">
        <button type="submit" className="btn btn--primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create credentials'}
        </button>
      </div>
    </form>
  );
}

function CreatedCredentials({ file, onDone }: { file: MonitorCredentialsFile; onDone: () => void }) {
  const json = JSON.stringify(file, null, 2);
  return (
    <section className="panel" data-testid="monitor-credentials-created" aria-labelledby="monitor-credentials-title">
      <h2 className="subhead" id="monitor-credentials-title">
        {file.monitors.length === 1 ? 'The new credential' : `${file.monitors.length} new credentials`}
      </h2>
      <Alert tone="warning" testId="monitor-credentials-notice">
        <strong>The passwords are shown this once — copy them now.</strong> Only a hash is stored; a lost password means revoking the credential and
        creating a new one. Enter each in its bed&apos;s monitor (broker {file.broker ?? 'of this workstation'}, its user name and password), or
        save the text below as a file for <span className="mono">neuroward simulate-ward --credentials FILE</span>. Keep it as you would a password.
      </Alert>
      <div className="table-scroll">
        <table className="table table--dense" data-testid="monitor-credentials-table">
          <thead>
            <tr>
              <th scope="col">Bed</th>
              <th scope="col">Topic</th>
              <th scope="col">User name</th>
              <th scope="col">Password</th>
            </tr>
          </thead>
          <tbody>
            {file.monitors.slice(0, 50).map((m) => (
              <tr key={m.username}>
                <td className="mono">
                  {m.ward}/{m.bed}
                </td>
                <td className="mono small">{m.topic}</td>
                <td className="mono selectable">{m.username}</td>
                <td className="mono selectable">{m.password}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {file.monitors.length > 50 ? <p className="muted small">The first 50 of {file.monitors.length}; all of them are in the text below.</p> : null}
      <TextAreaField
        label="Credentials file (JSON)"
        value={json}
        onChange={() => undefined}
        readOnly
        rows={Math.min(16, 4 + file.monitors.length * 7)}
        spellCheck={false}
        className="mono"
        data-testid="monitor-credentials-json"
        onFocus={(e) => e.currentTarget.select()}
      />
      <div className="form__actions">
        <button type="button" className="btn btn--primary" onClick={onDone}>
          I have copied them
        </button>
      </div>
    </section>
  );
}
