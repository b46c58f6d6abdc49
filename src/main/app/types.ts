/** What a host (Electron or headless) needs from the composed application. Nothing else crosses. */
import type { Envelope, ErrorCode } from '../../shared/errors.js';
import type { EventName, EventPayload } from '../../shared/ipc.js';

/** One window (Electron webContents) or one WebSocket. Sessions are bound to a connection. */
export interface Connection {
  /** Unique for the life of the process, e.g. `ws:17` or `electron:3`. */
  readonly id: string;
  readonly kind: 'electron' | 'ws';
  /**
   * Where the calls come from, for per-source throttles and refusal budgets: `ws:<peer address>` for a
   * WebSocket, `electron` for a window. Several connections can share one source.
   */
  readonly source: string;
  /**
   * The host has seen this launch's secret on this connection: a WebSocket opened with the launch
   * cookie, or a window of the Electron app itself. First-run setup requires it.
   */
  readonly launchVerified: boolean;
  /** Pushes an event to this window only. */
  send<E extends EventName>(event: E, payload: EventPayload<E>): void;
}

/** Supplies the store key from Electron's safeStorage; absent in the headless host. */
export interface SafeStorageKeyProvider {
  /** False where safeStorage gives no real protection (Linux `basic_text`), so a passphrase is asked for instead. */
  isProtected(): boolean;
  encrypt(plain: Buffer): Buffer;
  decrypt(sealed: Buffer): Buffer;
}

export interface NeurowardApp {
  readonly host: 'electron' | 'headless';
  /** Validates, authorises, audits and runs one IPC call. Never throws: failures come back as an error envelope. */
  dispatch(connection: Connection, channel: unknown, payload: unknown, rawBytes: number): Promise<Envelope<unknown>>;
  connectionOpened(connection: Connection): void;
  /**
   * A refusal at the host's own door (no launch secret, bad frame, wrong Host/Origin, too many calls in
   * flight): audited like a refused call, within the same per-source budget, never one entry per message.
   */
  hostRefusal(refusal: HostRefusal): void;
  connectionClosed(connectionId: string): void;
  /** Where bedside monitors publish (the embedded broker's URL once it runs, else the configured one). */
  readonly vitalsBrokerUrl: string | null;
  /** Sends the appointment reminders that are due now (the app also does so every 30 s); resolves with the pass's counts. */
  sendDueReminders(): Promise<{ sent: number; failed: number; retried: number }>;
  /** Human-readable lines the host prints at start (address, store state, demo accounts). */
  readonly startupNotes: string[];
  close(): Promise<void>;
}

export interface HostRefusal {
  source: string;
  /** The connection, when the refusal happened on one (a frame on an open WebSocket). */
  connection: string | null;
  /** e.g. `host.no-launch-token`, `ipc.bad-frame`. */
  action: string;
  code: ErrorCode;
  message: string;
}
