/**
 * The AI second read beside the open study (issue 9 item 8): run it (radiologists) and follow its
 * stages; the finding with its regions (a click shows the region's slice under the heat map), the
 * tissue clusters and their change since the prior study; the radiologist's confirm / amend / reject
 * with a comment; the FHIR report as it is queued. Every finding is marked AI-generated and not for
 * clinical diagnosis, and stays preliminary until a radiologist decides.
 */
import { useEffect, useId, useState } from 'react';
import { AI_READ_STAGES, type AiRead, type AiReadJob, type Study } from '../../../shared/ipc.js';
import { call } from '../../api/client.js';
import { Alert, Badge, ErrorAlert, formatDateTime, useAction } from '../../components/ui.js';
import { cancelRead, decideRead, fetchReads, selectRead, startRead, useAnalysis, watchReads } from '../../stores/analysis.js';
import { usePermission } from '../../stores/session.js';
import { setOverlay, setSlice, useViewer } from '../../stores/viewer.js';
import { AI_CLUSTERS, AI_HEATMAP } from './overlays.js';

const STAGE_LABELS: Record<(typeof AI_READ_STAGES)[number], string> = {
  queued: 'Queued',
  loading: 'Load series',
  checks: 'Checks',
  backend: 'Backend',
  model: 'Model',
  fit: 'Tensor fit',
  features: 'Features',
  'pca-kmeans': 'PCA + KMeans',
  slices: 'Slices',
  cnn: 'CNN + Grad-CAM',
  findings: 'Findings',
  saving: 'Save',
};
const SHOWN_STAGES = AI_READ_STAGES.filter((s) => s !== 'queued');
const STATUS_LABELS: Record<AiRead['status'], { text: string; tone: 'warning' | 'success' | 'accent' | 'danger' }> = {
  preliminary: { text: 'Preliminary: awaiting a radiologist', tone: 'warning' },
  final: { text: 'Confirmed (final)', tone: 'success' },
  amended: { text: 'Amended by a radiologist', tone: 'accent' },
  'entered-in-error': { text: 'Rejected (entered in error)', tone: 'danger' },
};

const pct = (p: number) => `${(p * 100).toFixed(1)} %`;
const md = (v: number) => (v * 1e3).toFixed(3);
const signed = (v: number, digits: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(digits)}`;

export interface SliceMapping {
  /** Slices of the study, and whether the viewer shows them in reverse order (geometry.flippedK). */
  slices: number;
  reversed: boolean;
}

/** The viewer's 0-based slice index of voxel slice `k`. */
export const viewerSlice = (k: number, mapping: SliceMapping) => (mapping.reversed ? mapping.slices - 1 - k : k);

function Progress({ job }: { job: AiReadJob }) {
  const current = SHOWN_STAGES.indexOf(job.stage as (typeof SHOWN_STAGES)[number]);
  const finished = job.state === 'done';
  const timeOf = (stage: string) => job.stages.find((s) => s.name === stage)?.ms;
  return (
    <div className={`progress progress--${job.state}`} data-testid="ai-progress" data-state={job.state} aria-live="polite">
      <div className="progress__head">
        <span className="progress__stage">{job.state === 'running' ? (STAGE_LABELS[job.stage as keyof typeof STAGE_LABELS] ?? job.stage) : job.state === 'done' ? 'Done' : job.state === 'cancelled' ? 'Cancelled' : 'Failed'}</span>
        <span className="progress__pct">{Math.round(job.fraction * 100)}%</span>
      </div>
      <progress max={1} value={job.fraction} aria-label="AI read progress" />
      <ol className="ai-stages">
        {SHOWN_STAGES.map((stage, i) => {
          const state = finished || i < current ? 'done' : i === current && job.state === 'running' ? 'current' : 'pending';
          const ms = timeOf(stage);
          return (
            <li key={stage} className={`ai-stage ai-stage--${state}`} data-stage={stage} data-state={state}>
              <span className="ai-stage__name">{STAGE_LABELS[stage]}</span>
              {state === 'current' ? <progress max={1} value={job.stageFraction} aria-label={`${STAGE_LABELS[stage]} progress`} /> : null}
              <span className="ai-stage__time muted">{state === 'done' ? (ms !== undefined ? `${ms < 1000 ? Math.round(ms) + ' ms' : (ms / 1000).toFixed(1) + ' s'}` : '✓') : ''}</span>
            </li>
          );
        })}
      </ol>
      {job.state !== 'running' && job.state !== 'done' ? <p className="progress__message small">{job.message}</p> : null}
    </div>
  );
}

function Decision({ read }: { read: AiRead }) {
  const [comment, setComment] = useState('');
  const [mode, setMode] = useState<'choose' | 'amend'>('choose');
  const [conclusion, setConclusion] = useState('');
  const [finding, setFinding] = useState<AiRead['finding']>(read.finding);
  const { run, busy, error } = useAction(decideRead);
  const ids = { comment: useId(), conclusion: useId(), finding: useId() };
  const tooShort = comment.trim().length < 3;
  return (
    <form className="ai-decision" data-testid="ai-decision" onSubmit={(e) => e.preventDefault()}>
      <h3 className="subhead">Your decision</h3>
      <label htmlFor={ids.comment}>Comment (required)</label>
      <textarea id={ids.comment} value={comment} onChange={(e) => setComment(e.target.value)} rows={2} maxLength={2000} />
      {mode === 'amend' ? (
        <>
          <label htmlFor={ids.conclusion}>Your conclusion</label>
          <textarea id={ids.conclusion} value={conclusion} onChange={(e) => setConclusion(e.target.value)} rows={3} maxLength={4000} />
          <label htmlFor={ids.finding}>Finding</label>
          <select id={ids.finding} value={finding} onChange={(e) => setFinding(e.target.value as AiRead['finding'])}>
            <option value="suspected">Lesion suspected</option>
            <option value="not-found">No lesion</option>
          </select>
          <div className="ai-decision__buttons">
            <button type="button" className="btn" disabled={busy || tooShort || conclusion.trim().length < 3} onClick={() => void run({ readId: read.id, decision: 'amend', comment, conclusion, finding })}>
              Save amendment
            </button>
            <button type="button" className="btn btn--ghost" onClick={() => setMode('choose')}>
              Back
            </button>
          </div>
        </>
      ) : (
        <div className="ai-decision__buttons">
          <button type="button" className="btn btn--primary" disabled={busy || tooShort} onClick={() => void run({ readId: read.id, decision: 'confirm', comment })}>
            Confirm
          </button>
          <button type="button" className="btn" disabled={busy} onClick={() => setMode('amend')}>
            Amend…
          </button>
          <button type="button" className="btn btn--danger" disabled={busy || tooShort} onClick={() => void run({ readId: read.id, decision: 'reject', comment })}>
            Reject
          </button>
        </div>
      )}
      {tooShort ? <p className="muted small">Say why in a comment of at least 3 characters; it goes into the report and the audit trail.</p> : null}
      <ErrorAlert error={error} />
    </form>
  );
}

function ReportPreview({ read }: { read: AiRead }) {
  const [resources, setResources] = useState<Record<string, unknown>[] | null>(null);
  const { run, busy, error } = useAction(async () => setResources((await call('analysis.report', { readId: read.id })).resources));
  useEffect(() => setResources(null), [read.id, read.status]);
  const report = resources?.find((r) => r.resourceType === 'DiagnosticReport');
  const media = resources?.find((r) => r.resourceType === 'Media') as { content?: { contentType?: string; data?: string; title?: string } } | undefined;
  return (
    <div className="ai-report" data-testid="ai-report">
      {resources ? (
        <>
          <h3 className="subhead">FHIR report (as queued for the servers)</h3>
          <p className="small">
            DiagnosticReport <code>{String(report?.status)}</code>: {String(report?.conclusion ?? '')}
          </p>
          <p className="small muted">
            About {(report?.subject as { display?: string } | undefined)?.display ?? 'no patient'} · study {(report?.imagingStudy as { reference: string }[] | undefined)?.[0]?.reference ?? '–'}
          </p>
          {media?.content?.data ? <img className="ai-report__image" src={`data:${media.content.contentType ?? 'image/png'};base64,${media.content.data}`} alt={media.content.title ?? 'AI heat map'} /> : null}
          <ul className="ai-report__resources small muted">
            {resources.map((r) => (
              <li key={`${String(r.resourceType)}/${String(r.id)}`}>
                {String(r.resourceType)}/{String(r.id).slice(0, 8)}… {typeof r.status === 'string' ? `(${r.status})` : ''}
              </li>
            ))}
          </ul>
          <button type="button" className="btn btn--small btn--ghost" onClick={() => setResources(null)}>
            Hide report
          </button>
        </>
      ) : (
        <button type="button" className="btn btn--small" disabled={busy} onClick={() => void run()}>
          Preview the FHIR report
        </button>
      )}
      <ErrorAlert error={error} />
    </div>
  );
}

function ReadDetail({ read, mapping }: { read: AiRead; mapping: SliceMapping | null }) {
  const overlayId = useViewer((s) => s.overlayId);
  const status = STATUS_LABELS[read.status];
  const showRegion = (k: number) => {
    if (mapping) setSlice(viewerSlice(k, mapping));
    setOverlay(AI_HEATMAP);
  };
  const sliceLabel = (k: number) => (mapping ? viewerSlice(k, mapping) + 1 : k + 1);
  return (
    <div className="ai-read" data-testid="ai-read" data-finding={read.finding} data-status={read.status}>
      <p className="ai-read__finding">
        <strong data-testid="ai-finding">{read.finding === 'suspected' ? 'Lesion suspected' : 'No lesion found'}</strong> · probability {pct(read.probability)} (threshold {pct(read.threshold)})
      </p>
      <p>
        <Badge tone={status.tone}>{status.text}</Badge>
      </p>
      <div className="ai-read__overlays" role="group" aria-label="Show an AI map over the image">
        <button type="button" className="btn btn--small" aria-pressed={overlayId === AI_HEATMAP} onClick={() => setOverlay(AI_HEATMAP)}>
          Heat map
        </button>
        <button type="button" className="btn btn--small" aria-pressed={overlayId === AI_CLUSTERS} onClick={() => setOverlay(AI_CLUSTERS)}>
          Tissue clusters
        </button>
      </div>
      {read.regions.length ? (
        <>
          <h3 className="subhead">Regions ({read.regions.length})</h3>
          <ul className="ai-regions" data-testid="ai-regions">
            {read.regions.map((r, i) => {
              const k = r.centroidVoxel[2];
              return (
                <li key={i}>
                  <button type="button" className="ai-region" onClick={() => showRegion(k)} title="Show this region's slice under the heat map">
                    <span className="ai-region__name">Region {i + 1}</span> · {r.volumeMl.toFixed(2)} ml · slices {sliceLabel(r.slices[0]!)}–{sliceLabel(r.slices.at(-1)!)} · p {pct(r.probability)}
                    <span className="ai-region__tissue small muted">
                      FA {r.fa.inside.toFixed(2)} (cluster {r.cluster} elsewhere {r.fa.clusterElsewhere?.toFixed(2) ?? '–'}) · MD {md(r.md.inside)} ({r.md.clusterElsewhere !== null ? md(r.md.clusterElsewhere) : '–'}) ×10⁻³ mm²/s
                      {r.prior ? ` · since prior: FA ${signed(r.prior.faChange, 3)}, MD ${signed(r.prior.mdChange * 1e3, 3)}×10⁻³` : read.prior ? ' · not in the prior study' : ''}
                    </span>
                  </button>
                </li>
              );
            })}
          </ul>
        </>
      ) : (
        <p className="muted small">No region above the threshold.</p>
      )}
      <h3 className="subhead">Tissue clusters</h3>
      <table className="ai-clusters" data-testid="ai-clusters">
        <thead>
          <tr>
            <th scope="col">Cluster</th>
            <th scope="col">ml</th>
            <th scope="col">FA</th>
            <th scope="col">MD ×10⁻³</th>
            {read.prior ? <th scope="col">Change since prior</th> : null}
          </tr>
        </thead>
        <tbody>
          {read.clusters.map((c) => (
            <tr key={c.cluster}>
              <td>{c.cluster}</td>
              <td>{c.volumeMl.toFixed(1)}</td>
              <td>{c.meanFa.toFixed(3)}</td>
              <td>{md(c.meanMd)}</td>
              {read.prior ? <td>{c.prior ? `FA ${signed(c.prior.faChange, 3)}, MD ${signed(c.prior.mdChange * 1e3, 3)}` : '–'}</td> : null}
            </tr>
          ))}
        </tbody>
      </table>
      {read.prior ? (
        <p className="small muted" data-testid="ai-prior">
          Compared with the read of {read.prior.studyDescription || 'the prior study'} ({formatDateTime(read.prior.createdAt)}); positions in scanner coordinates, no registration.
        </p>
      ) : (
        <p className="small muted">No prior study of this patient to compare with.</p>
      )}
      {read.decision ? (
        <p className="small" data-testid="ai-decided">
          {read.decision.kind === 'confirmed' ? 'Confirmed' : read.decision.kind === 'amended' ? 'Amended' : 'Rejected'} by {read.decision.by} on {formatDateTime(read.decision.at)}: {read.decision.comment}
          {read.decision.conclusion ? ` — “${read.decision.conclusion}”` : ''}
        </p>
      ) : null}
      <p className="small muted">
        {read.model.name} {read.model.version} (sha256 {read.model.hash.slice(0, 12)}…) on {read.backend.name} · run by {read.createdBy} on {formatDateTime(read.createdAt)}
      </p>
    </div>
  );
}

export function AiReadPanel({ study, mapping }: { study: Study; mapping: SliceMapping | null }) {
  const canRun = usePermission('imaging:write');
  const { reads, model, error, jobs, selectedReadId } = useAnalysis();
  const start = useAction(startRead);
  useEffect(() => {
    watchReads(canRun);
    void fetchReads(study.id);
  }, [study.id, canRun]);
  const job = jobs.find((j) => j.studyId === study.id) ?? null;
  const running = job?.state === 'running';
  const read = reads.find((r) => r.id === selectedReadId) ?? reads[0] ?? null;
  const noContrast = study.diffusionContrast?.status === 'absent';
  return (
    <section className="panel ai-panel" aria-label="AI second read" data-testid="ai-panel">
      <h2 className="subhead">AI second read</h2>
      <p className="ai-disclaimer" data-testid="ai-disclaimer" role="note">
        AI-generated · not for clinical diagnosis · nothing is final until a radiologist decides
      </p>
      {model?.error ? (
        <Alert tone="warning" testId="ai-model-error">
          The AI read is not available: {model.error}
        </Alert>
      ) : null}
      {noContrast ? <Alert tone="warning">This series has no diffusion contrast: the AI read refuses it.</Alert> : null}
      {!study.patientId ? <Alert tone="info">Link the study to its patient before the AI read: a report must say whom it is about.</Alert> : null}
      {canRun ? (
        <div className="ai-panel__actions">
          {running ? (
            <button type="button" className="btn" onClick={() => void cancelRead(job.id)}>
              Cancel the AI read
            </button>
          ) : (
            <button type="button" className="btn btn--primary" disabled={start.busy || !!model?.error || noContrast || !study.patientId} onClick={() => void start.run(study.id)}>
              {reads.length ? 'Run the AI read again' : 'Run the AI read'}
            </button>
          )}
        </div>
      ) : null}
      <ErrorAlert error={start.error} />
      {job && (running || job.state !== 'done' || !reads.some((r) => r.id === job.readId)) ? <Progress job={job} /> : null}
      {error ? <Alert>{error}</Alert> : null}
      {read ? (
        <>
          {reads.length > 1 ? (
            <label className="ai-panel__reads small">
              Read{' '}
              <select value={read.id} onChange={(e) => selectRead(e.target.value)}>
                {reads.map((r) => (
                  <option key={r.id} value={r.id}>
                    {formatDateTime(r.createdAt)} · {STATUS_LABELS[r.status].text}
                  </option>
                ))}
              </select>
            </label>
          ) : null}
          <ReadDetail read={read} mapping={mapping} />
          {read.status === 'preliminary' && canRun ? <Decision key={read.id} read={read} /> : null}
          <ReportPreview read={read} />
        </>
      ) : !running && !model?.error ? (
        <p className="muted small">No AI read of this study yet.</p>
      ) : null}
    </section>
  );
}
