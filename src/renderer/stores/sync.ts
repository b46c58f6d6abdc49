/** The Sync screen's data: each server's state, open conflicts, open dead letters; reloaded together. */
import { create } from 'zustand';
import type { SyncConflictView, SyncDeadLetterView, SyncStatusView } from '../../shared/ipc.js';
import { call } from '../api/client.js';
import { toApiError, type ApiError } from '../api/errors.js';

interface SyncScreenState {
  status: SyncStatusView | null;
  conflicts: SyncConflictView[];
  deadLetters: SyncDeadLetterView[];
  loading: boolean;
  error: ApiError | null;
  loadedAt: number | null;
}

export const useSync = create<SyncScreenState>()(() => ({ status: null, conflicts: [], deadLetters: [], loading: false, error: null, loadedAt: null }));

export const SYNC_POLL_MS = 5_000;

/** Status every poll; conflicts and dead letters too (`full`), which are audited reads: on open and after actions. */
export async function loadSync(full = true): Promise<void> {
  useSync.setState({ loading: true });
  try {
    const status = await call('sync.status', {});
    const lists = full ? await Promise.all([call('sync.conflicts', { status: 'open' }), call('sync.deadLetters', { status: 'open' })]) : null;
    useSync.setState({
      status,
      ...(lists ? { conflicts: lists[0].conflicts, deadLetters: lists[1].deadLetters } : {}),
      loading: false,
      error: null,
      loadedAt: Date.now(),
    });
  } catch (error) {
    useSync.setState({ loading: false, error: toApiError(error) });
  }
}
