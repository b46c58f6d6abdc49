/** Recent studies (`imaging.studies`), newest first; choosing one opens it. */
import type { Study } from '../../../shared/ipc.js';
import { Alert, Badge, formatDateTime } from '../../components/ui.js';
import { fetchStudies, openStudy, useViewer } from '../../stores/viewer.js';

export function StudiesList({ selectedId }: { selectedId: string | null }) {
  const studies = useViewer((s) => s.studies);
  const loading = useViewer((s) => s.studiesLoading);
  const error = useViewer((s) => s.studiesError);
  return (
    <section className="studies panel" aria-labelledby="studies-title">
      <div className="studies__head">
        <h2 id="studies-title" className="subhead">
          Recent studies
        </h2>
        <button type="button" className="btn btn--small btn--ghost" onClick={() => void fetchStudies()} disabled={loading}>
          Refresh
        </button>
      </div>
      {error ? <Alert tone="error">{error}</Alert> : null}
      <ul className="studies__list" data-testid="studies-list" aria-busy={loading}>
        {studies?.map((s) => <StudyItem key={s.id} study={s} selected={s.id === selectedId} />)}
        {studies && !studies.length ? <li className="muted small">No studies yet.</li> : null}
        {!studies && loading ? <li className="muted small">Loading…</li> : null}
      </ul>
    </section>
  );
}

function StudyItem({ study: s, selected }: { study: Study; selected: boolean }) {
  const [nx, ny, nz, vols] = s.dims;
  return (
    <li>
      <button type="button" className="study" aria-current={selected ? 'true' : undefined} onClick={() => openStudy(s.id)} data-testid="study-item">
        <span className="study__title">{s.description || 'Untitled study'}</span>
        <span className="study__meta">
          {formatDateTime(s.createdAt)} · {nx}×{ny}×{nz} · {vols} vol
        </span>
        <span className="study__meta" data-testid="study-item-patient">
          {s.patient ? (
            <span>
              {s.patient.name} <span className="mono">· {s.patient.mrn}</span>
            </span>
          ) : (
            <Badge tone="warning" title="Imported without a patient: open it to link one">
              No patient
            </Badge>
          )}
        </span>
        <span className="study__meta">
          {s.manufacturer ?? s.sourceKind.toUpperCase()} {s.masked ? null : <Badge tone="warning">unmasked</Badge>}{' '}
          {s.diffusionContrast?.status === 'absent' ? (
            <Badge tone="danger" title={s.diffusionContrast.message ?? undefined}>
              No diffusion contrast
            </Badge>
          ) : null}
        </span>
      </button>
    </li>
  );
}
