/** FHIR connectivity: system.connectivity polled while signed in, the connectivity.changed event, navigator.onLine. */
import { create } from 'zustand';
import type { Connectivity } from '../../shared/ipc.js';
import { call, subscribe } from '../api/client.js';
import { errorMessage } from '../api/errors.js';

interface ConnectivityState {
  data: Connectivity | null;
  browserOnline: boolean;
  error: string | null;
  checkedAt: number | null;
}

export const useConnectivity = create<ConnectivityState>()(() => ({
  data: null,
  browserOnline: typeof navigator === 'undefined' ? true : navigator.onLine,
  error: null,
  checkedAt: null,
}));

export const CONNECTIVITY_POLL_MS = 30_000;

export async function fetchConnectivity(): Promise<void> {
  try {
    const data = await call('system.connectivity', {});
    useConnectivity.setState({ data, error: null, checkedAt: Date.now() });
  } catch (error) {
    useConnectivity.setState({ error: errorMessage(error) });
  }
}

let started = false;
export function startConnectivityWatch(): void {
  if (started) return;
  started = true;
  subscribe('connectivity.changed', (data) => useConnectivity.setState({ data, error: null, checkedAt: Date.now() }));
  window.addEventListener('online', () => useConnectivity.setState({ browserOnline: true }));
  window.addEventListener('offline', () => useConnectivity.setState({ browserOnline: false }));
}

/** What the indicator shows. */
export function describeConnectivity(state: Pick<ConnectivityState, 'data' | 'browserOnline'>): {
  tone: 'online' | 'offline' | 'unknown';
  text: string;
  detail: string;
} {
  const { data, browserOnline } = state;
  if (!data) return { tone: 'unknown', text: 'Checking connectivity…', detail: 'Waiting for the first connectivity check.' };
  const reachable = data.servers.filter((s) => s.reachable === true).length;
  const queued = `${data.outboxPending} change${data.outboxPending === 1 ? '' : 's'} queued`;
  const detail = data.servers.length
    ? data.servers
        .map((s) => `${s.name} (${s.baseUrl}): ${s.reachable === null ? 'not checked yet' : s.reachable ? 'reachable' : 'unreachable'}`)
        .join('\n')
    : 'No FHIR server is configured.';
  if (data.online && browserOnline) {
    return { tone: 'online', text: `Online · ${reachable} FHIR server${reachable === 1 ? '' : 's'}`, detail: `${detail}\n${queued}` };
  }
  const why = !browserOnline ? 'This computer reports no network.' : data.servers.length ? '' : 'No FHIR server is configured.';
  return { tone: 'offline', text: `Offline — working locally, ${queued}`, detail: [why, detail].filter(Boolean).join('\n') };
}
