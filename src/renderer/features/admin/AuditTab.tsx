import { useCallback, useEffect, useRef, useState } from 'react';
import { roleSchema, type AuditEntryView, type AuditVerifyResult } from '../../../shared/ipc.js';
import { ROLE_LABELS } from '../../../shared/roles.js';
import { call } from '../../api/client.js';
import { toApiError, type ApiError } from '../../api/errors.js';
import { Badge, ErrorAlert, formatDateTime } from '../../components/ui.js';

const PAGE = 50;

function roleLabel(role: string): string {
  const parsed = roleSchema.safeParse(role);
  return parsed.success ? ROLE_LABELS[parsed.data] : role;
}
type Outcome = AuditEntryView['outcome'];
const OUTCOMES: { value: '' | Outcome; label: string }[] = [
  { value: '', label: 'All outcomes' },
  { value: 'success', label: 'Success' },
  { value: 'denied', label: 'Denied' },
  { value: 'error', label: 'Error' },
];

/** Every problem the host found, including any beyond the listed ones (see AuditVerifyResult.unlisted). */
function problemCount(result: AuditVerifyResult): number {
  return result.problems.length + result.unlisted;
}

export function AuditTab() {
  // Verifying writes an entry of its own: the list below reloads after each verification to show it.
  const [verifications, setVerifications] = useState(0);
  const onVerified = useCallback(() => setVerifications((n) => n + 1), []);
  return (
    <div className="audit">
      <VerifyPanel onVerified={onVerified} />
      <AuditList reload={verifications} />
    </div>
  );
}

function VerifyPanel({ onVerified }: { onVerified: () => void }) {
  const [result, setResult] = useState<AuditVerifyResult | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const verify = useCallback(async () => {
    setBusy(true);
    setError(null);
    try {
      setResult(await call('audit.verify', {}));
      onVerified();
    } catch (e) {
      setResult(null);
      setError(toApiError(e));
    } finally {
      setBusy(false);
    }
  }, [onVerified]);
  const ran = useRef(false);
  useEffect(() => {
    // Once when the tab opens (the ref keeps React's development double-run from verifying twice).
    if (ran.current) return;
    ran.current = true;
    void verify();
  }, [verify]);

  return (
    <div className="panel verify">
      <div className="verify__row">
        <div className="verify__text">
          <h2 className="subhead">Audit chain</h2>
          <p className="muted small">Every entry carries the hash of the one before it; verifying walks the whole chain.</p>
        </div>
        <button type="button" className="btn" onClick={() => void verify()} disabled={busy}>
          {busy ? 'Verifying…' : 'Verify chain'}
        </button>
      </div>
      <div data-testid="audit-verify-result" aria-live="polite" className="verify__result" data-state={result ? (result.ok ? 'ok' : 'broken') : error ? 'error' : 'pending'}>
        {result ? (
          result.ok ? (
            <p className="verify-ok">
              <span aria-hidden="true">✓ </span>Chain intact — {result.entries} entries, head <span className="mono">{result.headHash.slice(0, 12)}</span>
              <span className="muted small"> · checked {formatDateTime(result.checkedAt)}</span>
            </p>
          ) : (
            <div className="verify-bad" role="alert">
              <p>
                <span aria-hidden="true">✗ </span>
                <strong>Chain broken</strong>
                {problemCount(result) > 0
                  ? ` — ${problemCount(result)} problem${problemCount(result) === 1 ? '' : 's'} found:`
                  : ' — the host reported a problem without details.'}
              </p>
              {result.problems.length > 0 ? (
                <ol data-testid="audit-verify-problems">
                  {result.problems.map((p, i) => (
                    <li key={`${i}-${p.kind}-${p.seq}`} data-kind={p.kind}>
                      <strong>{p.kind}</strong> {p.seq > 0 ? `at entry #${p.seq}` : '(schema)'}: {p.message}
                    </li>
                  ))}
                  {result.unlisted > 0 ? (
                    <li>
                      …and {result.unlisted} more not listed; <code>neuroward audit verify</code> lists them all.
                    </li>
                  ) : null}
                </ol>
              ) : null}
              <p className="small">
                {result.entries} entries checked, head #{result.headSeq} <span className="mono">{result.headHash.slice(0, 12)}</span> · checked{' '}
                {formatDateTime(result.checkedAt)}. Report this to your security officer; do not modify the data folder.
              </p>
            </div>
          )
        ) : error ? (
          <ErrorAlert error={error} />
        ) : (
          <p className="muted">Verifying…</p>
        )}
      </div>
    </div>
  );
}

function AuditList({ reload }: { reload: number }) {
  const [outcome, setOutcome] = useState<'' | Outcome>('');
  const [actionInput, setActionInput] = useState('');
  const [action, setAction] = useState('');
  const [entries, setEntries] = useState<AuditEntryView[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const [exhausted, setExhausted] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(false);
  const generation = useRef(0);

  const fetchPage = useCallback(
    async (beforeSeq: number | undefined, replace: boolean) => {
      const gen = ++generation.current;
      setLoading(true);
      setError(null);
      try {
        const r = await call('audit.list', {
          limit: PAGE,
          ...(beforeSeq !== undefined ? { beforeSeq } : {}),
          ...(outcome ? { outcome } : {}),
          ...(action ? { action } : {}),
        });
        if (gen !== generation.current) return;
        setEntries((prev) => (replace ? r.entries : [...prev, ...r.entries]));
        setTotal(r.total);
        setExhausted(r.entries.length < PAGE);
      } catch (e) {
        if (gen === generation.current) setError(toApiError(e));
      } finally {
        if (gen === generation.current) setLoading(false);
      }
    },
    [outcome, action],
  );

  useEffect(() => {
    void fetchPage(undefined, true);
  }, [fetchPage, reload]);

  useEffect(() => {
    const t = setTimeout(() => setAction(actionInput.trim()), 300);
    return () => clearTimeout(t);
  }, [actionInput]);

  const oldest = entries.length ? Math.min(...entries.map((e) => e.seq)) : undefined;
  const more = !exhausted && total !== null && entries.length < total && oldest !== undefined && oldest > 1;

  return (
    <div className="audit-list">
      <div className="toolbar">
        <div className="field field--inline">
          <label htmlFor="audit-outcome">Outcome</label>
          <select
            id="audit-outcome"
            value={outcome}
            onChange={(e) => {
              const v = e.target.value;
              setOutcome(v === 'success' || v === 'denied' || v === 'error' ? v : '');
            }}
          >
            {OUTCOMES.map((o) => (
              <option key={o.value} value={o.value}>
                {o.label}
              </option>
            ))}
          </select>
        </div>
        <div className="field field--inline">
          <label htmlFor="audit-action">Action</label>
          <input id="audit-action" type="search" placeholder="e.g. patient.read" value={actionInput} maxLength={64} onChange={(e) => setActionInput(e.target.value)} />
        </div>
        <button type="button" className="btn btn--small btn--ghost" onClick={() => void fetchPage(undefined, true)} disabled={loading}>
          Refresh
        </button>
        <span className="muted small" role="status" aria-live="polite">
          {total !== null ? `Showing ${entries.length} of ${total}` : loading ? 'Loading…' : ''}
        </span>
      </div>
      <ErrorAlert error={error} />
      <div className="table-scroll">
        <table className="table table--dense" data-testid="audit-table">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Time</th>
              <th scope="col">User</th>
              <th scope="col">Action</th>
              <th scope="col">Outcome</th>
              <th scope="col">Detail</th>
              <th scope="col">Entity</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={e.seq} data-testid="audit-row" data-outcome={e.outcome}>
                <td className="mono">{e.seq}</td>
                <td className="nowrap">{formatDateTime(e.recordedAt, true)}</td>
                <td>
                  {e.actorUsername ? <span className="mono">{e.actorUsername}</span> : <span className="muted">—</span>}
                  {e.actorRole ? <span className="muted small"> {roleLabel(e.actorRole)}</span> : null}
                </td>
                <td className="mono">
                  {e.action}
                  {e.breakGlass ? (
                    <>
                      {' '}
                      <Badge tone="danger">break glass</Badge>
                    </>
                  ) : null}
                </td>
                <td>
                  <Badge tone={e.outcome === 'success' ? 'success' : e.outcome === 'denied' ? 'warning' : 'danger'}>{e.outcome}</Badge>
                </td>
                <td className="detail">{e.outcomeDetail ?? ''}</td>
                <td className="mono small nowrap">
                  {e.entityType ? `${e.entityType}${e.entityId ? ` ${e.entityId.slice(0, 8)}` : ''}` : ''}
                  {e.patientId && e.patientId !== e.entityId ? ` patient ${e.patientId.slice(0, 8)}` : ''}
                </td>
              </tr>
            ))}
            {!loading && entries.length === 0 && !error ? (
              <tr>
                <td colSpan={7} className="muted">
                  No audit entries match.
                </td>
              </tr>
            ) : null}
          </tbody>
        </table>
      </div>
      <div className="form__actions">
        <button type="button" className="btn" disabled={!more || loading} onClick={() => void fetchPage(oldest, false)}>
          {loading && entries.length ? 'Loading…' : 'Older'}
        </button>
      </div>
    </div>
  );
}
