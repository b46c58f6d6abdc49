/**
 * Import (imaging:write): browse the configured import roots or paste a folder path, scan it for
 * DICOM diffusion series and NIfTI files, pick one, confirm whose study it is (PatientDecision: the
 * identity in the files and its match against the local records), import; progress follows
 * `imaging.job` events, and the result says what the reader must know (e.g. no diffusion contrast).
 */
import { useEffect, useId, useMemo, useRef, useState, type FormEvent } from 'react';
import type { ImagingJob, ResponseOf, SeriesSummaryView } from '../../../shared/ipc.js';
import { call } from '../../api/client.js';
import { toApiError, type ApiError } from '../../api/errors.js';
import { Alert, Badge, Checkbox, ErrorAlert, TextField } from '../../components/ui.js';
import { usePermission } from '../../stores/session.js';
import { startImport, useViewer } from '../../stores/viewer.js';
import { decisionReady, decisionRequest, initialDecision, PatientDecision, type PatientDecisionState } from './PatientDecision.js';

type Browse = ResponseOf<'imaging.browse'>;
type Scan = ResponseOf<'imaging.scan'>;
type NiftiEntry = Scan['nifti'][number];
type Choice = { kind: 'series'; uid: string } | { kind: 'nifti'; file: string };

/** "0 ×1 · 1000 ×6" */
export function summariseBvals(bvals: readonly number[]): string {
  if (!bvals.length) return '—';
  const counts = new Map<number, number>();
  for (const b of bvals) {
    const r = Math.round(b / 5) * 5;
    counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([b, n]) => `${b} ×${n}`)
    .join(' · ');
}

function baseName(path: string): string {
  const parts = path.split(/[\\/]/).filter(Boolean);
  return parts[parts.length - 1] ?? path;
}

function joinPath(folder: string, name: string): string {
  if (/^([a-zA-Z]:)?[\\/]/.test(name)) return name;
  const sep = folder.includes('\\') && !folder.includes('/') ? '\\' : '/';
  return folder.endsWith(sep) ? `${folder}${name}` : `${folder}${sep}${name}`;
}

export function ImportPanel() {
  const [browse, setBrowse] = useState<Browse | null>(null);
  const [browseError, setBrowseError] = useState<ApiError | null>(null);
  const [browsing, setBrowsing] = useState(false);
  const [folderPath, setFolderPath] = useState('');
  const [scan, setScan] = useState<{ path: string; result: Scan } | null>(null);
  const [scanError, setScanError] = useState<ApiError | null>(null);
  const [scanning, setScanning] = useState(false);
  const [choice, setChoice] = useState<Choice | null>(null);
  const [fitUnmasked, setFitUnmasked] = useState(false);
  const [starting, setStarting] = useState(false);
  const [decision, setDecision] = useState<PatientDecisionState>({ choice: null, reason: '' });
  const [reasonAsked, setReasonAsked] = useState(false);
  const canCreatePatient = usePermission('patients:create-from-study');
  const importError = useViewer((s) => s.importError);
  const watchedJobId = useViewer((s) => s.watchedJobId);
  const jobs = useViewer((s) => s.jobs);
  const watched = jobs.find((j) => j.id === watchedJobId) ?? null;
  const running = watched?.state === 'running';

  const open = async (path?: string) => {
    setBrowsing(true);
    setBrowseError(null);
    try {
      const result = await call('imaging.browse', path ? { path } : {});
      setBrowse(result);
      if (result.path) setFolderPath(result.path);
    } catch (error) {
      setBrowseError(toApiError(error));
    } finally {
      setBrowsing(false);
    }
  };

  useEffect(() => {
    void open();
  }, []);

  // Once this window's import is stored, the scan has served its purpose: make room for the studies list.
  const watchedDone = watched?.state === 'done';
  useEffect(() => {
    if (!watchedDone) return;
    setScan(null);
    setChoice(null);
  }, [watchedDone]);

  const doScan = async (e?: FormEvent) => {
    e?.preventDefault();
    const path = folderPath.trim();
    if (!path) {
      setScanError(toApiError(new Error('Type a folder path or pick a folder first.')));
      return;
    }
    setScanning(true);
    setScanError(null);
    setScan(null);
    setChoice(null);
    try {
      const result = await call('imaging.scan', { path });
      setScan({ path, result });
      const firstSeries = result.series.find((s) => s.isDiffusion);
      const firstNifti = result.nifti.find((n) => n.bval && n.bvec && !n.problem);
      setChoice(firstSeries ? { kind: 'series', uid: firstSeries.seriesInstanceUid } : firstNifti ? { kind: 'nifti', file: firstNifti.file } : null);
    } catch (error) {
      setScanError(toApiError(error));
    } finally {
      setScanning(false);
    }
  };

  // Whose study: the chosen series' identity and match (a NIfTI file names nobody).
  const chosenSeries = scan && choice?.kind === 'series' ? (scan.result.series.find((s) => s.seriesInstanceUid === choice.uid) ?? null) : null;
  const identity = chosenSeries?.patient ?? null;
  const match = chosenSeries?.match ?? null;
  const choiceKey = choice ? `${choice.kind}:${choice.kind === 'series' ? choice.uid : choice.file}` : '';
  useEffect(() => {
    setDecision(initialDecision(match, identity, true));
    setReasonAsked(false);
    // A new choice of series or file starts its decision afresh.
  }, [choiceKey]);
  const ready = decisionReady(decision, identity, reasonAsked);

  const doImport = async () => {
    if (!scan || !choice || !ready) return;
    setStarting(true);
    const mask = !fitUnmasked;
    const patient = decisionRequest(decision, identity, reasonAsked);
    let refused: ApiError | null = null;
    if (choice.kind === 'series') {
      refused = await startImport({ path: scan.path, seriesInstanceUid: choice.uid, mask, ...patient });
    } else {
      const entry = scan.result.nifti.find((n) => n.file === choice.file);
      if (entry?.bval && entry.bvec) {
        refused = await startImport({
          path: joinPath(scan.path, entry.file),
          bval: joinPath(scan.path, entry.bval),
          bvec: joinPath(scan.path, entry.bvec),
          mask,
          ...patient,
        });
      }
    }
    // The host found a difference the page did not: ask for the reason.
    if (refused?.code === 'conflict' && /override/.test(refused.message)) setReasonAsked(true);
    setStarting(false);
  };

  const nothingFound = scan && !scan.result.series.length && !scan.result.nifti.length;

  return (
    <section className="import panel" aria-labelledby="import-title" data-testid="import-panel">
      <h2 id="import-title" className="subhead">
        Import diffusion series
      </h2>
      <FolderBrowser browse={browse} busy={browsing} error={browseError} onOpen={(p) => void open(p)} selected={folderPath} />
      <form className="import__path" onSubmit={(e) => void doScan(e)}>
        <TextField label="Folder path" value={folderPath} onChange={setFolderPath} placeholder="/path/to/dicom-folder" spellCheck={false} autoComplete="off" />
        <button type="submit" className="btn btn--small" disabled={scanning || !folderPath.trim()}>
          {scanning ? 'Scanning…' : 'Scan'}
        </button>
      </form>
      <ErrorAlert error={scanError} />
      {nothingFound ? <Alert tone="warning">No DICOM series or NIfTI files were found in {scan.path}.</Alert> : null}
      {scan && !nothingFound ? (
        <ScanResults scan={scan.result} choice={choice} onChoose={setChoice} />
      ) : null}
      {scan && !nothingFound && choice ? (
        <PatientDecision
          key={choiceKey}
          identity={identity}
          match={match}
          source={choice.kind === 'series' ? 'dicom' : 'nifti'}
          allowUnlinked
          canCreate={canCreatePatient}
          state={decision}
          onChange={setDecision}
          reasonAsked={reasonAsked}
        />
      ) : null}
      {scan && !nothingFound ? (
        <div className="import__options">
          <Checkbox
            label="Fit unmasked"
            checked={fitUnmasked}
            onChange={setFitUnmasked}
            hint={fitUnmasked ? 'Every voxel is fitted, background included (slower).' : 'A brain mask limits the fit to tissue (default).'}
          />
          <button type="button" className="btn btn--primary btn--small" disabled={!choice || !ready || starting || running} onClick={() => void doImport()}>
            Import
          </button>
          {choice && !ready ? <span className="muted small">Choose whose study this is first.</span> : null}
        </div>
      ) : null}
      {importError ? <Alert tone="error">{importError}</Alert> : null}
      {watched ? <ImportProgress job={watched} /> : null}
    </section>
  );
}

function FolderBrowser({
  browse,
  busy,
  error,
  onOpen,
  selected,
}: {
  browse: Browse | null;
  busy: boolean;
  error: ApiError | null;
  onOpen: (path?: string) => void;
  selected: string;
}) {
  const dirs = useMemo(() => (browse ? browse.entries.filter((e) => e.kind === 'dir') : []), [browse]);
  const files = useMemo(() => (browse ? browse.entries.filter((e) => e.kind === 'file') : []), [browse]);
  return (
    <div className="browser" data-testid="folder-browser" aria-busy={busy}>
      <div className="browser__bar">
        <span className="browser__path mono" title={browse?.path ?? 'Import roots'}>
          <bdi>{browse?.path ?? 'Import roots'}</bdi>
        </span>
        {browse?.path ? (
          <button type="button" className="btn btn--small btn--ghost" onClick={() => onOpen(browse.parent ?? undefined)} disabled={busy}>
            Up
          </button>
        ) : null}
      </div>
      <ErrorAlert error={error} />
      <ul className="browser__list" aria-label="Folders">
        {!browse?.path
          ? (browse?.roots ?? []).map((root) => (
              <li key={root}>
                <button type="button" className="browser__item browser__item--dir" onClick={() => onOpen(root)} title={root}>
                  <span className="browser__icon" aria-hidden="true">▸</span>
                  {root}
                </button>
              </li>
            ))
          : null}
        {browse?.path
          ? dirs.map((d) => (
              <li key={d.path}>
                <button
                  type="button"
                  className="browser__item browser__item--dir"
                  onClick={() => onOpen(d.path)}
                  aria-current={d.path === selected ? 'true' : undefined}
                >
                  <span className="browser__icon" aria-hidden="true">▸</span>
                  {d.name}
                </button>
              </li>
            ))
          : null}
        {browse?.path && files.length ? (
          <li className="browser__files muted small">
            {files.length} file{files.length === 1 ? '' : 's'}
            {files.length <= 6 ? `: ${files.map((f) => f.name).join(', ')}` : ''}
          </li>
        ) : null}
        {browse && browse.path && !dirs.length && !files.length ? <li className="muted small">Empty folder</li> : null}
        {browse && !browse.path && !browse.roots.length ? <li className="muted small">No import folders are configured on this workstation.</li> : null}
      </ul>
    </div>
  );
}

function ScanResults({ scan, choice, onChoose }: { scan: Scan; choice: Choice | null; onChoose: (c: Choice) => void }) {
  const name = useId();
  return (
    <fieldset className="scan" data-testid="scan-results">
      <legend>Series found</legend>
      {scan.series.map((s) => (
        <SeriesOption
          key={s.seriesInstanceUid}
          name={name}
          series={s}
          checked={choice?.kind === 'series' && choice.uid === s.seriesInstanceUid}
          onChoose={() => onChoose({ kind: 'series', uid: s.seriesInstanceUid })}
        />
      ))}
      {scan.nifti.map((n) => (
        <NiftiOption key={n.file} name={name} entry={n} checked={choice?.kind === 'nifti' && choice.file === n.file} onChoose={() => onChoose({ kind: 'nifti', file: n.file })} />
      ))}
    </fieldset>
  );
}

function SeriesOption({ name, series: s, checked, onChoose }: { name: string; series: SeriesSummaryView; checked: boolean; onChoose: () => void }) {
  const id = useId();
  const title = s.seriesDescription || '(no description)';
  return (
    <div className={`scan__item${s.isDiffusion ? '' : ' scan__item--disabled'}`} data-testid="scan-series">
      <input type="radio" id={id} name={name} checked={checked} disabled={!s.isDiffusion} onChange={onChoose} />
      <label htmlFor={id}>
        <span className="scan__title">
          {s.seriesNumber !== null ? <span className="muted">#{s.seriesNumber} </span> : null}
          {title}
          {!s.isDiffusion ? (
            <>
              {' '}
              <Badge tone="warning">Not diffusion</Badge>
            </>
          ) : null}
        </span>
        <span className="scan__meta">
          {s.manufacturer || 'Unknown vendor'} · {s.layout} · {s.volumes} vol · {s.dims.join('×')} · {s.fileCount} files
        </span>
        <span className="scan__meta">b-values: {summariseBvals(s.bvals)}</span>
      </label>
    </div>
  );
}

function NiftiOption({ name, entry, checked, onChoose }: { name: string; entry: NiftiEntry; checked: boolean; onChoose: () => void }) {
  const id = useId();
  const ok = !!entry.bval && !!entry.bvec && !entry.problem;
  return (
    <div className={`scan__item${ok ? '' : ' scan__item--disabled'}`} data-testid="scan-nifti">
      <input type="radio" id={id} name={name} checked={checked} disabled={!ok} onChange={onChoose} />
      <label htmlFor={id}>
        <span className="scan__title">
          {baseName(entry.file)} <Badge>NIfTI</Badge>
        </span>
        <span className="scan__meta">
          {ok ? `with ${baseName(entry.bval ?? '')} and ${baseName(entry.bvec ?? '')}` : (entry.problem ?? 'No matching .bval/.bvec next to it — cannot fit tensors')}
        </span>
      </label>
    </div>
  );
}

const STAGE_LABELS: Record<string, string> = {
  queued: 'Queued',
  reading: 'Reading',
  fitting: 'Fitting tensors',
  saving: 'Saving',
  done: 'Done',
  failed: 'Failed',
};

export function ImportProgress({ job }: { job: ImagingJob }) {
  const ref = useRef<HTMLDivElement>(null);
  // A new import and its outcome scroll into view: the side panel may be long after a scan.
  useEffect(() => {
    ref.current?.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }, [job.id, job.state]);
  const pct = Math.round(Math.min(1, Math.max(0, job.fraction)) * 100);
  const stage = STAGE_LABELS[job.stage] ?? job.stage;
  return (
    <div ref={ref} className={`progress progress--${job.state}`} data-testid="import-progress" data-state={job.state} aria-live="polite">
      <div className="progress__head">
        <span className="progress__stage">{stage}</span>
        <span className="progress__pct">{job.state === 'failed' ? '' : `${pct}%`}</span>
      </div>
      <progress max={1} value={job.state === 'failed' ? job.fraction : Math.max(0, Math.min(1, job.fraction))} aria-label="Import progress">
        {pct}%
      </progress>
      {job.state === 'failed' ? (
        <Alert tone="error">
          <strong>Import failed.</strong> {job.error ?? job.message}
        </Alert>
      ) : (
        <p className="progress__message muted small">{job.message}</p>
      )}
      {job.warnings.length ? (
        <Alert tone="warning" testId="import-warnings">
          {job.warnings.map((w) => (
            <p key={w}>{w}</p>
          ))}
        </Alert>
      ) : null}
      {job.state === 'done' && !job.patientId ? <p className="muted small">Stored without a patient: link it from the study when you know whose it is.</p> : null}
    </div>
  );
}
