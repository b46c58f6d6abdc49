/**
 * The AI read of the open study: its reads and the model's state (analysis.reads), this reader's
 * running reads (driven by `analysis.job` events), the read whose maps the viewer overlays, and the
 * radiologist's decision. A finished read is fetched and selected at once.
 */
import { create } from 'zustand';
import type { AiRead, AiReadJob, RequestOf, ResponseOf } from '../../shared/ipc.js';
import { call, subscribe } from '../api/client.js';
import { errorMessage } from '../api/errors.js';

type ModelState = ResponseOf<'analysis.reads'>['model'];

interface AnalysisState {
  studyId: string | null;
  reads: AiRead[];
  model: ModelState | null;
  loading: boolean;
  error: string | null;
  /** This reader's reads in progress or just finished, newest first. */
  jobs: AiReadJob[];
  /** The read whose heat map and clusters the viewer offers as overlays. */
  selectedReadId: string | null;
}

export const useAnalysis = create<AnalysisState>()(() => ({ studyId: null, reads: [], model: null, loading: false, error: null, jobs: [], selectedReadId: null }));

export async function fetchReads(studyId: string): Promise<void> {
  if (useAnalysis.getState().studyId !== studyId) useAnalysis.setState({ studyId, reads: [], model: null, selectedReadId: null });
  useAnalysis.setState({ loading: true, error: null });
  try {
    const { reads, model } = await call('analysis.reads', { studyId });
    if (useAnalysis.getState().studyId !== studyId) return;
    const selected = useAnalysis.getState().selectedReadId;
    useAnalysis.setState({ reads, model, selectedReadId: reads.some((r) => r.id === selected) ? selected : (reads[0]?.id ?? null) });
  } catch (error) {
    if (useAnalysis.getState().studyId === studyId) useAnalysis.setState({ error: errorMessage(error) });
  } finally {
    if (useAnalysis.getState().studyId === studyId) useAnalysis.setState({ loading: false });
  }
}

function upsertJob(job: AiReadJob): void {
  const before = useAnalysis.getState().jobs.find((j) => j.id === job.id);
  useAnalysis.setState((s) => ({ jobs: [job, ...s.jobs.filter((j) => j.id !== job.id)].sort((a, b) => b.startedAt.localeCompare(a.startedAt)) }));
  if (job.state === 'done' && before?.state !== 'done' && job.studyId === useAnalysis.getState().studyId) {
    void fetchReads(job.studyId).then(() => job.readId && useAnalysis.setState({ selectedReadId: job.readId }));
  }
}

let subscribed = false;
/** Starts listening for AI read progress (idempotent) and picks up reads already running. */
export function watchReads(canRun: boolean): void {
  if (!subscribed) {
    subscribed = true;
    subscribe('analysis.job', upsertJob);
  }
  if (canRun) void call('analysis.jobs', {}).then(({ jobs }) => jobs.forEach(upsertJob), () => undefined);
}

export async function startRead(studyId: string): Promise<AiReadJob> {
  const job = await call('analysis.run', { studyId });
  upsertJob(job);
  return job;
}

export async function cancelRead(jobId: string): Promise<void> {
  upsertJob(await call('analysis.cancel', { jobId }));
}

export async function decideRead(request: RequestOf<'analysis.decide'>): Promise<AiRead> {
  const read = await call('analysis.decide', request);
  useAnalysis.setState((s) => ({ reads: s.reads.map((r) => (r.id === read.id ? read : r)) }));
  return read;
}

export function selectRead(readId: string): void {
  useAnalysis.setState({ selectedReadId: readId });
}
