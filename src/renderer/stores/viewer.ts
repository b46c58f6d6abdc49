/**
 * The DTI viewer's state: studies, this reader's imports (driven by `imaging.job` events with a
 * slow poll as a safety net) and the view settings of the open study. Volumes themselves are not
 * kept here (features/viewer/volumes.ts caches them).
 */
import { create } from 'zustand';
import type { ImagingJob, RequestOf, Study } from '../../shared/ipc.js';
import { call, subscribe } from '../api/client.js';
import { errorMessage, toApiError, type ApiError } from '../api/errors.js';
import { navigate } from './route.js';

export type PointerMode = 'window' | 'pan';

export interface WindowLevel {
  window: number;
  level: number;
}

interface ViewerState {
  studies: Study[] | null;
  studiesLoading: boolean;
  studiesError: string | null;
  /** Imports of this reader, newest first. */
  jobs: ImagingJob[];
  /** The import started from this window that the panel follows. */
  watchedJobId: string | null;
  importError: string | null;

  overlayId: string;
  opacity: number;
  volumeIndex: number;
  slice: number;
  /** Null: the automatic window of the current base volume. */
  windowLevel: WindowLevel | null;
  mode: PointerMode;
}

const VIEW_DEFAULTS = {
  overlayId: 'fa',
  opacity: 0.6,
  volumeIndex: 0,
  slice: 0,
  windowLevel: null,
  mode: 'window' as PointerMode,
};

export const useViewer = create<ViewerState>()(() => ({
  studies: null,
  studiesLoading: false,
  studiesError: null,
  jobs: [],
  watchedJobId: null,
  importError: null,
  ...VIEW_DEFAULTS,
}));

let studiesInFlight: Promise<void> | null = null;
export function fetchStudies(): Promise<void> {
  if (studiesInFlight) return studiesInFlight;
  useViewer.setState({ studiesLoading: true });
  studiesInFlight = call('imaging.studies', {})
    .then(({ studies }) => {
      const sorted = [...studies].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      useViewer.setState({ studies: sorted, studiesError: null });
    })
    .catch((error: unknown) => useViewer.setState({ studiesError: errorMessage(error) }))
    .finally(() => {
      studiesInFlight = null;
      useViewer.setState({ studiesLoading: false });
    });
  return studiesInFlight;
}

function upsertJob(job: ImagingJob): void {
  const before = useViewer.getState().jobs.find((j) => j.id === job.id);
  useViewer.setState((s) => {
    const others = s.jobs.filter((j) => j.id !== job.id);
    return { jobs: [job, ...others].sort((a, b) => b.startedAt.localeCompare(a.startedAt)) };
  });
  if (job.state === 'done' && before?.state !== 'done') {
    void fetchStudies().then(() => {
      // Open what this window imported, once it is stored.
      if (job.studyId && useViewer.getState().watchedJobId === job.id) openStudy(job.studyId);
    });
  }
}

let subscribed = false;
let pollTimer: ReturnType<typeof setInterval> | null = null;

/** Starts listening for import progress (idempotent). */
export function watchImports(canImport: boolean): void {
  if (!subscribed) {
    subscribed = true;
    subscribe('imaging.job', upsertJob);
  }
  if (canImport) void fetchJobs();
}

export async function fetchJobs(): Promise<void> {
  try {
    const { jobs } = await call('imaging.jobs', {});
    for (const job of jobs) upsertJob(job);
  } catch {
    // Progress still arrives as events; the poll only covers missed ones.
  }
}

function ensurePolling(): void {
  if (pollTimer) return;
  pollTimer = setInterval(() => {
    const running = useViewer.getState().jobs.some((j) => j.state === 'running');
    if (!running) {
      if (pollTimer) clearInterval(pollTimer);
      pollTimer = null;
      return;
    }
    void fetchJobs();
  }, 3_000);
}

/** Starts an import; resolves to null when it is under way, else to why it was refused (also shown as `importError`). */
export async function startImport(request: RequestOf<'imaging.import'>): Promise<ApiError | null> {
  useViewer.setState({ importError: null });
  try {
    const job = await call('imaging.import', request);
    useViewer.setState({ watchedJobId: job.id });
    upsertJob(job);
    ensurePolling();
    return null;
  } catch (error) {
    const apiError = toApiError(error);
    useViewer.setState({ importError: apiError.message });
    return apiError;
  }
}

/** Links a study stored without a patient (imaging.linkPatient), then refreshes the list. */
export async function linkStudyPatient(request: RequestOf<'imaging.linkPatient'>): Promise<void> {
  await call('imaging.linkPatient', request);
  await fetchStudies();
}

export function openStudy(studyId: string): void {
  navigate(`/viewer/${encodeURIComponent(studyId)}`);
}

/** A different study: back to the default view (middle slice is chosen once the grid is known). */
export function resetViewForStudy(): void {
  useViewer.setState({ volumeIndex: 0, slice: 0, windowLevel: null, mode: 'window' });
}

export const setOverlay = (overlayId: string) => useViewer.setState({ overlayId });
export const setOpacity = (opacity: number) => useViewer.setState({ opacity: Math.min(1, Math.max(0, opacity)) });
export const setVolumeIndex = (volumeIndex: number) => useViewer.setState({ volumeIndex, windowLevel: null });
export const setSlice = (slice: number) => useViewer.setState({ slice });
export const setWindowLevel = (windowLevel: WindowLevel | null) => useViewer.setState({ windowLevel });
export const setMode = (mode: PointerMode) => useViewer.setState({ mode });
