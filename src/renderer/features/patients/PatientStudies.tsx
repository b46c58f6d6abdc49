/**
 * The patient record's imaging section: this patient's studies (`imaging.studies` with `patientId`),
 * newest first, each opening in the viewer. Shown to roles that read images (imaging:read).
 */
import { useEffect, useState } from 'react';
import type { SessionInfo, Study } from '../../../shared/ipc.js';
import { call } from '../../api/client.js';
import { toApiError, type ApiError } from '../../api/errors.js';
import { Badge, ErrorAlert, formatDateTime } from '../../components/ui.js';
import { hasPermission } from '../../stores/session.js';
import { href } from '../../stores/route.js';

export function PatientStudies({ session, patientId }: { session: SessionInfo; patientId: string }) {
  const canRead = hasPermission(session, 'imaging:read');
  const [studies, setStudies] = useState<Study[] | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const grant = session.breakGlass?.until ?? null;

  useEffect(() => {
    if (!canRead) return;
    let cancelled = false;
    call('imaging.studies', { patientId })
      .then((r) => {
        if (!cancelled) setStudies([...r.studies].sort((a, b) => b.createdAt.localeCompare(a.createdAt)));
      })
      .catch((e: unknown) => {
        if (!cancelled) setError(toApiError(e));
      });
    return () => {
      cancelled = true;
    };
  }, [patientId, canRead, grant]);

  if (!canRead) return null;
  return (
    <section className="record-section" data-testid="patient-studies" aria-labelledby="patient-studies-title">
      <h2 id="patient-studies-title" className="subhead">
        Imaging studies
      </h2>
      <ErrorAlert error={error} />
      {studies === null && !error ? <p className="muted small">Loading…</p> : null}
      {studies && !studies.length ? <p className="muted small">No imaging studies for this patient.</p> : null}
      {studies?.length ? (
        <ul className="record-list">
          {studies.map((s) => (
            <li key={s.id} data-testid="patient-study">
              <a href={href(`/viewer/${s.id}`)}>{s.description || 'Untitled study'}</a>
              <span className="muted small">
                {' '}
                · {formatDateTime(s.createdAt)} · {s.manufacturer ?? s.sourceKind.toUpperCase()} · {s.dims[3]} volumes
              </span>
              {s.diffusionContrast?.status === 'absent' ? (
                <>
                  {' '}
                  <Badge tone="danger" title={s.diffusionContrast.message ?? undefined}>
                    No diffusion contrast
                  </Badge>
                </>
              ) : null}
              {s.patientLink?.decision === 'override' ? (
                <>
                  {' '}
                  <Badge tone="warning" title={s.patientLink.reason ?? undefined}>
                    Linked despite differences
                  </Badge>
                </>
              ) : null}
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
