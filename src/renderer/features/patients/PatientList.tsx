import { useEffect, useState } from 'react';
import type { PatientSummary, SessionInfo } from '../../../shared/ipc.js';
import { call } from '../../api/client.js';
import { toApiError, type ApiError } from '../../api/errors.js';
import { Badge, ErrorAlert } from '../../components/ui.js';
import { hasPermission } from '../../stores/session.js';
import { href, navigate } from '../../stores/route.js';
import { BreakGlassDialog } from './BreakGlassDialog.js';
import { SEX_LABELS } from './labels.js';

const LIMIT = 100;

export function PatientList({ session }: { session: SessionInfo }) {
  const [query, setQuery] = useState('');
  const [debounced, setDebounced] = useState('');
  const [patients, setPatients] = useState<PatientSummary[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [loading, setLoading] = useState(false);
  const [breakGlassFor, setBreakGlassFor] = useState<PatientSummary | null>(null);
  const canWrite = hasPermission(session, 'patients:write');
  const canBreakGlass = hasPermission(session, 'breakglass:invoke');
  // Re-query when a break-glass grant starts or ends: restricted names appear or disappear.
  const grant = session.breakGlass?.until ?? null;

  useEffect(() => {
    const t = setTimeout(() => setDebounced(query.trim()), 250);
    return () => clearTimeout(t);
  }, [query]);

  useEffect(() => {
    let cancelled = false;
    setLoading(true);
    call('patients.list', { ...(debounced ? { query: debounced } : {}), limit: LIMIT })
      .then((r) => {
        if (cancelled) return;
        setPatients(r.patients);
        setError(null);
      })
      .catch((e: unknown) => {
        if (!cancelled) setError(toApiError(e));
      })
      .finally(() => {
        if (!cancelled) setLoading(false);
      });
    return () => {
      cancelled = true;
    };
  }, [debounced, grant]);

  return (
    <section className="page" data-testid="patients" aria-labelledby="patients-title">
      <header className="page-header page-header--row">
        <h1 id="patients-title">Patients</h1>
        {canWrite ? (
          <button type="button" className="btn btn--primary" onClick={() => navigate('/patients/new')}>
            New patient
          </button>
        ) : null}
      </header>
      <div className="toolbar">
        <div className="field field--inline">
          <label htmlFor="patient-search">Search patients</label>
          <input
            id="patient-search"
            type="search"
            placeholder="Name or MRN"
            value={query}
            onChange={(e) => setQuery(e.target.value)}
            maxLength={100}
            autoFocus
          />
        </div>
        <span className="muted small" role="status" aria-live="polite">
          {loading ? 'Searching…' : patients ? `${patients.length}${patients.length === LIMIT ? '+' : ''} record${patients.length === 1 ? '' : 's'}` : ''}
        </span>
      </div>
      <ErrorAlert error={error} />
      {patients && patients.length === 0 && !loading ? (
        <p className="muted empty-row">{debounced ? `No patient matches “${debounced}”.` : 'No patients on this workstation yet.'}</p>
      ) : null}
      {patients && patients.length > 0 ? (
        <table className="table table--rows" data-testid="patients-list">
          <thead>
            <tr>
              <th scope="col">MRN</th>
              <th scope="col">Name</th>
              <th scope="col">Birth date</th>
              <th scope="col">Sex</th>
              <th scope="col">
                <span className="visually-hidden">Flags</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {patients.map((p) => (
              <tr key={p.id} data-testid="patient-row" data-patient-id={p.id}>
                <td className="mono">{p.mrn}</td>
                <td>
                  {p.name !== null ? (
                    <a href={href(`/patients/${p.id}`)}>{p.name}</a>
                  ) : (
                    <span className="restricted-cell">
                      <span className="muted">Restricted record</span>
                      {canBreakGlass ? (
                        <button type="button" className="btn btn--small btn--danger-outline" onClick={() => setBreakGlassFor(p)}>
                          Break glass
                        </button>
                      ) : (
                        <span className="muted small">Needs break-glass access</span>
                      )}
                    </span>
                  )}
                </td>
                <td>{p.birthDate ?? '—'}</td>
                <td>{p.sex ? SEX_LABELS[p.sex] : '—'}</td>
                <td>
                  <div className="flags">
                  {p.synthetic ? (
                    <Badge tone="synthetic" title="Fictional record for training and evaluation">
                      SYNTHETIC
                    </Badge>
                  ) : null}
                  {p.restricted ? <Badge tone="danger">RESTRICTED</Badge> : null}
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <BreakGlassDialog
        open={breakGlassFor !== null}
        mrn={breakGlassFor?.mrn ?? null}
        onClose={() => setBreakGlassFor(null)}
        onGranted={() => {
          const target = breakGlassFor;
          setBreakGlassFor(null);
          if (target) navigate(`/patients/${target.id}`);
        }}
      />
    </section>
  );
}
