/**
 * App status (store state, passphrase source, first-run, demo), the transport connection, and the
 * boot sequence: app.status, then auth.resume with the token in sessionStorage when this connection
 * has no session yet (page reload, WebSocket reconnect).
 */
import { create } from 'zustand';
import type { AppStatus, ChannelName, ResponseOf } from '../../shared/ipc.js';
import { call, onApiError, onConnection, subscribe, type ConnectionInfo } from '../api/client.js';
import { toApiError, type ApiError } from '../api/errors.js';
import { readSessionToken } from '../api/session-token.js';
import { useSession } from './session.js';

export type DemoAccount = ResponseOf<'setup.initialize'>['demoAccounts'][number];

interface AppState {
  status: AppStatus | null;
  /** Why app.status could not be read; `transport` when the host could not be reached at all. */
  statusError: { message: string; transport: boolean } | null;
  connection: ConnectionInfo;
  /** Demo accounts returned by setup, held in memory only until the person continues to sign-in. */
  demoAccounts: DemoAccount[] | null;
  setStatus: (status: AppStatus) => void;
  setDemoAccounts: (accounts: DemoAccount[] | null) => void;
}

export const useApp = create<AppState>()((set) => ({
  status: null,
  statusError: null,
  connection: { state: 'connecting', attempt: 0, retryAt: null, everOpened: false, launchKeyRefused: false },
  demoAccounts: null,
  setStatus: (status) => {
    set({ status, statusError: null });
    const session = useSession.getState();
    if (status.session) session.setSession(status.session);
  },
  setDemoAccounts: (demoAccounts) => set({ demoAccounts }),
}));

let inFlight: Promise<void> | null = null;

/** Re-reads app.status (and resumes the session if needed). Concurrent callers share one run. */
export function refreshStatus(): Promise<void> {
  if (!inFlight) {
    inFlight = doRefresh().finally(() => {
      inFlight = null;
    });
  }
  return inFlight;
}

const TRANSPORT_CODES = new Set<string>(['connection-lost', 'not-connected', 'timeout', 'bad-reply', 'no-bridge']);
const STATUS_RETRY_MS = 5_000;
let retryTimer: ReturnType<typeof setTimeout> | null = null;
function scheduleRetry(): void {
  if (retryTimer) return;
  retryTimer = setTimeout(() => {
    retryTimer = null;
    void refreshStatus();
  }, STATUS_RETRY_MS);
}

async function doRefresh(): Promise<void> {
  let status: AppStatus;
  try {
    status = await call('app.status', {});
  } catch (error) {
    const e = toApiError(error);
    useApp.setState({ statusError: { message: e.message, transport: TRANSPORT_CODES.has(e.code) } });
    // Transport failures retry on reconnect; a refusal from the host is retried on a timer until a status arrives.
    if (!TRANSPORT_CODES.has(e.code)) scheduleRetry();
    return;
  }
  const sessionStore = useSession.getState();
  if (!status.session) {
    const token = readSessionToken();
    if (token && status.store === 'ready' && !status.setupRequired) {
      try {
        const session = await call('auth.resume', { token });
        status = { ...status, session };
      } catch (error) {
        const e = error as ApiError;
        if (TRANSPORT_CODES.has(e.code)) {
          // Keep the token: the next reconnect tries again.
          useApp.setState({ statusError: { message: e.message, transport: true } });
          return;
        }
        sessionStore.endSession(`Your session could not be resumed: ${e.message}`);
      }
    } else if (status.store !== 'ready') {
      // The store closed (host restarted…): keep the token so the session can resume once it is open.
      if (sessionStore.session) sessionStore.suspendSession();
    } else if (sessionStore.session) {
      sessionStore.endSession('Your session has ended. Sign in again.');
    }
  }
  useApp.getState().setStatus(status);
}

/** Codes after which what the page believes about the session or store is out of date. */
const STALE_CODES = new Set(['session-expired', 'session-locked', 'store-locked', 'store-uninitialized', 'store-corrupted']);
const OWN_AUTH_CHANNELS = new Set<ChannelName>(['app.status', 'auth.signIn', 'auth.resume', 'store.unlock', 'setup.initialize']);

let started = false;

/** Wires events, connection changes and error reactions; runs the first refresh. Idempotent. */
export function startApp(): void {
  if (started) return;
  started = true;

  subscribe('session.changed', ({ session, reason }) => {
    const store = useSession.getState();
    if (session) store.setSession(session, session.locked ? reason || null : null);
    else store.endSession(reason || 'Your session has ended.');
  });

  onApiError((error, channel) => {
    if (OWN_AUTH_CHANNELS.has(channel)) return;
    if (STALE_CODES.has(error.code) || error.code === 'unauthenticated') void refreshStatus();
  });

  onConnection((info) => {
    useApp.setState({ connection: info });
    if (info.state === 'open') void refreshStatus();
  });
}
